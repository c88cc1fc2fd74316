"""How long `bench` measures on a Jetson, and the warning when its clocks are left to scale.

A Jetson's GPU and EMC clocks ramp with load under the default DVFS governors: 0.1 s of warm-up
and 0.5 s of timing (the CPU defaults) measure the ramp, not the engine. trtexec's defaults are
200 ms of warm-up and 3 s of timing, so a Jetson gets those unless the user chose. With
jetson_clocks the clocks are pinned (min == max) and runs repeat; without it they do not, which
is worth one line before measuring.

Why here and not in a face: the bench stage applies this policy (`BudgetRequest.for_host`,
`clock_warning`, see `pipeline/bench.py`'s `for_this_host`), so `resnet-opt bench`, `run` and
`resnet_opt.bench()` time a Jetson alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_opt.jetson.facts import JetsonFacts
from resnet_opt.measure.timing import (
    DEFAULT_DURATION_S,
    DEFAULT_MIN_ITERATIONS,
    DEFAULT_WARMUP_S,
    Budget,
)

JETSON_WARMUP_S = 0.2  # trtexec --warmUp default (ms: 200)
JETSON_DURATION_S = 3.0  # trtexec --duration default (s: 3)


class HostDefault(float):
    """A default that stands for "not given": its value off a Jetson, trtexec's on one.

    Why: `run`'s [bench] table has its own CPU defaults (0.3 s per point) and TOML has no None,
    so the config's default must still say "the user did not choose" for a Jetson to get its
    budget; a value a user writes is a plain float and is kept as given.
    """

    __slots__ = ()


@dataclass(frozen=True)
class BudgetDefaults:
    warmup_s: float
    duration_s: float | None  # None when --iterations was given


def _pick(value: float | None, on_jetson: bool, jetson: float, cpu: float) -> float:
    """A given value; else (None or a HostDefault) the Jetson's or the CPU's default."""
    if value is not None and not isinstance(value, HostDefault):
        return value
    if on_jetson:
        return jetson
    return cpu if value is None else float(value)


def budget_defaults(
    jetson: JetsonFacts | None,
    *,
    warmup_s: float | None,
    duration_s: float | None,
    iterations: int | None,
) -> BudgetDefaults:
    """The user's values where given, else the Jetson (trtexec) or CPU defaults (a HostDefault
    is not given, and is the CPU default)."""
    on_jetson = jetson is not None
    warmup = _pick(warmup_s, on_jetson, JETSON_WARMUP_S, DEFAULT_WARMUP_S)
    if iterations is not None:
        return BudgetDefaults(warmup, duration_s)
    duration = _pick(duration_s, on_jetson, JETSON_DURATION_S, DEFAULT_DURATION_S)
    return BudgetDefaults(warmup, duration)


@dataclass(frozen=True)
class BudgetRequest:
    """A timing budget as asked, before the host is known: None (or a HostDefault) leaves a
    value to the host's default (`budget_defaults`). `BenchOptions`' default; a `Budget` given
    instead is measured exactly as it says. Bad values are refused when it is made, as Budget
    refuses them."""

    iterations: int | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    min_iterations: int = DEFAULT_MIN_ITERATIONS

    def __post_init__(self) -> None:
        self.for_host(None)  # --iterations with --duration, NaN, ceilings: refused now

    def for_host(self, jetson: JetsonFacts | None) -> Budget:
        """The budget measured on a host with these Jetson facts (None: not a Jetson)."""
        chosen = budget_defaults(
            jetson, warmup_s=self.warmup_s, duration_s=self.duration_s, iterations=self.iterations
        )
        return Budget(
            iterations=self.iterations,
            duration_s=chosen.duration_s,
            warmup_s=chosen.warmup_s,
            min_iterations=self.min_iterations,
        )


def clock_warning(jetson: JetsonFacts | None) -> str | None:
    """One line when a Jetson's clocks are known not to be locked."""
    if jetson is None or jetson.clocks_locked is not False:
        return None
    mode = f" in power mode {jetson.power_mode}" if jetson.power_mode else ""
    return (
        f"warning: {jetson.module_or_model}{mode} has its clocks scaling (not locked): figures "
        "vary from run to run; run sudo jetson_clocks first for repeatable numbers"
    )
