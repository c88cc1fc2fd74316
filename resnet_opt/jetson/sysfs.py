"""Readers of a Jetson's device tree, power mode, clocks, temperatures and power rails.

Each reads the files jtop (rbonghi/jetson_stats) reads, under a `root` that stands in for `/`:

- model: /proc/device-tree/model (NUL-terminated); module part number from
  /proc/device-tree/compatible ("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005",
  "nvidia,tegra234"), else from the p-numbers in /proc/device-tree/nvidia,dtsfilename;
- power mode: `nvpmodel -q` ("NV Power Mode: MAXN" then the id), else the id in
  /var/lib/nvpmodel/status ("pmode:0000") named by /etc/nvpmodel.conf ("< POWER_MODEL ID=0
  NAME=MAXN >"), which is what NVIDIA's own nvpmodel indicator reads;
- clocks: CPU cpufreq scaling_min/max/cur_freq (kHz), the integrated GPU's devfreq node
  (/sys/class/devfreq/*/device/of_node/name is gpu, ga10b, gv11b…; min/max/cur_freq in Hz), EMC
  from /sys/kernel/debug/bpmp/debug/clk/emc (root only) or Thor's /sys/class/devfreq/bwmgr.
  jetson_clocks pins min to max: "locked" is min == max for every online CPU and the GPU, and
  the EMC at its max (capped by /sys/kernel/nvpmodel_emc_cap/emc_iso_cap, as jtop reads it);
- temperatures: /sys/class/thermal/thermal_zone*/type + temp (millidegrees; -256000 = no sensor);
- power: INA3221 monitors (/sys/bus/i2c/devices/*/name == ina3221) under hwmon/hwmon*/:
  inN_label, inN_input (mV), currN_input (mA); "NC" rails and channel 7 (the sum of shunt
  voltages) skipped, as jtop does.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# module part number -> name (NVIDIA's Jetson module table, as jtop keeps it)
MODULES: dict[str, str] = {
    "p3834-0008": "Jetson AGX Thor Developer Kit",
    "p3834-0000": "Jetson AGX Thor",
    "p3701-0000": "Jetson AGX Orin",
    "p3701-0002": "Jetson IGX Orin",
    "p3701-0004": "Jetson AGX Orin 32GB",
    "p3701-0005": "Jetson AGX Orin 64GB",
    "p3701-0008": "Jetson AGX Orin Industrial",
    "p3767-0000": "Jetson Orin NX 16GB",
    "p3767-0001": "Jetson Orin NX 8GB",
    "p3767-0003": "Jetson Orin Nano 8GB",
    "p3767-0004": "Jetson Orin Nano 4GB",
    "p3767-0005": "Jetson Orin Nano 8GB (developer kit)",
    "p3668-0000": "Jetson Xavier NX (developer kit)",
    "p3668-0001": "Jetson Xavier NX",
    "p3668-0003": "Jetson Xavier NX 16GB",
    "p2888-0001": "Jetson AGX Xavier 16GB",
    "p2888-0004": "Jetson AGX Xavier 32GB",
    "p2888-0005": "Jetson AGX Xavier 64GB",
}

GPU_NODE_NAMES = frozenset({"gpu", "ga10b", "gv11b", "gp10b", "gb10b"})
NO_SENSOR_MILLIDEGREES = -40_000  # Orin reports -256000 for zones without a sensor
RunCommand = Callable[[Sequence[str]], str | None]


def _read(root: Path, path: str | Path) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        return (root / str(path).lstrip("/")).read_bytes().decode("utf-8").strip("\x00\n ")
    return None


def _int(root: Path, path: str | Path) -> int | None:
    text = _read(root, path)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return int(str(text).split()[0])
    return None


# -- device tree ---------------------------------------------------------------------------------


def model(root: Path) -> str | None:
    """'NVIDIA Jetson AGX Orin Developer Kit' (the board, as the device tree names it)."""
    return _read(root, "/proc/device-tree/model") or _read(
        root, "/sys/firmware/devicetree/base/model"
    )


def compatible(root: Path) -> tuple[str, ...]:
    text = _read(root, "/proc/device-tree/compatible")
    return tuple(part for part in (text or "").split("\x00") if part)


_PART = re.compile(r"p\d{4}-\d{4}")


def part_number(root: Path) -> str | None:
    """The module's part number ('p3701-0005'): the compatible entry naming one board (the
    carrier+module entry and the SoC are skipped), else a known module in the dts file name."""
    for entry in compatible(root):
        match = re.fullmatch(r"nvidia,(p\d{4}-\d{4})(?:-[a-z0-9]+)?", entry)
        if match:
            return str(match.group(1))
    dts = _read(root, "/proc/device-tree/nvidia,dtsfilename") or ""
    for found in _PART.findall(dts.rsplit("/", 1)[-1]):
        if found in MODULES:
            return str(found)
    return None


def soc(root: Path) -> str | None:
    """'tegra234' (Orin), 'tegra194' (Xavier), 'tegra264' (Thor)."""
    for entry in compatible(root):
        match = re.fullmatch(r"nvidia,(tegra\d+)", entry)
        if match:
            return str(match.group(1))
    return None


# -- power mode ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerMode:
    name: str | None
    id: int | None
    source: str  # "nvpmodel -q" | "/var/lib/nvpmodel/status"


def parse_nvpmodel_query(text: str) -> tuple[str, int | None] | None:
    """('MAXN', 0) from `nvpmodel -q`: 'NV Power Mode: MAXN' then the id on the next line."""
    lines = [line.strip() for line in text.splitlines()]
    for index, line in enumerate(lines):
        match = re.match(r"NV Power Mode:\s*(\S+)", line)
        if match:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            name = str(match.group(1))
            return name, int(following) if following.isdigit() else None
    return None


def parse_nvpmodel_conf(text: str) -> dict[int, str]:
    """{id: name} of the POWER_MODEL blocks of an nvpmodel.conf."""
    found = re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", text)
    return {int(mode_id): name for mode_id, name in found}


def run_command(argv: Sequence[str]) -> str | None:
    """stdout of a short system command, None when it is missing or fails (never raises)."""
    if shutil.which(argv[0]) is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=4, check=False)
        if done.returncode == 0:
            return done.stdout
    return None


def power_mode(root: Path, run: RunCommand | None = None) -> PowerMode | None:
    """The nvpmodel mode, from `nvpmodel -q` when it runs (only for root == /, or when `run` is
    given), else from nvpmodel's status file and configuration (what containers can still see)."""
    if run is None and root == Path("/"):
        run = run_command
    if run is not None:
        out = run(["nvpmodel", "-q"])
        parsed = parse_nvpmodel_query(out) if out else None
        if parsed is not None:
            return PowerMode(parsed[0], parsed[1], "nvpmodel -q")
    status = _read(root, "/var/lib/nvpmodel/status")
    match = re.search(r"pmode:(\d+)", status or "")
    if match is None:
        return None
    mode_id = int(match.group(1))
    names = parse_nvpmodel_conf(_read(root, "/etc/nvpmodel.conf") or "")
    return PowerMode(names.get(mode_id), mode_id, "/var/lib/nvpmodel/status")


