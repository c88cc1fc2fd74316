"""Module power during a measurement, sampled from the INA3221 rails in a background thread.

A reading is two small sysfs files per rail; sampling at 20 Hz in a thread that sleeps
between readings averages over the whole timed window (a single reading before or after would
miss the GPU's clock ramp) while staying off the measured loop's thread. Energy per image is
mean watts / throughput: the joules the module draws per image at that batch size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from resnet_opt.jetson import facts, sysfs

SAMPLE_INTERVAL_S = 0.05


def module_rails(root: Path | None = None) -> tuple[sysfs.Rail, ...]:
    """The rails that make up the module's draw (VDD_IN, else all of them); empty off a Jetson
    or without a power monitor."""
    root = facts.SYSTEM_ROOT if root is None else root
    if not facts.is_jetson(root):
        return ()
    rails = sysfs.power_rails(root)
    return sysfs.total_rails(rails)[1] if rails else ()


def read_watts(rails: Sequence[sysfs.Rail]) -> float | None:
    """The rails' total now; None when any of them cannot be read."""
    total = 0.0
    for rail in rails:
        watts = rail.watts()
        if watts is None:
            return None
        total += watts
    return total


@dataclass
class PowerSamples:
    samples: list[float]
    times: list[float] = field(default_factory=list)  # time.perf_counter() of each sample

    @property
    def mean_watts(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None

    def mean_between(self, start: float, end: float) -> float | None:
        """Mean power over [start, end] (perf_counter times): the samples inside it, or, for a
        window shorter than the sampling interval, the two samples around it."""
        timed = list(zip(self.times, self.samples, strict=True))
        inside = [w for t, w in timed if start <= t <= end]
        if inside:
            return sum(inside) / len(inside)
        before = [w for t, w in timed if t < start][-1:]
        after = [w for t, w in timed if t > end][:1]
        around = before + after
        return sum(around) / len(around) if around else None


@contextmanager
def sample_power(
    rails: Sequence[sysfs.Rail], interval_s: float = SAMPLE_INTERVAL_S
) -> Iterator[PowerSamples]:
    """Sample the rails' total every `interval_s` (and once at each end) while the block runs."""
    result = PowerSamples([])
    if not rails:
        yield result
        return
    stop = threading.Event()

    def take() -> None:
        watts = read_watts(rails)
        if watts is not None:
            result.times.append(time.perf_counter())
            result.samples.append(watts)

    def loop() -> None:
        while not stop.wait(interval_s):
            take()

    take()
    thread = threading.Thread(target=loop, name="resnet-opt-power", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        take()


@dataclass(frozen=True)
class PowerFigures:
    power_w: float | None
    energy_per_image_j: float | None
    images_per_s_per_w: float | None


def power_figures(watts: float | None, throughput: float) -> PowerFigures:
    """Watts, joules per image and images per second per watt (all None without a reading)."""
    if watts is None or watts <= 0 or throughput <= 0:
        return PowerFigures(None, None, None)
    return PowerFigures(round(watts, 3), watts / throughput, throughput / watts)
