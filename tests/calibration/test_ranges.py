"""The four range methods and the int8 reference math they are judged by."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from resnet_opt.calibration.histogram import Statistics, TensorStats
from resnet_opt.calibration.qdq_math import (
    dequantize,
    quantize,
    symmetric_scale,
)
from resnet_opt.calibration.ranges import (
    ENTROPY_BINS,
    MIN_AMAX,
    Method,
    TensorRange,
    compute_range,
    compute_ranges,
    entropy_amax,
    kl_divergences,
    mse_amax,
    mse_errors,
    percentile_amax,
    resample,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.quantization.qdq import weight_scales

RNG = np.random.default_rng(20240601)


def _stats(values: np.ndarray, name: str = "t") -> TensorStats:
    return TensorStats.of(name, np.asarray(values, dtype=np.float32))


# -- quantize / dequantize reference ---------------------------------------------------------


def _quantize_dequantize(x: np.ndarray, scale: Any, zero_point: Any, dtype: Any = np.int8) -> Any:
    """What a Q/DQ pair computes: x rounded to the quantization grid, clipped to its range."""
    return dequantize(quantize(x, scale, zero_point, dtype), scale, zero_point)


@settings(max_examples=200, deadline=None)
@given(
    amax=st.floats(1e-4, 1e4),
    fractions=hnp.arrays(np.float64, st.integers(1, 64), elements=st.floats(-1.0, 1.0)),
)
def test_int8_qdq_error_is_at_most_half_a_step_inside_the_range(
    amax: float, fractions: np.ndarray
) -> None:
    scale = symmetric_scale(amax)
    x = (fractions * float(scale) * 127).astype(np.float32)  # inside [-127·s, 127·s]
    error = np.abs(_quantize_dequantize(x, scale, 0, np.int8).astype(np.float64) - x)
    assert np.all(error <= float(scale) / 2 * (1 + 1e-5) + 1e-6 * amax)


@settings(max_examples=200, deadline=None)
@given(
    amax=st.floats(1e-4, 1e4),
    fractions=hnp.arrays(np.float64, st.integers(1, 64), elements=st.floats(0.0, 1.0)),
)
def test_uint8_qdq_error_is_at_most_half_a_step_inside_the_range(
    amax: float, fractions: np.ndarray
) -> None:
    scale = symmetric_scale(amax, np.uint8)
    x = (fractions * float(scale) * 255).astype(np.float32)
    error = np.abs(_quantize_dequantize(x, scale, 0, np.uint8).astype(np.float64) - x)
    assert np.all(error <= float(scale) / 2 * (1 + 1e-5) + 1e-6 * amax)


def test_quantize_follows_onnx_semantics() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1000.0, -1000.0], dtype=np.float32)
    # round half to even, then saturate to the type's full range
    np.testing.assert_array_equal(quantize(x, 1.0, 0, np.int8), [0, 2, 2, 0, -2, 127, -128])
    np.testing.assert_array_equal(
        quantize(x, 1.0, 128, np.uint8), [128, 130, 130, 128, 126, 255, 0]
    )
    np.testing.assert_array_equal(dequantize(np.array([3, -4], np.int8), 0.5, 1), [1.0, -2.5])


def test_per_channel_scales_along_an_axis() -> None:
    w = RNG.normal(0, 1, (4, 3, 3, 3)).astype(np.float32)
    w[2] = 0  # an all-zero output channel
    scales = weight_scales(w, axis=0)
    np.testing.assert_allclose(scales[[0, 1, 3]], np.abs(w).max(axis=(1, 2, 3))[[0, 1, 3]] / 127)
    assert scales[2] == np.median(scales[[0, 1, 3]])  # a typical scale (any positive one would do)
    q = quantize(w, scales, np.zeros(4, np.int32), np.int8, axis=0)
    assert np.abs(q).max(axis=(1, 2, 3)).tolist() == [127, 127, 0, 127]
    error = np.abs(dequantize(q, scales, np.zeros(4, np.int32), axis=0) - w)
    assert np.all(error <= scales[:, None, None, None] / 2 * (1 + 1e-5))
    with pytest.raises(ResnetOptError, match="axis"):
        quantize(w, scales, 0)


# -- max and percentile ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.integers(1, 300),
        elements=st.floats(-1e4, 1e4, allow_nan=False, width=32),
    )
)
def test_percentile_100_is_the_max(values: np.ndarray) -> None:
    stats = _stats(values)
    assert percentile_amax(stats, 100.0) == stats.absmax == float(np.abs(values).max())
    if stats.absmax >= MIN_AMAX:  # below it a tensor counts as all zeros
        assert compute_range(stats, Method.MAX).amax == stats.absmax
        assert compute_range(stats, Method.PERCENTILE, percentile=100).amax == stats.absmax


def test_percentile_matches_the_empirical_quantile() -> None:
    values = RNG.normal(0, 1, 200_000)
    stats = _stats(values)
    for p in (50.0, 99.0, 99.9, 99.99):
        expected = np.percentile(np.abs(values), p)
        assert percentile_amax(stats, p) == pytest.approx(expected, rel=2e-3)
    assert percentile_amax(stats, 99.9) < percentile_amax(stats, 99.99) < stats.absmax


def test_percentile_on_an_exact_count_stays_below_an_empty_gap() -> None:
    """99.999 % of 100 000 values is exactly 99 999 of them: the percentile is where that count
    is reached (the body's top, about 1), not the far side of the gap before the outlier."""
    values = np.concatenate([RNG.uniform(0, 1, 99_999), [100.0]])
    stats = _stats(values)
    assert 99.999 / 100 * stats.count == 99_999  # the target count is hit exactly
    assert percentile_amax(stats, 99.999) == pytest.approx(float(np.sort(values)[-2]), rel=1e-3)


def test_percentile_outside_0_100_is_refused() -> None:
    stats = _stats(np.array([1.0, 2.0]))
    for bad in (0.0, -1.0, 100.5):
        with pytest.raises(ResnetOptError, match="percentile"):
            percentile_amax(stats, bad)
        with pytest.raises(ResnetOptError, match="percentile"):
            compute_ranges(Statistics({"t": stats}, 2, 2), Method.PERCENTILE, percentile=bad)


# -- entropy ---------------------------------------------------------------------------------


def _kl_reference(counts: np.ndarray, quantized_bins: int) -> np.ndarray:
    """NVIDIA pytorch-quantization's `_compute_amax_entropy` loop, transcribed plainly."""
    out = []
    for i in range(quantized_bins, counts.size + 1):
        space = np.linspace(0, i, num=quantized_bins + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[counts[:i] == 0] = -1
        level_counts = np.zeros(quantized_bins)
        for idx, level in enumerate(digitized):
            if level != -1:
                level_counts[level] += counts[idx]
        for used in set(digitized.tolist()) - {-1}:
            level_counts[used] /= np.count_nonzero(digitized == used)
        q = np.array([level_counts[d] if d != -1 else 0.0 for d in digitized])
        p = counts[:i].astype(np.float64)
        p[-1] += counts[i:].sum()
        pn, qn = p / p.sum(), q / q.sum()
        support = pn > 0
        if np.any(qn[support] == 0):
            out.append(np.inf)  # scipy.stats.entropy gives inf here too
            continue
        out.append(float(np.sum(pn[support] * np.log(pn[support] / qn[support]))))
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_kl_equals_the_plain_algorithm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, 300).astype(np.float64)
    counts[rng.random(300) < 0.3] = 0  # empty bins, including runs of them
    counts[-1] = 3
    expected = _kl_reference(counts, 16)
    assert np.isinf(expected).any() and np.isfinite(expected).any()  # both cases covered
    actual = kl_divergences(counts, 16)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(actual), finite)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-7, atol=1e-10)