# -- clocks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """One clock domain in MHz (CPU: the online cores' range)."""

    current_mhz: float | None
    min_mhz: float | None
    max_mhz: float | None

    @property
    def locked(self) -> bool | None:
        if self.min_mhz is None or self.max_mhz is None:
            return None
        return self.min_mhz == self.max_mhz


def _mhz(value: int | None, per_mhz: int) -> float | None:
    return None if value is None else round(value / per_mhz, 1)


def cpu_clocks(root: Path) -> tuple[Clock, ...]:
    """One Clock per online CPU core (cpufreq, kHz)."""
    clocks = []
    base = root / "sys/devices/system/cpu"
    cores = sorted(
        (p for p in base.glob("cpu[0-9]*") if (p / "cpufreq").is_dir()),
        key=lambda p: int(p.name[3:]),
    )
    for core in cores:
        rel = core.relative_to(root)
        if _int(root, rel / "online") == 0:
            continue
        freq = rel / "cpufreq"
        clocks.append(
            Clock(
                _mhz(_int(root, freq / "scaling_cur_freq"), 1000),
                _mhz(_int(root, freq / "scaling_min_freq"), 1000),
                _mhz(_int(root, freq / "scaling_max_freq"), 1000),
            )
        )
    return tuple(clocks)


def gpu_clock(root: Path) -> Clock | None:
    """The integrated GPU's devfreq node (Hz)."""
    base = root / "sys/class/devfreq"
    with contextlib.suppress(OSError):
        for node in sorted(base.iterdir()):
            rel = node.relative_to(root)
            name = (_read(root, rel / "device/of_node/name") or "").lower()
            if name in GPU_NODE_NAMES or "gpu" in name:
                return Clock(
                    _mhz(_int(root, rel / "cur_freq"), 1_000_000),
                    _mhz(_int(root, rel / "min_freq"), 1_000_000),
                    _mhz(_int(root, rel / "max_freq"), 1_000_000),
                )
    return None


EMC_CAP = "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap"  # Hz; nvpmodel's cap for the power mode


def _emc_capped(clock: Clock, root: Path) -> Clock:
    """The EMC clock with its max lowered to nvpmodel's cap where the power mode sets one lower
    (jtop's `read_emc`: the cap applies whichever source gave the max)."""
    cap = _mhz(_int(root, EMC_CAP), 1_000_000)
    if cap and clock.max_mhz is not None and 0 < cap < clock.max_mhz:
        return Clock(clock.current_mhz, clock.min_mhz, cap)
    return clock


