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

The per-op rules (and the two moves above, `ops._before_max_pool` / `ops._before_flatten`) are
this layout's column in `ops.OPS`; this module writes them as a plan.
"""

from __future__ import annotations

from collections.abc import Collection

from resnet_opt.quantization import ops
from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.plan import Plan, QdqTarget, TensorQuant, WeightQuant

TARGET = QdqTarget.OPENVINO


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what --exclude and the budget choose from)."""
    return ops.candidates(view, TARGET)


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers."""
    return candidate_layers(view)


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The OpenVINO plan with the nodes in `keep` left in higher precision."""
    selection = ops.select(view, TARGET, keep)
    slots: dict[str, list[tuple[str, int]]] = {}
    weights: list[WeightQuant] = []
    for node, rule in selection.layers:
        for tensor, i in ops.input_slots(view, node, rule):
            moved = rule.relocate(view, tensor, keep) if rule.relocate is not None else None
            tensor, where = moved if moved is not None else (tensor, (node.name, i))
            if where not in slots.setdefault(tensor, []):
                slots[tensor].append(where)
        if rule.weight:
            weights.append(WeightQuant(node.name, 1, node.input[1], ops.weight_axis(view, node)))
    order = _in_graph_order(view, slots)
    tensors = tuple(TensorQuant(t, tuple(slots[t])) for t in order)
    return Plan(
        target=TARGET,
        tensors=tensors,
        weights=tuple(weights),
        biases=(),
        layers=selection.names(),
        kept=selection.kept,
        left_float=selection.left_float,
    )


def _in_graph_order(view: GraphView, tensors: Collection[str]) -> list[str]:
    names = [t.name for t in view.model.graph.input if t.name in tensors]
    for node in view.nodes:
        names.extend(out for out in node.output if out in tensors)
    return names
