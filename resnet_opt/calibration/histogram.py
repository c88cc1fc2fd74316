"""Streaming activation statistics whose result does not depend on how the data was batched.

Calibration sees the activations of a few hundred images one batch at a time and must not keep
them: memory grows with the number of tensors, never with the number of images (ONNX Runtime's
own histogram calibrators keep every batch and peaked at 8.3 GB on ResNet-50 with 64 images).

The histogram is of |x| over [0, R) with B bins, B and R powers of two, R the smallest power of
two strictly above every |x| seen so far (and at least `MIN_RANGE`). When a batch exceeds R, R
doubles (as often as needed) and bin pairs merge. The bin of x is floor(|x| · B / R); because
B / R is a power of two that product is exact in floating point, and
floor(floor(y) / 2) == floor(y / 2), so merging pairs gives exactly the bins that binning every
value again at the new range would give. The streamed histogram, minimum and maximum are
therefore bit-identical to the one-shot statistics of the concatenated data, whatever the batch
boundaries (a property test checks this).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from resnet_opt.errors import ResnetOptError

DEFAULT_BINS = 1 << 14
# The smallest range a histogram starts with: all-zero (dead) tensors keep this range.
MIN_RANGE = 2.0**-32
# Values are binned this many at a time, so temporaries stay small whatever the tensor size.
_CHUNK = 1 << 18


def check_bins(bins: int) -> int:
    if bins < 2 or bins & (bins - 1):
        raise ResnetOptError(f"histogram bins must be a power of two ≥ 2, not {bins}")
    return bins


def range_for(absmax: float) -> float:
    """The smallest power of two strictly greater than `absmax`, at least MIN_RANGE."""
    if not math.isfinite(absmax) or absmax < 0:
        raise ValueError(f"range_for needs a finite non-negative value, not {absmax}")
    if absmax < MIN_RANGE:
        return MIN_RANGE
    _, exponent = math.frexp(absmax)  # absmax = m · 2**exponent with 0.5 ≤ m < 1
    return math.ldexp(1.0, exponent)


@dataclass(frozen=True, eq=False)
class AbsHistogram:
    """Counts of |x| in `bins` bins over [0, range): bin k is [k·w, (k+1)·w), w = range / bins."""

    counts: np.ndarray  # int64, shape (bins,)
    range: float

    @property
    def bins(self) -> int:
        return int(self.counts.shape[0])

    @property
    def width(self) -> float:
        return self.range / self.bins

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def edges(self) -> np.ndarray:
        """bins + 1 edges as float64 (exact: multiples of a power of two)."""
        return np.arange(self.bins + 1, dtype=np.float64) * self.width

    def equals(self, other: AbsHistogram) -> bool:
        return self.range == other.range and np.array_equal(self.counts, other.counts)

    def coarsened(self, bins: int) -> AbsHistogram:
        """The same data in fewer bins over the same range (exact: adjacent bins summed)."""
        check_bins(bins)
        if bins > self.bins:
            raise ValueError(f"cannot refine {self.bins} bins into {bins}")
        factor = self.bins // bins
        return AbsHistogram(self.counts.reshape(bins, factor).sum(axis=1), self.range)

    @classmethod
    def of(cls, values: np.ndarray, bins: int = DEFAULT_BINS) -> AbsHistogram:
        """One-shot histogram of all `values` (the reference the streaming one must equal)."""
        check_bins(bins)
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        absmax = float(np.max(np.abs(flat))) if flat.size else 0.0
        hist_range = range_for(absmax)
        counts = np.zeros(bins, dtype=np.int64)
        _add_counts(counts, flat, hist_range)
        return cls(counts, hist_range)


def _rescale(counts: np.ndarray, old_range: float, new_range: float) -> np.ndarray:
    """Counts at `old_range` re-binned to `new_range` = old_range · 2**d by summing 2**d bins."""
    if new_range == old_range:
        return counts
    ratio = new_range / old_range
    doublings = round(math.log2(ratio))
    if doublings < 0 or math.ldexp(1.0, doublings) != ratio:
        raise ValueError(f"can only grow a range by powers of two ({old_range} → {new_range})")
    bins = counts.shape[0]
    out = np.zeros_like(counts)
    if doublings >= int(math.log2(bins)):
        out[0] = counts.sum()
        return out
    factor = 1 << doublings
    out[: bins // factor] = counts.reshape(bins // factor, factor).sum(axis=1)
    return out


def _add_counts(counts: np.ndarray, flat: np.ndarray, hist_range: float) -> None:
    """counts[floor(|x| · B / R)] += 1 for each x (every |x| < R), in bounded-size chunks."""
    bins = counts.shape[0]
    scale = np.float32(math.ldexp(1.0, int(math.log2(bins)) - int(math.log2(hist_range))))
    buf = np.empty(min(_CHUNK, flat.size), dtype=np.float32)
    index = np.empty(buf.size, dtype=np.int32)
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start : start + _CHUNK]
        b = buf[: chunk.size]
        np.abs(chunk, out=b)
        np.multiply(b, scale, out=b)  # exact: scaling by a power of two
        i = index[: chunk.size]
        np.copyto(i, b, casting="unsafe")  # truncation == floor for non-negative values
        counts += np.bincount(i, minlength=bins)


@dataclass(frozen=True, eq=False)
class TensorStats:
    """What calibration keeps of one tensor: signed min/max, element count, histogram of |x|."""

    name: str
    amin: float
    amax: float  # signed maximum
    count: int
    histogram: AbsHistogram
    # mean of each channel (axis 1, over batch and spatial positions), float64; None for a
    # tensor without a channel axis or statistics made before means were kept. Bias correction
    # reads it: a weight error's shift of a layer's mean output is error · input mean.
    channel_mean: np.ndarray | None = None

    @property
    def absmax(self) -> float:
        return max(abs(self.amin), abs(self.amax))

    def equals(self, other: TensorStats) -> bool:
        return (
            self.name == other.name
            and self.amin == other.amin
            and self.amax == other.amax
            and self.count == other.count
            and self.histogram.equals(other.histogram)
            and _same_means(self.channel_mean, other.channel_mean)
        )

    @classmethod
    def of(cls, name: str, values: np.ndarray, bins: int = DEFAULT_BINS) -> TensorStats:
        """One-shot statistics (reference for the streaming accumulator)."""
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        return cls(
            name=name,
            amin=float(flat.min()),
            amax=float(flat.max()),
            count=int(flat.size),
            histogram=AbsHistogram.of(flat, bins),
            channel_mean=channel_sums(np.asarray(values, dtype=np.float32))
            / channel_positions(np.asarray(values).shape)
            if np.ndim(values) >= 2
            else None,
        )


def _same_means(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(a.shape == b.shape and np.array_equal(a, b))


def channel_sums(values: np.ndarray) -> np.ndarray:
    """Σ over every axis but 1 (the channel axis of NCHW and of (N, C) tensors), in float64,
    summed in a fixed order (numpy's pairwise sum over a fixed shape): the same batches give
    the same bits."""
    moved = np.moveaxis(values, 1, 0).reshape(values.shape[1], -1)
    sums: np.ndarray = moved.sum(axis=1, dtype=np.float64)
    return sums


def channel_positions(shape: tuple[int, ...]) -> int:
    """How many values each channel of a tensor of `shape` has."""
    return int(np.prod(shape, dtype=np.int64)) // int(shape[1])


class TensorAccumulator:
    """Running min, max, count and |x| histogram of one tensor, fed batch by batch."""

    def __init__(self, name: str, bins: int = DEFAULT_BINS) -> None:
        self.name = name
        self.bins = check_bins(bins)
        self.amin = math.inf
        self.amax = -math.inf
        self.count = 0
        self.range = MIN_RANGE
        self.counts = np.zeros(bins, dtype=np.int64)
        self.sums: np.ndarray | None = None  # per-channel sums (float64), see channel_sums
        self.positions = 0  # values per channel seen so far
        self.channels = True  # False once a batch without a channel axis was seen

    def update(self, values: np.ndarray) -> None:
        """Fold one batch of this tensor in. `values` is read, never kept."""
        if values.dtype != np.float32:
            values = values.astype(np.float32)
        flat = values.reshape(-1)
        if flat.size == 0:
            return
        lo, hi = float(flat.min()), float(flat.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ResnetOptError(
                f"tensor {self.name!r} has NaN or infinite values on the calibration data; "
                "the model or the data is broken"
            )
        self.amin = min(self.amin, lo)
        self.amax = max(self.amax, hi)
        self.count += flat.size
        new_range = range_for(max(abs(self.amin), abs(self.amax)))
        if new_range != self.range:
            self.counts = _rescale(self.counts, self.range, new_range)
        self.range = new_range
        _add_counts(self.counts, flat, new_range)
        self._add_channels(values)

    def _add_channels(self, values: np.ndarray) -> None:
        if not self.channels or values.ndim < 2:
            self.channels = False
            return
        sums = channel_sums(values)
        if self.sums is None:
            self.sums = sums
        elif self.sums.shape != sums.shape:
            self.channels = False  # channel count changed between batches: no means
            return
        else:
            self.sums = self.sums + sums
        self.positions += channel_positions(values.shape)

    def result(self) -> TensorStats:
        if self.count == 0:
            raise ResnetOptError(f"tensor {self.name!r}: no values were seen during calibration")
        return TensorStats(
            name=self.name,
            amin=self.amin,
            amax=self.amax,
            count=self.count,
            histogram=AbsHistogram(self.counts.copy(), self.range),
            channel_mean=(
                self.sums / self.positions
                if self.channels and self.sums is not None and self.positions
                else None
            ),
        )


@dataclass(frozen=True, eq=False)
class Statistics:
    """Everything a calibration pass learned, per tensor in graph order, plus what it ran on.

    `samples` is the number of samples actually used (corrupt files skipped, a source smaller
    than asked); `requested` is what was asked for, so the manifest can state both. `inputs`
    names the calibrated tensors that are graph inputs (their range comes from the
    preprocessing and is not clipped, see `compute_ranges`).
    """

    tensors: Mapping[str, TensorStats]
    samples: int
    requested: int
    skipped: tuple[tuple[str, str], ...] = ()
    inputs: tuple[str, ...] = ()

    @property
    def bins(self) -> int:
        first = next(iter(self.tensors.values()), None)
        return DEFAULT_BINS if first is None else first.histogram.bins

    def __getitem__(self, name: str) -> TensorStats:
        return self.tensors[name]

    def missing(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self.tensors]

    def require(self, names: Iterable[str]) -> None:
        """Refuse to go on when tensors the caller needs were not calibrated."""
        absent = self.missing(names)
        if absent:
            shown = ", ".join(absent[:5]) + (" …" if len(absent) > 5 else "")
            raise ResnetOptError(f"no calibration statistics for {len(absent)} tensor(s): {shown}")

    def equals(self, other: Statistics) -> bool:
        return (
            self.samples == other.samples
            and self.requested == other.requested
            and self.skipped == other.skipped
            and self.inputs == other.inputs
            and list(self.tensors) == list(other.tensors)
            and all(self.tensors[n].equals(other.tensors[n]) for n in self.tensors)
        )

    def summary(self) -> dict[str, Any]:
        """For manifests: what calibration ran on."""
        return {
            "samples": self.samples,
            "requested": self.requested,
            "skipped": len(self.skipped),
            "tensors": len(self.tensors),
            "histogram_bins": self.bins,
        }
