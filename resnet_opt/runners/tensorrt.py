"""TensorRT runner: a built plan on the GPU (or a DLA core), through pycuda. Needs no torch.

The plan is deserialized only after its manifest matches this device and TensorRT version
(`check_engine_compatible`), so a plan from another GPU or TensorRT gives "built for X, this
is Y: rebuild" instead of a crash inside TensorRT. Buffers are allocated once for the largest
batch of the engine's profile: pinned host memory, one device buffer per I/O tensor, one
stream, asynchronous copies, `set_input_shape` + `set_tensor_address` + `execute_async_v3`.
With `cuda_graph=True` (for bench) each batch size gets its own execution context, set to that
shape once: its first run is eager (the flushing enqueue TensorRT needs after a shape change),
then its enqueue is captured into a CUDA graph (cuda-python's driver API; pycuda has none) and
replayed from then on, as NVIDIA's best practices and trtexec do; if the engine cannot be
captured, the runner says so once and runs eagerly. With `no_data_transfers=True` (bench's
`--no-data-transfers`, trtexec's `--noDataTransfers`) a feed of the very same input arrays as
the previous call is not copied again: the engine runs on the inputs already on the device and
the outputs of that previous copy are returned (the same inputs give the same outputs), so the
timed loop measures the engine without the host<->device copies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.core.manifest import Manifest
from resnet_opt.core.readers import is_json_type
from resnet_opt.cuda.graphs import (
    CudaDriver,
    CudaGraph,
    GraphCaptureError,
    capture,
    check_bindings_fit,
    load_cuda_driver,
)
from resnet_opt.cuda.pycuda_api import Context, DeviceAllocation, Stream, load_driver
from resnet_opt.deps import probe, require
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Backend, Dim, RunnerBase, RunnerInfo, TensorSpec
from resnet_opt.runners.loaders import RUNNER_KEY, detail, detail_names, open_artifact
from resnet_opt.tensorrt.build_details import TensorRtBuildDetails
from resnet_opt.tensorrt.compat import check_engine_compatible
from resnet_opt.tensorrt.device import DeviceInfo, probe_device
from resnet_opt.tensorrt.profiles import BatchProfile, profile_of
from resnet_opt.tensorrt.versions import shares_activation_memory

if TYPE_CHECKING:
    import tensorrt as trt


log = logging.getLogger("resnet_opt.tensorrt")

# trt.DataType member names -> numpy dtypes (bf16/fp8/int4 have no numpy type: refused)
NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


def numpy_dtype(trt_dtype_name: str, tensor: str) -> np.dtype[Any]:
    try:
        return np.dtype(NUMPY_DTYPES[trt_dtype_name])
    except KeyError:
        raise ResnetOptError(
            f"engine tensor {tensor!r} is {trt_dtype_name}, which numpy cannot hold"
        ) from None


def dims(value: trt.Dims) -> tuple[int, ...]:
    """A TensorRT Dims as a tuple of ints."""
    return tuple(int(value[i]) for i in range(len(value)))


class _Tensor:
    """One I/O tensor: its pinned host buffer and device buffer, sized for the largest batch."""

    def __init__(self, name: str, is_input: bool, dtype: np.dtype[Any], shape: tuple[int, ...]):
        self.name = name
        self.is_input = is_input
        self.dtype = dtype
        self.max_shape = shape
        self.host: np.ndarray = np.empty(0, dtype)
        self.device: DeviceAllocation | None = None


class _ShapeGraph:
    """One batch shape's own execution context and, once captured, its CUDA graph.

    A captured graph replays the state its context had at capture; a context whose input
    shape then changed would replay stale state, so each shape keeps its context.
    """

    def __init__(self, context: trt.IExecutionContext) -> None:
        self.context = context
        self.graph: CudaGraph | None = None


@dataclass(frozen=True)
class TensorRtRunnerDetails:
    """`details["runner"]` of a `build tensorrt` manifest: the engine's I/O as built (what a
    runner on another machine, or a reader of the manifest, can know without TensorRT). The
    runner itself checks the plan against the manifest's device and version facts."""

    input: str | None = None
    outputs: tuple[str, ...] = ()
    batch: Mapping[str, int] | None = None  # the batch profile: min, opt, max
    version_compatible: bool | None = None
    dla_core: int | None = None

    @property
    def providers(self) -> tuple[str, ...]:
        return ()  # not ONNX Runtime

    def to_dict(self) -> dict[str, object]:
        return {
            "backend": "tensorrt",
            "input": self.input,
            "outputs": list(self.outputs),
            "batch": None if self.batch is None else dict(self.batch),
            "version_compatible": self.version_compatible,
            "dla_core": self.dla_core,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], *, source: str = "manifest"
    ) -> TensorRtRunnerDetails:
        batch = detail(data, "batch", dict, source)
        if batch is not None and not all(is_json_type(v, (int,)) for v in batch.values()):
            raise ResnetOptError(f"{source}: {RUNNER_KEY}.batch must map min/opt/max to integers")
        return cls(
            input=detail(data, "input", str, source),
            outputs=detail_names(data, "outputs", source) or (),
            batch=batch,
            version_compatible=detail(data, "version_compatible", bool, source),
            dla_core=detail(data, "dla_core", int, source),
        )


