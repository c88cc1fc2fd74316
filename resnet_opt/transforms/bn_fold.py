"""Fold BatchNormalization into the Conv or Gemm that feeds it: a pure ONNX graph pass.

In inference a BatchNormalization is a per-channel affine map, y = s·x + (β − μ·s) with
s = γ / √(σ² + ε), so it can be moved into the weights of the Conv/Gemm before it and removed.
The exporters already do this for PyTorch models in eval mode; this pass exists for everything
else (model zoos, training-mode exports, other frameworks) and says, per BN it could not fold,
why not — a deployment tool must not guess.

The pass never changes what the graph computes: a BN is folded only when the producer's output
feeds nothing else, its weights are initializers used by no other node, and the BN runs in
inference mode (training mode normalizes with batch statistics, which no weight can encode).
The BN's output name is kept (the producer now writes it), so downstream nodes, graph outputs and
their value_info stay valid. Arithmetic is float64; results are stored in the weight's dtype.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.graph import (
    GraphIndex,
    all_names,
    attribute,
    drop_initializers,
    index_graph,
    unique_name,
)

if TYPE_CHECKING:
    import onnx

BATCHNORM = "BatchNormalization"
DEFAULT_DOMAINS = ("", "ai.onnx")
DEFAULT_EPSILON = 1e-5
_SHAPE_READERS = ("Shape", "Size")

# element types whose weights can take a rescale (TensorProto.FLOAT, FLOAT16, DOUBLE, BFLOAT16)
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


@dataclass(frozen=True)
class LeftBatchNorm:
    """A BatchNormalization the pass kept, and why."""

    node: str  # the BN node's name (or its output tensor name if unnamed)
    reason: str  # e.g. "input comes from Relu, not Conv/Gemm"


@dataclass(frozen=True)
class FoldResult:
    model: onnx.ModelProto  # a new model; the input model is not mutated
    folded: int
    left: tuple[LeftBatchNorm, ...]


@dataclass(frozen=True)
class _Plan:
    """One fold, computed from a graph index and applied afterwards.

    The bias (Conv B, Gemm C) is an initializer rewritten in place, a new initializer when there
    was none, or — when it is computed at run time, as in the dynamo exporter's unoptimized
    output — a tensor that gets `runtime_bias · bias_scale + new_bias` on its (C-sized) path.
    """

    bn: Any  # onnx.NodeProto
    producer: Any  # onnx.NodeProto (Conv or Gemm)
    weight: str
    new_weight: np.ndarray
    bias: str | None  # existing bias / C initializer, or None when one must be added
    new_bias: np.ndarray
    runtime_bias: str | None = None
    bias_scale: np.ndarray | None = None


def fold_batchnorm(model: onnx.ModelProto) -> FoldResult:
    """Fold every foldable BatchNormalization of the main graph; report the others."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    folded = 0
    param_inputs: list[str] = []  # BN parameters that may have become dead
    while True:  # more than one round only for chains such as Conv → BN → BN
        index = index_graph(graph)
        refs = _subgraph_references(graph)
        plans = [
            plan
            for bn in _batchnorms(graph)
            if isinstance(plan := _examine(bn, index, refs), _Plan)
        ]
        if not plans:
            break
        taken = all_names(graph)
        for plan in plans:
            old_bias = plan.producer.input[2:3]
            _apply(graph, plan, taken)
            param_inputs.extend(i for i in (*plan.bn.input[1:], *old_bias) if i)
        gone = {plan.bn.output[0] for plan in plans}  # the producers write these names now
        _remove_nodes(graph, (BATCHNORM,), gone)
        folded += len(plans)
    _remove_dead(graph, param_inputs)
    _drop_stale_value_info(graph)
    index = index_graph(graph)
    refs = _subgraph_references(graph)
    left = [
        LeftBatchNorm(_label(bn), reason)
        for bn in _batchnorms(graph)
        if isinstance(reason := _examine(bn, index, refs), str)
    ]
    left += [LeftBatchNorm(_label(bn), reason) for bn, reason in _nested_batchnorms(graph)]
    return FoldResult(model=out, folded=folded, left=tuple(left))


