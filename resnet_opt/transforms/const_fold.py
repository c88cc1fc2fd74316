"""Constant subgraphs evaluated into initializers: what BatchNorm folding needs first.

Older exporters and other frameworks write a weight not as an initializer but as a small
computation on constants: `Constant`, `ConstantOfShape`, `Identity`, `Cast`, `Reshape` or
`Unsqueeze` of an initializer, `Mul` of two constants. The BN pass folds only parameters it can
read, so such a model kept every BN. Polygraphy (`surgeon sanitize --fold-constants`), onnxsim
and onnxslim evaluate those nodes first; this pass does the same with ONNX's own reference
evaluator (`onnx.reference`, part of the `onnx` package we already depend on), one node at a
time, in graph order.

What is never folded: nodes whose inputs are not all constant; random ops (their value differs
per run); QuantizeLinear / DequantizeLinear (they are the int8 decisions quantize wrote, and
folding a DequantizeLinear would turn an int8 weight back into fp32); nodes of other domains or
with subgraphs; nodes that write a graph output; results larger than MAX_FOLDED_BYTES. A node the
evaluator cannot run is left as it is. The stage that calls this still verifies the whole
result against the source model with ONNX Runtime.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.graph import drop_initializers, opset_version

if TYPE_CHECKING:
    import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")
NEVER_FOLDED = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
    }
)
MAX_FOLDED_BYTES = 256 * 2**20  # a folded result is stored in the file: keep it weight-sized


@dataclass(frozen=True)
class ConstantFold:
    model: onnx.ModelProto  # a new model; the input model is not mutated
    folded: int  # nodes replaced by initializers (0: the model is returned as it was)
    by_op: dict[str, int] = field(default_factory=dict)  # folded nodes per op type

    def to_dict(self) -> dict[str, Any]:
        return {"folded": self.folded, "by_op": dict(sorted(self.by_op.items()))}


def fold_constants(model: onnx.ModelProto) -> ConstantFold:
    """Replace every foldable constant-only node of the main graph by initializers."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    opsets = {"": opset_version(out)}
    values: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        values[init.name] = numpy_helper.to_array(init)
    graph_outputs = {o.name for o in graph.output}
    folded_nodes: list[Any] = []
    by_op: Counter[str] = Counter()
    for node in graph.node:
        results = _evaluate(node, values, opsets, graph_outputs)
        if results is None:
            continue
        values.update(results)
        folded_nodes.append(node)
        by_op[node.op_type] += 1
    if not folded_nodes:
        return ConstantFold(out, 0, {})

    gone = {id(n) for n in folded_nodes}
    kept = [n for n in graph.node if id(n) not in gone]
    readers = Counter(name for n in kept for name in n.input if name)
    readers.update(_subgraph_reads(kept))
    readers.update(graph_outputs)
    produced = [o for n in folded_nodes for o in n.output if o]
    existing = {t.name for t in graph.initializer}
    for name in produced:
        if readers[name] and name not in existing:
            graph.initializer.append(numpy_helper.from_array(values[name], name))
    del graph.node[:]
    graph.node.extend(kept)
    drop_initializers(graph, (t.name for t in graph.initializer if not readers[t.name]))
    done = {t.name for t in graph.initializer} | set(produced)
    infos = [vi for vi in graph.value_info if vi.name not in done]  # initializers carry types
    del graph.value_info[:]
    graph.value_info.extend(infos)
    list_initializers_as_inputs(out)
    return ConstantFold(out, len(folded_nodes), dict(by_op))


def list_initializers_as_inputs(model: onnx.ModelProto) -> None:
    """IR version 3 requires every initializer among the graph inputs: add the ones a pass
    created (in place; later IR versions are left as they are)."""
    import onnx

    if model.ir_version >= 4:
        return
    graph = model.graph
    listed = {i.name for i in graph.input}
    for tensor in graph.initializer:
        if tensor.name not in listed:
            graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )


def _evaluate(
    node: onnx.NodeProto,
    values: dict[str, np.ndarray],
    opsets: dict[str, int],
    graph_outputs: set[str],
) -> dict[str, np.ndarray] | None:
    """The node's outputs when it can and may be folded, else None."""
    from onnx import AttributeProto

    if node.domain not in DEFAULT_DOMAINS or node.op_type in NEVER_FOLDED:
        return None
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
        return None
    inputs = [name for name in node.input if name]
    if any(name not in values for name in inputs):
        return None
    if not inputs and node.op_type != "Constant":  # no inputs: only Constant is a constant
        return None
    if any(o in graph_outputs for o in node.output if o):
        return None
    from onnx.reference import ReferenceEvaluator

    try:
        evaluator = ReferenceEvaluator(node, opsets=opsets)
        results = evaluator.run(None, {name: values[name] for name in inputs})
    except Exception:
        return None
    named = {}
    for name, value in zip(node.output, results, strict=False):
        if not name:
            continue
        array = np.asarray(value)
        if array.nbytes > MAX_FOLDED_BYTES or array.dtype == object:
            return None
        named[name] = array
    return named


def _subgraph_reads(nodes: list[Any]) -> Counter[str]:
    """Names read inside If/Loop/Scan bodies (a body may read any outer tensor by name)."""
    from onnx import AttributeProto

    reads: Counter[str] = Counter()

    def walk(body: Any) -> None:
        reads.update(o.name for o in body.output)
        for node in body.node:
            reads.update(i for i in node.input if i)
            for sub in _bodies(node, AttributeProto):
                walk(sub)

    for node in nodes:
        for sub in _bodies(node, AttributeProto):
            walk(sub)
    return reads


def _bodies(node: Any, attribute_proto: Any) -> list[Any]:
    bodies = []
    for attr in node.attribute:
        if attr.type == attribute_proto.GRAPH:
            bodies.append(attr.g)
        elif attr.type == attribute_proto.GRAPHS:
            bodies.extend(attr.graphs)
    return bodies
