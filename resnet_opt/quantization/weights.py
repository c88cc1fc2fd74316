"""Integer weights that cannot saturate, and the bias that corrects what rounding them shifted.

Saturation-safe 8-bit weights (`safe_pairs`). x86 u8×s8 kernels without VNNI (AVX2, AVX-512
without VNNI) multiply with VPMADDUBSW: each pair of adjacent products along the reduction axis
is added into int16 with saturation. With u8 activation codes up to 255 a pair (a, b) of int8
weights can leave int16 only when both have the same sign and |a| + |b| > 128 (255·128 = 32640
≤ 32767; a pair of opposite signs never can, 255·127 < 32767). So instead of 7-bit weights
everywhere (ONNX Runtime's `reduce_range`), the weights keep 8 bits and only such pairs, about
one in a thousand for per-channel scales, are moved onto |a| + |b| = 128, each to the nearest
integers on that line from its unrounded values. That holds for every input (the codes are at
most 255 by construction, whatever the calibration saw), on the kernels' pairing: ONNX Runtime
runs int8 convolutions in NHWC, reducing over (kernel row, kernel column, input channel) with
the input channel innermost (`emulate.py` computes exactly that, and is checked against ONNX
Runtime's AVX2 kernels under QEMU); oneDNN's (OpenVINO's) int8 kernels also pair adjacent
input channels of one kernel tap. A layer whose input channels per group are odd (the first
convolution: 3 colour channels) has pairs that straddle kernel taps and depend on the kernel's
layout, so it gets 7-bit weights, which are safe in any order (NNCF's `overflow_fix` does the
same for the first layer).

Bias correction (`bias_shift`, as NNCF's fast bias correction and AIMET's empirical one): a
layer's quantized weights Wq differ from W, and over the calibration data its mean output
moves per output channel by (Wq − W) · E[x], E[x] the per-channel mean of its input measured
during calibration (`TensorStats.channel_mean`). That shift is subtracted from the bias, so
the layer's mean output is the float one again. Everything is float64 in a fixed order:
byte-identical results for the same statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resnet_opt.errors import ResnetOptError

INT8_WEIGHT_MAX = 127  # TensorRT's weight range is [-127, 127]
REDUCED_WEIGHT_MAX = 64  # 7 bits: no pair of them can saturate int16 with u8 codes
SAFE_PAIR_SUM = 128  # 255 · 128 = 32640 ≤ 32767: the largest same-sign pair |a| + |b|


@dataclass(frozen=True)
class WeightPolicy:
    """How a placement's weights become integers.

    `weight_max` bounds every weight; `safe_pairs` moves the adjacent same-sign pairs that could
    saturate a VPMADDUBSW sum (and takes 7 bits for layers whose pairs depend on the kernel's
    layout); `bias_correction` folds the mean output shift into the bias where the input's
    channel means are known.
    """

    weight_max: int = INT8_WEIGHT_MAX
    safe_pairs: bool = False
    bias_correction: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.weight_max <= INT8_WEIGHT_MAX:
            raise ResnetOptError(
                f"int8 weight range must be within ±{INT8_WEIGHT_MAX}, not ±{self.weight_max}"
            )

    @property
    def saturation_safe(self) -> bool:
        """Whether no u8×s8 pair sum of these weights can leave int16."""
        return self.safe_pairs or 2 * self.weight_max <= 2 * SAFE_PAIR_SUM


def reduction_rows(weight: np.ndarray, axis: int) -> np.ndarray:
    """The weight as (output channel × reduction) in the kernels' order: a Conv's (OC, I, kh,
    kw) as (OC, kh·kw·I) with the input channel innermost (NHWC); a Gemm's matrix with its
    output axis `axis` first."""
    if weight.ndim == 4:
        if axis != 0:
            raise ResnetOptError(f"a Conv weight's output axis is 0, not {axis}")
        return np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(weight.shape[0], -1)
    if weight.ndim == 2:
        return np.ascontiguousarray(np.moveaxis(weight, axis, 0))
    raise ResnetOptError(f"weights of rank {weight.ndim} are not Conv or Gemm weights")


def from_reduction_rows(rows: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """`reduction_rows`' inverse."""
    if len(shape) == 4:
        oc, i, kh, kw = shape
        return np.ascontiguousarray(rows.reshape(oc, kh, kw, i).transpose(0, 3, 1, 2))
    moved = rows.reshape(shape[axis], -1)
    return np.ascontiguousarray(np.moveaxis(moved, 0, axis))