@dataclass(frozen=True)
class PlanFacts:
    """What a plan's manifest says, checked against this machine before TensorRT is touched."""

    manifest: Manifest
    device: DeviceInfo
    profile: BatchProfile


@dataclass(frozen=True)
class PlanEngine:
    """A deserialized engine with the runtime that owns it and the log it wrote to."""

    facts: PlanFacts
    runtime: trt.Runtime
    engine: trt.ICudaEngine
    logger: Any
    recorder: Any


class EngineFromPlan:
    """The TensorRT loader (Polygraphy's `EngineFromBytes`): a plan file whose manifest must
    match this device and TensorRT version, deserialized into an engine.

    `check()` reads and checks the manifest (hash included) and needs no GPU work, so a plan
    from another GPU is refused before any CUDA call; calling the loader deserializes the plan
    and must happen with the runner's CUDA context current.
    """

    def __init__(
        self, artifact: Path, *, manifest: Manifest | None = None, device: DeviceInfo | None = None
    ) -> None:
        self._artifact = Path(artifact)
        self._manifest = manifest
        self._device = device
        self._facts: PlanFacts | None = None

    @property
    def artifact(self) -> Path:
        return self._artifact

    def check(self) -> PlanFacts:
        """The plan's manifest checked against this device and TensorRT (once per loader)."""
        if self._facts is None:
            opened = open_artifact(
                self.artifact, Backend.TENSORRT, manifest=self._manifest, verify_hash=True
            )
            manifest = opened.manifest
            assert manifest is not None
            device = self._device or probe_device()
            check_engine_compatible(manifest, device)
            self._facts = PlanFacts(manifest, device, profile_of(manifest))
            require("tensorrt")
        return self._facts

    def __call__(self) -> PlanEngine:
        import tensorrt as trt

        from resnet_opt.tensorrt.logger import process_logger

        facts = self.check()
        logger, recorder = process_logger()
        since = recorder.mark()
        runtime = trt.Runtime(logger)
        built = facts.manifest.read_details(TensorRtBuildDetails)
        if built.version_compatible:
            runtime.engine_host_code_allowed = True  # the plan carries its lean runtime
        if built.dla_core is not None:
            runtime.DLA_core = built.dla_core
        engine = runtime.deserialize_cuda_engine(self.artifact.read_bytes())
        if engine is None:
            raise ResnetOptError(
                f"{self.artifact}: TensorRT could not deserialize it ("
                + recorder.last("no message", since)
                + "): rebuild with `resnet-opt build`"
            )
        return PlanEngine(facts, runtime, engine, logger, recorder)


