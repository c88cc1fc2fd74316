"""FakeGpu: the shared state of the fake TensorRT, fake pycuda and fake libcuda.

One `FakeGpu` stands for one machine: its GPU's name and compute capability, its DLA cores, the
TensorRT version installed, device memory (address -> bytearray), streams, and the call log
that tests read. `install(monkeypatch, gpu)` puts the fakes in `sys.modules` and points the
product's libcuda probe at the fake driver.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Call:
    name: str
    args: dict[str, Any]


@dataclass
class FakeGpu:
    tensorrt_version: str = "10.3.0.30"
    gpu_name: str = "NVIDIA Fake GPU"
    compute_capability: tuple[int, int] = (8, 6)
    integrated: bool = False
    dla_cores: int = 0
    sm_count: int = 84  # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT (an AGX Orin has 16)
    calls: list[Call] = field(default_factory=list)
    memory: dict[int, bytearray] = field(default_factory=dict)
    pinned: list[Any] = field(default_factory=list)
    streams: dict[int, Any] = field(default_factory=dict)
    next_address: int = 0x10000
    context_stack: list[Any] = field(default_factory=list)
    plans: list[bytes] = field(default_factory=list)  # every plan the builder serialized
    host_arch: str = "x86_64"  # the CPU platform the fake TensorRT runs on
    capturing: dict[int, list[Any]] = field(default_factory=dict)  # stream -> captured work
    capture_invalidated: set[int] = field(default_factory=set)
    graphs: list[Any] = field(default_factory=list)
    cuda_error: Any = 0  # the sticky CUDA error cudaGetLastError returns and clears
    uncapturable: bool = False  # the engine holds work a CUDA graph cannot capture
    driver_cuda: tuple[int, int] = (12, 4)  # the CUDA the driver runs (cuDriverGetVersion)
    bindings_cuda: tuple[int, int] = (12, 9)  # the CUDA cuda-bindings was built for
    execute_error: str | None = None  # execute_async_v3 logs this error and returns False
    # called with the engine's DLA core (None: the GPU) on each eager execute_async_v3: a test's
    # stand-in for the time an engine takes (tests/orin_double.py's contended Orin)
    execute_hook: Any = None

    @property
    def runtime_needs_newer_driver(self) -> bool:
        """cuda-bindings' runtime links its CUDA runtime statically at the bindings' version
        and refuses an older driver (cudaErrorInsufficientDriver)."""
        return self.bindings_cuda > self.driver_cuda

    def record(self, call: str, **args: Any) -> None:
        self.calls.append(Call(call, args))

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def calls_named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def index(self, name: str) -> int:
        return self.names().index(name)

    def alloc(self, nbytes: int) -> int:
        address = self.next_address
        self.next_address += max(nbytes, 1) + 256
        self.memory[address] = bytearray(nbytes)
        return address


class FakeLibCuda:
    """The few driver-API entry points `resnet_opt.tensorrt.device.probe_gpu` calls."""

    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu

    @staticmethod
    def _set(ref: Any, value: int) -> None:
        ref._obj.value = value

    def cuDriverGetVersion(self, ref: Any) -> int:  # noqa: N802 - the driver's own name
        major, minor = self.gpu.driver_cuda
        self._set(ref, major * 1000 + minor * 10)
        return 0

    def cuInit(self, flags: int) -> int:  # noqa: N802
        return 0

    def cuDeviceGetCount(self, ref: Any) -> int:  # noqa: N802
        self._set(ref, 1)
        return 0

    def cuDeviceGet(self, ref: Any, ordinal: int) -> int:  # noqa: N802
        self._set(ref, ordinal)
        return 0

    def cuDeviceGetName(self, buf: Any, size: int, device: Any) -> int:  # noqa: N802
        buf.value = self.gpu.gpu_name.encode()
        return 0

    def cuDeviceGetAttribute(self, ref: Any, attr: int, device: Any) -> int:  # noqa: N802
        values = {
            75: self.gpu.compute_capability[0],
            76: self.gpu.compute_capability[1],
            18: int(self.gpu.integrated),
            16: self.gpu.sm_count,
        }
        self._set(ref, values[attr])
        return 0


def install(
    monkeypatch: pytest.MonkeyPatch, gpu: FakeGpu, *, pycuda: bool = True, cudart: bool = True
) -> None:
    """Put fake tensorrt, pycuda and cuda-python (cuda.bindings.runtime) in sys.modules and
    the fake driver behind probe_gpu; `pycuda=False` / `cudart=False` make them missing."""
    import sys

    from tests.fakes import fake_cudart, fake_pycuda, fake_tensorrt

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_module(gpu))
    for name, module in fake_cudart.make_modules(gpu).items():
        monkeypatch.setitem(sys.modules, name, module if cudart else None)
    if pycuda:
        package, driver = fake_pycuda.make_modules(gpu)
        monkeypatch.setitem(sys.modules, "pycuda", package)
        monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    else:
        monkeypatch.setitem(sys.modules, "pycuda", None)
        monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setattr("resnet_opt.tensorrt.device._load_libcuda", lambda: FakeLibCuda(gpu))
    assert ctypes  # the fake driver is called with real ctypes objects
