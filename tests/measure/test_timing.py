"""The timed loop and its statistics, checked with a fake clock against hand-computed values."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_opt.errors import ResnetOptError
from resnet_opt.measure.timing import Budget, Mode, Timing, latency_ms, measure, percentile


class FakeClock:
    """Time moves only when a fake inference 'runs' for its next scripted duration."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 100.0
        self._durations: Iterator[float] = iter(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def run(self) -> None:
        self.calls += 1
        self.now += next(self._durations)


def test_percentiles_by_hand() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 10.0]  # sorted: 1 2 3 4 10
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 10.0
    # position (5 - 1) * 0.9 = 3.6 → 4 + 0.6 * (10 - 4)
    assert percentile(values, 90) == pytest.approx(7.6)
    # position 3.96 → 4 + 0.96 * 6
    assert percentile(values, 99) == pytest.approx(9.76)
    # position 1.0 for q=25 exactly: no interpolation
    assert percentile(values, 25) == 2.0
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=60),
    st.floats(0, 100),
)
def test_percentile_is_numpys_linear_method(values: list[float], q: float) -> None:
    expected = float(np.percentile(np.asarray(values), q, method="linear"))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_iterations_mode_with_a_fake_clock() -> None:
    warm = [0.5, 0.01, 0.01]  # the slow first run, then two warm-up runs reach 0.02 s
    timed = [0.001, 0.002, 0.003, 0.004, 0.010]
    clock = FakeClock(warm + timed)
    timing = measure(clock.run, Budget(iterations=5, warmup_s=0.02), clock=clock)
    assert timing.warmup_iterations == 3
    assert timing.warmup_s == pytest.approx(0.52)
    assert timing.latencies_s == pytest.approx(tuple(timed))
    assert timing.iterations == 5
    assert timing.total_s == pytest.approx(0.020)
    # throughput = batch × iterations / total time = 8 × 5 / 0.02 s
    assert timing.throughput(8) == pytest.approx(2000.0)
    stats = timing.stats()
    assert stats.mean == pytest.approx(4.0)
    assert stats.p50 == pytest.approx(3.0)
    assert stats.p90 == pytest.approx(4.0 + 0.6 * 6.0)  # position 3.6 of 1,2,3,4,10 ms
    assert stats.p99 == pytest.approx(4.0 + 0.96 * 6.0)
    assert stats.min == pytest.approx(1.0) and stats.max == pytest.approx(10.0)
    assert stats.std == pytest.approx(float(np.std([1, 2, 3, 4, 10])))
    assert clock.calls == 8


def test_duration_mode_stops_after_budget_and_minimum() -> None:
    # 0.3 s budget: runs of 0.1 s reach it after 3, but the minimum asks for 4
    clock = FakeClock([0.1] * 10)
    timing = measure(clock.run, Budget(duration_s=0.3, warmup_s=0.0, min_iterations=4), clock=clock)
    assert timing.warmup_iterations == 0
    assert timing.iterations == 4
    assert timing.total_s == pytest.approx(0.4)
    # with a minimum of 1 the budget decides: the run that crosses 0.3 s is the last
    clock = FakeClock([0.1] * 10)
    timing = measure(
        clock.run, Budget(duration_s=0.25, warmup_s=0.0, min_iterations=1), clock=clock
    )
    assert timing.iterations == 3
    assert timing.throughput(1) == pytest.approx(10.0)


def test_budget_choices() -> None:
    assert Budget().mode is Mode.DURATION and Budget().duration_s == 0.5
    assert Budget(iterations=3).mode is Mode.ITERATIONS
    with pytest.raises(ResnetOptError, match="exclude each other"):
        Budget(iterations=3, duration_s=1.0)
    with pytest.raises(ResnetOptError, match="positive"):
        Budget(iterations=0)
    with pytest.raises(ResnetOptError, match="positive"):
        Budget(duration_s=0.0)
    with pytest.raises(ResnetOptError, match="warm-up"):
        Budget(warmup_s=-1.0)


def test_stats_of_constant_latency() -> None:
    stats = latency_ms([0.002] * 7)
    assert stats.p50 == stats.p99 == stats.mean == pytest.approx(2.0)
    assert stats.std == pytest.approx(0.0, abs=1e-12)


def test_zero_time_is_refused() -> None:
    with pytest.raises(ResnetOptError, match="no measurable time"):
        Timing((0.0,), 0.0, 0, 0.0).throughput(1)
