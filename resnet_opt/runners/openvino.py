"""OpenVINO runner (optional extra `openvino`): the fastest CPU runtime for our Q/DQ artifacts.

OpenVINO runs an INT8 Q/DQ ONNX of any layout with its own int8 kernels (VNNI/AMX), the
TensorRT layout included, so one quantized artifact serves the GPU and the CPU.

Precision is the trap: on a CPU with bf16 support (AVX512_BF16, AMX) OpenVINO's default inference
precision is bf16, so an "FP32" model silently runs in bf16 (about 3× faster here, and not FP32's
numbers). This runner therefore asks for f32 unless told otherwise (the ONNX carries the precision,
ARCHITECTURE.md, "Facts the design rests on"), reads back the precision the compiled model
actually uses, refuses a mismatch with an explicit hint, and reports it in `info`;
`precision="default"` lets the device choose and records what it chose.

Shapes: OpenVINO is fastest with static shapes, so a model with a symbolic batch is reshaped to
the batch it is fed and compiled once per shape (a few kept). A compiled blob cannot be reshaped:
it runs the shapes it was compiled for.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.core.build_details import CpuFacts, WeightsFile
from resnet_opt.core.details import Fields, written
from resnet_opt.core.manifest import manifest_path
from resnet_opt.core.validation import thread_count
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.runners.base import Backend, Dim, RunnerBase, RunnerInfo, TensorSpec
from resnet_opt.runners.loaders import Loader, detail, detail_choice, open_artifact

DEFAULT_DEVICE = "CPU"
MAX_COMPILED = 4  # compiled shapes kept per runner (a bench's batch sizes)


class OvPrecision(str, Enum):
    """INFERENCE_PRECISION_HINT: what the float parts of the model compute in."""

    F32 = "f32"
    BF16 = "bf16"
    F16 = "f16"
    DEFAULT = "default"  # the device's choice (bf16 on bf16-capable CPUs), recorded as it ran


class OvKind(str, Enum):
    """What an OpenVINO artifact file is."""

    ONNX = "onnx"  # read by OpenVINO's ONNX frontend
    IR = "ir"  # OpenVINO IR: .xml graph + .bin weights (portable across devices and versions)
    COMPILED = "compiled"  # an exported compiled model (.blob): tied to device and version

    @classmethod
    def of(cls, path: Path) -> OvKind:
        suffix = path.suffix.lower()
        kinds = {".onnx": cls.ONNX, ".xml": cls.IR, ".blob": cls.COMPILED}
        if suffix not in kinds:
            raise ResnetOptError(
                f"{path}: the OpenVINO runner reads .onnx, .xml (OpenVINO IR) or .blob "
                "(a compiled model from `resnet-opt build --backend openvino`)"
            )
        return kinds[suffix]


def precision_name(element_type: Any) -> str:
    """OpenVINO's element type as our short name: f32, bf16, f16 (its own spelling)."""
    return str(element_type.get_type_name())


