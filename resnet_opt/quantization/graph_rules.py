"""What the placements need to know about a float ResNet graph.

`prepare` turns an FP32 ONNX into the canonical form both placements work on (every node named,
constants as initializers) and refuses what cannot be quantized (already-quantized graphs,
unfolded BatchNormalization, opsets without per-channel Q/DQ). `GraphView` answers the
questions placement asks: which inputs are constant, which tensors are ancestors of which, and
which input of a residual Add is the skip (identity) branch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from resnet_opt.errors import ResnetOptError
from resnet_opt.graph import (
    GraphIndex,
    all_names,
    drop_unused_initializers,
    index_graph,
    opset_version,
    unique_name,
)

if TYPE_CHECKING:
    import onnx

MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (axis attribute)

# ops whose presence means the graph already carries integer arithmetic
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QGemm",
        "ConvInteger",
        "MatMulInteger",
    }
)


def quantized_reason(model: onnx.ModelProto) -> str | None:
    """Why `model` counts as already quantized, or None."""
    from onnx import TensorProto

    ops = sorted({n.op_type for n in model.graph.node if n.op_type in QUANTIZED_OPS})
    if ops:
        return f"it already contains {', '.join(ops)} nodes"
    int8 = [
        t.name
        for t in model.graph.initializer
        if t.data_type in (TensorProto.INT8, TensorProto.UINT8) and len(t.dims) >= 2
    ]
    if int8:
        return f"it already has 8-bit weights ({int8[0]}{' …' if len(int8) > 1 else ''})"
    return None


def prepare(model: onnx.ModelProto, source: str, *, int8: bool = True) -> onnx.ModelProto:
    """A copy of `model` in canonical form, or a clear refusal.

    Canonical: every node has a unique name (deterministic, from op type and position, so that
    `--exclude` and reports can name layers and the output is byte-reproducible), and constant
    inputs reached through `Constant` or `Identity(initializer)` nodes (the TorchScript exporter
    deduplicates equal biases that way) become initializers of their own. For int8 the graph
    must also have its BatchNormalization folded and an opset with per-channel Q/DQ; FP16
    (`int8=False`) takes BN as it is (TensorRT fuses it).
    """
    import onnx
    from onnx import numpy_helper

    reason = quantized_reason(model)
    if reason:
        raise ResnetOptError(f"{source}: already quantized ({reason}); quantize the FP32 model")
    if int8 and any(n.op_type == "BatchNormalization" for n in model.graph.node):
        raise ResnetOptError(
            f"{source}: has BatchNormalization nodes; fold them first (resnet-opt fold) so "
            "that the weights are quantized as they will run"
        )
    opset = opset_version(model)
    if int8 and opset < MIN_OPSET:
        raise ResnetOptError(
            f"{source}: opset {opset} has no per-channel Q/DQ; re-export with opset "
            f"{MIN_OPSET} or later"
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    taken = all_names(graph)
    for position, node in enumerate(graph.node):
        if not node.name:
            node.name = unique_name(taken, f"{node.op_type}_{position}")
    seen: set[str] = set()
    for node in graph.node:
        if node.name in seen:
            node.name = unique_name(taken, node.name)
        seen.add(node.name)

    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        value: np.ndarray | None = None
        if node.op_type == "Constant" and node.output[0] not in outputs:
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                value = numpy_helper.to_array(attr.t)
        elif (
            node.op_type == "Identity"
            and node.input[0] in initializers
            and node.output[0] not in outputs
        ):
            value = numpy_helper.to_array(initializers[node.input[0]])
        if value is None:
            kept.append(node)
            continue
        tensor = numpy_helper.from_array(np.asarray(value), node.output[0])
        graph.initializer.append(tensor)
        initializers[tensor.name] = tensor
    del graph.node[:]
    graph.node.extend(kept)
    drop_unused_initializers(graph)
    return out


@dataclass(frozen=True)
class ResidualAdd:
    """A residual Add and which of its inputs is the identity (skip) branch."""

    node: str
    skip: str  # tensor name of the skip input
    skip_index: int  # its input position
    main: str  # the other input (the branch whose last Conv fuses with the Add)


class GraphView:
    """Read-only questions about one prepared graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.index: GraphIndex = index_graph(model.graph)
        self.nodes = list(model.graph.node)
        self.by_name = {n.name: n for n in self.nodes}
        self.position = {n.name: i for i, n in enumerate(self.nodes)}

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.index.initializers

    def constant(self, tensor: str) -> np.ndarray | None:
        return self.index.weight(tensor)

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return self.index.producer(tensor)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return self.index.consumers_of(tensor)

    def is_activation(self, tensor: str) -> bool:
        """A float tensor computed at run time (graph input or node output), not a weight."""
        return bool(tensor) and not self.is_constant(tensor)

    @cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        """tensor → every activation tensor it is computed from (itself excluded)."""
        result: dict[str, frozenset[str]] = {}
        for name in self.index.graph_inputs:
            result[name] = frozenset()
        for node in self.nodes:  # ONNX nodes are topologically sorted
            acc: set[str] = set()
            for inp in node.input:
                if self.is_activation(inp):
                    acc.add(inp)
                    acc |= result.get(inp, frozenset())
            frozen = frozenset(acc)
            for out in node.output:
                if out:
                    result[out] = frozen
        return result

    def is_ancestor(self, ancestor: str, tensor: str) -> bool:
        """Whether `tensor` is computed from `ancestor` (or is it)."""
        return ancestor == tensor or ancestor in self._ancestors.get(tensor, frozenset())

    def conv_is_quantizable(self, node: onnx.NodeProto) -> bool:
        """A Conv whose weight is a constant: its weight can be stored in int8."""
        return (
            node.op_type == "Conv"
            and len(node.input) >= 2
            and self.is_constant(node.input[1])
            and self.is_activation(node.input[0])
        )

    def residual_add(self, node: onnx.NodeProto) -> ResidualAdd | None:
        """The skip input of an Add of two activations, or None when it is not residual.

        The skip is found by structure, not by names: the input not produced by a Conv; else the
        input the other one is computed from (`x + f(x)`); else, when both are Conv outputs
        (the downsample block), the one whose Conv reads an ancestor of the other Conv's input
        (the downsample Conv reads the block input, the main branch reads a tensor computed
        from it).
        """
        if node.op_type != "Add" or len(node.input) != 2:
            return None
        a, b = node.input
        if not (self.is_activation(a) and self.is_activation(b)) or a == b:
            return None
        pa, pb = self.producer(a), self.producer(b)
        conv_a = pa is not None and pa.op_type == "Conv"
        conv_b = pb is not None and pb.op_type == "Conv"
        skip: int | None = None
        if conv_a != conv_b:
            skip = 1 if conv_a else 0
        elif self.is_ancestor(a, b):
            skip = 0
        elif self.is_ancestor(b, a):
            skip = 1
        elif conv_a and conv_b and pa is not None and pb is not None:
            in_a, in_b = pa.input[0], pb.input[0]
            if in_a != in_b and self.is_ancestor(in_a, in_b):
                skip = 0
            elif in_a != in_b and self.is_ancestor(in_b, in_a):
                skip = 1
        if skip is None:
            return None
        return ResidualAdd(node.name, node.input[skip], skip, node.input[1 - skip])

    def sole_relu(self, tensor: str) -> onnx.NodeProto | None:
        """The Relu that is the only consumer of `tensor` (Conv→Relu, Add→Relu), if any."""
        users = self.consumers(tensor)
        if (
            len(users) == 1
            and users[0].op_type == "Relu"
            and tensor not in self.index.graph_outputs
        ):
            return users[0]
        return None


def match_exclusions(view: GraphView, patterns: Iterable[str]) -> tuple[set[str], list[str]]:
    """Node names matched by `--exclude` entries (a node name or an op type), and unknown ones."""
    ops = {n.op_type for n in view.nodes}
    matched: set[str] = set()
    unknown: list[str] = []
    for pattern in patterns:
        if pattern in view.by_name:
            matched.add(pattern)
        elif pattern in ops:
            matched |= {n.name for n in view.nodes if n.op_type == pattern}
        else:
            unknown.append(pattern)
    return matched, unknown
