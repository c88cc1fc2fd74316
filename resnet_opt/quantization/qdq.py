"""Writing a Plan: QuantizeLinear/DequantizeLinear nodes, int8 weights, int32 biases.

Scales and zero points follow the target:

- TensorRT: int8, zero point 0, activation scale = amax / 127 (TensorRT takes symmetric int8
  only); weights int8 in [-127, 127] with one scale per output channel.
- CPU: activations u8; a non-negative tensor maps [0, amax] onto [0, 255] (zero point 0, so that
  ONNX Runtime folds the preceding Relu into the Q), a signed one maps [-amax, amax] around
  zero point 128; weights s8 per channel, by default in [-64, 64] (7 bits, `reduce_range`)
  rather than TensorRT's [-127, 127]; biases int32.

Why 7-bit CPU weights: x86 u8×s8 kernels without VNNI (AVX2, AVX-512 without VNNI) multiply with
VPMADDUBSW, which adds each pair of u8·s8 products into int16 and saturates. With u8 activations
up to 255, a pair stays within int16 only if its two weights sum to at most 128 in magnitude:
255·64·2 = 32640 ≤ 32767. ONNX Runtime's `reduce_range` and NNCF's `overflow_fix` use the same
range. VNNI/AMX, Arm dot-product and GPU kernels accumulate in int32 and can take full 8 bits
(`weight_max=INT8_WEIGHT_MAX`).

Weights are stored pre-quantized (int8 initializer → DequantizeLinear) rather than as float
behind a Q/DQ pair: TensorRT's explicit-quantization docs accept both, the int8 form is a
quarter of the size, and every runtime then uses exactly the integer weights scored here
instead of re-rounding them itself.

Every name is derived from the tensor it quantizes and nodes are emitted in graph order, so the
same plan and ranges give byte-identical ONNX.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from resnet_opt.calibration.qdq_math import symmetric_scale
from resnet_opt.errors import ResnetOptError
from resnet_opt.graph import all_names, attribute, drop_unused_initializers, unique_name
from resnet_opt.quantization.layouts import Activations, layout
from resnet_opt.quantization.plan import BiasQuant, Plan, QdqTarget
from resnet_opt.quantization.weights import (
    INT8_WEIGHT_MAX as INT8_WEIGHT_MAX,  # re-exported: the weight limits' old home
)
from resnet_opt.quantization.weights import (
    REDUCED_WEIGHT_MAX as REDUCED_WEIGHT_MAX,
)
from resnet_opt.quantization.weights import (
    WeightPolicy,
    bias_shift,
    clamp_pairs,
    from_reduction_rows,
    pairs_follow_channels,
    reduction_rows,
)

if TYPE_CHECKING:
    import onnx

U8_MAX = 255
INT16_MAX = 2**15 - 1
INT32_LIMIT = 2**31 - 1
_BIAS_HEADROOM = 2**30  # keep int32 biases well inside the type


class Range(Protocol):
    """A calibrated range: amax is the clip magnitude, amin the observed minimum."""

    @property
    def amin(self) -> float: ...

    @property
    def amax(self) -> float: ...


@dataclass(frozen=True)
class QParams:
    scale: float  # a float32 value: the scale as stored (and as the int32 biases assume)
    zero_point: int
    dtype: type[np.integer]  # np.int8 or np.uint8


def activation_params(target: QdqTarget, rng: Range, tensor: str = "") -> QParams:
    """Scale and zero point of an activation tensor with calibrated range `rng`."""
    amax = float(rng.amax)
    if not np.isfinite(amax) or amax <= 0.0:
        raise ResnetOptError(f"{tensor}: calibration gave an unusable range (amax {amax})")
    activations = layout(target).activations
    if activations is Activations.SYMMETRIC_S8:
        return QParams(float(symmetric_scale(amax, np.int8)), 0, np.int8)
    if float(rng.amin) >= 0.0:  # u8 [0, amax] after a Relu
        return QParams(float(symmetric_scale(amax, np.uint8)), 0, np.uint8)
    if activations is Activations.U8_OR_SYMMETRIC_S8:  # symmetric s8 elsewhere (as NNCF)
        return QParams(float(symmetric_scale(amax, np.int8)), 0, np.int8)
    return QParams(float(symmetric_scale(amax, np.int8)), 128, np.uint8)


def default_policy(
    target: QdqTarget, reduce_range: bool | None = None, bias_correction: bool = False
) -> WeightPolicy:
    """How a target's weights become integers (see the module docstring and `weights.py`).

    cpu: 8 bits with saturation-safe pairs by default; `reduce_range=True` 7 bits everywhere,
    `False` full 8 bits unchanged (for VNNI/AMX/Arm-dotprod CPUs only). openvino: 8 bits with
    saturation-safe pairs (OpenVINO's AVX2 kernels also add u8×s8 pairs in int16). tensorrt:
    full 8 bits (GPUs accumulate in int32).
    """
    found = layout(target)
    if not found.cpu_kernels:
        return WeightPolicy(INT8_WEIGHT_MAX, False, bias_correction)
    if found.reduce_range and reduce_range is True:
        return WeightPolicy(REDUCED_WEIGHT_MAX, False, bias_correction)
    if found.reduce_range and reduce_range is False:
        return WeightPolicy(INT8_WEIGHT_MAX, False, bias_correction)
    return WeightPolicy(INT8_WEIGHT_MAX, True, bias_correction)


def weight_limit(target: QdqTarget, reduce_range: bool | None = None) -> int:
    """The largest int8 weight magnitude a target's policy writes."""
    return default_policy(target, reduce_range).weight_max


def pair_sum_fits_int16(weight_max: int) -> bool:
    """Whether u8 activations (0..255) times s8 weights in [-weight_max, weight_max], added in
    pairs as VPMADDUBSW does, always fit int16 (no saturation on CPUs without VNNI)."""
    return 2 * U8_MAX * weight_max <= INT16_MAX


def weight_scales(weight: np.ndarray, axis: int, weight_max: int = INT8_WEIGHT_MAX) -> np.ndarray:
    """Per-channel symmetric scales (float32) mapping each channel's largest magnitude onto
    `weight_max`; an all-zero channel, or one so small its scale is 0 in float32, borrows a
    typical scale (a zero scale divides by zero here, and TensorRT refuses one)."""
    _check_weight_max(weight_max)
    moved = np.moveaxis(np.asarray(weight, dtype=np.float64), axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scales = (amax / weight_max).astype(np.float32)  # a denormal channel's scale underflows to 0
    nonzero = scales[scales > 0]
    fill = float(np.median(nonzero)) if nonzero.size else 1.0 / weight_max
    return np.where(scales > 0, scales, np.float32(fill)).astype(np.float32)


def quantize_weight(
    weight: np.ndarray, scales: np.ndarray, axis: int, weight_max: int = INT8_WEIGHT_MAX
) -> np.ndarray:
    """int8 weights in [-weight_max, weight_max], rounded half to even like QuantizeLinear."""
    _check_weight_max(weight_max)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.rint(weight.astype(np.float64) / scales.astype(np.float64).reshape(shape))
    return np.clip(q, -weight_max, weight_max).astype(np.int8)


def _check_weight_max(weight_max: int) -> None:
    if not 1 <= weight_max <= INT8_WEIGHT_MAX:
        raise ResnetOptError(
            f"int8 weight range must be within ±{INT8_WEIGHT_MAX}, not ±{weight_max}"
        )


def fit_bias_scales(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    """Weight scales raised where an int32 bias would overflow (tiny weights, large bias).

    After BatchNorm folding a nearly dead channel can have weights near zero and a normal bias;
    its bias / (input scale × weight scale) then leaves int32. ONNX Runtime's quantizer makes
    the same adjustment; it costs nothing, since such a channel's weights are ~0.
    """
    needed = np.abs(bias.astype(np.float64)) / (input_scale * _BIAS_HEADROOM)
    fitted: np.ndarray = np.maximum(scales, needed).astype(np.float32)
    return fitted


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    q = np.rint(bias.astype(np.float64) / (input_scale * scales.astype(np.float64)))
    if np.abs(q).max(initial=0) > INT32_LIMIT:
        raise ResnetOptError("bias does not fit int32 after quantization")
    return q.astype(np.int32)


def apply_plan(
    model: onnx.ModelProto,
    plan: Plan,
    ranges: Mapping[str, Range],
    *,
    policy: WeightPolicy | None = None,
    channel_means: Mapping[str, np.ndarray] | None = None,
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """A copy of `model` (prepared, float) with the plan written in, and what was written.

    Weights become integers as `policy` says (None: the plan's target's default,
    `default_policy`); with bias correction, `channel_means` (tensor → per-channel mean over
    the calibration data) gives each layer's input mean, and a layer whose input has none is
    listed as uncorrected."""
    if policy is None:
        policy = default_policy(plan.target)
    channel_means = channel_means or {}
    import onnx
    from onnx import helper, numpy_helper

    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    model = model_copy
    graph = model.graph
    taken = all_names(graph)
    inits = {t.name: t for t in graph.initializer}
    missing = [t for t in plan.range_tensors() if t not in ranges]
    if missing:
        shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        raise ResnetOptError(
            f"no calibration range for {len(missing)} tensor(s) the placement needs: {shown}"
        )

    # -- scales and zero points of the activations
    params: dict[str, QParams] = {}
    param_names: dict[str, tuple[str, str]] = {}
    new_inits: list[onnx.TensorProto] = []
    for tq in plan.tensors:
        if tq.shares is not None:
            continue
        p = activation_params(plan.target, ranges[tq.tensor], tq.tensor)
        params[tq.tensor] = p
        scale_name = unique_name(taken, f"{tq.tensor}_scale")
        zp_name = unique_name(taken, f"{tq.tensor}_zero_point")
        new_inits.append(numpy_helper.from_array(np.array(p.scale, np.float32), scale_name))
        new_inits.append(numpy_helper.from_array(np.array(p.zero_point, p.dtype), zp_name))
        param_names[tq.tensor] = (scale_name, zp_name)
    for tq in plan.tensors:
        if tq.shares is not None:
            if tq.shares not in params:
                raise ResnetOptError(f"{tq.tensor}: shares the range of unquantized {tq.shares}")
            params[tq.tensor] = params[tq.shares]
            param_names[tq.tensor] = param_names[tq.shares]

    # -- weights (per channel), bias correction and, for the CPU, int32 biases
    bias_of: dict[tuple[str, str], BiasQuant] = {(b.node, b.weight): b for b in plan.biases}
    weight_nodes: dict[str, list[onnx.NodeProto]] = {}  # consumer node → DQ nodes to emit first
    rewire: dict[tuple[str, int], str] = {}
    done_weights: dict[str, str] = {}
    nodes = {n.name: n for n in graph.node}
    tally = _WeightTally()
    zero_points = layout(plan.target).weight_zero_point  # OpenVINO: scale only, no Subtract
    for wq in plan.weights:
        if wq.initializer in done_weights:
            rewire[(wq.node, wq.index)] = done_weights[wq.initializer]
            continue
        node = nodes[wq.node]
        w = numpy_helper.to_array(inits[wq.initializer])
        bq = bias_of.get((wq.node, wq.initializer))
        bias_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        b = (
            numpy_helper.to_array(inits[bias_name]).astype(np.float32)
            if bias_name is not None and bias_name in inits
            else None
        )
        act_scale = params[bq.activation].scale if bq is not None else None
        limits = [policy.weight_max]
        if policy.safe_pairs and policy.weight_max > REDUCED_WEIGHT_MAX:
            # pairs that straddle taps depend on the kernel's layout: 7 bits, safe in any order;
            # else 8 bits with the risky pairs moved, or 7 bits where that is closer to W
            both = pairs_follow_channels(w)
            limits = [policy.weight_max, REDUCED_WEIGHT_MAX] if both else [REDUCED_WEIGHT_MAX]
        candidates = []
        for limit in limits:
            scales = weight_scales(w, wq.axis, limit)
            if act_scale is not None and b is not None:
                scales = fit_bias_scales(b, act_scale, scales)
            q, moved = _integer_weight(w, scales, wq.axis, limit, policy.safe_pairs)
            error = float(np.square(_dequantized(q, scales, wq.axis) - w.astype(np.float64)).sum())
            candidates.append((error, limit, scales, q, moved))
        _, limit, scales, q, moved = min(candidates, key=lambda c: (c[0], -c[1]))
        if limit < policy.weight_max:
            tally.seven_bit.append(wq.node)
        tally.pairs_moved += moved
        mean = channel_means.get(node.input[0]) if policy.bias_correction else None
        if policy.bias_correction and node.op_type in ("Conv", "Gemm"):
            if mean is None:
                tally.uncorrected.append(wq.node)
            else:
                dq = _dequantized(q, scales, wq.axis)
                group = int(attribute(node, "group", 1)) if node.op_type == "Conv" else 1
                shift = bias_shift(w, dq, wq.axis, mean, group).astype(np.float32)
                b = (b if b is not None else np.zeros(shift.shape, np.float32)) - shift
                tally.corrected.append(wq.node)
                tally.shift_abs.append(float(np.abs(shift).mean()))
                if bq is None:  # a float bias, now corrected: written as a new initializer
                    bname = unique_name(taken, f"{bias_name or wq.node + '_bias'}_corrected")
                    new_inits.append(numpy_helper.from_array(b, bname))
                    if len(node.input) < 3:
                        node.input.append(bname)
                    else:
                        node.input[2] = bname
        bias_q = (
            quantize_bias(b, params[bq.activation].scale, scales)
            if bq is not None and b is not None
            else None
        )
        base = wq.initializer
        suffixes = ["_quantized", "_scale"] + (["_zero_point"] if zero_points else [])
        names = [unique_name(taken, f"{base}{s}") for s in suffixes]
        out = unique_name(taken, f"{base}_dequantized")
        new_inits += [
            numpy_helper.from_array(q, names[0]),
            numpy_helper.from_array(scales, names[1]),
        ]
        if zero_points:
            new_inits.append(numpy_helper.from_array(np.zeros(scales.shape, np.int8), names[2]))
        dq_node = helper.make_node(
            "DequantizeLinear",
            names,
            [out],
            name=unique_name(taken, f"{base}_DequantizeLinear"),
            axis=wq.axis,
        )
        weight_nodes.setdefault(wq.node, []).append(dq_node)
        rewire[(wq.node, wq.index)] = out
        done_weights[wq.initializer] = out
        if bq is not None and bias_q is not None:
            act_scale = params[bq.activation].scale
            bnames = [
                unique_name(taken, f"{bq.initializer}{s}")
                for s in ("_quantized", "_scale", "_zero_point")
            ]
            bout = unique_name(taken, f"{bq.initializer}_dequantized")
            bias_scales = (np.float64(act_scale) * scales.astype(np.float64)).astype(np.float32)
            new_inits += [
                numpy_helper.from_array(bias_q, bnames[0]),
                numpy_helper.from_array(bias_scales, bnames[1]),
                numpy_helper.from_array(np.zeros(scales.shape, np.int32), bnames[2]),
            ]
            weight_nodes[wq.node].append(
                helper.make_node(
                    "DequantizeLinear",
                    bnames,
                    [bout],
                    name=unique_name(taken, f"{bq.initializer}_DequantizeLinear"),
                    axis=0,
                )
            )
            rewire[(bq.node, bq.index)] = bout

    # -- activation Q/DQ pairs
    pair_nodes: dict[str, list[onnx.NodeProto]] = {}
    for tq in plan.tensors:
        scale_name, zp_name = param_names[tq.tensor]
        q_out = unique_name(taken, f"{tq.tensor}_quantized")
        dq_out = unique_name(taken, f"{tq.tensor}_dequantized")
        pair_nodes[tq.tensor] = [
            helper.make_node(
                "QuantizeLinear",
                [tq.tensor, scale_name, zp_name],
                [q_out],
                name=unique_name(taken, f"{tq.tensor}_QuantizeLinear"),
            ),
            helper.make_node(
                "DequantizeLinear",
                [q_out, scale_name, zp_name],
                [dq_out],
                name=unique_name(taken, f"{tq.tensor}_DequantizeLinear"),
            ),
        ]
        for slot in tq.consumers:
            rewire[slot] = dq_out

    # -- emit in graph order
    emitted: list[onnx.NodeProto] = []
    for inp in graph.input:
        emitted += pair_nodes.pop(inp.name, [])
    for node in graph.node:
        emitted += weight_nodes.pop(node.name, [])
        for i in range(len(node.input)):
            if (node.name, i) in rewire:
                node.input[i] = rewire[(node.name, i)]
        emitted.append(node)
        for out_name in node.output:
            emitted += pair_nodes.pop(out_name, [])
    if pair_nodes or weight_nodes:
        left = sorted([*pair_nodes, *weight_nodes])
        raise ResnetOptError(f"placement refers to tensors or nodes not in the graph: {left[:3]}")

    del graph.node[:]
    graph.node.extend(emitted)
    graph.initializer.extend(new_inits)
    drop_unused_initializers(graph)  # the float weights now stored in int8
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # a bug in placement or rewrite, but say what broke
        raise ResnetOptError(f"the quantized graph is not valid ONNX ({exc})") from exc
    counts: dict[str, Any] = {
        "quantize_linear": sum(1 for n in graph.node if n.op_type == "QuantizeLinear"),
        "dequantize_linear": sum(1 for n in graph.node if n.op_type == "DequantizeLinear"),
        "quantized_tensors": len(plan.tensors),
        "int8_weights": len(done_weights),
        "int32_biases": len(plan.biases),
        "int8_layers": len(plan.layers),
        "weights": tally.summary(policy),
    }
    return model, counts


@dataclass
class _WeightTally:
    """What `apply_plan` did to the weights, for the manifest."""

    seven_bit: list[str] = field(default_factory=list)
    pairs_moved: int = 0
    corrected: list[str] = field(default_factory=list)
    uncorrected: list[str] = field(default_factory=list)
    shift_abs: list[float] = field(default_factory=list)

    def summary(self, policy: WeightPolicy) -> dict[str, Any]:
        return {
            "weight_max": policy.weight_max,
            "safe_pairs": policy.safe_pairs,
            "seven_bit_layers": list(self.seven_bit),
            "pairs_moved": self.pairs_moved,
            "bias_correction": {
                "enabled": policy.bias_correction,
                "layers": len(self.corrected),
                "uncorrected": list(self.uncorrected),
                # mean |shift| removed per layer, averaged: what rounding the weights moved
                "mean_abs_shift": round(float(np.mean(self.shift_abs)), 8)
                if self.shift_abs
                else 0.0,
            },
        }


def _integer_weight(
    w: np.ndarray, scales: np.ndarray, axis: int, limit: int, safe_pairs: bool
) -> tuple[np.ndarray, int]:
    """int8 codes of `w` (and how many pairs were moved to keep them from saturating)."""
    q = quantize_weight(w, scales, axis, limit)
    if not safe_pairs or limit <= REDUCED_WEIGHT_MAX:
        return q, 0
    shape = [1] * w.ndim
    shape[axis] = -1
    unrounded = w.astype(np.float64) / scales.astype(np.float64).reshape(shape)
    rows, moved = clamp_pairs(reduction_rows(q, axis), reduction_rows(unrounded, axis))
    return (from_reduction_rows(rows, q.shape, axis) if moved else q), moved


def _dequantized(q: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * q.ndim
    shape[axis] = -1
    dequantized: np.ndarray = q.astype(np.float32) * scales.reshape(shape)
    return dequantized
