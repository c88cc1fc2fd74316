"""What GPU, TensorRT, DLA and Jetson release this machine has, probed without torch.

The GPU comes from the CUDA driver itself (libcuda through ctypes), TensorRT from its module,
the DLA core count from TensorRT's runtime, and the Jetson release from /etc/nv_tegra_release
and the `nvidia-jetpack` package. Every probe answers a value or the reason it has none; none
raises, so `info`, `build` and the runner's compatibility check can run on any machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# CUdevice_attribute values (cuda.h)
_CC_MAJOR = 75
_CC_MINOR = 76
_INTEGRATED = 18
_SM_COUNT = 16  # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT


@dataclass(frozen=True)
class GpuProbe:
    name: str | None
    compute_capability: tuple[int, int] | None
    integrated: bool | None
    driver: str | None
    problem: str | None = None
    sm_count: int | None = None  # streaming multiprocessors (an AGX Orin 16, an Orin Nano 8)


@dataclass(frozen=True)
class DeviceInfo:
    """The machine an engine is built on or asked to run on."""

    gpu_name: str | None
    compute_capability: tuple[int, int] | None
    integrated: bool | None
    cuda_driver: str | None
    tensorrt: str | None
    dla_cores: int | None
    l4t: str | None
    jetpack: str | None
    gpu_problem: str | None = None
    tensorrt_problem: str | None = None
    # what TensorRT timed its tactics on beyond the GPU model: the SM count on any GPU, and on a
    # Jetson the module (part number, e.g. p3701-0005) and the nvpmodel power mode ('MAXN')
    sm_count: int | None = None
    jetson_module: str | None = None
    power_mode: str | None = None

    @property
    def sm(self) -> str | None:
        cc = self.compute_capability
        return None if cc is None else f"{cc[0]}.{cc[1]}"

    @property
    def is_jetson(self) -> bool:
        return self.l4t is not None

    def describe(self) -> str:
        gpu = self.gpu_name or "no CUDA GPU"
        if self.sm:
            gpu += f" (sm {self.sm})"
        trt = f"TensorRT {self.tensorrt}" if self.tensorrt else "no TensorRT"
        return f"{gpu} with {trt}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["compute_capability"] = self.sm
        return data


def _load_libcuda() -> Any:
    from resnet_opt.core.cuda_driver import load_libcuda

    return load_libcuda()


def probe_gpu(lib: Any = None, ordinal: int = 0) -> GpuProbe:
    """GPU `ordinal` (after CUDA_VISIBLE_DEVICES) as the CUDA driver reports it."""
    lib = lib if lib is not None else _load_libcuda()
    if lib is None:
        return GpuProbe(None, None, None, None, "no NVIDIA driver (libcuda.so.1 not found)")
    try:
        version = ctypes.c_int(0)
        driver = None
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
            major, minor = divmod(version.value // 10, 100)
            driver = f"{major}.{minor}"
        if (status := lib.cuInit(0)) != 0:
            return GpuProbe(None, None, None, driver, f"cuInit failed (CUDA error {status})")
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value <= ordinal:
            return GpuProbe(None, None, None, driver, "the CUDA driver sees no GPU")
        device = ctypes.c_int(0)
        if lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
            return GpuProbe(None, None, None, driver, f"cuDeviceGet({ordinal}) failed")
        buf = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(buf, 256, device)
        attrs = []
        for attr in (_CC_MAJOR, _CC_MINOR, _INTEGRATED, _SM_COUNT):
            value = ctypes.c_int(0)
            if lib.cuDeviceGetAttribute(ctypes.byref(value), attr, device) != 0:
                return GpuProbe(None, None, None, driver, "cuDeviceGetAttribute failed")
            attrs.append(value.value)
        name = buf.value.decode("utf-8", "replace").strip() or None
        return GpuProbe(name, (attrs[0], attrs[1]), bool(attrs[2]), driver, sm_count=attrs[3])
    except Exception as exc:  # a broken driver install must not crash info or build
        return GpuProbe(None, None, None, None, f"{type(exc).__name__}: {exc}")


def probe_tensorrt() -> tuple[str | None, str | None]:
    """(TensorRT version, None) or (None, why not); imports tensorrt only to learn this."""
    from resnet_opt.deps import probe

    return probe("tensorrt")


def probe_dla_cores() -> tuple[int | None, str | None]:
    """DLA cores as TensorRT's runtime counts them (needs TensorRT and a GPU)."""
    try:
        from resnet_opt.deps import require

        require("tensorrt")
        import tensorrt as trt

        from resnet_opt.tensorrt.logger import process_logger

        # TensorRT keeps the first logger it is given for the whole process: this must be ours
        runtime = trt.Runtime(process_logger()[0])
        return int(runtime.num_DLA_cores), None
    except Exception as exc:  # probes never raise
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def l4t_release(path: Path = Path("/etc/nv_tegra_release")) -> str | None:
    """'36.4.3' from '# R36 (release), REVISION: 4.3, GCID: …' on a Jetson, else None."""
    with contextlib.suppress(OSError, IndexError):
        first = path.read_text().splitlines()[0]
        match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return None


