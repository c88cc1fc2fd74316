"""What this machine has: versions, execution providers, accelerators, and why not.

Used by `resnet-opt info` and by every bench report (a speed figure without the machine it was
measured on is not a figure). Probing never raises: each probe reports a version or the reason
it failed. Torch is looked up by package metadata, never imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from resnet_opt.core.cpu_int8 import Int8Family, family_from_flags
from resnet_opt.deps import probe
from resnet_opt.jetson.facts import JetsonFacts, read_facts


@dataclass(frozen=True)
class Probe:
    """One component: its version when usable, else why it is not."""

    name: str
    version: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class Machine:
    """The host, as recorded in reports."""

    hostname: str
    system: str
    machine: str
    cpu_model: str
    cpu_cores: int
    memory_gb: float | None
    load_average: tuple[float, float, float] | None
    jetpack: str | None
    cpu_flags: tuple[str, ...] = ()  # the ISA features inference kernels dispatch on
    cpu_int8_family: str = "unknown"  # cpu_int8.Int8Family: what CPU int8 figures hold for


def _dist_version(dist: str) -> Probe:
    try:
        return Probe(dist, metadata.version(dist))
    except metadata.PackageNotFoundError:
        return Probe(dist, None, "not installed")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return None


# ISA features that CPU inference runtimes dispatch on (x86: AVX2/AVX-512/VNNI/AMX; Arm: dot
# product, i8mm, SVE, bf16): recorded with every CPU artifact and speed figure, because the same
# model runs different kernels (and ORT's NCHWc layout a different block size) on each
RELEVANT_CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "amx_fp16",
    "asimd",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
)


def cpu_flags() -> frozenset[str]:
    """All CPU feature flags from /proc/cpuinfo (x86 "flags", Arm "Features"); empty if unknown."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return frozenset(value.split())
    return frozenset()


def relevant_cpu_flags() -> tuple[str, ...]:
    """The RELEVANT_CPU_FLAGS this CPU has, in table order."""
    present = cpu_flags()
    return tuple(flag for flag in RELEVANT_CPU_FLAGS if flag in present)


def jetpack_release() -> str | None:
    """L4T release from /etc/nv_tegra_release on a Jetson (e.g. 'R36 (release), REVISION: 4.3')."""
    path = Path("/etc/nv_tegra_release")
    with contextlib.suppress(OSError):
        first = path.read_text().splitlines()[0]
        return first.lstrip("# ").split(", GCID")[0].strip()
    return None


def machine() -> Machine:
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = tuple(round(v, 2) for v in os.getloadavg())
    return Machine(
        hostname=platform.node(),
        system=f"{platform.system()} {platform.release()}",
        machine=platform.machine(),
        cpu_model=cpu_model(),
        cpu_cores=os.cpu_count() or 1,
        memory_gb=memory_gb(),
        load_average=load,  # type: ignore[arg-type]
        jetpack=jetpack_release(),
        cpu_flags=relevant_cpu_flags(),
        cpu_int8_family=cpu_int8_family().value,
    )


def cpu_int8_family() -> Int8Family:
    """This machine's CPU int8 family (UNKNOWN where /proc/cpuinfo is unreadable or names none)."""
    return family_from_flags(cpu_flags())


def cuda_driver() -> Probe:
    """The CUDA driver version through libcuda itself (no pycuda or torch needed)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return Probe("cuda-driver", None, "cuDriverGetVersion failed")
        major, minor = divmod(version.value // 10, 100)
        return Probe("cuda-driver", f"{major}.{minor}")
    return Probe("cuda-driver", None, "no NVIDIA driver (libcuda.so.1 not found)")


ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")


def onnxruntime_distributions() -> tuple[str, ...]:
    """The installed distributions that provide the `onnxruntime` module. More than one means
    they overwrote each other's files (pip installs onnxruntime and onnxruntime-gpu side by
    side): which providers work is then an accident; keep one."""
    found = []
    for dist in ONNXRUNTIME_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            metadata.version(dist)
            found.append(dist)
    return tuple(found)


def ort_providers() -> list[str]:
    with contextlib.suppress(Exception):
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    return []


@dataclass(frozen=True)
class OpenVinoDevice:
    """One OpenVINO device (CPU, GPU.0, NPU…) with what it says it can run."""

    name: str
    full_name: str
    capabilities: tuple[str, ...]


def openvino_devices() -> tuple[OpenVinoDevice, ...]:
    """The devices OpenVINO sees; empty when OpenVINO is absent or fails (never raises)."""
    devices = []
    with contextlib.suppress(Exception):  # info must report, not crash on a broken plugin
        import openvino

        core = openvino.Core()
        for name in core.available_devices:
            full = str(name)
            caps: tuple[str, ...] = ()
            with contextlib.suppress(Exception):
                full = str(core.get_property(name, "FULL_DEVICE_NAME"))
            with contextlib.suppress(Exception):
                caps = tuple(str(c) for c in core.get_property(name, "OPTIMIZATION_CAPABILITIES"))
            devices.append(OpenVinoDevice(str(name), full, caps))
    return tuple(devices)


@dataclass(frozen=True)
class Environment:
    python: str
    packages: tuple[Probe, ...]
    onnxruntime_providers: tuple[str, ...]
    accelerators: tuple[Probe, ...]
    machine: Machine
    openvino_devices: tuple[OpenVinoDevice, ...] = ()
    jetson: JetsonFacts | None = None  # module, power mode, clocks, power (None off a Jetson)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect() -> Environment:
    """Everything `info` shows. Imports TensorRT and pycuda to find out whether they work."""
    packages = tuple(
        _dist_version(d)
        for d in ("resnet-opt", "numpy", "onnx", "onnxruntime", "torch", "torchvision")
    )
    accelerators = [cuda_driver()]
    for module in ("tensorrt", "pycuda.driver", "cuda.bindings", "openvino"):
        version, problem = probe(module)
        accelerators.append(Probe(module, version, problem))
    from resnet_opt.tensorrt.device import nvidia_probes

    accelerators += [Probe(name, value, problem) for name, value, problem in nvidia_probes()]
    jetson = read_facts()
    if jetson is not None and jetson.l4t is not None:
        # nvidia_probes reads /etc/nv_tegra_release only, which many L4T containers lack
        accelerators = [
            Probe(p.name, f"{jetson.jetpack or 'unknown'} (L4T {jetson.l4t})")
            if p.name == "jetpack" and not p.ok
            else p
            for p in accelerators
        ]
    ov_ok = any(p.name == "openvino" and p.ok for p in accelerators)
    return Environment(
        python=platform.python_version(),
        packages=packages,
        onnxruntime_providers=tuple(ort_providers()),
        accelerators=tuple(accelerators),
        machine=machine(),
        openvino_devices=openvino_devices() if ov_ok else (),
        jetson=jetson,
    )
