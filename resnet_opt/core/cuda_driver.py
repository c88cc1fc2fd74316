"""The CUDA driver's version, and the TensorRT pip extra that fits it.

Read from libcuda through ctypes (`cuDriverGetVersion` needs no `cuInit` and no GPU), so the
advice for a missing TensorRT, pycuda or cuda-python (`jetson/install.py`, layer 1) can name the
extra of the driver's CUDA major; `tensorrt/device.py` probes the GPU through the same loader.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from dataclasses import dataclass
from typing import Any

# the x86_64 extras in pyproject.toml, one per CUDA major: NVIDIA's tensorrt-cuNN packages and
# cuda-bindings of that major (tests/jetson/test_install.py checks pyproject against this)
CUDA_EXTRAS: dict[int, str] = {12: "tensorrt-cu12", 13: "tensorrt-cu13"}


def load_libcuda() -> Any:
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        with contextlib.suppress(OSError):
            return ctypes.CDLL(name)
    return None


def driver_cuda_version(lib: Any = None) -> str | None:
    """'12.4': the CUDA version the installed driver runs, or None without a driver."""
    lib = lib if lib is not None else load_libcuda()
    if lib is None:
        return None
    try:
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except Exception:  # a broken driver install must not crash an error message
        return None
    major, minor = divmod(version.value // 10, 100)
    return f"{major}.{minor}"


@dataclass(frozen=True)
class ExtraChoice:
    """The extra that fits, or None with the reason."""

    extra: str | None
    why: str


def _cuda_major(driver_cuda: str | None) -> int | None:
    match = re.match(r"\s*(\d+)\.", driver_cuda or "")
    return int(match.group(1)) if match else None


def extra_for_driver(driver_cuda: str | None, *, jetson: bool = False) -> ExtraChoice:
    """The resnet-opt extra to install for a driver that runs CUDA `driver_cuda` ("12.4", as
    cuDriverGetVersion reports it). A driver runs the CUDA majors up to its own: a CUDA 13
    driver runs a CUDA 12 TensorRT too, but the newest extra it runs is the one to take."""
    if jetson:
        return ExtraChoice("jetson", "a Jetson: TensorRT comes from JetPack, never from pip")
    major = _cuda_major(driver_cuda)
    if major is None:
        return ExtraChoice(None, "no NVIDIA driver here to read the CUDA version from")
    fitting = [m for m in CUDA_EXTRAS if m <= major]
    if not fitting:
        oldest = min(CUDA_EXTRAS)
        return ExtraChoice(
            None,
            f"the driver runs CUDA {driver_cuda}; TensorRT 10+ wheels need a CUDA {oldest} driver "
            "or newer: upgrade the NVIDIA driver",
        )
    return ExtraChoice(CUDA_EXTRAS[max(fitting)], f"the driver runs CUDA {driver_cuda}")
