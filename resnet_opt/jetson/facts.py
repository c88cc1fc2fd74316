"""One Jetson's facts, as recorded in `info`, build manifests and bench reports.

Two Orins report the same GPU name ("Orin") and CPU ("aarch64"): without the module and power
mode, an AGX Orin at MAXN and an Orin Nano at 15 W look identical. So every report carries the
module, L4T/JetPack, nvpmodel mode, whether jetson_clocks pinned the clocks, the GPU/EMC
frequencies, temperatures and the INA3221 power rails (see sysfs.py for where each is read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resnet_opt.jetson import release, sysfs

# the root the live readers use; tests point it at a recorded tree
SYSTEM_ROOT = Path("/")


@dataclass(frozen=True)
class Frequency:
    """A clock domain in MHz as recorded (current, min, max)."""

    current_mhz: float | None
    min_mhz: float | None
    max_mhz: float | None


@dataclass(frozen=True)
class RailPower:
    rail: str
    watts: float


@dataclass(frozen=True)
class JetsonFacts:
    model: str | None  # device tree: 'NVIDIA Jetson AGX Orin Developer Kit'
    module: str | None  # 'Jetson AGX Orin 64GB'
    part_number: str | None  # 'p3701-0005'
    soc: str | None  # 'tegra234'
    l4t: str | None  # '36.4.3'
    l4t_source: str | None
    jetpack: str | None
    power_mode: str | None  # nvpmodel name: 'MAXN', '15W'
    power_mode_id: int | None
    clocks_locked: bool | None  # jetson_clocks: CPU and GPU at min == max; None = unreadable
    cpu_mhz: Frequency | None
    gpu_mhz: Frequency | None
    emc_mhz: Frequency | None
    temperatures_c: Mapping[str, float] = field(default_factory=dict)
    power_w: tuple[RailPower, ...] = ()
    total_power_w: float | None = None
    total_power_from: str | None = None  # 'VDD_IN' | 'sum of rails'
    problems: tuple[str, ...] = ()

    @property
    def module_or_model(self) -> str:
        return self.module or self.model or "unknown Jetson"

    def describe(self) -> str:
        """One line: module, power mode, clocks."""
        text = self.module_or_model
        if self.power_mode:
            text += f", {self.power_mode}"
        if self.clocks_locked is not None:
            text += ", clocks locked" if self.clocks_locked else ", clocks not locked"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["temperatures_c"] = dict(self.temperatures_c)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JetsonFacts:
        def freq(value: Mapping[str, Any] | None) -> Frequency | None:
            return None if value is None else Frequency(**value)

        return cls(
            **{
                **data,
                "cpu_mhz": freq(data.get("cpu_mhz")),
                "gpu_mhz": freq(data.get("gpu_mhz")),
                "emc_mhz": freq(data.get("emc_mhz")),
                "temperatures_c": dict(data.get("temperatures_c") or {}),
                "power_w": tuple(RailPower(**p) for p in data.get("power_w") or ()),
                "problems": tuple(data.get("problems") or ()),
            }
        )


def _freq(clock: sysfs.Clock | None) -> Frequency | None:
    return None if clock is None else Frequency(clock.current_mhz, clock.min_mhz, clock.max_mhz)


def is_jetson(root: Path | None = None) -> bool:
    """A Jetson board (device tree says Tegra/Jetson) or an L4T image (release files)."""
    root = SYSTEM_ROOT if root is None else root
    if any(entry.startswith("nvidia,tegra") for entry in sysfs.compatible(root)):
        return True
    if "jetson" in (sysfs.model(root) or "").lower():
        return True
    return release.read_release(root) is not None


def read_facts(
    root: Path | None = None, *, run: sysfs.RunCommand | None = None
) -> JetsonFacts | None:
    """The Jetson facts of the system under `root` (default: this machine), None off a Jetson.

    Never raises: what cannot be read is None, with the reason in `problems`.
    """
    root = SYSTEM_ROOT if root is None else root
    if not is_jetson(root):
        return None
    problems: list[str] = []
    rel = release.read_release(root)
    if rel is None:
        problems.append("L4T release unknown (no /etc/nv_tegra_release, dpkg or apt source)")
    part = sysfs.part_number(root)
    mode = sysfs.power_mode(root, run)
    if mode is None:
        problems.append("power mode unknown (no nvpmodel, no /var/lib/nvpmodel/status)")
    cpus = sysfs.cpu_clocks(root)
    gpu = sysfs.gpu_clock(root)
    emc = sysfs.emc_clock(root)
    if gpu is None:
        problems.append("GPU clock unreadable (no devfreq node of the GPU)")
    if emc is None:
        problems.append("EMC clock unreadable (/sys/kernel/debug needs root)")
    rails = sysfs.power_rails(root)
    readings = [(r.label, r.watts()) for r in rails]
    power = tuple(RailPower(label, round(w, 3)) for label, w in readings if w is not None)
    total_from, summed = sysfs.total_rails(rails)
    watts = [r.watts() for r in summed]
    total = (
        round(sum(w for w in watts if w is not None), 3) if summed and None not in watts else None
    )
    if not rails:
        problems.append("no INA3221 power monitor (no power or energy figures)")
    return JetsonFacts(
        model=sysfs.model(root),
        module=sysfs.MODULES.get(part) if part else None,
        part_number=part,
        soc=sysfs.soc(root),
        l4t=rel.l4t if rel else None,
        l4t_source=rel.source if rel else None,
        jetpack=rel.jetpack if rel else None,
        power_mode=mode.name if mode else None,
        power_mode_id=mode.id if mode else None,
        clocks_locked=sysfs.clocks_locked(cpus, gpu, emc),
        cpu_mhz=_freq(sysfs.cpu_summary(cpus)),
        gpu_mhz=_freq(gpu),
        emc_mhz=_freq(emc),
        temperatures_c=sysfs.temperatures(root),
        power_w=power,
        total_power_w=total,
        total_power_from=total_from if rails else None,
        problems=tuple(problems),
    )


def manifest_facts() -> dict[str, Any] | None:
    """This machine's Jetson facts for a build manifest's details (None off a Jetson): an engine
    built at 7 W is not the engine built at MAXN, and its manifest should say which it was."""
    found = read_facts()
    return None if found is None else found.to_dict()
