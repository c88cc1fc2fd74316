"""Range calibration: from activation statistics to one clipping magnitude per tensor.

Four methods, all computed from the same streamed statistics (so a calibration cache of
histograms can be re-quantized with another method without a new pass):

- ``max``: the largest |x| seen. Never clips; wastes resolution on outliers.
- ``percentile``: the p-th percentile of |x| (default 99.99), read from the histogram with
  linear interpolation inside the bin; 100 gives the max exactly.
- ``entropy``: TensorRT's calibration (IInt8EntropyCalibrator2): the threshold whose clipped,
  128-level quantized distribution diverges least (Kullback-Leibler) from the clipped original.
  The algorithm was published by NVIDIA in Szymon Migacz, "8-bit Inference with TensorRT",
  GTC 2017 (slides "Entropy Calibration - pseudocode"): histogram of |x| in 2048 bins over
  [0, max|x|]; for i in 128…2048 bins: P = the first i bins with all outliers added to the
  last one; Q = the first i bins (without the outliers) merged into 128 levels and expanded
  back evenly over the bins that are non-empty; minimise KL(P‖Q). Where the slides are silent
  we follow NVIDIA's own Python implementation of the same calibrator, pytorch-quantization's
  `_compute_amax_entropy` (NVIDIA/TensorRT, tools/pytorch-quantization/pytorch_quantization/
  calib/histogram.py): bin 0 takes the count of bin 1 (so the spike of exact zeros after a
  ReLU does not decide the threshold), bin j of a candidate i belongs to level
  floor(j·128/i), i = 2048 (no clipping) is a candidate, an empty last bin that receives
  outliers makes the divergence infinite, ties go to the largest threshold, and the threshold
  is the upper edge of bin i; uint8 uses 256 levels. Our streamed histogram has finer,
  power-of-two aligned bins; it is resampled onto the 2048 bins over [0, max|x|] assuming a
  uniform density inside each fine bin. The search is vectorised with prefix sums, and a test
  checks it against a plain loop transcription of the algorithm.
- ``mse``: the amax minimising the expected squared error of symmetric int8 fake quantization
  (round to nearest, clip at ±amax) over the histogram, with the data uniform inside each bin,
  which makes the expected error per bin an exact closed form (see `_sq_error_integral`);
  searched over max|x|·k/256 (k = 1…256), then refined 16× around the best.

Everything is numpy on a few thousand numbers per tensor; no framework calibrator is used
(ONNX Runtime's Entropy through quantize_static silently equals MinMax, and its histogram
calibrators keep every batch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

import numpy as np

from resnet_opt.calibration.histogram import AbsHistogram, Statistics, TensorStats
from resnet_opt.errors import ResnetOptError

__all__ = [
    "DEFAULT_PERCENTILE",
    "Method",
    "Statistics",
    "TensorRange",
    "compute_range",
    "compute_ranges",
    "entropy_amax",
    "mse_amax",
    "percentile_amax",
]

log = logging.getLogger(__name__)

DEFAULT_PERCENTILE = 99.99
ENTROPY_BINS = 2048
INT8_LEVELS = 127  # positive levels of symmetric int8: amax maps to 127
UINT8_LEVELS = 255  # levels of uint8 over [0, amax] with zero point 0
MSE_COARSE = 256
MSE_REFINE = 16
MSE_MAX_BINS = 2048
# Below this a tensor is "all zeros" for quantization purposes: amax / 255 would not be a
# normal float32, so such tensors get a unit range (as ONNX Runtime's quantizer does).
MIN_AMAX = 2.0**-100


class Method(str, Enum):
    MAX = "max"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
    MSE = "mse"


@dataclass(frozen=True)
class TensorRange:
    """The calibrated range of one tensor.

    The quantization range is symmetric, [-amax, amax] (scale amax/127 for int8). A tensor with
    amin >= 0 may instead map [0, amax] to uint8 (the CPU target does).
    """

    amin: float  # observed minimum over all calibration data
    amax: float  # chosen clipping magnitude, > 0
    observed_max: float | None = None  # largest |x| seen (amax < observed_max means clipping)
    method: str = ""  # the method that chose amax (max for graph inputs, see compute_ranges)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.amax) and self.amax > 0):
            raise ResnetOptError(f"a calibrated amax must be finite and positive, not {self.amax}")


# -- the methods on one histogram ----------------------------------------------------------


def _density_knots(hist: AbsHistogram, absmax: float) -> tuple[np.ndarray, np.ndarray]:
    """x positions and the cumulative count at each: piecewise-linear CDF of |x|.

    The knots are the histogram's edges up to the last non-empty bin, whose upper edge is
    replaced by `absmax` (no value lies above it), so mass is not spread beyond the data.
    """
    nonzero = np.flatnonzero(hist.counts)
    last = int(nonzero[-1])
    edges = np.arange(last + 2, dtype=np.float64) * hist.width
    if absmax > edges[last]:
        edges[last + 1] = absmax
    cumulative = np.concatenate(([0.0], np.cumsum(hist.counts[: last + 1], dtype=np.float64)))
    return edges, cumulative


def percentile_amax(stats: TensorStats, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The `percentile`-th percentile of |x| (linear inside a bin), never above max|x|."""
    if not (0 < percentile <= 100):
        raise ResnetOptError(f"percentile must be in (0, 100], not {percentile}")
    absmax = stats.absmax
    if absmax == 0:
        return 0.0
    if percentile == 100:
        return absmax
    edges, cumulative = _density_knots(stats.histogram, absmax)
    target = percentile / 100.0 * cumulative[-1]
    # the smallest x whose count reaches the target: the first knot at or above it, linear
    # inside its bin (np.interp on the counts is ambiguous where empty bins repeat a count,
    # and took the far end of such a gap when the target fell exactly on it)
    k = max(1, int(np.searchsorted(cumulative, target, side="left")))
    below, above = cumulative[k - 1], cumulative[k]
    x = edges[k - 1] + (target - below) / (above - below) * (edges[k] - edges[k - 1])
    return float(min(x, absmax))


