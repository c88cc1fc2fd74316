"""A fake `cuda.bindings.runtime` (cuda-python) for CUDA graphs on the FakeGpu.

It has only functions that the installed cuda-bindings has, with their parameter names
(tests/test_cuda_api.py checks), returns tuples led by the real `cudaError_t` members and takes
the real `cudaStreamCaptureMode` members (both taken from the installed package, which imports
without a driver). Stream capture records the work enqueued on the stream (pycuda copies,
TensorRT enqueues) instead of running it; a launched graph runs it. It refuses what CUDA
refuses: capture on a capturing stream, ending a capture that never began, launching a
destroyed graph. An enqueue that fails during capture invalidates it (as TensorRT's does when
the engine holds uncapturable work), and the error sticks until `cudaGetLastError`.
"""

from __future__ import annotations

import types
from typing import Any

from tests.fakes.fake_gpu import FakeGpu


def make_modules(gpu: FakeGpu) -> dict[str, types.ModuleType]:
    from cuda.bindings import runtime as real

    error, mode_enum = real.cudaError_t, real.cudaStreamCaptureMode
    ok = error.cudaSuccess

    package = types.ModuleType("cuda")
    package.__path__ = []
    package.__file__ = __file__
    bindings = types.ModuleType("cuda.bindings")
    bindings.__path__ = []
    bindings.__file__ = __file__
    runtime = types.ModuleType("cuda.bindings.runtime")
    runtime.__file__ = __file__
    package.bindings = bindings  # type: ignore[attr-defined]
    bindings.runtime = runtime  # type: ignore[attr-defined]

    class Graph:  # stands for cudaGraph_t
        def __init__(self, work: list[Any]) -> None:
            self.work, self.destroyed = work, False

    class GraphExec:  # stands for cudaGraphExec_t
        def __init__(self, work: list[Any]) -> None:
            self.work, self.destroyed = list(work), False

    def fail(err: Any) -> Any:
        gpu.cuda_error = err
        return err

    def cudaStreamBeginCapture(stream: Any, mode: Any) -> tuple[Any]:  # noqa: N802
        handle = int(stream)
        gpu.record("cudart.cudaStreamBeginCapture", stream=handle, mode=mode.name)
        assert isinstance(mode, mode_enum), "mode must be a cudaStreamCaptureMode"
        if gpu.driver_too_old:
            return (fail(error.cudaErrorInsufficientDriver),)
        if handle not in gpu.streams:
            return (fail(error.cudaErrorInvalidResourceHandle),)
        if handle in gpu.capturing:
            return (fail(error.cudaErrorIllegalState),)
        gpu.capturing[handle] = []
        gpu.capture_invalidated.discard(handle)
        return (ok,)

    def cudaStreamEndCapture(stream: Any) -> tuple[Any, Any]:  # noqa: N802
        handle = int(stream)
        gpu.record("cudart.cudaStreamEndCapture", stream=handle)
        if handle not in gpu.capturing:
            return (fail(error.cudaErrorIllegalState), None)
        work = gpu.capturing.pop(handle)
        if handle in gpu.capture_invalidated:
            gpu.capture_invalidated.discard(handle)
            return (fail(error.cudaErrorStreamCaptureInvalidated), None)
        graph = Graph(work)
        gpu.graphs.append(graph)
        return (ok, graph)

    def cudaGraphInstantiateWithFlags(graph: Any, flags: int) -> tuple[Any, Any]:  # noqa: N802
        gpu.record("cudart.cudaGraphInstantiateWithFlags", flags=flags)
        if not isinstance(graph, Graph) or graph.destroyed:
            return (fail(error.cudaErrorInvalidValue), None)
        return (ok, GraphExec(graph.work))

    def cudaGraphDestroy(graph: Any) -> tuple[Any]:  # noqa: N802
        gpu.record("cudart.cudaGraphDestroy")
        graph.destroyed = True
        return (ok,)

    def cudaGraphLaunch(graphExec: Any, stream: Any) -> tuple[Any]:  # noqa: N802, N803
        gpu.record("cudart.cudaGraphLaunch", stream=int(stream), steps=len(graphExec.work))
        if graphExec.destroyed:
            return (fail(error.cudaErrorInvalidValue),)
        for step in graphExec.work:
            step()
        return (ok,)

    def cudaGraphExecDestroy(graphExec: Any) -> tuple[Any]:  # noqa: N802, N803
        gpu.record("cudart.cudaGraphExecDestroy")
        graphExec.destroyed = True
        return (ok,)

    def cudaGetLastError() -> tuple[Any]:  # noqa: N802
        err, gpu.cuda_error = gpu.cuda_error, ok
        return (err,)

    def cudaGetErrorName(error: Any) -> tuple[Any, bytes]:  # noqa: N802
        return (ok, str(error.name).encode())

    for name, value in {
        "cudaError_t": error,
        "cudaStreamCaptureMode": mode_enum,
        "cudaStreamBeginCapture": cudaStreamBeginCapture,
        "cudaStreamEndCapture": cudaStreamEndCapture,
        "cudaGraphInstantiateWithFlags": cudaGraphInstantiateWithFlags,
        "cudaGraphDestroy": cudaGraphDestroy,
        "cudaGraphLaunch": cudaGraphLaunch,
        "cudaGraphExecDestroy": cudaGraphExecDestroy,
        "cudaGetLastError": cudaGetLastError,
        "cudaGetErrorName": cudaGetErrorName,
    }.items():
        setattr(runtime, name, value)
    return {"cuda": package, "cuda.bindings": bindings, "cuda.bindings.runtime": runtime}
