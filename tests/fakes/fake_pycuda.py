"""A fake `pycuda` / `pycuda.driver`: device memory is host bytearrays held by the FakeGpu.

It enforces what the TensorRT runner promises: contexts pushed before use, async copies only
from/to pinned (page-locked) host buffers, copies on a stream, and CUDA graph capture that
records work instead of running it until the graph is launched.
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
    driver = types.ModuleType("pycuda.driver")
    driver.__file__ = __file__
    driver.VERSION = (2025, 1)  # type: ignore[attr-defined]
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

        def pop(self) -> None:
            gpu.record("cuda.Context.pop")
            assert gpu.context_stack and gpu.context_stack[-1] is self, "pop of another context"
            gpu.context_stack.pop()

        def detach(self) -> None:
            gpu.record("cuda.Context.detach")

    class Device:
        def __init__(self, ordinal: int) -> None:
            self.ordinal = ordinal

        def retain_primary_context(self) -> Context:
            gpu.record("cuda.Device.retain_primary_context", ordinal=self.ordinal)
            return Context(self.ordinal)

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self.address = gpu.alloc(nbytes)
            self.nbytes = nbytes
            self.freed = False

        def __int__(self) -> int:
            return self.address

        def free(self) -> None:
            gpu.record("cuda.DeviceAllocation.free", address=self.address)
            self.freed = True
            del gpu.memory[self.address]

    class GraphExec:
        def __init__(self, work: list[Any]) -> None:
            self.work = work

        def launch(self, stream: Stream | None = None) -> None:
            gpu.record("cuda.GraphExec.launch", steps=len(self.work))
            for step in self.work:
                step()

    class Graph:
        def __init__(self, work: list[Any]) -> None:
            self.work = work

        def instantiate(self) -> GraphExec:
            gpu.record("cuda.Graph.instantiate", steps=len(self.work))
            return GraphExec(list(self.work))

    class Stream:
        _next = 1

        def __init__(self) -> None:
            require_context("Stream")
            self.handle = 0xA000 + Stream._next
            Stream._next += 1
            self.capturing: list[Any] | None = None
            gpu.streams[self.handle] = self
            gpu.record("cuda.Stream", handle=self.handle)

        def synchronize(self) -> None:
            gpu.record("cuda.Stream.synchronize", handle=self.handle)

        def begin_capture(self) -> None:
            gpu.record("cuda.Stream.begin_capture", handle=self.handle)
            self.capturing = []

        def end_capture(self) -> Graph:
            gpu.record("cuda.Stream.end_capture", handle=self.handle)
            assert self.capturing is not None, "end_capture without begin_capture"
            graph, self.capturing = Graph(self.capturing), None
            return graph

    def init() -> None:
        gpu.record("cuda.init")

    def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
        require_context("pagelocked_empty")
        array = np.zeros(shape, dtype)
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

    def memcpy_htod_async(dest: Any, src: np.ndarray, stream: Any = None) -> None:
        stream = check_stream(stream, "memcpy_htod_async")
        assert is_pinned(src), "memcpy_htod_async from pageable memory (not pinned)"
        data = np.ascontiguousarray(src).tobytes()
        address = int(dest)
        gpu.record("cuda.memcpy_htod_async", address=address, nbytes=len(data))

        def copy() -> None:
            memory = gpu.memory[address]
            assert len(data) <= len(memory), "copy past the end of a device buffer"
            memory[: len(data)] = data

        if stream.capturing is not None:
            stream.capturing.append(copy)
        else:
            copy()

    def memcpy_dtoh_async(dest: np.ndarray, src: Any, stream: Any = None) -> None:
        stream = check_stream(stream, "memcpy_dtoh_async")
        assert is_pinned(dest), "memcpy_dtoh_async into pageable memory (not pinned)"
        address = int(src)
        gpu.record("cuda.memcpy_dtoh_async", address=address, nbytes=dest.nbytes)

        def copy() -> None:
            raw = bytes(gpu.memory[address][: dest.nbytes])
            dest.reshape(-1)[...] = np.frombuffer(raw, dtype=dest.dtype)

        if stream.capturing is not None:
            stream.capturing.append(copy)
        else:
            copy()

    for name, value in {
        "init": init,
        "Device": Device,
        "Context": Context,
        "Stream": Stream,
        "pagelocked_empty": pagelocked_empty,
        "mem_alloc": mem_alloc,
        "memcpy_htod_async": memcpy_htod_async,
        "memcpy_dtoh_async": memcpy_dtoh_async,
    }.items():
        setattr(driver, name, value)
    return package, driver
