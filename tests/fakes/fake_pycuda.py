"""A fake `pycuda` / `pycuda.driver`: device memory is host bytearrays held by the FakeGpu.

It has only names that pycuda has (tests/cuda/test_api.py checks them against pycuda 2026.1's
source, pinned in tests/cuda_api_pins.py), with pycuda's parameters, and it enforces what the
TensorRT runner promises: contexts pushed before use, async copies only from/to pinned
(page-locked) host buffers, copies on a stream. pycuda has no stream capture or graphs: work
enqueued on a stream while cuda-python captures it (tests/fakes/fake_cudart.py) is recorded
into the capture instead of run, as the real stream would.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from tests.fakes.fake_gpu import FakeGpu


def make_modules(gpu: FakeGpu) -> tuple[types.ModuleType, types.ModuleType]:
    package = types.ModuleType("pycuda")
    package.__file__ = __file__
    package.__path__ = []  # a package, as the real one is
    package.VERSION = (2026, 1)  # type: ignore[attr-defined]  # pycuda/__init__.py has it
    driver = types.ModuleType("pycuda.driver")
    driver.__file__ = __file__
    package.driver = driver  # type: ignore[attr-defined]

    def require_context(what: str) -> None:
        if not gpu.context_stack:
            raise RuntimeError(f"pycuda.{what}: no current CUDA context")

    class Context:
        def __init__(self, ordinal: int) -> None:
            self.ordinal = ordinal

        def push(self) -> None:
            gpu.record("cuda.Context.push")
            gpu.context_stack.append(self)

        @staticmethod
        def pop() -> None:  # static in pycuda: pops whatever context is current
            gpu.record("cuda.Context.pop")
            if not gpu.context_stack:
                raise RuntimeError("cuCtxPopCurrent failed: invalid context")
            gpu.context_stack.pop()

        def detach(self) -> None:
            gpu.record("cuda.Context.detach")

    class Device:
        def __init__(self, number: int) -> None:
            self.ordinal = number

        def retain_primary_context(self) -> Context:
            gpu.record("cuda.Device.retain_primary_context", ordinal=self.ordinal)
            return Context(self.ordinal)

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self._address = gpu.alloc(nbytes)

        def __int__(self) -> int:
            return self._address

        def free(self) -> None:
            gpu.record("cuda.DeviceAllocation.free", address=self._address)
            del gpu.memory[self._address]

    class Stream:
        _next = 1

        def __init__(self, flags: int = 0) -> None:
            require_context("Stream")
            self._handle = 0xA000 + Stream._next
            Stream._next += 1
            gpu.streams[self._handle] = self
            gpu.record("cuda.Stream", handle=self._handle)

        @property
        def handle(self) -> int:
            return self._handle

        def synchronize(self) -> None:
            gpu.record("cuda.Stream.synchronize", handle=self._handle)
            assert self._handle not in gpu.capturing, "synchronize on a capturing stream"

        def is_done(self) -> bool:
            return True

    def init(flags: int = 0) -> None:
        gpu.record("cuda.init")

    def pagelocked_empty(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> Any:
        require_context("pagelocked_empty")
        array = np.zeros(shape, dtype, order=order)  # type: ignore[call-overload]
        gpu.pinned.append(array)
        gpu.record("cuda.pagelocked_empty", shape=shape, dtype=str(np.dtype(dtype)))
        return array

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        require_context("mem_alloc")
        gpu.record("cuda.mem_alloc", nbytes=nbytes)
        return DeviceAllocation(nbytes)

    def is_pinned(array: np.ndarray) -> bool:
        base = array
        while base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        return any(base is p for p in gpu.pinned)

    def check_stream(stream: Any, what: str) -> Stream:
        if not isinstance(stream, Stream):
            raise AssertionError(f"{what} without a stream: the copy would be synchronous")
        return stream

    def enqueue(stream: Stream, work: Any) -> None:
        captured = gpu.capturing.get(stream.handle)
        if captured is not None:
            captured.append(work)
        else:
            work()

    def memcpy_htod_async(dest: Any, src: Any, stream: Any = None) -> None:
        stream = check_stream(stream, "memcpy_htod_async")
        assert is_pinned(src), "memcpy_htod_async from pageable memory (not pinned)"
        data = np.ascontiguousarray(src).tobytes()
        address = int(dest)
        gpu.record("cuda.memcpy_htod_async", address=address, nbytes=len(data))

        def copy() -> None:
            memory = gpu.memory[address]
            assert len(data) <= len(memory), "copy past the end of a device buffer"
            memory[: len(data)] = data

        enqueue(stream, copy)

    def memcpy_dtoh_async(dest: Any, src: Any, stream: Any = None) -> None:
        stream = check_stream(stream, "memcpy_dtoh_async")
        assert is_pinned(dest), "memcpy_dtoh_async into pageable memory (not pinned)"
        address = int(src)
        gpu.record("cuda.memcpy_dtoh_async", address=address, nbytes=dest.nbytes)

        def copy() -> None:
            raw = bytes(gpu.memory[address][: dest.nbytes])
            dest.reshape(-1)[...] = np.frombuffer(raw, dtype=dest.dtype)

        enqueue(stream, copy)

    for name, value in {
        "init": init,
        "Device": Device,
        "Context": Context,
        "Stream": Stream,
        "DeviceAllocation": DeviceAllocation,
        "pagelocked_empty": pagelocked_empty,
        "mem_alloc": mem_alloc,
        "memcpy_htod_async": memcpy_htod_async,
        "memcpy_dtoh_async": memcpy_dtoh_async,
    }.items():
        setattr(driver, name, value)
    return package, driver
