"""CUDA graphs of a TensorRT enqueue, through cuda-python's *driver* API bindings.

Done as trtexec does it (samples/common/sampleInference.cpp, `TrtCudaGraph`): the caller has
already run one eager `execute_async_v3` with the context's final shapes (the flush that lets
TensorRT do its shape-dependent setup outside the capture); capture then runs in
thread-local mode, the enqueue's result is checked (TensorRT returns False when the engine
holds work a graph cannot capture), and a failed capture ends the capture, destroys what was
captured and reports why, so that the caller can run eagerly instead.

Why the driver API (`cuda.bindings.driver`, `cuStreamBeginCapture` …) and not the runtime API
(`cuda.bindings.runtime`, `cudaStreamBeginCapture` …): cuda-bindings' runtime module carries a
CUDA runtime linked statically at the bindings' own CUDA version (12.8+ for every cuda-bindings
12.x on PyPI) and refuses a driver older than that with cudaErrorInsufficientDriver ("Insufficient
driver: %d < %d"), so on JetPack 6 (CUDA 12.6 driver) every capture failed. The driver module
resolves each entry point in the installed libcuda (cuGetProcAddress), so any cuda-bindings of the
driver's CUDA major works on any driver of that major; the calls used here exist since CUDA 11.4.
Pinning a cuda-python 12.6 build per JetPack line instead would tie each Python to a JetPack and
break again on the next driver. The bindings' major must still match the driver's (cuda-bindings
13 is for CUDA 13 drivers): `check_bindings_fit` says so before any capture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from resnet_opt.errors import MissingDependencyError, ResnetOptError

DRIVER_MODULE = "cuda.bindings.driver"


class CudaDriver(Protocol):
    """The calls made on `cuda.bindings.driver` (cuda-bindings 12.x and 13.x, same signatures).

    Every function returns a tuple whose first item is a `CUresult` (an int enum); the parameter
    names are the real ones (tests/cuda/test_api.py compares them with the installed package,
    which ships no type information of its own).
    """

    CUresult: Any
    CUstreamCaptureMode: Any

    def cuStreamBeginCapture(self, hStream: int, mode: Any) -> tuple[int]: ...  # noqa: N802, N803

    def cuStreamEndCapture(self, hStream: int) -> tuple[int, Any]: ...  # noqa: N802, N803

    def cuGraphInstantiate(self, hGraph: Any, flags: int) -> tuple[int, Any]: ...  # noqa: N802, N803

    def cuGraphDestroy(self, hGraph: Any) -> tuple[int]: ...  # noqa: N802, N803

    def cuGraphLaunch(self, hGraphExec: Any, hStream: int) -> tuple[int]: ...  # noqa: N802, N803

    def cuGraphExecDestroy(self, hGraphExec: Any) -> tuple[int]: ...  # noqa: N802, N803

    def cuGetErrorName(self, error: Any) -> tuple[int, bytes]: ...  # noqa: N802

    def cuDriverGetVersion(self) -> tuple[int, int]: ...  # noqa: N802


class GraphCaptureError(ResnetOptError):
    """The enqueue could not be captured; the runner runs that engine eagerly instead."""


def load_cuda_driver() -> CudaDriver:
    """cuda-python's driver bindings, or one line saying what --cuda-graph needs."""
    from resnet_opt.deps import require
    from resnet_opt.jetson.install import install_advice

    try:
        module = require(DRIVER_MODULE)
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            DRIVER_MODULE,
            "tensorrt-cu12",
            "--cuda-graph needs NVIDIA's cuda-python (package cuda-bindings, of the driver's CUDA "
            "major; pycuda has no CUDA graph API)",
            install_advice(DRIVER_MODULE),
        ) from exc
    return cast(CudaDriver, module)


def _ok(driver: CudaDriver, err: int) -> bool:
    return bool(err == driver.CUresult.CUDA_SUCCESS)


def error_name(driver: CudaDriver, err: int) -> str:
    _, name = driver.cuGetErrorName(err)
    return name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)


def bindings_major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def check_bindings_fit(driver: CudaDriver, bindings_version: str) -> None:
    """Raise GraphCaptureError unless cuda-bindings' major is the driver's CUDA major (the
    bindings are built against one CUDA major's headers; a 13.x on a CUDA 12 driver is not
    supported by NVIDIA, and a 12.x on a 13 driver misses its ABI changes)."""
    err, version = driver.cuDriverGetVersion()
    if not _ok(driver, err):
        raise GraphCaptureError(f"cuDriverGetVersion failed: {error_name(driver, err)}")
    major, minor = divmod(int(version) // 10, 100)
    ours = bindings_major(bindings_version)
    if ours is not None and ours != major:
        raise GraphCaptureError(
            f"cuda-bindings {bindings_version} is for CUDA {ours}, this driver runs CUDA "
            f"{major}.{minor}: install 'cuda-bindings>={major}.0,<{major + 1}' (the "
            f"tensorrt-cu{major} extra; on a Jetson the jetson extra picks it per JetPack)"
        )


@dataclass
class CudaGraph:
    """An instantiated graph of one execution context's enqueue, for one set of shapes."""

    driver: CudaDriver
    exec_handle: Any
    closed: bool = False

    def launch(self, stream: int) -> None:
        (err,) = self.driver.cuGraphLaunch(self.exec_handle, stream)
        if not _ok(self.driver, err):
            raise ResnetOptError(f"cuGraphLaunch failed: {error_name(self.driver, err)}")

    def close(self) -> None:
        if not self.closed:
            self.driver.cuGraphExecDestroy(self.exec_handle)
            self.closed = True


def _end_capture_on_error(driver: CudaDriver, stream: int) -> None:
    """End a capture that failed (trtexec's endCaptureOnError): an invalidated capture gives
    no graph; otherwise the graph exists but must not be used."""
    err, graph = driver.cuStreamEndCapture(stream)
    if _ok(driver, err) and graph is not None:
        driver.cuGraphDestroy(graph)


def capture(driver: CudaDriver, stream: int, enqueue: Callable[[], bool]) -> CudaGraph:
    """Capture `enqueue()` on `stream` into an instantiated graph, or raise GraphCaptureError.

    `enqueue` must already have run once eagerly with the same context and shapes.
    """
    mode = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
    (err,) = driver.cuStreamBeginCapture(stream, mode)
    if not _ok(driver, err):
        raise GraphCaptureError(f"cuStreamBeginCapture failed: {error_name(driver, err)}")
    try:
        enqueued = enqueue()
    except BaseException:
        _end_capture_on_error(driver, stream)
        raise
    if not enqueued:
        _end_capture_on_error(driver, stream)
        raise GraphCaptureError(
            "TensorRT's enqueue failed under stream capture (the engine holds work that a CUDA "
            "graph cannot capture)"
        )
    err, graph = driver.cuStreamEndCapture(stream)
    if not _ok(driver, err):
        raise GraphCaptureError(f"cuStreamEndCapture failed: {error_name(driver, err)}")
    err, exec_handle = driver.cuGraphInstantiate(graph, 0)
    driver.cuGraphDestroy(graph)  # the executable graph keeps what it needs
    if not _ok(driver, err):
        raise GraphCaptureError(f"cuGraphInstantiate failed: {error_name(driver, err)}")
    return CudaGraph(driver, exec_handle)