def resample(stats: TensorStats, bins: int = ENTROPY_BINS) -> np.ndarray:
    """Counts (float64) of |x| in `bins` equal bins over [0, max|x|], from the fine histogram."""
    edges, cumulative = _density_knots(stats.histogram, stats.absmax)
    targets = np.linspace(0.0, stats.absmax, bins + 1)
    below = np.interp(targets, edges, cumulative)
    # every value is ≤ max|x|: values exactly at it (saturated, clipped) sit on the lower edge
    # of their fine bin when max|x| is a multiple of the bin width, which the CDF puts above
    below[-1] = cumulative[-1]
    return np.asarray(np.diff(below))


def kl_divergences(counts: np.ndarray, quantized_bins: int) -> np.ndarray:
    """KL(P_i ‖ Q_i) for every candidate i in quantized_bins … len(counts) (see module doc).

    Bin j < i belongs to level floor(j · quantized_bins / i). Vectorised over candidates with
    prefix sums: KL = (1/T)·Σ_j p_j log p_j − log T + log Σ_g S_g − (1/T)·Σ_g P_g log(S_g/n_g),
    where T is the total count (P sums to T), S_g the count of level g's bins, P_g their count
    in P (the last level also holds the outliers) and n_g the number of its non-empty bins.
    A candidate whose last bin is empty while outliers pile into it has Q = 0 where P > 0:
    its divergence is +inf.
    """
    h = np.asarray(counts, dtype=np.float64)
    n = h.shape[0]
    if n < quantized_bins:
        raise ValueError(f"{n} bins cannot be searched with {quantized_bins} quantized bins")
    total = h.sum()
    cum = np.concatenate(([0.0], np.cumsum(h)))
    nonzero = h > 0
    cum_nonzero = np.concatenate(([0], np.cumsum(nonzero)))
    hlogh = np.zeros_like(h)
    hlogh[nonzero] = h[nonzero] * np.log(h[nonzero])
    cum_hlogh = np.concatenate(([0.0], np.cumsum(hlogh)))

    i = np.arange(quantized_bins, n + 1)
    outliers = total - cum[i]
    p_last = h[i - 1] + outliers
    safe_last = np.where(p_last > 0, p_last, 1.0)
    sum_plogp = cum_hlogh[i - 1] + np.where(p_last > 0, p_last * np.log(safe_last), 0.0)

    # level g holds bins ceil(g·i/Q) … ceil((g+1)·i/Q) − 1, i.e. bin j is in level floor(jQ/i)
    levels = np.arange(quantized_bins + 1)
    bounds = -((-levels[None, :] * i[:, None]) // quantized_bins)
    starts, ends = bounds[:, :-1], bounds[:, 1:]
    group_raw = cum[ends] - cum[starts]
    group_nonzero = cum_nonzero[ends] - cum_nonzero[starts]
    group_p = group_raw.copy()
    group_p[:, -1] += outliers

    kept = cum[i]  # Σ_g S_g: Q's total mass
    level_value = np.where(group_raw > 0, group_raw, 1.0) / np.maximum(group_nonzero, 1)
    per_group = np.where(group_p > 0, group_p * np.log(level_value), 0.0)
    with np.errstate(divide="ignore"):
        kl = sum_plogp / total - np.log(total) + np.log(kept) - per_group.sum(axis=1) / total
    invalid = ((outliers > 0) & ~nonzero[i - 1]) | (kept <= 0)
    kl[invalid] = np.inf
    return np.asarray(np.maximum(kl, 0.0))  # rounding can leave −1e-16 where the divergence is 0


def entropy_amax(
    stats: TensorStats, *, bins: int = ENTROPY_BINS, quantized_bins: int = INT8_LEVELS + 1
) -> float:
    """TensorRT's entropy (KL) threshold; `quantized_bins` 128 for int8, 256 for uint8."""
    absmax = stats.absmax
    if absmax == 0:
        return 0.0
    counts = resample(stats, bins)
    counts[0] = counts[1]  # the spike at zero (ReLU outputs) would dominate the divergence
    divergences = kl_divergences(counts, quantized_bins)
    best = int(divergences.size - 1 - np.argmin(divergences[::-1])) + quantized_bins  # last min
    return float(min(best * (absmax / bins), absmax))


def _sq_error_integral(x: np.ndarray, amax: np.ndarray, step: np.ndarray) -> np.ndarray:
    """∫₀ˣ (u − fq(u))² du for symmetric fake quantization fq with the given step, clip amax.

    Below amax, fq rounds to the nearest multiple of the step: with m = floor(u/step + 1/2)
    and r = u − m·step the integral is m·step³/12 + r³/3 (each full step contributes
    step³/12). Above amax (= levels·step) everything maps to amax: add (x − amax)³/3.
    """
    inside = np.minimum(x, amax)
    m = np.floor(inside * (1.0 / step) + 0.5)
    r = inside - m * step
    beyond = np.maximum(x - amax, 0.0)
    step_cubed = step * step * step / 12.0  # per candidate: cheap; x**3 would call pow()
    return np.asarray(m * step_cubed + (r * r * r + beyond * beyond * beyond) / 3.0)


def mse_errors(
    stats: TensorStats, candidates: np.ndarray, *, levels: int = INT8_LEVELS
) -> np.ndarray:
    """Expected squared error per element of fake quantization at each candidate amax."""
    hist = stats.histogram
    if hist.bins > MSE_MAX_BINS:
        hist = hist.coarsened(MSE_MAX_BINS)  # exact: only the bin grid gets coarser
    edges, cumulative = _density_knots(hist, stats.absmax)
    counts = np.diff(cumulative)
    widths = np.diff(edges)
    density = np.divide(counts, widths, out=np.zeros_like(counts), where=widths > 0)
    errors = np.empty(candidates.shape[0], dtype=np.float64)
    chunk = max(1, (1 << 20) // edges.shape[0])
    for start in range(0, candidates.shape[0], chunk):
        amax = candidates[start : start + chunk, None]
        integral = _sq_error_integral(edges[None, :], amax, amax / levels)
        errors[start : start + chunk] = (np.diff(integral, axis=1) * density).sum(axis=1)
    return np.asarray(errors / cumulative[-1])


def mse_amax(
    stats: TensorStats,
    *,
    levels: int = INT8_LEVELS,
    coarse: int = MSE_COARSE,
    refine: int = MSE_REFINE,
) -> float:
    """The amax with the least expected error, searched coarse to fine.

    First max|x|·k/coarse for k = 1…coarse; then `refine` steps per coarse step on both sides
    of the best coarse candidate, for a final resolution of max|x| / (coarse · refine).
    """
    absmax = stats.absmax
    if absmax == 0:
        return 0.0
    step = absmax / coarse
    grid = step * np.arange(1, coarse + 1, dtype=np.float64)
    best = float(grid[int(np.argmin(mse_errors(stats, grid, levels=levels)))])
    fine = best + step * np.arange(-refine, refine + 1, dtype=np.float64) / refine
    fine = fine[(fine > 0) & (fine <= absmax)]
    return float(min(fine[int(np.argmin(mse_errors(stats, fine, levels=levels)))], absmax))


# -- all tensors ----------------------------------------------------------------------------


def compute_range(
    stats: TensorStats,
    method: Method,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    uint8_when_nonnegative: bool = False,
) -> TensorRange:
    """One tensor's range. With `uint8_when_nonnegative`, a tensor that never went below 0 is
    calibrated for 255 levels over [0, amax] (entropy: 256 quantized bins; mse: step amax/255),
    which is what the CPU target's uint8 activations use."""
    unsigned = uint8_when_nonnegative and stats.amin >= 0
    method = Method(method)
    chosen = method.value
    if method is Method.MAX:
        amax = stats.absmax
    elif method is Method.PERCENTILE:
        amax = percentile_amax(stats, percentile)
    elif method is Method.ENTROPY:
        amax = entropy_amax(stats, quantized_bins=(UINT8_LEVELS + 1) if unsigned else 128)
    else:
        amax = mse_amax(stats, levels=UINT8_LEVELS if unsigned else INT8_LEVELS)
    if amax < MIN_AMAX and stats.absmax >= MIN_AMAX:  # the method, not the data, gave ~0
        log.warning(
            "tensor %s: the %s range is %g though its values reach %g (max |x|); too small a "
            "range to quantize with (a percentile as low as %g?): using the range ±1",
            stats.name,
            method.value,
            amax,
            stats.absmax,
            percentile,
        )
        chosen = f"unit ({method.value} range {amax:g})"
        amax = 1.0
    elif amax < MIN_AMAX:
        log.warning(
            "tensor %s is zero on all calibration data (max |x| = %g): using the range ±1",
            stats.name,
            stats.absmax,
        )
        amax = 1.0
        chosen = "unit (all zeros)"
    return TensorRange(amin=stats.amin, amax=amax, observed_max=stats.absmax, method=chosen)


def compute_ranges(
    stats: Statistics,
    method: Method,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    uint8_when_nonnegative: bool = False,
    full_range: Collection[str] | None = None,
) -> dict[str, TensorRange]:
    """Ranges of every tensor in `stats`, in the statistics' (graph) order.

    Tensors in `full_range` (default: the graph inputs, `stats.inputs`) keep their observed
    max whatever the method: the network input is bounded by the preprocessing, and image data
    is often spiky (a uniform background, few grey levels) in a way that makes entropy clip
    real image content (measured on the bundled digits: entropy put the input's amax at 0.95
    of 2.15 and cost 11 points of top-1; with the input at its max, 0). Pass () to calibrate
    the inputs like every other tensor.
    """
    if not (0 < percentile <= 100):
        raise ResnetOptError(f"percentile must be in (0, 100], not {percentile}")
    keep = set(stats.inputs if full_range is None else full_range)
    return {
        name: compute_range(
            tensor,
            Method.MAX if name in keep else method,
            percentile=percentile,
            uint8_when_nonnegative=uint8_when_nonnegative,
        )
        for name, tensor in stats.tensors.items()
    }