def compile_config(threads: int | None, precision: OvPrecision | None) -> dict[str, Any]:
    """The compile_model properties of the runner and of a build's compiled blob.

    One stream and the latency hint: a synchronous request then uses every thread it is given.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    if precision is not None and precision is not OvPrecision.DEFAULT:
        config["INFERENCE_PRECISION_HINT"] = precision.value
    return config


def ov_message(exc: BaseException) -> str:
    """The line of an OpenVINO exception that says what went wrong (not where)."""
    noise = ("Exception from ", "Check '", "FrontEnd API failed")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(noise)]
    return (useful or lines or [type(exc).__name__])[-1]


def check_precision(artifact: Path, asked: OvPrecision, device: str, compiled: Any) -> str:
    """The precision `compiled` runs in, refused when it is not the one asked for (unless the
    device's default was asked for: then whatever it chose is recorded)."""
    ran = precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if asked is not OvPrecision.DEFAULT and ran != asked.value:
        raise ResnetOptError(
            f"{artifact}: asked OpenVINO for {asked.value} on {device}, it would run "
            f"{ran}; choose a precision this device supports"
        )
    return ran


def _dims(partial_shape: Any) -> tuple[Dim, ...]:
    return tuple(int(d.get_length()) if d.is_static else None for d in partial_shape)


def _name(port: Any) -> str:
    return str(port.get_any_name())


@dataclass(frozen=True)
class OvSettings:
    """How to load an OpenVINO artifact: device, precision hint, threads, the batch compiled on
    entry, what the file is and (for an IR with another name) its weights file."""

    kind: OvKind
    device: str = DEFAULT_DEVICE
    precision: OvPrecision = OvPrecision.F32
    threads: int | None = None
    batch: int | None = None
    weights: Path | None = None


@dataclass(frozen=True)
class OvModel:
    """What OpenVINO loaded: a model to compile per shape, or a compiled blob as imported."""

    ov: Any  # the openvino module
    core: Any
    settings: OvSettings
    model: Any = None  # ov.Model; None for a compiled blob
    compiled: Any = None  # the imported blob; None for a model
    built: bool = False


@dataclass(frozen=True)
class ModelFromFile:
    """An OpenVINO model from a file and explicit settings; reads no manifest (a build checks
    its own temporary files with it). The device must be one OpenVINO sees here."""

    artifact: Path
    settings: OvSettings
    built: bool = False
    built_with: str | None = None  # the OpenVINO version a compiled blob was exported by

    def __call__(self) -> OvModel:
        ov = require("openvino")
        if not self.artifact.is_file():
            raise ResnetOptError(f"{self.artifact}: no such file")
        core = ov.Core()
        devices = [str(d) for d in core.available_devices]
        device = self.settings.device
        if device.split(".")[0] not in {d.split(".")[0] for d in devices}:
            raise ResnetOptError(
                f"OpenVINO device {device!r} is not available here (available: "
                f"{', '.join(devices) or 'none'})"
            )
        if self.settings.kind is OvKind.COMPILED:
            blob = self._import_blob(ov, core)
            return OvModel(ov, core, self.settings, compiled=blob, built=self.built)
        return OvModel(ov, core, self.settings, model=self._read_model(ov, core), built=self.built)

    def _read_model(self, ov: Any, core: Any) -> Any:
        if self.settings.kind is OvKind.ONNX:
            frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
            # ask the ONNX frontend alone: the generic reader tries every frontend on a bad file
            if not frontend.supported(str(self.artifact)):
                raise ResnetOptError(f"{self.artifact}: not an ONNX model OpenVINO can read")
        try:
            if self.settings.weights is not None:
                return core.read_model(str(self.artifact), str(self.settings.weights))
            return core.read_model(str(self.artifact))
        except Exception as exc:  # RuntimeError / GeneralFailure with C++ source locations
            raise ResnetOptError(
                f"{self.artifact}: OpenVINO cannot read it ({ov_message(exc)})"
            ) from exc

    def _import_blob(self, ov: Any, core: Any) -> Any:
        here = str(ov.__version__)
        if self.built_with is not None and self.built_with != here:
            raise ResnetOptError(
                f"{self.artifact}: compiled with OpenVINO {self.built_with}, this is {here}: "
                "rebuild with `resnet-opt build --backend openvino` (or build the portable IR, "
                ".xml)"
            )
        s = self.settings
        try:
            return core.import_model(
                self.artifact.read_bytes(), s.device, compile_config(s.threads, s.precision)
            )
        except Exception as exc:
            raise ResnetOptError(
                f"{self.artifact}: OpenVINO cannot import this compiled model ({ov_message(exc)});"
                " rebuild it here with `resnet-opt build --backend openvino`"
            ) from exc


@dataclass(frozen=True)
class OvRunnerDetails:
    """`details["runner"]` of a `build openvino` manifest: how ModelFromArtifact compiles the
    artifact as built (None: not recorded, the loader's default applies)."""

    device: str | None = None
    precision: OvPrecision | None = None
    threads: int | None = None

    @property
    def providers(self) -> tuple[str, ...]:
        return ()  # not ONNX Runtime

    def to_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "precision": None if self.precision is None else self.precision.value,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "manifest") -> OvRunnerDetails:
        return cls(
            device=detail(data, "device", str, source) or None,
            precision=detail_choice(data, "precision", OvPrecision, source),
            threads=detail(data, "threads", int, source),
        )


class OvForm(str, Enum):
    """What `build --backend openvino` writes."""

    IR = "ir"  # .xml + .bin, portable
    COMPILED = "compiled"  # .blob, tied to the device and the OpenVINO version

    @property
    def suffix(self) -> str:
        return ".xml" if self is OvForm.IR else ".blob"


