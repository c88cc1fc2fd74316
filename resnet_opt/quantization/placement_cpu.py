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

from resnet_opt.quantization import ops
from resnet_opt.quantization.graph_rules import GraphView
from resnet_opt.quantization.plan import BiasQuant, Plan, QdqTarget, TensorQuant, WeightQuant

TARGET = QdqTarget.CPU


def candidate_layers(view: GraphView) -> tuple[str, ...]:
    """Nodes this placement can run in int8 (what the budget chooses from)."""
    return ops.candidates(view, TARGET)


def excludable_layers(view: GraphView) -> tuple[str, ...]:
    """What --exclude may name: the int8 layers, and the pass-through ops that run on u8 by
    sharing their input's quantization (excluded, they run in float)."""
    sharing = tuple(n.name for n in ops.pass_throughs(view, TARGET))
    return candidate_layers(view) + sharing


def place(view: GraphView, keep: Collection[str] = ()) -> Plan:
    """The CPU plan with the nodes in `keep` left in higher precision."""
    outputs = view.index.graph_outputs
    quantized: dict[str, str | None] = {}  # tensor → shared source (None: own range)
    weights: list[WeightQuant] = []
    biases: list[BiasQuant] = []
    selection = ops.select(view, TARGET, keep)
    kept = list(selection.kept)

    def mark(tensor: str) -> None:
        if tensor not in outputs:
            quantized.setdefault(tensor, None)

    for node, rule in selection.layers:
        for tensor, _ in ops.input_slots(view, node, rule):
            mark(tensor)
        if rule.output:
            relu = view.sole_relu(node.output[0])
            mark(relu.output[0] if relu is not None else node.output[0])
        if rule.weight:
            weights.append(WeightQuant(node.name, 1, node.input[1], ops.weight_axis(view, node)))
            if rule.int32_bias and len(node.input) > 2 and node.input[2]:  # a constant
                biases.append(BiasQuant(node.name, 2, node.input[2], node.input[0], node.input[1]))

    # pass-through ops between quantized tensors keep the quantization: int8 MaxPool / Flatten
    for node in ops.pass_throughs(view, TARGET):
        if node.name in keep:
            kept.append(node.name)
            continue
        if node.input[0] in quantized:
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
        target=TARGET,
        tensors=tuple(tensors),
        weights=tuple(weights),
        biases=tuple(biases),
        layers=selection.names(),
        kept=tuple(kept),
        left_float=selection.left_float,
    )


def _in_graph_order(view: GraphView, tensors: Collection[str]) -> list[str]:
    order = [t for t in view.model.graph.input if t.name in tensors]
    names = [t.name for t in order]
    for node in view.nodes:
        names.extend(out for out in node.output if out in tensors)
    return names
