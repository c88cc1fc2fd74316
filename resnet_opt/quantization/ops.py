"""Every quantizable op kind, declared once: the one table the int8 path reads.

For each ONNX op type, one `OpKind` says

- `calibrated`: whether calibration (`calibration/collect`) records its float inputs and
  outputs (`float_data`: a tensor of unknown type next to it is float data all the same);
- `layouts`: for each int8 layout (`QdqTarget`), a `LayoutRule` (where Q/DQ goes: which
  inputs, its output, its weight and int32 bias, a pass-through that shares its input's range,
  where an input's pair moves to) or `None`: that layout leaves it in float. The placements
  (`placement_tensorrt`, `placement_cpu`, `placement_openvino`) walk the graph with `select`
  and write what the rules say; what is the same for every op of a layout (how tensors are
  ordered, shared ranges) stays in the layout's module, its number formats in `layouts.py`;
- `weight_axis`: the output-channel axis of its constant weight (input 1), when it has one;
- `sensitivity`: whether `--accuracy-budget` probes it, and how its MACs are counted;
- `emulation`: the integer kernel `tests/emulate.py` computes it with (None: the
  emulation runs it in float).

Adding an op (ORT's `operators/<op>.py` + a registry line) is one entry in `OPS`; adding a layout
is a `QdqTarget` member, its placement module, a `layouts.LAYOUTS` entry and one rule per op here
(ARCHITECTURE.md, "Where a new quantizable op or int8 layout goes").
`tests/quantization/test_ops.py` checks that every entry declares each part.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from resnet_opt.graph import attribute
from resnet_opt.quantization.plan import QdqTarget

if TYPE_CHECKING:
    import onnx

    from resnet_opt.quantization.graph_rules import GraphView

Predicate = Callable[["GraphView", "onnx.NodeProto"], bool]
# (view, input tensor, nodes kept in float) → (tensor, (node, input position)) that carries the
# pair instead, or None to quantize the input where it is read
Relocation = Callable[["GraphView", str, Collection[str]], "tuple[str, tuple[str, int]] | None"]


class Inputs(str, Enum):
    """Which activation inputs of a quantized op get Q/DQ."""

    FIRST = "first"  # the data input (a Conv's or Gemm's; the weight is separate)
    ALL = "all"  # every input (an int8 Add reads two int8 tensors)
    SKIP = "skip"  # only a residual Add's skip input (TensorRT fuses the other into the Conv)


def _always(view: GraphView, node: onnx.NodeProto) -> bool:
    return True


def _never(view: GraphView, node: onnx.NodeProto) -> bool:
    return False


@dataclass(frozen=True)
class LayoutRule:
    """How one int8 layout quantizes one op kind."""

    accepts: Predicate  # whether this node runs in int8 here (a candidate layer)
    inputs: Inputs = Inputs.FIRST
    output: bool = False  # Q/DQ on its output (after a Relu that is its only consumer)
    weight: bool = False  # its constant weight (input 1) stored in int8, per output channel
    int32_bias: bool = False  # its constant bias (input 2) stored in int32
    shares: bool = False  # a pass-through: its output reuses its quantized input's range
    relocate: Relocation | None = None  # where an input's pair goes instead of its slot
    refusal: str | None = None  # why, in the manifest's left_float, when not accepted
    listed: Predicate = _always  # which refused nodes the manifest lists


@dataclass(frozen=True)
class Sensitivity:
    """What `--accuracy-budget` does with a candidate layer of this kind."""

    probed: bool  # its sensitivity is measured (it may be kept in higher precision)
    # multiply-accumulates per output element from the weight's dims (None: not counted)
    macs_per_output: Callable[[list[int], onnx.NodeProto], int] | None = None


@dataclass(frozen=True)
class Emulation:
    """The integer kernel the int8 emulation computes this op with."""

    kernel: str  # the emulated node's op type in the emulation's domain
    attributes: tuple[str, ...]  # the ONNX attributes the kernel takes
    plain: Callable[[Mapping[str, object]], bool] = lambda attrs: True  # else left float


@dataclass(frozen=True)
class OpKind:
    """One op type's quantization rules (see the module docstring)."""

    op_type: str
    calibrated: bool
    layouts: Mapping[QdqTarget, LayoutRule | None]
    sensitivity: Sensitivity | None = None
    emulation: Emulation | None = None
    weight_axis: Callable[[GraphView, onnx.NodeProto], int | None] | None = None
    float_data: bool = False  # its data tensors are float even where types are unknown
    note: str = field(default="", compare=False)