def test_entropy_keeps_the_max_for_uniform_data() -> None:
    stats = _stats(RNG.uniform(-3, 3, 400_000))
    bin_width = stats.absmax / ENTROPY_BINS
    assert entropy_amax(stats) >= stats.absmax - bin_width


@pytest.mark.parametrize(
    "values",
    [
        np.concatenate([RNG.laplace(0, 1, 300_000), [45.0, -60.0]]),
        RNG.standard_t(2.5, 300_000),
        np.concatenate([RNG.normal(0, 1, 300_000), [50.0]]),
    ],
    ids=["laplace+outliers", "student-t", "normal+outlier"],
)
def test_entropy_clips_heavy_tails(values: np.ndarray) -> None:
    stats = _stats(values)
    amax = entropy_amax(stats)
    assert amax < 0.5 * stats.absmax
    assert amax > np.percentile(np.abs(values), 99)  # clips the tail, not the body


def test_resampling_keeps_every_count() -> None:
    values = RNG.gamma(2.0, 1.0, 50_000)
    stats = _stats(values)
    counts = resample(stats)
    assert counts.shape == (ENTROPY_BINS,)
    assert counts.sum() == pytest.approx(values.size)
    histogram, _ = np.histogram(values, bins=ENTROPY_BINS, range=(0, stats.absmax))
    # only the fine bin that straddles an edge is split by interpolation, so the cumulative
    # counts at every resampled edge are off by less than one fine bin's count
    misplaced = np.abs(np.cumsum(counts) - np.cumsum(histogram))
    assert misplaced.max() <= stats.histogram.counts.max()