def _label(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


def _batchnorms(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    return [n for n in graph.node if n.op_type == BATCHNORM and n.domain in DEFAULT_DOMAINS]


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    from onnx import AttributeProto

    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def _subgraph_references(graph: onnx.GraphProto) -> Counter[str]:
    """Names read inside If/Loop/Scan bodies: a body may read any outer tensor by name."""
    refs: Counter[str] = Counter()

    def walk(body: onnx.GraphProto) -> None:
        refs.update(o.name for o in body.output)
        for node in body.node:
            refs.update(i for i in node.input if i)
            for sub in _subgraphs(node):
                walk(sub)

    for node in graph.node:
        for sub in _subgraphs(node):
            walk(sub)
    return refs


def _nested_batchnorms(graph: onnx.GraphProto) -> Iterator[tuple[onnx.NodeProto, str]]:
    for node in graph.node:
        for sub in _subgraphs(node):
            where = (
                f"inside the {node.op_type} {_label(node)!r} body; only the main graph is folded"
            )
            for inner in sub.node:
                if inner.op_type == BATCHNORM:
                    yield inner, where
            yield from _nested_batchnorms(sub)


def _uses(name: str, index: GraphIndex, refs: Counter[str]) -> int:
    """How many places read `name` (node inputs, subgraph bodies, graph outputs)."""
    return len(index.consumers_of(name)) + refs[name] + (name in index.graph_outputs)


def _value_uses(name: str, index: GraphIndex, refs: Counter[str]) -> int:
    """Like `_uses`, but Shape/Size readers do not count: a rescale keeps the shape."""
    shape_only = sum(
        n.op_type in _SHAPE_READERS and n.domain in DEFAULT_DOMAINS
        for n in index.consumers_of(name)
    )
    return _uses(name, index, refs) - shape_only


def _constant(name: str, index: GraphIndex, depth: int = 0) -> np.ndarray | None:
    """The value of `name` if it is fixed in the file: an initializer or Constant (via Identity)."""
    from onnx import helper, numpy_helper

    if name in index.initializers:
        return index.weight(name)
    node = index.producer(name)
    if node is None or node.domain not in DEFAULT_DOMAINS or depth > 16:
        return None
    if node.op_type == "Identity":
        return _constant(node.input[0], index, depth + 1)
    if node.op_type == "Constant" and len(node.attribute) == 1:
        attr = node.attribute[0]
        if attr.name == "value":
            return np.asarray(numpy_helper.to_array(attr.t))
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.asarray(helper.get_attribute_value(attr))
    return None


def _weight(
    role: str, name: str, index: GraphIndex, refs: Counter[str]
) -> tuple[np.ndarray, None] | tuple[None, str]:
    """A Conv/Gemm weight we may rewrite in place, or the reason we may not."""
    if name not in index.initializers:
        producer = index.producer(name)
        source = f"produced by {producer.op_type}" if producer else "a graph input"
        return None, f"{role} {name!r} is not an initializer ({source})"
    if _value_uses(name, index, refs) > 1:
        return None, f"{role} {name!r} is shared with another node"
    dtype = index.initializers[name].data_type
    if dtype not in _FLOAT_TYPES:
        return None, f"{role} {name!r} is not a float tensor (ONNX type {dtype})"
    value = index.weight(name)
    assert value is not None
    return value, None


def _examine(bn: onnx.NodeProto, index: GraphIndex, refs: Counter[str]) -> _Plan | str:
    """How to fold `bn`, or the reason it stays."""
    outputs = [o for o in bn.output if o]
    if attribute(bn, "training_mode", 0) == 1:
        return "training_mode=1: it normalizes with batch statistics; export in eval mode"
    if len(outputs) > 1:
        return (
            f"it has running-statistics outputs ({', '.join(outputs[1:])}): training mode, "
            "it normalizes with batch statistics; export in eval mode"
        )
    if attribute(bn, "spatial", 1) == 0:
        return "spatial=0 (per-position statistics) is not supported"
    if len(bn.input) < 5:
        return f"it has {len(bn.input)} inputs, not the 5 of BatchNormalization"
    x = bn.input[0]
    producer = index.producer(x)
    if producer is None:
        kind = "a graph input" if x in index.graph_inputs else "a constant"
        return f"input {x!r} is {kind}, not a Conv/Gemm output"
    op = producer.op_type
    if op not in ("Conv", "Gemm") or producer.domain not in DEFAULT_DOMAINS:
        domain = f"{producer.domain}." if producer.domain not in DEFAULT_DOMAINS else ""
        return f"input comes from {domain}{op}, not Conv/Gemm"
    if x in index.graph_outputs:
        return f"{op} output {x!r} is also a graph output"
    consumers = _uses(x, index, refs)
    if consumers > 1:
        return f"{op} output has {consumers} consumers"

    params: list[np.ndarray] = []
    for role, name in zip(("scale", "bias", "mean", "var"), bn.input[1:5], strict=True):
        value = _constant(name, index)
        if value is None:
            return f"its {role} {name!r} is computed at run time, not a constant"
        params.append(value.astype(np.float64).reshape(-1))
    gamma, beta, mean, var = params
    eps = float(attribute(bn, "epsilon", DEFAULT_EPSILON))
    if not all(np.isfinite(p).all() for p in params):
        return "its parameters hold NaN or infinity"
    if (var + eps <= 0).any():
        return "variance + epsilon is not positive for some channel"
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    if op == "Conv":
        return _plan_conv(bn, producer, scale, shift, index, refs)
    return _plan_gemm(bn, producer, scale, shift, index, refs)


def _channels_match(params: int, channels: int, role: str) -> str | None:
    if params != channels:
        return f"it has {params} channels but the {role} has {channels} output channels"
    return None


def _plan_conv(
    bn: onnx.NodeProto,
    conv: onnx.NodeProto,
    scale: np.ndarray,
    shift: np.ndarray,
    index: GraphIndex,
    refs: Counter[str],
) -> _Plan | str:
    if len(conv.input) < 2:
        return "its Conv has no weight input"
    w_name = conv.input[1]
    w, why = _weight("Conv weight", w_name, index, refs)
    if w is None:
        return why or "unusable Conv weight"
    if w.ndim < 3:
        return f"Conv weight {w_name!r} has rank {w.ndim}, not 3 or more"
    channels = w.shape[0]
    if mismatch := _channels_match(scale.size, channels, "Conv"):
        return mismatch
    per_channel = scale.reshape((channels,) + (1,) * (w.ndim - 1))
    new_weight = (w.astype(np.float64) * per_channel).astype(w.dtype)
    b_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else None
    b = None if b_name is None else _constant(b_name, index)
    if b_name is not None and b is None:
        return _Plan(bn, conv, w_name, new_weight, None, shift.astype(w.dtype), b_name, scale)
    bias = np.zeros(channels)
    if b is not None:
        if b.size != channels:
            return f"Conv bias {b_name!r} has {b.size} values, not {channels}"
        bias = b.astype(np.float64).reshape(-1)
    new_bias = (bias * scale + shift).astype(w.dtype)
    in_place = _own(b_name, index, refs) if b is not None and b.shape == new_bias.shape else None
    return _Plan(bn, conv, w_name, new_weight, in_place, new_bias)


def _plan_gemm(
    bn: onnx.NodeProto,
    gemm: onnx.NodeProto,
    scale: np.ndarray,
    shift: np.ndarray,
    index: GraphIndex,
    refs: Counter[str],
) -> _Plan | str:
    """Gemm: Y = α·A'·B' + β·C, BN over Y's features (axis 1, the N of B')."""
    b_name = gemm.input[1]
    b, why = _weight("Gemm B", b_name, index, refs)
    if b is None:
        return why or "unusable Gemm B"
    if b.ndim != 2:
        return f"Gemm B {b_name!r} has rank {b.ndim}, not 2"
    trans_b = bool(attribute(gemm, "transB", 0))
    features = b.shape[0] if trans_b else b.shape[1]
    if mismatch := _channels_match(scale.size, features, "Gemm"):
        return mismatch
    new_b = (b.astype(np.float64) * (scale[:, None] if trans_b else scale[None, :])).astype(b.dtype)
    c_name = gemm.input[2] if len(gemm.input) > 2 and gemm.input[2] else None
    beta = float(attribute(gemm, "beta", 1.0))
    c = None if c_name is None else _constant(c_name, index)
    if c_name is not None and c is None:
        return _Plan(bn, gemm, b_name, new_b, None, shift.astype(b.dtype), c_name, beta * scale)
    effective_c: np.ndarray = np.zeros(())
    if c is not None:
        if c.ndim > 2:
            return f"Gemm C {c_name!r} has rank {c.ndim}, not at most 2"
        effective_c = beta * c.astype(np.float64)
    try:  # the new C is β·C scaled per feature plus the shift, broadcast to (…, N); β becomes 1
        new_c = effective_c * scale + shift
    except ValueError:
        return f"Gemm C {c_name!r} does not broadcast over {features} features"
    in_place = _own(c_name, index, refs) if c is not None and c.shape == new_c.shape else None
    return _Plan(bn, gemm, b_name, new_b, in_place, new_c.astype(b.dtype))


def _own(name: str | None, index: GraphIndex, refs: Counter[str]) -> str | None:
    """`name` if it is an initializer only this node reads (rewritten in place), else None.

    A constant bias that is shared (exporters alias equal biases through Identity nodes), comes
    from a Constant node or changes shape (Gemm's C broadcast to N features) is left as it is;
    the folded node gets a new initializer.
    """
    if name is None or name not in index.initializers or _value_uses(name, index, refs) > 1:
        return None
    return name


def _set_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    tensor = numpy_helper.from_array(value, name)
    for init in graph.initializer:
        if init.name == name:
            init.CopyFrom(tensor)
            return
    graph.initializer.append(tensor)


def _apply(graph: onnx.GraphProto, plan: _Plan, taken: set[str]) -> None:
    producer = plan.producer
    _set_initializer(graph, plan.weight, plan.new_weight)
    suffix = "bias" if producer.op_type == "Conv" else "C"
    if plan.bias is not None:
        _set_initializer(graph, plan.bias, plan.new_bias)
    elif plan.runtime_bias is not None and plan.bias_scale is not None:
        name = _scale_at_runtime(graph, plan, taken, suffix)
        producer.input[2] = name
    else:
        name = unique_name(taken, f"{plan.weight}.folded_{suffix}")
        _set_initializer(graph, name, plan.new_bias)
        while len(producer.input) < 3:
            producer.input.append("")
        producer.input[2] = name
    if producer.op_type == "Gemm":  # β now lives in C
        kept = [a for a in producer.attribute if a.name != "beta"]
        del producer.attribute[:]
        producer.attribute.extend(kept)
    producer.output[0] = plan.bn.output[0]


def _scale_at_runtime(graph: onnx.GraphProto, plan: _Plan, taken: set[str], suffix: str) -> str:
    """Mul + Add on a run-time bias, inserted right before the producer; returns the new bias."""
    from onnx import helper

    assert plan.runtime_bias is not None and plan.bias_scale is not None
    base = f"{plan.weight}.folded_{suffix}"
    scale, shift = unique_name(taken, f"{base}_scale"), unique_name(taken, f"{base}_shift")
    scaled, shifted = unique_name(taken, f"{base}_scaled"), unique_name(taken, base)
    _set_initializer(graph, scale, plan.bias_scale.astype(plan.new_bias.dtype))
    _set_initializer(graph, shift, plan.new_bias)
    mul = helper.make_node("Mul", [plan.runtime_bias, scale], [scaled], unique_name(taken, scaled))
    add = helper.make_node("Add", [scaled, shift], [shifted], unique_name(taken, shifted))
    position = next(i for i, n in enumerate(graph.node) if n.output[:1] == plan.producer.output[:1])
    graph.node.insert(position, add)
    graph.node.insert(position, mul)
    return shifted


def _remove_nodes(graph: onnx.GraphProto, op_types: tuple[str, ...], outputs: set[str]) -> None:
    """Delete the nodes of `op_types` whose first output is in `outputs`."""
    for i in reversed(range(len(graph.node))):
        node = graph.node[i]
        if node.op_type in op_types and node.output[0] in outputs:
            del graph.node[i]


def _remove_dead(graph: onnx.GraphProto, candidates: list[str]) -> None:
    """Drop initializers and constant-making nodes that only the folded BNs read."""
    pending = set(candidates)
    while pending:
        index = index_graph(graph)
        refs = _subgraph_references(graph)
        dead_inits: set[str] = set()
        dead_nodes: set[str] = set()  # first outputs of Constant/Identity nodes to drop
        next_round: set[str] = set()
        for name in pending:
            if _uses(name, index, refs):
                continue
            if name in index.initializers:
                dead_inits.add(name)
                continue
            node = index.producer(name)
            if (
                node is not None
                and node.domain in DEFAULT_DOMAINS
                and node.op_type in ("Constant", "Identity")
                and not any(_uses(o, index, refs) for o in node.output if o)
            ):
                dead_nodes.add(node.output[0])
                next_round.update(i for i in node.input if i)
        drop_initializers(graph, dead_inits)
        if dead_nodes:
            _remove_nodes(graph, ("Constant", "Identity"), dead_nodes)
        pending = next_round


def _drop_stale_value_info(graph: onnx.GraphProto) -> None:
    """value_info for tensors that no longer exist (the Conv outputs the BNs read) goes."""
    live = {o for n in graph.node for o in n.output if o}
    live.update(v.name for v in graph.input)
    live.update(t.name for t in graph.initializer)
    kept = [v for v in graph.value_info if v.name in live]
    if len(kept) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(kept)