def pairs_follow_channels(weight: np.ndarray) -> bool:
    """Whether the kernels' adjacent pairs are channel pairs of one tap (an even number of input
    channels per tap), the same in ONNX Runtime's NHWC order and oneDNN's blocked layouts."""
    per_tap = weight.shape[1] if weight.ndim == 4 else 2
    return per_tap % 2 == 0


def clamp_pairs(q: np.ndarray, unrounded: np.ndarray) -> tuple[np.ndarray, int]:
    """`q` (OC × K int8 codes in reduction order) with every adjacent same-sign pair over
    SAFE_PAIR_SUM moved onto |a| + |b| = SAFE_PAIR_SUM, nearest to the unrounded values; and the
    number of pairs moved. An odd K's last code stands alone and cannot saturate."""
    even = q.shape[1] - q.shape[1] % 2
    out = q.astype(np.int32)
    a, b = out[:, 0:even:2], out[:, 1:even:2]
    fa, fb = unrounded[:, 0:even:2], unrounded[:, 1:even:2]
    moved = 0
    for sign in (1, -1):
        ma, mb = sign * a, sign * b  # magnitudes on this side
        over = (ma > 0) & (mb > 0) & (ma + mb > SAFE_PAIR_SUM)
        if not over.any():
            continue
        ua, ub = sign * fa[over], sign * fb[over]
        # nearest point of the line a + b = 128 to (ua, ub), rounded, a kept within [1, 127]
        na = np.clip(np.rint(ua - (ua + ub - SAFE_PAIR_SUM) / 2.0), 1, SAFE_PAIR_SUM - 1)
        nb = SAFE_PAIR_SUM - na
        a[over] = sign * na.astype(np.int32)
        b[over] = sign * nb.astype(np.int32)
        moved += int(over.sum())
    out[:, 0:even:2], out[:, 1:even:2] = a, b
    return out.astype(np.int8), moved


def max_pair_sum(q: np.ndarray) -> int:
    """The largest same-sign |a| + |b| over adjacent pairs of `q` (OC × K, reduction order)."""
    even = q.shape[1] - q.shape[1] % 2
    if even == 0:
        return int(np.abs(q.astype(np.int32)).max(initial=0))
    a, b = q[:, 0:even:2].astype(np.int32), q[:, 1:even:2].astype(np.int32)
    pos = np.maximum(a, 0) + np.maximum(b, 0)
    neg = -(np.minimum(a, 0) + np.minimum(b, 0))
    return int(max(pos.max(initial=0), neg.max(initial=0)))


def bias_shift(
    weight: np.ndarray,
    dequantized: np.ndarray,
    axis: int,
    input_mean: np.ndarray,
    group: int = 1,
) -> np.ndarray:
    """The per-output-channel shift of the layer's mean output that quantizing `weight` to
    `dequantized` causes, given its input's per-channel mean (float64).

    Conv (OC, I/group, kh, kw): Σ over (i, kh, kw) of the error times the mean of input channel
    i of the output channel's group (borders, where padding reads zeros, are not singled out).
    Gemm: the error matrix times the mean input, along the output axis `axis`.
    """
    error = dequantized.astype(np.float64) - weight.astype(np.float64)
    mean = np.asarray(input_mean, dtype=np.float64)
    if weight.ndim == 4:
        oc, per_group = weight.shape[0], weight.shape[1]
        if group < 1 or oc % group or per_group * group != mean.size:
            raise ResnetOptError(
                f"input mean of {mean.size} channels does not fit a weight of shape "
                f"{weight.shape} in {group} group(s)"
            )
        per_channel = error.sum(axis=(2, 3))  # OC × I/group
        means = mean.reshape(group, per_group)[np.arange(oc) // (oc // group)]
        shift: np.ndarray = (per_channel * means).sum(axis=1)
        return shift
    if weight.ndim == 2:
        rows = np.moveaxis(error, axis, 0)  # out × in
        if rows.shape[1] != mean.size:
            raise ResnetOptError(
                f"input mean of {mean.size} features does not fit a weight of shape {weight.shape}"
            )
        gemm_shift: np.ndarray = rows @ mean
        return gemm_shift
    raise ResnetOptError(f"weights of rank {weight.ndim} are not Conv or Gemm weights")
