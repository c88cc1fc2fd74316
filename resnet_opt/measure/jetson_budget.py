"""How long `bench` measures on a Jetson, and the warning when its clocks are left to scale.

A Jetson's GPU and EMC clocks ramp with load under the default DVFS governors: 0.1 s of warm-up
and 0.5 s of timing (the CPU defaults) measure the ramp, not the engine. trtexec's defaults are
200 ms of warm-up and 3 s of timing, so a Jetson gets those unless the user chose. With
jetson_clocks the clocks are pinned (min == max) and runs repeat; without it they do not, which
is worth one line before measuring.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_opt.jetson.facts import JetsonFacts
from resnet_opt.measure.timing import DEFAULT_DURATION_S, DEFAULT_WARMUP_S

JETSON_WARMUP_S = 0.2  # trtexec --warmUp default (ms: 200)
JETSON_DURATION_S = 3.0  # trtexec --duration default (s: 3)


@dataclass(frozen=True)
class BudgetDefaults:
    warmup_s: float
    duration_s: float | None  # None when --iterations was given


def budget_defaults(
    jetson: JetsonFacts | None,
    *,
    warmup_s: float | None,
    duration_s: float | None,
    iterations: int | None,
) -> BudgetDefaults:
    """The user's values where given, else the Jetson (trtexec) or CPU defaults."""
    on_jetson = jetson is not None
    warmup = (
        warmup_s if warmup_s is not None else (JETSON_WARMUP_S if on_jetson else DEFAULT_WARMUP_S)
    )
    if iterations is not None or duration_s is not None:
        return BudgetDefaults(warmup, duration_s)
    return BudgetDefaults(warmup, JETSON_DURATION_S if on_jetson else DEFAULT_DURATION_S)


def clock_warning(jetson: JetsonFacts | None) -> str | None:
    """One line when a Jetson's clocks are known not to be locked."""
    if jetson is None or jetson.clocks_locked is not False:
        return None
    mode = f" in power mode {jetson.power_mode}" if jetson.power_mode else ""
    return (
        f"warning: {jetson.module_or_model}{mode} has its clocks scaling (not locked): figures "
        "vary from run to run; run sudo jetson_clocks first for repeatable numbers"
    )
