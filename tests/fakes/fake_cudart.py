"""Fake `cuda.bindings.driver` and `cuda.bindings.runtime` (cuda-python) for CUDA graphs on
the FakeGpu.

They have only functions that the installed cuda-bindings has, with their parameter names
(tests/cuda/test_api.py checks), return tuples led by the real `CUresult` / `cudaError_t`
members and take the real capture-mode members (taken from the installed package, which imports
without a driver). Stream capture records the work enqueued on the stream (pycuda copies,
TensorRT enqueues) instead of running it; a launched graph runs it. They refuse what CUDA
refuses: capture on a capturing stream, ending a capture that never began, launching a
destroyed graph; an enqueue that fails during capture invalidates it (as TensorRT's does when
the engine holds uncapturable work).

The versions decide the rest, as in the real library (`FakeGpu.driver_cuda`, the CUDA the driver
runs, and `FakeGpu.bindings_cuda`, the CUDA cuda-bindings was built for): the runtime module
links its CUDA runtime statically at the bindings' version and fails every call with
cudaErrorInsufficientDriver on an older driver ("Insufficient driver: %d < %d" in cuda-bindings'
runtime); the driver module resolves each function in the driver (cuGetProcAddress) and raises
RuntimeError('Function "…" not found') for one the driver is too old to have.
"""

from __future__ import annotations

import types
from typing import Any

from tests.fakes.fake_gpu import FakeGpu

# the CUDA release that brought each driver function (CUDA driver API reference)
DRIVER_FUNCTION_SINCE = {
    "cuStreamBeginCapture": (10, 1),  # the _v2 entry point, with a mode
    "cuStreamEndCapture": (10, 0),
    "cuGraphInstantiate": (11, 4),  # with flags (cuGraphInstantiateWithFlags)
    "cuGraphDestroy": (10, 0),
    "cuGraphLaunch": (10, 0),
    "cuGraphExecDestroy": (10, 0),
    "cuGetErrorName": (6, 0),
    "cuDriverGetVersion": (2, 2),
}


def _package(gpu: FakeGpu) -> tuple[types.ModuleType, types.ModuleType]:
    package = types.ModuleType("cuda")
    package.__path__ = []
    package.__file__ = __file__
    bindings = types.ModuleType("cuda.bindings")
    bindings.__path__ = []
    bindings.__file__ = __file__
    major, minor = gpu.bindings_cuda
    bindings.__version__ = f"{major}.{minor}.0"  # type: ignore[attr-defined]
    package.bindings = bindings  # type: ignore[attr-defined]
    return package, bindings


class _Graph:  # stands for CUgraph / cudaGraph_t
    def __init__(self, work: list[Any]) -> None:
        self.work, self.destroyed = work, False


class _GraphExec:  # stands for CUgraphExec / cudaGraphExec_t
    def __init__(self, work: list[Any]) -> None:
        self.work, self.destroyed = list(work), False


