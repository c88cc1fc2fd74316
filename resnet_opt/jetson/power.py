"""Module power during a measurement, sampled from the INA3221 rails in a background thread.

A reading is two small sysfs files per rail; sampling at 20 Hz in a thread that sleeps
between readings averages over the whole timed window (a single reading before or after would
miss the GPU's clock ramp) while staying off the measured loop's thread. Energy per image is
mean watts / throughput: the joules the module draws per image at that batch size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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

    @property
    def mean_watts(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


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