def test_resampling_keeps_values_saturated_at_the_max() -> None:
    """Clipped at 2.0, a multiple of the fine bins' width: the values at the max stay counted."""
    values = np.clip(RNG.normal(0, 1, 100_000), -2.0, 2.0)
    stats = _stats(values)
    assert stats.absmax == 2.0 and stats.histogram.range == 4.0
    counts = resample(stats)
    assert counts.sum() == pytest.approx(values.size)
    assert counts[-1] >= np.sum(np.abs(values) == 2.0)


# -- mse -------------------------------------------------------------------------------------


def test_mse_closed_form_matches_simulated_quantization() -> None:
    values = RNG.laplace(0, 1, 400_000).astype(np.float32)
    stats = _stats(values)
    candidates = np.array([2.0, 4.0, 8.0, stats.absmax])
    predicted = mse_errors(stats, candidates)
    for amax, error in zip(candidates, predicted, strict=True):
        clipped = np.clip(values, -amax, amax)
        simulated = np.mean((_quantize_dequantize(clipped, symmetric_scale(amax), 0) - values) ** 2)
        assert error == pytest.approx(simulated, rel=0.03)


def test_mse_clips_heavy_tails_and_keeps_uniform_data() -> None:
    heavy = _stats(RNG.laplace(0, 1, 300_000))
    assert mse_amax(heavy) < 0.9 * heavy.absmax
    uniform = _stats(RNG.uniform(-1, 1, 300_000))
    assert mse_amax(uniform) > 0.98 * uniform.absmax
    # uint8 over [0, amax] has a step half as large: less reason to clip
    relu = _stats(np.maximum(RNG.laplace(0, 1, 300_000), 0))
    assert mse_amax(relu, levels=255) >= mse_amax(relu, levels=127)


# -- all tensors -----------------------------------------------------------------------------


def test_compute_ranges_for_every_method_and_degenerate_tensors() -> None:
    stats = Statistics(
        tensors={
            "act": _stats(RNG.normal(0, 1, 20_000), "act"),
            "relu": _stats(np.maximum(RNG.normal(0, 1, 20_000), 0), "relu"),
            "dead": _stats(np.zeros(100), "dead"),
        },
        samples=8,
        requested=8,
    )
    for method in Method:
        ranges = compute_ranges(stats, method)
        assert list(ranges) == ["act", "relu", "dead"]
        for name, r in ranges.items():
            assert isinstance(r, TensorRange)
            assert 0 < r.amax <= max(stats[name].absmax, 1.0)
            assert r.amin == stats[name].amin and r.observed_max == stats[name].absmax
        assert ranges["dead"].amax == 1.0  # nothing observed: a unit range
        assert ranges["relu"].amin >= 0 and ranges["act"].amin < 0
    unsigned = compute_ranges(stats, Method.ENTROPY, uint8_when_nonnegative=True)
    signed = compute_ranges(stats, Method.ENTROPY)
    assert unsigned["act"] == signed["act"]


def test_graph_inputs_keep_their_full_range_unless_asked() -> None:
    """A spiky input (most pixels one background value) is what entropy clips badly."""
    pixels = np.concatenate([np.full(90_000, -0.9), RNG.uniform(-0.9, 2.2, 10_000)])
    tensors = {"input": _stats(pixels, "input"), "act": _stats(RNG.laplace(0, 1, 50_000), "act")}
    stats = Statistics(tensors, samples=1, requested=1, inputs=("input",))
    ranges = compute_ranges(stats, Method.ENTROPY)
    assert ranges["input"].amax == stats["input"].absmax and ranges["input"].method == "max"
    assert ranges["act"].method == "entropy" and ranges["act"].amax < stats["act"].absmax
    clipped = compute_ranges(stats, Method.ENTROPY, full_range=())["input"]
    assert clipped.method == "entropy" and clipped.amax < 0.5 * stats["input"].absmax


def test_tensor_range_refuses_a_non_positive_amax() -> None:
    with pytest.raises(ResnetOptError, match="positive"):
        TensorRange(amin=0.0, amax=0.0)
    with pytest.raises(ResnetOptError, match="positive"):
        TensorRange(amin=0.0, amax=float("nan"))