def emc_clock(root: Path) -> Clock | None:
    """The memory controller clock: BPMP's debugfs (readable by root only), else Thor's devfreq;
    its max capped by the power mode's EMC cap."""
    bpmp = "/sys/kernel/debug/bpmp/debug/clk/emc"
    rate = _int(root, f"{bpmp}/rate")
    if rate is not None:
        return _emc_capped(
            Clock(
                _mhz(rate, 1_000_000),
                _mhz(_int(root, f"{bpmp}/min_rate"), 1_000_000),
                _mhz(_int(root, f"{bpmp}/max_rate"), 1_000_000),
            ),
            root,
        )
    bwmgr = "/sys/class/devfreq/bwmgr"
    cur = _int(root, f"{bwmgr}/cur_freq")
    if cur is not None:
        return _emc_capped(
            Clock(
                _mhz(cur, 1_000_000),
                _mhz(_int(root, f"{bwmgr}/min_freq"), 1_000_000),
                _mhz(_int(root, f"{bwmgr}/max_freq"), 1_000_000),
            ),
            root,
        )
    return None


def cpu_summary(clocks: Sequence[Clock]) -> Clock | None:
    """The online cores as one Clock: the lowest current, min and max (a core left to scale
    shows here)."""
    if not clocks:
        return None

    def low(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    return Clock(
        low([c.current_mhz for c in clocks]),
        low([c.min_mhz for c in clocks]),
        low([c.max_mhz for c in clocks]),
    )


def clocks_locked(
    cpus: Sequence[Clock], gpu: Clock | None, emc: Clock | None = None
) -> bool | None:
    """jetson_clocks' state as jtop judges it (`jetson_clocks_alive`): every online CPU core and
    the GPU at min == max, and the EMC running at its (capped) max. None when none can be read."""
    states = [c.locked for c in cpus] + ([gpu.locked] if gpu is not None else [])
    if emc is not None and emc.max_mhz is not None and emc.current_mhz is not None:
        states.append(emc.current_mhz == emc.max_mhz)
    known = [s for s in states if s is not None]
    if not known:
        return None
    return all(known)


# -- temperatures --------------------------------------------------------------------------------


def temperatures(root: Path) -> dict[str, float]:
    """{zone type: °C} of the thermal zones that have a sensor."""
    found: dict[str, float] = {}
    base = root / "sys/class/thermal"
    with contextlib.suppress(OSError):
        zones = sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0))
        for zone in zones:
            rel = zone.relative_to(root)
            name = _read(root, rel / "type")
            value = _int(root, rel / "temp")
            if not name or value is None or value <= NO_SENSOR_MILLIDEGREES or "PMIC" in name:
                continue
            found[name] = round(value / 1000, 1)
    return found


# -- power ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: where its voltage (mV) and current (mA) are read."""

    label: str
    voltage_path: Path
    current_path: Path

    def watts(self) -> float | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            millivolts = int(self.voltage_path.read_text().split()[0])
            milliamps = int(self.current_path.read_text().split()[0])
            return millivolts * milliamps / 1e6
        return None


TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # the module's input, where the board measures it


def power_rails(root: Path) -> tuple[Rail, ...]:
    """Every connected INA3221 channel under /sys/bus/i2c/devices (JetPack 5+ hwmon layout)."""
    rails = []
    base = root / "sys/bus/i2c/devices"
    with contextlib.suppress(OSError):
        for device in sorted(base.iterdir()):
            if "ina3221" not in (_read(root, device.relative_to(root) / "name") or ""):
                continue
            for hwmon in sorted((device / "hwmon").glob("hwmon*")):
                for label_file in sorted(hwmon.glob("in*_label")):
                    match = re.fullmatch(r"in(\d+)_label", label_file.name)
                    label = _read(root, label_file.relative_to(root))
                    if match is None or not label or label == "NC" or match.group(1) == "7":
                        continue
                    channel = match.group(1)
                    volts, amps = hwmon / f"in{channel}_input", hwmon / f"curr{channel}_input"
                    if volts.is_file() and amps.is_file():
                        rails.append(Rail(label, volts, amps))
    return tuple(rails)


def total_rails(rails: Sequence[Rail]) -> tuple[str, tuple[Rail, ...]]:
    """What the module draws: its input rail where it has one (Orin Nano/NX: VDD_IN), else the
    sum of every rail (AGX Orin), as jtop totals it. Returns (how, the rails summed)."""
    for name in TOTAL_RAILS:
        for rail in rails:
            if rail.label == name:
                return name, (rail,)
    return "sum of rails", tuple(rails)
