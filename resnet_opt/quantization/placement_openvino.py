"""The Q/DQ layout OpenVINO's CPU low-precision transformations fold completely.

OpenVINO reads an activation QuantizeLinear → DequantizeLinear pair as one FakeQuantize and a
weight DequantizeLinear as Convert → (Subtract) → Multiply, then its low-precision
transformations move those into the int8 kernels. They fold what NNCF writes when it quantizes
an OpenVINO model, so this placement writes the same structure (measured on ResNet-50,
benchmarks/reports/cpu_peers.md):

- Q/DQ on the activation input of every Conv and of the classifier Gemm (int8 weights per
  output channel, scale only: no zero point, hence no Subtract), float biases (an int32 bias
  DequantizeLinear stays as Convert/Multiply nodes in the IR);
- Q/DQ on *both* inputs of every residual Add (where a skip input is already quantized for a
  Conv, the same pair serves), so the Add runs on int8 inputs and fuses into the Conv before it;
- the stem's MaxPool: Q/DQ on its input rather than its output (max commutes with the
  quantizer, the values are the same), so OpenVINO max-pools in int8, as in NNCF's IR;
- Q/DQ on the input of GlobalAveragePool (the last block's output), as NNCF does, and the
  classifier's input quantized on the pooled output, before its Flatten (as NNCF does);
- activations u8 [0, amax] where calibration saw no negative value (after a Relu), symmetric
  s8 elsewhere (`qdq.activation_params`).
"""

from __future__ import annotations

from collections.abc import Collection

from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.placement_cpu import _gemm_axis
from resnet_opt.quantization.plan import Plan, QdqTarget, TensorQuant, WeightQuant


def _is_layer(view: GraphView, name: str) -> bool:
    node = view.by_name[name]
    if node.op_type == "Conv":
        return view.conv_is_quantizable(node)
    if node.op_type == "Add":
        return view.residual_add(node) is not None
    if node.op_type == "GlobalAveragePool":
        return view.is_activation(node.input[0])
    if node.op_type == "Gemm":
        return _gemm_axis(view, name) is not None and view.is_activation(node.input[0])
    return False


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what --exclude and the budget choose from)."""
    return tuple(n.name for n in view.nodes if _is_layer(view, n.name))


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers."""
    return candidate_layers(view)


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The OpenVINO plan with the nodes in `keep` left in higher precision."""
    slots: dict[str, list[tuple[str, int]]] = {}
    weights: list[WeightQuant] = []
    layers: list[str] = []
    kept: list[str] = []
    left_float: list[tuple[str, str]] = []
    for node in view.nodes:
        if not _is_layer(view, node.name):
            if node.op_type in ("Conv", "Gemm", "MatMul"):
                left_float.append((node.name, "weight not a constant in a supported form"))
            elif node.op_type == "Add" and all(view.is_activation(x) for x in node.input):
                left_float.append((node.name, "no skip input could be identified"))
            continue
        if node.name in keep:
            kept.append(node.name)
            continue
        layers.append(node.name)
        inputs = node.input if node.op_type == "Add" else node.input[:1]
        for i, tensor in enumerate(inputs):
            slot = _before_flatten(view, tensor) if node.op_type == "Gemm" else None
            if node.op_type == "Conv":
                slot = _before_max_pool(view, tensor, keep)
            tensor, where = slot if slot is not None else (tensor, (node.name, i))
            if where not in slots.setdefault(tensor, []):
                slots[tensor].append(where)
        if node.op_type in ("Conv", "Gemm"):
            axis = 0 if node.op_type == "Conv" else _gemm_axis(view, node.name)
            assert axis is not None
            weights.append(WeightQuant(node.name, 1, node.input[1], axis))
    order = _in_graph_order(view, slots)
    tensors = tuple(TensorQuant(t, tuple(slots[t])) for t in order)
    return Plan(
        target=QdqTarget.OPENVINO,
        tensors=tensors,
        weights=tuple(weights),
        biases=(),
        layers=tuple(layers),
        kept=tuple(kept),
        left_float=tuple(left_float),
    )


def _before_flatten(view: GraphView, tensor: str) -> tuple[str, tuple[str, int]] | None:
    """The classifier's input quantized before its Flatten/Reshape (on the pooled output, the
    tensor and slot), where that reshape feeds only the Gemm: OpenVINO then fuses the
    FakeQuantize into the ReduceMean and reshapes int8 data, as in NNCF's IR; after the
    reshape it runs as a standalone f32 FakeQuantize (measured: one more runtime node)."""
    node = view.producer(tensor)
    if (
        node is None
        or node.op_type not in ("Flatten", "Reshape")
        or len(view.consumers(tensor)) != 1
    ):
        return None
    source = node.input[0]
    if not view.is_activation(source):
        return None
    return source, (node.name, 0)


def _before_max_pool(
    view: GraphView, tensor: str, keep: Collection[str]
) -> tuple[str, tuple[str, int]] | None:
    """A Conv input made by a MaxPool (the stem's) quantized on the MaxPool's input instead,
    where every user of the pooled tensor is a Conv quantized here: max commutes with the
    monotone quantizer, so the values are the same, and OpenVINO then writes u8 from the stem
    Conv and max-pools in int8, as in NNCF's IR (after the pool: an f32 Conv output, an f32
    pool and a standalone FakeQuantize, measured on ResNet-50)."""
    node = view.producer(tensor)
    if node is None or node.op_type != "MaxPool" or len(node.output) != 1:
        return None
    users = view.consumers(tensor)
    if not all(u.op_type == "Conv" and _is_layer(view, u.name) and u.name not in keep
               for u in users):  # fmt: skip
        return None
    source = node.input[0]
    if not view.is_activation(source):
        return None
    return source, (node.name, 0)


def _in_graph_order(view: GraphView, tensors: Collection[str]) -> list[str]:
    names = [t.name for t in view.model.graph.input if t.name in tensors]
    for node in view.nodes:
        names.extend(out for out in node.output if out in tensors)
    return names