def make_driver(gpu: FakeGpu) -> types.ModuleType:
    from cuda.bindings import driver as real

    result, mode_enum = real.CUresult, real.CUstreamCaptureMode
    ok = result.CUDA_SUCCESS
    driver = types.ModuleType("cuda.bindings.driver")
    driver.__file__ = __file__

    def resolve(name: str) -> None:
        """cuda-bindings finds each function in the installed driver on its first call."""
        if gpu.driver_cuda < DRIVER_FUNCTION_SINCE[name]:
            raise RuntimeError(f'Function "{name}" not found')

    def cuStreamBeginCapture(hStream: Any, mode: Any) -> tuple[Any]:  # noqa: N802, N803
        resolve("cuStreamBeginCapture")
        handle = int(hStream)
        gpu.record("cuda.driver.cuStreamBeginCapture", stream=handle, mode=mode.name)
        assert isinstance(mode, mode_enum), "mode must be a CUstreamCaptureMode"
        if handle not in gpu.streams:
            return (result.CUDA_ERROR_INVALID_HANDLE,)
        if handle in gpu.capturing:
            return (result.CUDA_ERROR_ILLEGAL_STATE,)
        gpu.capturing[handle] = []
        gpu.capture_invalidated.discard(handle)
        return (ok,)

    def cuStreamEndCapture(hStream: Any) -> tuple[Any, Any]:  # noqa: N802, N803
        resolve("cuStreamEndCapture")
        handle = int(hStream)
        gpu.record("cuda.driver.cuStreamEndCapture", stream=handle)
        if handle not in gpu.capturing:
            return (result.CUDA_ERROR_ILLEGAL_STATE, None)
        work = gpu.capturing.pop(handle)
        if handle in gpu.capture_invalidated:
            gpu.capture_invalidated.discard(handle)
            gpu.cuda_error = 0  # the driver API has no sticky last error to clear
            return (result.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, None)
        graph = _Graph(work)
        gpu.graphs.append(graph)
        return (ok, graph)

    def cuGraphInstantiate(hGraph: Any, flags: int) -> tuple[Any, Any]:  # noqa: N802, N803
        resolve("cuGraphInstantiate")
        gpu.record("cuda.driver.cuGraphInstantiate", flags=flags)
        if not isinstance(hGraph, _Graph) or hGraph.destroyed:
            return (result.CUDA_ERROR_INVALID_VALUE, None)
        return (ok, _GraphExec(hGraph.work))

    def cuGraphDestroy(hGraph: Any) -> tuple[Any]:  # noqa: N802, N803
        resolve("cuGraphDestroy")
        gpu.record("cuda.driver.cuGraphDestroy")
        hGraph.destroyed = True
        return (ok,)

    def cuGraphLaunch(hGraphExec: Any, hStream: Any) -> tuple[Any]:  # noqa: N802, N803
        resolve("cuGraphLaunch")
        steps = len(hGraphExec.work)
        gpu.record("cuda.driver.cuGraphLaunch", stream=int(hStream), steps=steps)
        if hGraphExec.destroyed:
            return (result.CUDA_ERROR_INVALID_VALUE,)
        for step in hGraphExec.work:
            step()
        return (ok,)

    def cuGraphExecDestroy(hGraphExec: Any) -> tuple[Any]:  # noqa: N802, N803
        resolve("cuGraphExecDestroy")
        gpu.record("cuda.driver.cuGraphExecDestroy")
        hGraphExec.destroyed = True
        return (ok,)

    def cuGetErrorName(error: Any) -> tuple[Any, bytes]:  # noqa: N802
        return (ok, str(error.name).encode())

    def cuDriverGetVersion() -> tuple[Any, int]:  # noqa: N802
        major, minor = gpu.driver_cuda
        return (ok, major * 1000 + minor * 10)

    for name, value in {
        "CUresult": result,
        "CUstreamCaptureMode": mode_enum,
        "cuStreamBeginCapture": cuStreamBeginCapture,
        "cuStreamEndCapture": cuStreamEndCapture,
        "cuGraphInstantiate": cuGraphInstantiate,
        "cuGraphDestroy": cuGraphDestroy,
        "cuGraphLaunch": cuGraphLaunch,
        "cuGraphExecDestroy": cuGraphExecDestroy,
        "cuGetErrorName": cuGetErrorName,
        "cuDriverGetVersion": cuDriverGetVersion,
    }.items():
        setattr(driver, name, value)
    return driver


def make_runtime(gpu: FakeGpu) -> types.ModuleType:
    """The runtime module's capture entry points, with the static CUDA runtime's driver gate."""
    from cuda.bindings import runtime as real

    error, mode_enum = real.cudaError_t, real.cudaStreamCaptureMode
    ok = error.cudaSuccess
    runtime = types.ModuleType("cuda.bindings.runtime")
    runtime.__file__ = __file__

    def fail(err: Any) -> Any:
        gpu.cuda_error = err
        return err

    def cudaStreamBeginCapture(stream: Any, mode: Any) -> tuple[Any]:  # noqa: N802
        handle = int(stream)
        gpu.record("cudart.cudaStreamBeginCapture", stream=handle, mode=mode.name)
        assert isinstance(mode, mode_enum), "mode must be a cudaStreamCaptureMode"
        if gpu.runtime_needs_newer_driver:
            return (fail(error.cudaErrorInsufficientDriver),)
        if handle not in gpu.streams:
            return (fail(error.cudaErrorInvalidResourceHandle),)
        if handle in gpu.capturing:
            return (fail(error.cudaErrorIllegalState),)
        gpu.capturing[handle] = []
        gpu.capture_invalidated.discard(handle)
        return (ok,)

    def cudaGetLastError() -> tuple[Any]:  # noqa: N802
        err, gpu.cuda_error = gpu.cuda_error, ok
        return (err,)

    for name, value in {
        "cudaError_t": error,
        "cudaStreamCaptureMode": mode_enum,
        "cudaStreamBeginCapture": cudaStreamBeginCapture,
        "cudaGetLastError": cudaGetLastError,
    }.items():
        setattr(runtime, name, value)
    return runtime


def make_modules(gpu: FakeGpu) -> dict[str, types.ModuleType]:
    package, bindings = _package(gpu)
    driver, runtime = make_driver(gpu), make_runtime(gpu)
    bindings.driver = driver  # type: ignore[attr-defined]
    bindings.runtime = runtime  # type: ignore[attr-defined]
    return {
        "cuda": package,
        "cuda.bindings": bindings,
        "cuda.bindings.driver": driver,
        "cuda.bindings.runtime": runtime,
    }
