"""CUDA graphs of a TensorRT enqueue, through cuda-python's runtime bindings.

Done as trtexec does it (samples/common/sampleInference.cpp, `TrtCudaGraph`): the caller has
already run one eager `execute_async_v3` with the context's final shapes (the flush that lets
TensorRT do its shape-dependent setup outside the capture); capture then runs in
thread-local mode, the enqueue's result is checked (TensorRT returns False when the engine
holds work a graph cannot capture), and a failed capture ends the capture, destroys what was
captured, clears the CUDA error and reports why, so that the caller can run eagerly instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from resnet_opt.errors import MissingDependencyError, ResnetOptError

RUNTIME_MODULE = "cuda.bindings.runtime"


class CudaRuntime(Protocol):
    """The calls made on `cuda.bindings.runtime` (cuda-bindings 12.x and 13.x).

    Every function returns a tuple whose first item is a `cudaError_t` (an int enum); the
    parameter names are the real ones (tests/test_cuda_api.py compares them with the installed
    package, which ships no type information of its own).
    """

    cudaError_t: Any  # noqa: N815 - the module's names
    cudaStreamCaptureMode: Any  # noqa: N815

    def cudaStreamBeginCapture(self, stream: int, mode: Any) -> tuple[int]: ...  # noqa: N802

    def cudaStreamEndCapture(self, stream: int) -> tuple[int, Any]: ...  # noqa: N802

    def cudaGraphInstantiateWithFlags(self, graph: Any, flags: int) -> tuple[int, Any]: ...  # noqa: N802

    def cudaGraphDestroy(self, graph: Any) -> tuple[int]: ...  # noqa: N802

    def cudaGraphLaunch(self, graphExec: Any, stream: int) -> tuple[int]: ...  # noqa: N802, N803

    def cudaGraphExecDestroy(self, graphExec: Any) -> tuple[int]: ...  # noqa: N802, N803

    def cudaGetLastError(self) -> tuple[int]: ...  # noqa: N802

    def cudaGetErrorName(self, error: Any) -> tuple[int, bytes]: ...  # noqa: N802


class GraphCaptureError(ResnetOptError):
    """The enqueue could not be captured; the runner runs that engine eagerly instead."""


def load_runtime() -> CudaRuntime:
    """cuda-python's runtime bindings, or one line saying what --cuda-graph needs."""
    from resnet_opt.deps import require

    try:
        module = require(RUNTIME_MODULE)
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            RUNTIME_MODULE,
            "tensorrt",
            "--cuda-graph needs NVIDIA's cuda-python (package cuda-bindings; pycuda has no CUDA "
            "graph API); on CUDA 12, e.g. JetPack 6, install 'cuda-bindings>=12.8,<13'",
        ) from exc
    return cast(CudaRuntime, module)


def _ok(runtime: CudaRuntime, err: int) -> bool:
    return bool(err == runtime.cudaError_t.cudaSuccess)


def error_name(runtime: CudaRuntime, err: int) -> str:
    _, name = runtime.cudaGetErrorName(err)
    return name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)


@dataclass
class CudaGraph:
    """An instantiated graph of one execution context's enqueue, for one set of shapes."""

    runtime: CudaRuntime
    exec_handle: Any
    closed: bool = False

    def launch(self, stream: int) -> None:
        (err,) = self.runtime.cudaGraphLaunch(self.exec_handle, stream)
        if not _ok(self.runtime, err):
            raise ResnetOptError(f"cudaGraphLaunch failed: {error_name(self.runtime, err)}")

    def close(self) -> None:
        if not self.closed:
            self.runtime.cudaGraphExecDestroy(self.exec_handle)
            self.closed = True


def _end_capture_on_error(runtime: CudaRuntime, stream: int) -> None:
    """End a capture that failed (trtexec's endCaptureOnError): an invalidated capture gives
    no graph; otherwise the graph exists but must not be used. Either way the error is cleared."""
    err, graph = runtime.cudaStreamEndCapture(stream)
    if _ok(runtime, err) and graph is not None:
        runtime.cudaGraphDestroy(graph)
    runtime.cudaGetLastError()


def capture(runtime: CudaRuntime, stream: int, enqueue: Callable[[], bool]) -> CudaGraph:
    """Capture `enqueue()` on `stream` into an instantiated graph, or raise GraphCaptureError.

    `enqueue` must already have run once eagerly with the same context and shapes.
    """
    mode = runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    (err,) = runtime.cudaStreamBeginCapture(stream, mode)
    if not _ok(runtime, err):
        runtime.cudaGetLastError()
        why = error_name(runtime, err)
        if why == "cudaErrorInsufficientDriver":  # cuda-bindings 13 on a CUDA 12 driver, ...
            why += (
                " (cuda-bindings is for a newer CUDA than this driver's: install the "
                "cuda-bindings major of the driver's CUDA, e.g. 'cuda-bindings>=12.8,<13' for "
                "CUDA 12)"
            )
        raise GraphCaptureError(f"cudaStreamBeginCapture failed: {why}")
    try:
        enqueued = enqueue()
    except BaseException:
        _end_capture_on_error(runtime, stream)
        raise
    if not enqueued:
        _end_capture_on_error(runtime, stream)
        raise GraphCaptureError(
            "TensorRT's enqueue failed under stream capture (the engine holds work that a CUDA "
            "graph cannot capture)"
        )
    err, graph = runtime.cudaStreamEndCapture(stream)
    if not _ok(runtime, err):
        runtime.cudaGetLastError()
        raise GraphCaptureError(f"cudaStreamEndCapture failed: {error_name(runtime, err)}")
    err, exec_handle = runtime.cudaGraphInstantiateWithFlags(graph, 0)
    runtime.cudaGraphDestroy(graph)  # the executable graph keeps what it needs
    if not _ok(runtime, err):
        runtime.cudaGetLastError()
        raise GraphCaptureError(f"cudaGraphInstantiate failed: {error_name(runtime, err)}")
    return CudaGraph(runtime, exec_handle)