# -- the graph questions the rules ask ------------------------------------------------------


def gemm_axis(view: GraphView, node: onnx.NodeProto) -> int | None:
    """The output-channel axis of a Gemm's constant weight, or None when it is not plain."""
    if len(node.input) < 2 or not view.is_constant(node.input[1]):
        return None
    if attribute(node, "transA", 0) or attribute(node, "alpha", 1.0) != 1.0:
        return None
    if len(node.input) > 2 and node.input[2] and attribute(node, "beta", 1.0) != 1.0:
        return None
    return 0 if attribute(node, "transB", 0) else 1


def _conv_axis(view: GraphView, node: onnx.NodeProto) -> int | None:
    return 0


def _constant_bias(view: GraphView, node: onnx.NodeProto) -> bool:
    """No bias, or a constant one: the int32 bias ORT's int8 Conv/Gemm needs is made from it."""
    return len(node.input) < 3 or not node.input[2] or view.is_constant(node.input[2])


def _conv(view: GraphView, node: onnx.NodeProto) -> bool:
    return view.conv_is_quantizable(node)


def _conv_constant_bias(view: GraphView, node: onnx.NodeProto) -> bool:
    return view.conv_is_quantizable(node) and _constant_bias(view, node)


def _gemm(view: GraphView, node: onnx.NodeProto) -> bool:
    return gemm_axis(view, node) is not None and view.is_activation(node.input[0])


def _gemm_constant_bias(view: GraphView, node: onnx.NodeProto) -> bool:
    return _gemm(view, node) and _constant_bias(view, node)


def _two_activations(view: GraphView, node: onnx.NodeProto) -> bool:
    return len(node.input) == 2 and all(view.is_activation(x) for x in node.input)


def _all_activations(view: GraphView, node: onnx.NodeProto) -> bool:
    return all(view.is_activation(x) for x in node.input)


def _residual(view: GraphView, node: onnx.NodeProto) -> bool:
    return view.residual_add(node) is not None


def _activation_input(view: GraphView, node: onnx.NodeProto) -> bool:
    return view.is_activation(node.input[0])


def _before_flatten(
    view: GraphView, tensor: str, keep: Collection[str]
) -> tuple[str, tuple[str, int]] | None:
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
    openvino = QdqTarget.OPENVINO
    if not all(u.op_type == "Conv" and accepted(view, u, openvino) and u.name not in keep
               for u in users):  # fmt: skip
        return None
    source = node.input[0]
    if not view.is_activation(source):
        return None
    return source, (node.name, 0)


def _conv_macs(weight: list[int], node: onnx.NodeProto) -> int:
    return int(np.prod(weight[1:]))  # Cin/groups × kh × kw


def _gemm_macs(weight: list[int], node: onnx.NodeProto) -> int:
    return weight[1] if attribute(node, "transB", 0) else weight[0]  # K, the input axis


def _gemm_plain(attrs: Mapping[str, object]) -> bool:
    return not attrs.get("transA", 0) and attrs.get("alpha", 1.0) == 1.0


# -- the table --------------------------------------------------------------------------------

_TRT, _CPU, _OV = QdqTarget.TENSORRT, QdqTarget.CPU, QdqTarget.OPENVINO


def _float_everywhere() -> dict[QdqTarget, LayoutRule | None]:
    return dict.fromkeys(QdqTarget)


def _calibrated_only(op_type: str, note: str) -> OpKind:
    """An op whose tensors are calibrated (a layout may quantize them around it) but that no
    layout runs in int8 itself."""
    return OpKind(op_type, calibrated=True, layouts=_float_everywhere(), note=note)


