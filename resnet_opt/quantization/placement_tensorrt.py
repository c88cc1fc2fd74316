"""NVIDIA's Q/DQ placement for TensorRT's int8 ResNet kernels.

TensorRT fuses Conv (+ residual Add) (+ ReLU) into one int8 kernel when the Conv's activation
input and weight are behind DequantizeLinear and the Add's identity (skip) input is too; the
Conv output that meets the skip stays inside the fused kernel, so it carries no Q/DQ. Hence:

- Q/DQ on the activation input of every Conv, int8 weights per output channel behind a DQ;
- Q/DQ on the skip input of every residual Add, exactly one input per Add (which, in a
  downsample block, is the downsample Conv's output);
- nothing on the logits; the classifier Gemm/MatMul stays in higher precision: it is about
  0.1 % of ResNet-50's MACs, and quantizing the logits is where int8 costs the most accuracy;
- biases stay float: TensorRT folds them into the fused kernel, and its ONNX parser has
  rejected the int32 bias DequantizeLinear that ONNX Runtime's quantizer writes.
"""

from __future__ import annotations

from collections.abc import Collection

from resnet_opt.quantization import ops
from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.plan import Plan, QdqTarget, TensorQuant, WeightQuant

TARGET = QdqTarget.TENSORRT


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what --exclude and the budget choose from)."""
    return ops.candidates(view, TARGET)


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers (nothing else gets Q/DQ)."""
    return candidate_layers(view)


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The TensorRT plan with the nodes in `keep` left in higher precision."""
    selection = ops.select(view, TARGET, keep)
    slots: dict[str, list[tuple[str, int]]] = {}
    weights: list[WeightQuant] = []
    for node, rule in selection.layers:
        for tensor, i in ops.input_slots(view, node, rule):
            slots.setdefault(tensor, []).append((node.name, i))
        if rule.weight:
            weights.append(WeightQuant(node.name, 1, node.input[1], ops.weight_axis(view, node)))
    tensors = tuple(TensorQuant(t, tuple(s)) for t, s in slots.items())
    return Plan(
        target=TARGET,
        tensors=tensors,
        weights=tuple(weights),
        biases=(),
        layers=selection.names(),
        kept=selection.kept,
        left_float=selection.left_float,
    )
