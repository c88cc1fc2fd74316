"""The timed loop and its statistics.

What is timed is one `call()` (one inference on a fixed, pre-built feed; GPU runners synchronise
inside it), measured on the host with `time.perf_counter`. The loop does nothing between calls
but read the clock and store the reading in a pre-sized list, so the figure is the model's cost,
not the harness's (benchmarks/bench_overhead.py measures that against a bare ONNX Runtime loop).

The clock is a parameter so that the statistics can be checked against hand-computed values with
a fake clock.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from resnet_opt.core.validation import count, positive_count, seconds
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.report.schema import Latency

Clock = Callable[[], float]

DEFAULT_DURATION_S = 0.5
DEFAULT_WARMUP_S = 0.1
DEFAULT_MIN_ITERATIONS = 10


class Mode(str, Enum):
    """How long a point is measured: a fixed count of runs, or a time budget."""

    ITERATIONS = "iterations"
    DURATION = "duration"


@dataclass(frozen=True)
class Budget:
    """The measuring budget of one point (artifact × backend × batch).

    Warm-up: one first run, then runs for `warmup_s` (none at all when it is 0), so the slow
    first runs (lazy allocation, compilation, kernel selection) stay out of the statistics.
    Then either exactly `iterations` timed runs, or runs until `duration_s` has passed and at
    least `min_iterations` were timed (a slow model still gets enough samples for its
    percentiles to mean something).
    """

    iterations: int | None = None
    duration_s: float | None = None  # default: DEFAULT_DURATION_S when iterations is not given
    warmup_s: float = DEFAULT_WARMUP_S
    min_iterations: int = DEFAULT_MIN_ITERATIONS

    def __post_init__(self) -> None:
        if self.iterations is not None and self.duration_s is not None:
            raise UsageError("--iterations and --duration exclude each other; give one")
        if self.iterations is None and self.duration_s is None:
            object.__setattr__(self, "duration_s", DEFAULT_DURATION_S)
        if self.iterations is not None:
            positive_count(self.iterations, "iterations")
        duration = self.duration_s
        if duration is not None and not (duration > 0 and math.isfinite(duration)):
            raise UsageError(f"duration must be a positive number of seconds, not {duration}")
        if not (self.warmup_s >= 0 and math.isfinite(self.warmup_s)):
            raise UsageError(f"warm-up must be zero or more seconds, not {self.warmup_s}")
        positive_count(self.min_iterations, "minimum iterations")
        # ceilings (core.validation): 1e18 iterations is a MemoryError, 1e18 s never ends
        if self.iterations is not None:
            count(self.iterations, "--iterations")
        if duration is not None:
            seconds(duration, "--duration")
        seconds(self.warmup_s, "--warmup", strict=False)
        count(self.min_iterations, "--min-iterations")

    @property
    def mode(self) -> Mode:
        return Mode.ITERATIONS if self.iterations is not None else Mode.DURATION


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile by linear interpolation between closest ranks.

    Position (n - 1)·q/100 in the sorted values, interpolated between its two neighbours: numpy's
    default method ("linear", Hyndman & Fan type 7). Written out so the method is stated in one
    place and tested against hand-computed values.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def latency_ms(latencies_s: Sequence[float]) -> Latency:
    """The report's latency figures (milliseconds) of timed calls given in seconds; `std` is the
    population standard deviation."""
    if not latencies_s:
        raise ValueError("no latencies")
    ms = [v * 1000.0 for v in latencies_s]
    mean = math.fsum(ms) / len(ms)
    var = math.fsum((v - mean) ** 2 for v in ms) / len(ms)
    return Latency(
        mean=mean,
        p50=percentile(ms, 50),
        p90=percentile(ms, 90),
        p99=percentile(ms, 99),
        min=min(ms),
        max=max(ms),
        std=math.sqrt(var),
    )


@dataclass(frozen=True)
class Timing:
    """The raw outcome of one timed loop."""

    latencies_s: tuple[float, ...]
    total_s: float  # first clock reading to last: the sum of the latencies
    warmup_iterations: int
    warmup_s: float  # time the warm-up actually took

    @property
    def iterations(self) -> int:
        return len(self.latencies_s)

    def throughput(self, batch: int) -> float:
        """Images per second: batch × iterations / total time."""
        if self.total_s <= 0:
            raise ResnetOptError("the timed loop took no measurable time; use more iterations")
        return batch * self.iterations / self.total_s

    def stats(self) -> Latency:
        return latency_ms(self.latencies_s)


def warm_up(call: Callable[[], object], seconds: float, clock: Clock) -> tuple[int, float]:
    """One first run, then runs until `seconds` have passed since it ended: (runs, time taken).

    The first run is apart because it is often far slower than the rest (allocation, OpenVINO
    compiling a new shape, kernel selection) and must not eat the whole warm-up budget. With
    `seconds` 0 there is no warm-up at all.
    """
    if seconds <= 0:
        return 0, 0.0
    start = clock()
    call()
    runs = 1
    first_done = now = clock()
    while now - first_done < seconds:
        call()
        runs += 1
        now = clock()
    return runs, now - start


def measure(
    call: Callable[[], object], budget: Budget, *, clock: Clock = time.perf_counter
) -> Timing:
    """Warm up, then time `call` as `budget` says.

    One clock reading per run: run i lasts stamps[i+1] - stamps[i], so nothing happens between
    two runs that is not in one of them, and the latencies add up to the total exactly.
    """
    warm_runs, warm_time = warm_up(call, budget.warmup_s, clock)
    if budget.iterations is not None:
        count = budget.iterations
        stamps = [0.0] * (count + 1)
        stamps[0] = clock()
        for i in range(1, count + 1):
            call()
            stamps[i] = clock()
    else:
        assert budget.duration_s is not None
        minimum = budget.min_iterations
        stamps = [clock()]
        append = stamps.append
        deadline = stamps[0] + budget.duration_s
        while True:
            call()
            now = clock()
            append(now)
            if now >= deadline and len(stamps) > minimum:
                break
    latencies = tuple(b - a for a, b in itertools.pairwise(stamps))
    return Timing(latencies, stamps[-1] - stamps[0], warm_runs, warm_time)