def jetpack_version(status: Path = Path("/var/lib/dpkg/status")) -> str | None:
    """The installed `nvidia-jetpack` package version ('6.2+b77'), if any."""
    with contextlib.suppress(OSError):
        for block in status.read_text(errors="replace").split("\n\n"):
            if re.search(r"^Package: nvidia-jetpack$", block, re.M):
                match = re.search(r"^Version: (\S+)$", block, re.M)
                if match:
                    return match.group(1)
    return None


def jetson_identity() -> tuple[str | None, str | None]:
    """(module part number, nvpmodel power mode) on a Jetson, (None, None) elsewhere."""
    from resnet_opt.jetson import facts, sysfs

    root = facts.SYSTEM_ROOT
    if not facts.is_jetson(root):
        return None, None
    mode = sysfs.power_mode(root)
    return sysfs.part_number(root), mode.name if mode else None


def probe_device(*, with_tensorrt: bool = True, lib: Any = None) -> DeviceInfo:
    """Everything the compatibility check and the build manifest need, never raising."""
    gpu = probe_gpu(lib)
    trt_version, trt_problem = probe_tensorrt() if with_tensorrt else (None, "not probed")
    dla: int | None = None
    if trt_version is not None and gpu.name is not None:
        dla, _ = probe_dla_cores()
    module, power_mode = jetson_identity()
    return DeviceInfo(
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        integrated=gpu.integrated,
        cuda_driver=gpu.driver,
        tensorrt=trt_version,
        dla_cores=dla,
        l4t=l4t_release(),
        jetpack=jetpack_version(),
        gpu_problem=gpu.problem,
        tensorrt_problem=trt_problem,
        sm_count=gpu.sm_count,
        jetson_module=module,
        power_mode=power_mode,
    )


def pip_extra_row(driver: str | None, *, jetson: bool) -> tuple[str, str | None, str | None]:
    """`info`'s row naming the resnet-opt extra that fits this driver's CUDA major."""
    from resnet_opt.core.cuda_driver import extra_for_driver

    choice = extra_for_driver(driver, jetson=jetson)
    if choice.extra is None:
        return ("pip extra", None, choice.why)
    return ("pip extra", f"pip install '.[{choice.extra}]' from the checkout ({choice.why})", None)


def nvidia_probes() -> list[tuple[str, str | None, str | None]]:
    """(name, value, why not) rows for `resnet-opt info`: GPU, DLA cores, Jetson release."""
    rows: list[tuple[str, str | None, str | None]] = []
    gpu = probe_gpu()
    if gpu.name is not None and gpu.compute_capability is not None:
        kind = ", integrated" if gpu.integrated else ""
        cc = f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}"
        rows.append(("gpu", f"{gpu.name} (sm {cc}{kind})", None))
    else:
        rows.append(("gpu", None, gpu.problem or "no CUDA GPU"))
    trt_version, _ = probe_tensorrt()
    if trt_version is None:
        rows.append(("dla", None, "unknown: TensorRT counts the DLA cores, and it is missing"))
    elif gpu.name is None:
        rows.append(("dla", None, "unknown: needs a CUDA GPU"))
    else:
        cores, problem = probe_dla_cores()
        rows.append(("dla", None if cores is None else f"{cores} cores", problem))
    l4t = l4t_release()
    rows.append(pip_extra_row(gpu.driver, jetson=l4t is not None))
    if l4t is None:
        rows.append(("jetpack", None, "not a Jetson (no /etc/nv_tegra_release)"))
    else:
        jetpack = jetpack_version()
        rows.append(("jetpack", f"{jetpack or 'unknown'} (L4T {l4t})", None))
    return rows