@dataclass(frozen=True)
class OvBuildDetails:
    """`details` of a `build openvino` manifest (schema v1; `core/build_details.py` says how
    absent keys read): the form and what it is tied to (device, OpenVINO version), the precision
    hint and what ran, the weights file an IR keeps beside it, and `runner`, which
    `OvRunnerDetails` reads."""

    backend: str | None = Backend.OPENVINO.value
    jetson_facts: Mapping[str, Any] | None = None  # `jetson.facts` (None off a Jetson)
    form: OvForm | None = None
    portable: bool | None = None
    device: str | None = None
    device_name: str | None = None  # FULL_DEVICE_NAME as OpenVINO reported it
    precision_hint: OvPrecision | None = None
    inference_precision: str | None = None  # what the compiled model reported it ran in
    threads: int | None = None
    batch: int | None = None
    openvino: str | None = None  # its version (a compiled blob loads on this one only)
    weights_compressed_to_fp16: bool | None = None
    cpu: CpuFacts | None = None
    build_seconds: float | None = None
    size_bytes: int | None = None
    runner: Mapping[str, Any] | None = None
    weights: WeightsFile | None = None  # IR only: the .bin (absent for a blob)
    absent: frozenset[str] = frozenset()

    KEYS = (
        "backend",
        "jetson_facts",
        "form",
        "portable",
        "device",
        "device_name",
        "precision_hint",
        "inference_precision",
        "threads",
        "batch",
        "openvino",
        "weights_compressed_to_fp16",
        "cpu",
        "build_seconds",
        "size_bytes",
        "runner",
        "weights",
    )

    @property
    def weights_file(self) -> WeightsFile | None:
        return self.weights

    def to_dict(self) -> dict[str, object]:
        hint = self.precision_hint
        return written(
            [
                ("backend", self.backend),
                ("jetson_facts", None if self.jetson_facts is None else dict(self.jetson_facts)),
                ("form", None if self.form is None else self.form.value),
                ("portable", self.portable),
                ("device", self.device),
                ("device_name", self.device_name),
                ("precision_hint", None if hint is None else hint.value),
                ("inference_precision", self.inference_precision),
                ("threads", self.threads),
                ("batch", self.batch),
                ("openvino", self.openvino),
                ("weights_compressed_to_fp16", self.weights_compressed_to_fp16),
                ("cpu", None if self.cpu is None else self.cpu.to_dict()),
                ("build_seconds", self.build_seconds),
                ("size_bytes", self.size_bytes),
                ("runner", None if self.runner is None else dict(self.runner)),
                ("weights", None if self.weights is None else self.weights.to_dict()),
            ],
            self.absent,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OvBuildDetails:
        f = Fields(data)
        cpu, weights = f.maybe_section("cpu"), f.maybe_section("weights")
        return cls(
            backend=f.maybe("backend", str),
            jetson_facts=f.maybe("jetson_facts", dict),
            form=f.maybe_choice("form", OvForm),
            portable=f.maybe("portable", bool),
            device=f.maybe("device", str),
            device_name=f.maybe("device_name", str),
            precision_hint=f.maybe_choice("precision_hint", OvPrecision),
            inference_precision=f.maybe("inference_precision", str),
            threads=f.maybe("threads", int),
            batch=f.maybe("batch", int),
            openvino=f.maybe("openvino", str),
            weights_compressed_to_fp16=f.maybe("weights_compressed_to_fp16", bool),
            cpu=None if cpu is None else CpuFacts.read(cpu),
            build_seconds=f.maybe("build_seconds", int, float),
            size_bytes=f.maybe("size_bytes", int),
            runner=f.maybe("runner", dict),
            weights=None if weights is None else WeightsFile.read(weights),
            absent=f.absent(*cls.KEYS),
        )


@dataclass(frozen=True)
class ModelFromArtifact:
    """An OpenVINO model from an artifact file: options left None come from its build manifest
    (device, precision, threads), else CPU, f32 and OpenVINO's thread count; a compiled blob is
    refused unless this OpenVINO exported it."""

    artifact: Path
    kind: OvKind
    threads: int | None = None
    device: str | None = None
    precision: OvPrecision | None = None
    batch: int | None = None
    weights: Path | None = None

    def __call__(self) -> OvModel:
        require("openvino")
        opened = open_artifact(self.artifact, Backend.OPENVINO)
        given = OvRunnerDetails.from_dict(opened.recorded, source=str(manifest_path(self.artifact)))
        device = self.device or given.device
        precision = self.precision or given.precision
        threads = self.threads if self.threads is not None else given.threads
        settings = OvSettings(
            kind=self.kind,
            device=device or DEFAULT_DEVICE,
            precision=precision or OvPrecision.F32,
            threads=threads,
            batch=self.batch,
            weights=self.weights,
        )
        # "form" and "openvino" say whether it is a compiled blob and which OpenVINO made it
        built = opened.built_as(OvBuildDetails)
        compiled = built is not None and built.form is OvForm.COMPILED
        built_with = built.openvino if built is not None and compiled else None
        loader = ModelFromFile(self.artifact, settings, built is not None, built_with)
        return loader()


def open_openvino(
    artifact: Path,
    *,
    threads: int | None = None,
    device: str | None = None,
    precision: OvPrecision | str | None = None,
    batch: int | None = None,
    kind: OvKind | None = None,
    weights: Path | None = None,
) -> OpenVinoRunner:
    """A runner for an .onnx, an OpenVINO IR (.xml + .bin) or a compiled .blob, loaded on enter
    through ModelFromArtifact. The options given are checked now.

    `batch` compiles that batch on entry (else batch 1 for a symbolic batch, and each new batch
    when first fed); `kind`/`weights` name what the file is when its name does not tell.
    """
    artifact = Path(artifact)
    thread_count(threads)
    if batch is not None and batch < 1:
        raise UsageError(f"batch must be positive, not {batch}")
    try:
        hint = OvPrecision(precision) if precision is not None else None
    except ValueError as exc:
        choices = ", ".join(p.value for p in OvPrecision)
        raise UsageError(f"unknown OpenVINO precision {precision!r} ({choices})") from exc
    loader = ModelFromArtifact(
        artifact, kind or OvKind.of(artifact), threads, device, hint, batch, weights
    )
    return OpenVinoRunner(loader)


class OpenVinoRunner(RunnerBase):
    """Runs what its loader made (ModelFromArtifact, ModelFromFile): compiles a model once per
    input shape (a few kept), or runs a compiled blob as imported."""

    backend = Backend.OPENVINO

    def __init__(self, loader: Loader[OvModel]) -> None:
        super().__init__(loader.artifact)
        self._loader = loader
        self._loaded: OvModel | None = None
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._compiled: OrderedDict[tuple[tuple[int, ...], ...], tuple[Any, Any]] = OrderedDict()
        self._dynamic_blob: tuple[Any, Any] | None = None
        self._last: Any = None
        self._ran_precision: str | None = None

    # -- loading -------------------------------------------------------------------------------

    def _open(self) -> None:
        loaded = self._loaded = self._loader()
        if loaded.compiled is not None:
            self._use_blob(loaded.compiled)
        else:
            self._inputs = self._specs(loaded.model.inputs)
            self._outputs = self._specs(loaded.model.outputs)
            self._compile_initial()

    @property
    def _ov(self) -> Any:
        assert self._loaded is not None
        return self._loaded.ov

    @property
    def _settings(self) -> OvSettings:
        assert self._loaded is not None
        return self._loaded.settings

    def _use_blob(self, compiled: Any) -> None:
        self._inputs = self._specs(compiled.inputs)
        self._outputs = self._specs(compiled.outputs)
        entry = (compiled, compiled.create_infer_request())
        self._check_precision(compiled)
        if any(d is None for spec in self._inputs for d in spec.shape):
            self._dynamic_blob = entry
        else:
            self._compiled[tuple(self._static(spec) for spec in self._inputs)] = entry
        self._last = compiled

    def _compile_initial(self) -> None:
        """Compile one shape on entry, so that a bad option fails here and `info` can tell."""
        shapes = []
        for spec in self._inputs:
            dims = list(spec.shape)
            if dims and dims[0] is None:
                dims[0] = self._settings.batch or 1
            elif self._settings.batch is not None and dims and dims[0] != self._settings.batch:
                raise ResnetOptError(
                    f"{self.artifact}: input {spec.name!r} has a fixed batch of {dims[0]}, "
                    f"not {self._settings.batch}"
                )
            if any(d is None for d in dims):
                return  # other symbolic dims: compile when the first input shows them
            shapes.append(tuple(int(d) for d in dims if d is not None))
        self._compile(tuple(shapes))

    def _compile(self, shapes: tuple[tuple[int, ...], ...]) -> tuple[Any, Any]:
        assert self._loaded is not None
        model, s = self._loaded.model, self._settings
        if any(d is None for spec in self._inputs for d in spec.shape):
            model.reshape(
                {spec.name: list(shape) for spec, shape in zip(self._inputs, shapes, strict=True)}
            )
        try:
            compiled = self._loaded.core.compile_model(
                model, s.device, compile_config(s.threads, s.precision)
            )
        except Exception as exc:
            raise ResnetOptError(
                f"{self.artifact}: OpenVINO cannot compile it for {s.device} ({ov_message(exc)})"
            ) from exc
        self._check_precision(compiled)
        entry = (compiled, compiled.create_infer_request())
        self._compiled[shapes] = entry
        while len(self._compiled) > MAX_COMPILED:
            self._compiled.popitem(last=False)
        self._last = compiled
        return entry

    def _check_precision(self, compiled: Any) -> None:
        s = self._settings
        self._ran_precision = check_precision(self.artifact, s.precision, s.device, compiled)

    @staticmethod
    def _static(spec: TensorSpec) -> tuple[int, ...]:
        return tuple(int(d) for d in spec.shape if d is not None)

    @staticmethod
    def _specs(ports: Any) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(
                _name(port),
                _dims(port.get_partial_shape()),
                np.dtype(port.get_element_type().to_dtype()),
            )
            for port in ports
        )

    def _close(self) -> None:
        self._compiled.clear()
        self._dynamic_blob = None
        self._last = None
        self._loaded = None

    # -- protocol ------------------------------------------------------------------------------

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        self._require_open()
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        self._require_open()
        return self._outputs

    @property
    def info(self) -> RunnerInfo:
        """What ran: device, the precision read back from the compiled model, threads, streams."""
        self._require_open()
        assert self._loaded is not None
        s = self._settings
        details: dict[str, Any] = {
            "openvino": str(self._ov.__version__),
            "kind": s.kind.value,
            "precision_hint": s.precision.value,
            "inference_precision": self._ran_precision,
            "compiled_shapes": [list(map(list, key)) for key in self._compiled],
            "built": self._loaded.built,
        }
        threads = s.threads
        with contextlib.suppress(Exception):
            details["device_name"] = str(
                self._loaded.core.get_property(s.device, "FULL_DEVICE_NAME")
            )
        if self._last is not None:
            with contextlib.suppress(Exception):
                threads = int(self._last.get_property("INFERENCE_NUM_THREADS")) or threads
            for key in ("NUM_STREAMS", "PERFORMANCE_HINT", "EXECUTION_DEVICES"):
                with contextlib.suppress(Exception):
                    value = self._last.get_property(key)
                    details[key.lower()] = (
                        [str(v) for v in value] if isinstance(value, list) else str(value)
                    )
        return RunnerInfo(
            backend=self.backend,
            device=s.device,
            precision=self._ran_precision,
            threads=threads,
            details=details,
        )

    def _entry_for(self, shapes: tuple[tuple[int, ...], ...]) -> tuple[Any, Any]:
        entry = self._compiled.get(shapes)
        if entry is not None:
            self._compiled.move_to_end(shapes)
            return entry
        for spec, shape in zip(self._inputs, shapes, strict=True):
            fits = len(shape) == len(spec.shape) and all(
                d is None or d == s for d, s in zip(spec.shape, shape, strict=True)
            )
            if not fits:
                shown = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
                raise ResnetOptError(
                    f"{self.artifact}: inference failed (input {spec.name!r} of shape {shown} "
                    f"was fed {list(shape)})"
                )
        if self._dynamic_blob is not None:
            return self._dynamic_blob
        return self._compile(shapes)

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require_open()
        names = [spec.name for spec in self._inputs]
        self.check_feed(feed, names)
        arrays = [np.ascontiguousarray(feed[name]) for name in names]
        compiled, request = self._entry_for(tuple(tuple(a.shape) for a in arrays))
        try:
            result = request.infer(dict(zip(names, arrays, strict=True)), share_inputs=True)
        except Exception as exc:
            raise ResnetOptError(f"{self.artifact}: inference failed ({ov_message(exc)})") from exc
        return {
            spec.name: np.asarray(result[port])
            for spec, port in zip(self._outputs, compiled.outputs, strict=True)
        }
