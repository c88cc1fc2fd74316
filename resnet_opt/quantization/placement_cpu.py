"""The Q/DQ layout ONNX Runtime's CPU int8 kernels run fastest.

It reproduces what `onnxruntime.quantization.quantize_static` writes for a ResNet (QDQ format,
u8 activations, s8 per-channel weights), which ORT's graph optimizer turns into one int8 chain
in NHWC: QLinearConv, QLinearAdd, u8 MaxPool, QLinearGlobalAveragePool and QGemm, with one
Transpose at each end. For that, every int8 op needs DQ on all its inputs and a Q on its output:

- Q/DQ on the output of every quantized Conv and Add, after a Relu that is its only consumer
  (ORT folds Relu into the Q when the zero point is 0, as it is for a non-negative range);
- Q/DQ on the graph input and on every other activation an int8 op reads;
- MaxPool and Flatten outputs reuse their input's scale and zero point, so ORT runs them on u8;
- GlobalAveragePool in int8 with its own output range; the classifier Gemm reads int8 inputs but
  writes float logits (no Q/DQ on the logits);
- int32 biases (scale = input scale × weight scale): ORT's Conv/Gemm fusions require them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from resnet_opt.graph import attribute
from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.plan import BiasQuant, Plan, QdqTarget, TensorQuant, WeightQuant

if TYPE_CHECKING:
    import onnx

SHARING_OPS = frozenset({"MaxPool", "Flatten"})  # same scale in and out: run on u8 as they are


def _gemm_axis(view: GraphView, node_name: str) -> int | None:
    """The output-channel axis of a Gemm's constant weight, or None when it is not plain."""
    node = view.by_name[node_name]
    if len(node.input) < 2 or not view.is_constant(node.input[1]):
        return None
    if attribute(node, "transA", 0) or attribute(node, "alpha", 1.0) != 1.0:
        return None
    if len(node.input) > 2 and node.input[2] and attribute(node, "beta", 1.0) != 1.0:
        return None
    return 0 if attribute(node, "transB", 0) else 1


def _constant_bias(view: GraphView, node: onnx.NodeProto) -> bool:
    """No bias, or a constant one: the int32 bias ORT's int8 Conv/Gemm needs is made from it."""
    return len(node.input) < 3 or not node.input[2] or view.is_constant(node.input[2])


def _is_layer(view: GraphView, name: str) -> bool:
    node = view.by_name[name]
    if node.op_type == "Conv":
        return view.conv_is_quantizable(node) and _constant_bias(view, node)
    if node.op_type == "Add":
        return len(node.input) == 2 and all(view.is_activation(x) for x in node.input)
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type == "Gemm":
        return (
            _gemm_axis(view, name) is not None
            and view.is_activation(node.input[0])
            and _constant_bias(view, node)
        )
    return False


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what the budget chooses from)."""
    return tuple(n.name for n in view.nodes if _is_layer(view, n.name))


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers, and the pass-through ops that run on u8 by
    sharing their input's quantization (excluded, they run in float)."""
    sharing = tuple(n.name for n in view.nodes if n.op_type in SHARING_OPS)
    return candidate_layers(view) + sharing


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The CPU plan with the nodes in `keep` left in higher precision."""
    outputs = view.index.graph_outputs
    quantized: dict[str, str | None] = {}  # tensor → shared source (None: own range)
    weights: list[WeightQuant] = []
    biases: list[BiasQuant] = []
    layers: list[str] = []
    kept: list[str] = []
    left_float: list[tuple[str, str]] = []

    def mark(tensor: str) -> None:
        if tensor not in outputs:
            quantized.setdefault(tensor, None)

    for node in view.nodes:
        if not _is_layer(view, node.name):
            if node.op_type in ("Conv", "Gemm", "MatMul"):
                left_float.append((node.name, "weight or bias not a constant in a supported form"))
            continue
        if node.name in keep:
            kept.append(node.name)
            continue
        layers.append(node.name)
        for x in node.input[:1] if node.op_type in ("Conv", "Gemm") else node.input:
            mark(x)
        if node.op_type != "Gemm":  # the classifier writes float logits
            relu = view.sole_relu(node.output[0])
            mark(relu.output[0] if relu is not None else node.output[0])
        if node.op_type in ("Conv", "Gemm"):
            axis = 0 if node.op_type == "Conv" else _gemm_axis(view, node.name)
            assert axis is not None
            weights.append(WeightQuant(node.name, 1, node.input[1], axis))
            if len(node.input) > 2 and node.input[2]:  # a constant (see _is_layer)
                biases.append(BiasQuant(node.name, 2, node.input[2], node.input[0], node.input[1]))

    # pass-through ops between quantized tensors keep the quantization: int8 MaxPool / Flatten
    for node in view.nodes:
        if node.op_type in SHARING_OPS and node.name in keep:
            kept.append(node.name)
            continue
        if node.op_type in SHARING_OPS and node.input[0] in quantized:
            source = quantized[node.input[0]] or node.input[0]
            if node.output[0] not in outputs and view.consumers(node.output[0]):
                quantized[node.output[0]] = source

    # a pass-through op can follow another; resolve chains to the tensor that owns the range
    def root(tensor: str) -> str | None:
        source = quantized[tensor]
        while source is not None and quantized.get(source) is not None:
            source = quantized[source]
        return source

    tensors = []
    for tensor in _in_graph_order(view, quantized):
        slots = tuple(
            (user.name, i)
            for user in view.consumers(tensor)
            for i, name in enumerate(user.input)
            if name == tensor
        )
        tensors.append(TensorQuant(tensor, slots, root(tensor)))
    return Plan(
        target=QdqTarget.CPU,
        tensors=tuple(tensors),
        weights=tuple(weights),
        biases=tuple(biases),
        layers=tuple(layers),
        kept=tuple(kept),
        left_float=tuple(left_float),
    )


def _in_graph_order(view: GraphView, tensors: Collection[str]) -> list[str]:
    order = [t for t in view.model.graph.input if t.name in tensors]
    names = [t.name for t in order]
    for node in view.nodes:
        names.extend(out for out in node.output if out in tensors)
    return names