def open_tensorrt(
    artifact: Path,
    *,
    threads: int | None = None,
    cuda_graph: bool = False,
    no_data_transfers: bool = False,
    manifest: Manifest | None = None,
    device: DeviceInfo | None = None,
    device_index: int = 0,
) -> TensorRtRunner:
    """A runner for a plan built by `resnet-opt build tensorrt`, loaded on enter through
    `EngineFromPlan` (`manifest` and `device`: already read, as a build verifying its own plan
    has them)."""
    loader = EngineFromPlan(artifact, manifest=manifest, device=device)
    return TensorRtRunner(
        loader,
        threads=threads,
        cuda_graph=cuda_graph,
        no_data_transfers=no_data_transfers,
        device_index=device_index,
    )


class TensorRtRunner(RunnerBase):
    """Runs the engine its loader (`EngineFromPlan`) deserializes, on its own CUDA context."""

    backend = Backend.TENSORRT

    def __init__(
        self,
        loader: EngineFromPlan,
        *,
        threads: int | None = None,
        cuda_graph: bool = False,
        no_data_transfers: bool = False,
        device_index: int = 0,
    ) -> None:
        super().__init__(loader.artifact)
        self._loader = loader
        self.threads = threads  # host threads do not apply to a GPU engine; recorded as given
        self.cuda_graph = cuda_graph
        self.no_data_transfers = no_data_transfers
        self._resident: dict[str, np.ndarray] = {}  # input arrays already on the device
        self._last: dict[str, np.ndarray] = {}  # the outputs copied back for them
        self.device_index = device_index
        self._ctx: Context | None = None
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._stream: Stream | None = None
        self._tensors: list[_Tensor] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._cudart: CudaDriver | None = None  # cuda-python's driver API, for CUDA graphs
        self._bindings_checked = False
        self._activations: DeviceAllocation | None = None  # shared by the per-batch contexts
        self._graphs: dict[tuple[tuple[int, ...], ...], _ShapeGraph] = {}
        self.graph_fallback: str | None = None  # why the graphs were given up, if they were
        self.profile: BatchProfile | None = None

    # lifecycle ---------------------------------------------------------------------------
    def _open(self) -> None:
        facts = self._loader.check()  # before any GPU work: a plan for another device is refused
        self.manifest = facts.manifest
        self.device_info = facts.device
        self.profile = facts.profile
        if self.cuda_graph:
            self._cudart = load_cuda_driver()  # before any GPU work: one line if it is missing
        cuda = load_driver()
        cuda.init()
        self._ctx = cuda.Device(self.device_index).retain_primary_context()
        self._ctx.push()
        self._load(self._loader())  # on failure, RunnerBase.__enter__ calls _close

    def _load(self, loaded: PlanEngine) -> None:
        import tensorrt as trt

        cuda = load_driver()
        self._logger, self._recorder = loaded.logger, loaded.recorder
        since = self._recorder.mark()
        runtime, engine = loaded.runtime, loaded.engine
        context = engine.create_execution_context()
        if context is None:
            raise ResnetOptError(
                f"{self.artifact}: TensorRT could not create an execution context ("
                + self._recorder.last("out of GPU memory?", since)
                + ")"
            )
        self._runtime, self._engine, self._context = runtime, engine, context
        self._stream = cuda.Stream()
        tensors = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = numpy_dtype(engine.get_tensor_dtype(name).name, name)
            tensors.append((name, is_input, dtype))
        # the largest shapes: every input at its profile maximum, then ask for the outputs
        for name, is_input, _ in tensors:
            if is_input:
                top = dims(engine.get_tensor_profile_shape(name, 0)[2])
                self._set_shape(name, top)
        for name, is_input, dtype in tensors:
            shape = self._shapes[name] if is_input else dims(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ResnetOptError(f"{self.artifact}: output {name!r} has no fixed size {shape}")
            tensor = _Tensor(name, is_input, dtype, shape)
            volume = int(np.prod(shape))
            tensor.host = cuda.pagelocked_empty(volume, dtype)
            tensor.device = cuda.mem_alloc(max(1, volume * dtype.itemsize))
            if not context.set_tensor_address(name, int(tensor.device)):
                raise ResnetOptError(f"TensorRT refused the buffer of tensor {name!r}")
            self._tensors.append(tensor)

    def _close(self) -> None:
        for entry in self._graphs.values():
            if entry.graph is not None:
                entry.graph.close()
        self._graphs.clear()
        if self._activations is not None:
            self._activations.free()
            self._activations = None
        self._resident, self._last = {}, {}
        for tensor in self._tensors:
            if tensor.device is not None:
                tensor.device.free()
        self._tensors = []
        self._context = self._engine = self._runtime = self._stream = None
        if self._ctx is not None:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None

    # protocol ----------------------------------------------------------------------------
    def _live(self) -> list[_Tensor]:
        self._require_open()
        return self._tensors

    def _spec(self, tensor: _Tensor) -> TensorSpec:
        assert self.profile is not None
        batch: Dim = tensor.max_shape[0] if self.profile.fixed else "batch"
        return TensorSpec(tensor.name, (batch, *tensor.max_shape[1:]), tensor.dtype)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(self._spec(t) for t in self._live() if t.is_input)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(self._spec(t) for t in self._live() if not t.is_input)

    @property
    def info(self) -> RunnerInfo:
        self._live()
        built = self.manifest.read_details(TensorRtBuildDetails)
        core = built.dla_core
        device = self.device_info.describe()
        return RunnerInfo(
            backend=self.backend,
            device=f"DLA core {core} of {device}" if core is not None else device,
            precision=self.manifest.precision.value,
            threads=None,
            details={
                "tensorrt_version": self.device_info.tensorrt,
                "engine_tensorrt_version": built.tensorrt_version,
                "cuda_graph": self.cuda_graph,
                "cuda_graph_fallback": self.graph_fallback,
                "no_data_transfers": self.no_data_transfers,
                "profile": str(self.profile),
                "dla_core": core,
            },
        )

    @property
    def _exec(self) -> trt.IExecutionContext:
        if self._context is None:
            raise RuntimeError("runner used outside its `with` block")
        return self._context

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if self._shapes.get(name) == shape:
            return
        if not self._exec.set_input_shape(name, shape):
            raise ResnetOptError(
                f"TensorRT refused input shape {shape} for {name!r} (profile {self.profile})"
            )
        self._shapes[name] = shape

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = load_driver()
        tensors = self._live()
        inputs = [t for t in tensors if t.is_input]
        self.check_feed(feed, [t.name for t in inputs])
        stream = self._stream
        assert stream is not None  # set with the context
        if (
            self.no_data_transfers
            and self._last
            and all(self._resident.get(t.name) is feed[t.name] for t in inputs)
        ):
            self._execute()
            stream.synchronize()
            return {name: value.copy() for name, value in self._last.items()}
        for tensor in inputs:
            x = np.ascontiguousarray(feed[tensor.name], dtype=tensor.dtype)
            if x.ndim != len(tensor.max_shape) or x.shape[1:] != tensor.max_shape[1:]:
                raise ResnetOptError(
                    f"{self.artifact}: input {tensor.name!r} has shape {x.shape}, the engine "
                    f"takes (batch, {', '.join(map(str, tensor.max_shape[1:]))})"
                )
            assert self.profile is not None  # set on entry, from the manifest
            self.profile.check(int(x.shape[0]), self.manifest.artifact)
            self._set_shape(tensor.name, x.shape)
            view = tensor.host[: x.size].reshape(x.shape)
            np.copyto(view, x)
            cuda.memcpy_htod_async(tensor.device, view, stream)
        self._execute()
        results: dict[str, np.ndarray] = {}
        views = []
        for tensor in tensors:
            if tensor.is_input:
                continue
            shape = dims(self._exec.get_tensor_shape(tensor.name))
            view = tensor.host[: int(np.prod(shape))].reshape(shape)
            cuda.memcpy_dtoh_async(view, tensor.device, stream)
            views.append((tensor.name, view))
        stream.synchronize()
        for name, view in views:
            results[name] = view.copy()
        if self.no_data_transfers:
            self._resident = {t.name: feed[t.name] for t in inputs}
            self._last = {name: value.copy() for name, value in results.items()}
        return results

    def _enqueue(self, context: trt.IExecutionContext) -> None:
        assert self._stream is not None
        since = self._recorder.mark()
        if not context.execute_async_v3(self._stream.handle):
            raise ResnetOptError(
                f"{self.artifact}: TensorRT execution failed: "
                + self._recorder.last("no message", since)
            )

    def _execute(self) -> None:
        if not self.cuda_graph or self.graph_fallback is not None:
            self._enqueue(self._exec)
            return
        assert self._stream is not None and self._cudart is not None
        key = tuple(self._shapes[t.name] for t in self._tensors if t.is_input)
        entry = self._graphs.get(key)
        if entry is not None and entry.graph is not None:
            entry.graph.launch(self._stream.handle)
            return
        if entry is None:
            entry = self._graphs[key] = _ShapeGraph(self._shape_context())
        # the flushing enqueue: the first run of a context with its shapes is eager (and gives
        # this call's outputs); TensorRT's shape-dependent setup must not land in the graph
        self._enqueue(entry.context)
        self._stream.synchronize()
        context, handle = entry.context, self._stream.handle
        try:
            if not self._bindings_checked:
                check_bindings_fit(self._cudart, probe("cuda.bindings")[0] or "")
                self._bindings_checked = True
            entry.graph = capture(
                self._cudart, handle, lambda: bool(context.execute_async_v3(handle))
            )
        except GraphCaptureError as exc:
            self.graph_fallback = str(exc)
            log.warning(
                "%s: CUDA graph capture failed (%s); running without CUDA graphs",
                self.artifact.name,
                exc,
            )

    def _shape_context(self) -> trt.IExecutionContext:
        """A new execution context with the buffers and the current input shapes; where this
        TensorRT has it (`shares_activation_memory`), its activation memory is the one buffer
        every per-batch context shares (they run one at a time on the one stream)."""
        import tensorrt as trt

        assert self._engine is not None
        since = self._recorder.mark()
        shared = shares_activation_memory(str(trt.__version__))
        if shared:
            strategy = trt.ExecutionContextAllocationStrategy.USER_MANAGED
            context = self._engine.create_execution_context(strategy)
        else:
            context = self._engine.create_execution_context()
        if context is not None and shared:
            size = int(self._engine.device_memory_size_v2)
            if self._activations is None:
                self._activations = load_driver().mem_alloc(max(1, size))
            context.set_device_memory(int(self._activations), size)
        if context is None:
            raise ResnetOptError(
                f"{self.artifact}: TensorRT could not create an execution context for a CUDA "
                f"graph ({self._recorder.last('out of GPU memory?', since)})"
            )
        for tensor in self._tensors:
            if tensor.is_input and not context.set_input_shape(
                tensor.name, self._shapes[tensor.name]
            ):
                raise ResnetOptError(
                    f"TensorRT refused input shape {self._shapes[tensor.name]} for "
                    f"{tensor.name!r} (profile {self.profile})"
                )
            assert tensor.device is not None  # allocated on entry
            if not context.set_tensor_address(tensor.name, int(tensor.device)):
                raise ResnetOptError(f"TensorRT refused the buffer of tensor {tensor.name!r}")
        return context