OPS: dict[str, OpKind] = {
    kind.op_type: kind
    for kind in (
        OpKind(
            "Conv",
            calibrated=True,
            float_data=True,
            weight_axis=_conv_axis,
            layouts={
                _TRT: LayoutRule(
                    _conv, weight=True, refusal="weight is computed at run time, not a constant"
                ),
                _CPU: LayoutRule(
                    _conv_constant_bias,
                    output=True,
                    weight=True,
                    int32_bias=True,
                    refusal="weight or bias not a constant in a supported form",
                ),
                _OV: LayoutRule(
                    _conv,
                    weight=True,
                    relocate=_before_max_pool,
                    refusal="weight not a constant in a supported form",
                ),
            },
            sensitivity=Sensitivity(probed=True, macs_per_output=_conv_macs),
            emulation=Emulation("U8S8Conv", ("strides", "pads", "dilations", "group")),
        ),
        OpKind(
            "Gemm",
            calibrated=True,
            float_data=True,
            weight_axis=gemm_axis,
            layouts={
                # about 0.1 % of ResNet-50's MACs, and quantizing the logits is where int8
                # costs the most accuracy
                _TRT: LayoutRule(_never, refusal="classifier kept in higher precision"),
                # reads int8, writes float logits
                _CPU: LayoutRule(
                    _gemm_constant_bias,
                    weight=True,
                    int32_bias=True,
                    refusal="weight or bias not a constant in a supported form",
                ),
                _OV: LayoutRule(
                    _gemm,
                    weight=True,
                    relocate=_before_flatten,
                    refusal="weight not a constant in a supported form",
                ),
            },
            sensitivity=Sensitivity(probed=True, macs_per_output=_gemm_macs),
            emulation=Emulation("U8S8Gemm", ("transB",), plain=_gemm_plain),
        ),
        OpKind(
            "MatMul",
            calibrated=True,
            layouts={
                _TRT: LayoutRule(_never, refusal="classifier kept in higher precision"),
                _CPU: LayoutRule(
                    _never, refusal="weight or bias not a constant in a supported form"
                ),
                _OV: LayoutRule(_never, refusal="weight not a constant in a supported form"),
            },
        ),
        OpKind(
            "Add",
            calibrated=True,
            layouts={
                _TRT: LayoutRule(
                    _residual,
                    inputs=Inputs.SKIP,
                    refusal="no skip input could be identified",
                    listed=_all_activations,  # else a bias or constant offset, not residual
                ),
                _CPU: LayoutRule(_two_activations, inputs=Inputs.ALL, output=True),
                _OV: LayoutRule(
                    _residual,
                    inputs=Inputs.ALL,
                    refusal="no skip input could be identified",
                    listed=_all_activations,
                ),
            },
            sensitivity=Sensitivity(probed=True),
        ),
        OpKind(
            "GlobalAveragePool",
            calibrated=True,
            layouts={
                _TRT: None,
                _CPU: LayoutRule(_always, inputs=Inputs.ALL, output=True),
                _OV: LayoutRule(_activation_input),
            },
            sensitivity=Sensitivity(probed=True),
        ),
        OpKind(
            "MaxPool",
            calibrated=True,
            layouts={_TRT: None, _CPU: LayoutRule(_never, shares=True), _OV: None},
            note="max commutes with the quantizer: ORT runs it on u8 with its input's range",
        ),
        OpKind(
            "Flatten",
            calibrated=True,
            layouts={_TRT: None, _CPU: LayoutRule(_never, shares=True), _OV: None},
        ),
        _calibrated_only("Relu", "folded into the Q before it where the zero point is 0"),
        _calibrated_only("Clip", "ReLU6: calibrated like Relu"),
        _calibrated_only("AveragePool", "ResNet-D shortcuts: calibrated, run in float"),
        _calibrated_only("Reshape", "the classifier's flatten in some exports"),
        _calibrated_only("Concat", "calibrated: a layout may quantize its inputs"),
    )
}


# -- what the modules ask the table -----------------------------------------------------------


def rule(op_type: str, target: QdqTarget) -> LayoutRule | None:
    """`target`'s rule for `op_type` (None: that layout leaves it in float)."""
    kind = OPS.get(op_type)
    return kind.layouts.get(target) if kind is not None else None


