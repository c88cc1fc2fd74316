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

from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.plan import Plan, QdqTarget, TensorQuant, WeightQuant


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what --exclude and the budget choose from)."""
    return tuple(
        n.name
        for n in view.nodes
        if view.conv_is_quantizable(n) or (n.op_type == "Add" and view.residual_add(n))
    )


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers (nothing else gets Q/DQ)."""
    return candidate_layers(view)


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The TensorRT plan with the nodes in `keep` left in higher precision."""
    slots: dict[str, list[tuple[str, int]]] = {}
    weights: list[WeightQuant] = []
    layers: list[str] = []
    kept: list[str] = []
    left_float: list[tuple[str, str]] = []
    for node in view.nodes:
        if node.op_type == "Conv":
            if not view.conv_is_quantizable(node):
                left_float.append((node.name, "weight is computed at run time, not a constant"))
                continue
            if node.name in keep:
                kept.append(node.name)
                continue
            layers.append(node.name)
            slots.setdefault(node.input[0], []).append((node.name, 0))
            weights.append(WeightQuant(node.name, 1, node.input[1], axis=0))
        elif node.op_type == "Add":
            if not all(view.is_activation(x) for x in node.input):
                continue  # a bias or constant offset, not a residual connection
            residual = view.residual_add(node)
            if residual is None:
                left_float.append((node.name, "no skip input could be identified"))
                continue
            if node.name in keep:
                kept.append(node.name)
                continue
            layers.append(node.name)
            slots.setdefault(residual.skip, []).append((node.name, residual.skip_index))
        elif node.op_type in ("Gemm", "MatMul"):
            left_float.append((node.name, "classifier kept in higher precision"))
    tensors = tuple(TensorQuant(t, tuple(s)) for t, s in slots.items())
    return Plan(
        target=QdqTarget.TENSORRT,
        tensors=tensors,
        weights=tuple(weights),
        biases=(),
        layers=tuple(layers),
        kept=tuple(kept),
        left_float=tuple(left_float),
    )
