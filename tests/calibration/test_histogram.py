"""Streaming statistics equal one-shot statistics exactly, whatever the batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from resnet_opt.calibration.histogram import (
    MIN_RANGE,
    AbsHistogram,
    TensorAccumulator,
    TensorStats,
    _rescale,
    check_bins,
    range_for,
)
from resnet_opt.errors import ResnetOptError

finite_floats = st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=32
)
batches = st.lists(
    hnp.arrays(np.float32, st.integers(1, 40), elements=finite_floats), min_size=1, max_size=8
)


def _scaled(arrays: list[np.ndarray], scales: list[float]) -> list[np.ndarray]:
    """Batches whose magnitudes differ by orders of magnitude, so the range grows often."""
    return [(a * np.float32(s)).astype(np.float32) for a, s in zip(arrays, scales, strict=False)]


@settings(max_examples=150, deadline=None)
@given(
    arrays=batches,
    scales=st.lists(st.sampled_from([1e-6, 1e-3, 1.0, 7.0, 300.0]), min_size=8, max_size=8),
    bins=st.sampled_from([2, 8, 64, 1024]),
)
def test_streamed_equals_one_shot(arrays: list[np.ndarray], scales: list[float], bins: int) -> None:
    data = _scaled(arrays, scales)
    acc = TensorAccumulator("t", bins)
    for batch in data:
        acc.update(batch)
    streamed = acc.result()
    one_shot = TensorStats.of("t", np.concatenate(data), bins)
    assert streamed.equals(one_shot)
    assert streamed.amin == float(np.concatenate(data).min())
    assert streamed.amax == float(np.concatenate(data).max())
    assert streamed.histogram.total == sum(b.size for b in data)


@settings(max_examples=100, deadline=None)
@given(arrays=batches, split_seed=st.integers(0, 2**31 - 1))
def test_any_batch_split_gives_identical_histograms(
    arrays: list[np.ndarray], split_seed: int
) -> None:
    data = np.concatenate(arrays)
    rng = np.random.default_rng(split_seed)
    cuts = np.sort(rng.integers(0, data.size + 1, size=rng.integers(0, 6)))
    acc = TensorAccumulator("t", 256)
    for part in np.split(data, cuts):
        acc.update(part)  # empty parts included
    assert acc.result().equals(TensorStats.of("t", data, 256))


def test_histogram_bins_by_floor_of_scaled_magnitude() -> None:
    values = np.array([0.0, -0.1, 0.24, 0.25, -0.5, 0.99, -1.5], dtype=np.float32)
    hist = AbsHistogram.of(values, bins=8)
    assert hist.range == 2.0  # smallest power of two strictly above 1.5
    expected = np.zeros(8, dtype=np.int64)
    for v in np.abs(values):
        expected[math.floor(float(v) * 8 / 2.0)] += 1
    np.testing.assert_array_equal(hist.counts, expected)


def test_range_is_strictly_above_a_power_of_two_maximum() -> None:
    assert range_for(1.0) == 2.0  # 1.0 itself must fall inside [0, R)
    assert range_for(0.75) == 1.0
    assert range_for(0.0) == MIN_RANGE
    with pytest.raises(ValueError):
        range_for(math.inf)


def test_rescale_and_coarsen_are_exact() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 5000).astype(np.float32)
    hist = AbsHistogram.of(values, bins=64)
    wider = AbsHistogram(_rescale(hist.counts, hist.range, hist.range * 8), hist.range * 8)
    expected = np.zeros(64, dtype=np.int64)
    for v in np.abs(values):
        expected[int(float(v) * 64 / wider.range)] += 1
    np.testing.assert_array_equal(wider.counts, expected)
    assert hist.coarsened(16).counts.tolist() == hist.counts.reshape(16, 4).sum(1).tolist()


def test_nan_or_inf_in_activations_is_a_clear_error() -> None:
    acc = TensorAccumulator("conv1_out", 16)
    with pytest.raises(ResnetOptError, match=r"conv1_out.*NaN or infinite"):
        acc.update(np.array([1.0, np.nan], dtype=np.float32))
    with pytest.raises(ResnetOptError, match="NaN or infinite"):
        acc.update(np.array([np.inf], dtype=np.float32))


def test_bins_must_be_a_power_of_two() -> None:
    with pytest.raises(ResnetOptError, match="power of two"):
        check_bins(1000)
    with pytest.raises(ResnetOptError, match="no values"):
        TensorAccumulator("t", 8).result()