def accepted(view: GraphView, node: onnx.NodeProto, target: QdqTarget) -> bool:
    """Whether `target` runs `node` in int8 (a candidate layer; pass-throughs are not)."""
    found = rule(node.op_type, target)
    return found is not None and not found.shares and found.accepts(view, node)


def calibrated_ops() -> frozenset[str]:
    """Op types whose float inputs and outputs calibration records."""
    return frozenset(op for op, kind in OPS.items() if kind.calibrated)


def float_data_ops() -> frozenset[str]:
    return frozenset(op for op, kind in OPS.items() if kind.float_data)


def weight_axis(view: GraphView, node: onnx.NodeProto) -> int:
    """The output-channel axis of an accepted node's weight."""
    kind = OPS[node.op_type]
    axis = kind.weight_axis(view, node) if kind.weight_axis is not None else None
    if axis is None:  # the rule accepted a node whose weight it cannot quantize: a table bug
        raise AssertionError(f"{node.name}: {node.op_type} has no weight axis")
    return axis


def emulated_ops() -> dict[str, Emulation]:
    """op type → the integer kernel the emulation computes it with."""
    return {op: kind.emulation for op, kind in OPS.items() if kind.emulation is not None}


def probed(op_type: str) -> bool:
    kind = OPS.get(op_type)
    return kind is not None and kind.sensitivity is not None and kind.sensitivity.probed


def macs_rule(op_type: str) -> Callable[[list[int], onnx.NodeProto], int] | None:
    kind = OPS.get(op_type)
    return kind.sensitivity.macs_per_output if kind and kind.sensitivity else None


def input_slots(view: GraphView, node: onnx.NodeProto, rule: LayoutRule) -> list[tuple[str, int]]:
    """(tensor, input position) of each input `rule` puts Q/DQ on."""
    if rule.inputs is Inputs.SKIP:
        residual = view.residual_add(node)
        if residual is None:  # the rule accepted an Add that is not residual: a table bug
            raise AssertionError(f"{node.name}: no skip input")
        return [(residual.skip, residual.skip_index)]
    inputs = list(node.input) if rule.inputs is Inputs.ALL else list(node.input[:1])
    return [(tensor, i) for i, tensor in enumerate(inputs)]


@dataclass(frozen=True)
class Selection:
    """A layout's walk over a graph: the nodes it quantizes (graph order, with their rules),
    those kept in higher precision (--exclude, the budget) and those it cannot quantize."""

    layers: tuple[tuple[onnx.NodeProto, LayoutRule], ...]
    kept: tuple[str, ...]
    left_float: tuple[tuple[str, str], ...]

    def names(self) -> tuple[str, ...]:
        return tuple(node.name for node, _ in self.layers)


def candidates(view: GraphView, target: QdqTarget) -> tuple[str, ...]:
    """Nodes `target` can run in int8 (what --exclude and the budget choose from)."""
    return tuple(n.name for n in view.nodes if accepted(view, n, target))


def pass_throughs(view: GraphView, target: QdqTarget) -> Iterator[onnx.NodeProto]:
    """Nodes that share their input's quantization under `target`, in graph order."""
    for node in view.nodes:
        found = rule(node.op_type, target)
        if found is not None and found.shares:
            yield node


def select(view: GraphView, target: QdqTarget, keep: Collection[str]) -> Selection:
    """Walk the graph in order: each node `target` quantizes, unless kept; the refused ones."""
    layers: list[tuple[onnx.NodeProto, LayoutRule]] = []
    kept: list[str] = []
    left_float: list[tuple[str, str]] = []
    for node in view.nodes:
        found = rule(node.op_type, target)
        if found is None or found.shares:
            continue
        if not found.accepts(view, node):
            if found.refusal is not None and found.listed(view, node):
                left_float.append((node.name, found.refusal))
            continue
        if node.name in keep:
            kept.append(node.name)
            continue
        layers.append((node, found))
    return Selection(tuple(layers), tuple(kept), tuple(left_float))
