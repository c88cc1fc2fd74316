"""ONNX Runtime runner: the reference for every artifact's numbers on the CPU.

Threads are fixed and intra-op spinning is off by default: when two sessions alternate (parity
checks, benchmarks that compare two models) spinning pools fight over the cores and distort the
comparison (ARCHITECTURE.md, "Measuring").

Execution providers: CPU unless asked otherwise; an asked-for provider that this onnxruntime lacks
is refused, and one that ORT registers but then drops (CUDA without cuDNN, say) is refused too,
instead of reporting CPU numbers under a GPU name. `info` says which provider ran.

An artifact written by `build --backend onnxruntime` (an ORT-optimized .onnx or an .ort file) is
loaded as it was built: its manifest's "runner" options (optimization level at load, providers,
threads, format) are the defaults of `SessionFromArtifact`, and a layout tied to one CPU family is
refused on another. The runner itself only runs the session its loader made.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
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
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.runners.base import Backend, Dim, RunnerBase, RunnerInfo, TensorSpec
from resnet_opt.runners.loaders import (
    Loader,
    detail,
    detail_choice,
    detail_names,
    open_artifact,
)

CPU = "CPUExecutionProvider"


class OrtProvider(str, Enum):
    """The `--provider` choice: ONNX Runtime execution providers resnet-opt knows how to ask for."""

    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"

    @property
    def ort_name(self) -> str:
        return {
            OrtProvider.CPU: CPU,
            OrtProvider.CUDA: "CUDAExecutionProvider",
            OrtProvider.TENSORRT: "TensorrtExecutionProvider",
        }[self]


class OrtFormat(str, Enum):
    """How an ONNX Runtime model file is stored: protobuf ONNX or ORT's flatbuffer format."""

    ONNX = "onnx"
    ORT = "ort"

    @classmethod
    def of(cls, path: Path) -> OrtFormat:
        """ORT itself tells the two apart by the suffix only."""
        return cls.ORT if path.suffix.lower() == ".ort" else cls.ONNX


# ORT element type strings -> numpy dtypes
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class GraphOptimization(str, Enum):
    """ORT's graph optimization levels; "all" adds the NCHWc layout, tied to the CPU's ISA."""

    DISABLED = "disabled"
    BASIC = "basic"
    EXTENDED = "extended"
    ALL = "all"

    def ort(self) -> Any:
        ort = require("onnxruntime")
        level = ort.GraphOptimizationLevel
        return {
            GraphOptimization.DISABLED: level.ORT_DISABLE_ALL,
            GraphOptimization.BASIC: level.ORT_ENABLE_BASIC,
            GraphOptimization.EXTENDED: level.ORT_ENABLE_EXTENDED,
            GraphOptimization.ALL: level.ORT_ENABLE_ALL,
        }[self]


@dataclass(frozen=True)
class OrtRunnerDetails:
    """`details["runner"]` of a `build onnxruntime` manifest: how SessionFromArtifact loads the
    artifact as built (None: not recorded, the loader's default applies)."""

    # the level at load: "disabled" (the saved graph is final) or "all" (a portable build)
    optimization: GraphOptimization | None = None
    providers: tuple[str, ...] = ()  # ORT's names, as resolved at build
    threads: int | None = None
    model_format: OrtFormat | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "optimization": None if self.optimization is None else self.optimization.value,
            "providers": list(self.providers),
            "threads": self.threads,
            "model_format": None if self.model_format is None else self.model_format.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "manifest") -> OrtRunnerDetails:
        return cls(
            optimization=detail_choice(data, "optimization", GraphOptimization, source),
            providers=detail_names(data, "providers", source) or (),
            threads=detail(data, "threads", int, source),
            model_format=detail_choice(data, "model_format", OrtFormat, source),
        )


@dataclass(frozen=True)
class OrtBuildDetails:
    """`details` of a `build onnxruntime` manifest (schema v1; `core/build_details.py` says how
    absent keys read): the saved format, the optimization level and whether it ties the artifact
    to this CPU family (`hardware_specific`, with `cpu`), the providers, and `runner`, which
    `OrtRunnerDetails` reads."""

    backend: str | None = Backend.ONNXRUNTIME.value
    jetson_facts: Mapping[str, Any] | None = None  # `jetson.facts` (None off a Jetson)
    format: OrtFormat | None = None
    provider: str | None = None  # ORT's name of the first provider
    providers: tuple[str, ...] | None = None
    optimization: GraphOptimization | None = None  # the level the saved graph was built at
    portable: bool | None = None
    hardware_specific: bool | None = None  # NCHWc layout: this CPU family only
    threads: int | None = None
    onnxruntime: str | None = None  # its version
    cpu: CpuFacts | None = None
    build_seconds: float | None = None
    size_bytes: int | None = None
    runner: Mapping[str, Any] | None = None
    absent: frozenset[str] = frozenset()

    KEYS = (
        "backend",
        "jetson_facts",
        "format",
        "provider",
        "providers",
        "optimization",
        "portable",
        "hardware_specific",
        "threads",
        "onnxruntime",
        "cpu",
        "build_seconds",
        "size_bytes",
        "runner",
    )

    @property
    def weights_file(self) -> WeightsFile | None:
        return None  # one self-contained file

    def to_dict(self) -> dict[str, object]:
        return written(
            [
                ("backend", self.backend),
                ("jetson_facts", _plain(self.jetson_facts)),
                ("format", None if self.format is None else self.format.value),
                ("provider", self.provider),
                ("providers", None if self.providers is None else list(self.providers)),
                ("optimization", None if self.optimization is None else self.optimization.value),
                ("portable", self.portable),
                ("hardware_specific", self.hardware_specific),
                ("threads", self.threads),
                ("onnxruntime", self.onnxruntime),
                ("cpu", None if self.cpu is None else self.cpu.to_dict()),
                ("build_seconds", self.build_seconds),
                ("size_bytes", self.size_bytes),
                ("runner", _plain(self.runner)),
            ],
            self.absent,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OrtBuildDetails:
        f = Fields(data)
        cpu = f.maybe_section("cpu")
        return cls(
            backend=f.maybe("backend", str),
            jetson_facts=f.maybe("jetson_facts", dict),
            format=f.maybe_choice("format", OrtFormat),
            provider=f.maybe("provider", str),
            providers=f.maybe_texts("providers"),
            optimization=f.maybe_choice("optimization", GraphOptimization),
            portable=f.maybe("portable", bool),
            hardware_specific=f.maybe("hardware_specific", bool),
            threads=f.maybe("threads", int),
            onnxruntime=f.maybe("onnxruntime", str),
            cpu=None if cpu is None else CpuFacts.read(cpu),
            build_seconds=f.maybe("build_seconds", int, float),
            size_bytes=f.maybe("size_bytes", int),
            runner=f.maybe("runner", dict),
            absent=f.absent(*cls.KEYS),
        )


def _plain(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else dict(data)


def session_options(
    *,
    threads: int | None,
    spinning: bool = False,
    optimization: GraphOptimization = GraphOptimization.ALL,
    optimized_model_path: Path | None = None,
    model_format: OrtFormat | None = None,
    saved_format: OrtFormat | None = None,
) -> Any:
    """SessionOptions with fixed threads and explicit spinning (used by runner and build).

    `model_format` / `saved_format` name the format of the file read / written when its suffix
    does not tell ORT (the temporary names of a build in progress).
    """
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    if thread_count(threads) is not None:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.graph_optimization_level = optimization.ort()
    if optimized_model_path is not None:
        opts.optimized_model_filepath = str(optimized_model_path)
    if model_format is not None:
        opts.add_session_config_entry("session.load_model_format", model_format.value.upper())
    if saved_format is not None:
        opts.add_session_config_entry("session.save_model_format", saved_format.value.upper())
    opts.log_severity_level = 3  # errors only: warnings go through our own messages
    return opts


def provider_names(requested: Sequence[str | OrtProvider] | None) -> list[str]:
    """ORT's provider names for `--provider` choices and/or names ORT itself uses."""
    return [p.ort_name if isinstance(p, OrtProvider) else str(p) for p in requested or ()]


def resolve_providers(requested: Sequence[str | OrtProvider] | None) -> list[str]:
    """The providers to ask for: the requested ones (refused when absent), else CPU."""
    ort = require("onnxruntime")
    available = list(ort.get_available_providers())
    requested = provider_names(requested)
    if not requested:
        return [CPU]
    missing = [p for p in requested if p not in available]
    if missing:
        raise ResnetOptError(
            f"ONNX Runtime provider {', '.join(missing)} is not available in this onnxruntime "
            f"(available: {', '.join(available)})"
        )
    return [*requested, CPU] if CPU not in requested else list(requested)


def check_providers_ran(artifact: Path, asked: Sequence[str], registered: Sequence[str]) -> None:
    """Refuse a session from which ORT silently dropped an asked-for provider.

    ORT registers CUDA/TensorRT only when their libraries load, and otherwise carries on with the
    CPU; numbers measured that way must not be reported under the GPU provider's name.
    """
    dropped = [p for p in asked if p != CPU and p not in registered]
    if dropped:
        raise ResnetOptError(
            f"{artifact}: ONNX Runtime did not register {', '.join(dropped)} (it would run on "
            f"{', '.join(registered) or 'nothing'}); check its CUDA/cuDNN/TensorRT libraries"
        )


def cpu_layout() -> str | None:
    """The CPU family an NCHWc layout (ORT level "all") is specific to, None when unknown.

    MLAS blocks NCHWc channels by 16 with AVX-512F and by 8 without, so a model saved with that
    layout runs only on the same family; other ISA features are dispatched at run time.
    """
    from resnet_opt.environment import cpu_flags

    arch = platform.machine().lower()
    if arch not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return arch or None
    flags = cpu_flags()
    if not flags:
        return None
    isa = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse"
    return f"x86_64/{isa}"


def check_cpu_layout(artifact: Path, built_for: str | None, here: str | None) -> None:
    """Refuse an artifact whose NCHWc layout was made for another CPU family."""
    if built_for is None or here is None or built_for == here:
        return
    raise ResnetOptError(
        f"{artifact}: built for a {built_for} CPU layout, this CPU is {here}: rebuild with "
        "`resnet-opt build --backend onnxruntime` here (or with --portable)"
    )


@dataclass(frozen=True)
class OrtSettings:
    """Everything a session is made with: fixed threads, providers (ORT's names), spinning, the
    optimization level at load and the file's format."""

    threads: int | None = None
    providers: tuple[str, ...] = (CPU,)
    spinning: bool = False
    optimization: GraphOptimization = GraphOptimization.ALL
    model_format: OrtFormat = OrtFormat.ONNX


@dataclass(frozen=True)
class OrtSession:
    """A loaded InferenceSession and the settings it was made with (for `info`)."""

    session: Any
    settings: OrtSettings
    built: bool = False  # loaded as a `build --backend onnxruntime` artifact


@dataclass(frozen=True)
class SessionFromOnnx:
    """A session from a model file and explicit settings (Polygraphy's SessionFromOnnx).

    Reads no manifest: a build verifying its own temporary files, or a reference it must run as
    written, says exactly how to load them.
    """

    artifact: Path
    settings: OrtSettings = OrtSettings()
    built: bool = False

    def __call__(self) -> OrtSession:
        ort = require("onnxruntime")
        if not self.artifact.is_file():
            raise ResnetOptError(f"{self.artifact}: no such file")
        s = self.settings
        opts = session_options(
            threads=s.threads,
            spinning=s.spinning,
            optimization=s.optimization,
            model_format=s.model_format,
        )
        try:
            session = ort.InferenceSession(
                str(self.artifact), sess_options=opts, providers=list(s.providers)
            )
        except Exception as exc:  # ORT raises its own untyped errors (Fail, InvalidGraph, …)
            raise ResnetOptError(
                f"{self.artifact}: ONNX Runtime cannot load it ({first_line(exc)})"
            ) from exc
        check_providers_ran(self.artifact, s.providers, session.get_providers())
        return OrtSession(session, s, self.built)


@dataclass(frozen=True)
class SessionFromArtifact:
    """A session from an artifact file: options left None come from its build manifest.

    An artifact written by `build --backend onnxruntime` loads as it was built (its recorded
    optimization level, providers, threads and format fill what was not given), and one whose
    saved NCHWc layout is tied to another CPU family is refused. Without such a manifest the
    defaults apply: level "all", the CPU provider, ORT's own thread count.
    """

    artifact: Path
    threads: int | None = None
    providers: tuple[str, ...] | None = None  # ORT's names, already resolved
    spinning: bool = False
    optimization: GraphOptimization | None = None
    model_format: OrtFormat | None = None

    def __call__(self) -> OrtSession:
        require("onnxruntime")
        opened = open_artifact(self.artifact, Backend.ONNXRUNTIME)
        given = OrtRunnerDetails.from_dict(
            opened.recorded, source=str(manifest_path(self.artifact))
        )
        optimization = self.optimization or given.optimization or GraphOptimization.ALL
        providers = self.providers or tuple(
            resolve_providers(list(given.providers)) if given.providers else [CPU]
        )
        threads = self.threads if self.threads is not None else given.threads
        model_format = self.model_format or given.model_format or OrtFormat.of(self.artifact)
        # "hardware_specific" and "cpu" say which CPU family a saved NCHWc layout is for
        built = opened.built_as(OrtBuildDetails)
        if built is not None and built.hardware_specific:
            layout = built.cpu.layout if built.cpu is not None else None
            check_cpu_layout(self.artifact, layout, cpu_layout())
        settings = OrtSettings(threads, providers, self.spinning, optimization, model_format)
        return SessionFromOnnx(self.artifact, settings, built=built is not None)()


def open_onnxruntime(
    artifact: Path,
    *,
    threads: int | None = None,
    providers: Sequence[str | OrtProvider] | None = None,
    spinning: bool = False,
    optimization: GraphOptimization | str | None = None,
    model_format: OrtFormat | str | None = None,
) -> OnnxRuntimeRunner:
    """A runner for an .onnx or .ort artifact, loaded on enter through SessionFromArtifact.

    The options given are checked now (an unknown level, an absent provider); the file and its
    manifest are read on enter.
    """
    artifact = Path(artifact)
    try:
        level = GraphOptimization(optimization) if optimization is not None else None
        form = OrtFormat(model_format) if model_format is not None else None
    except ValueError as exc:
        raise ResnetOptError(f"{artifact}: {exc}") from exc
    resolved = tuple(resolve_providers(providers)) if providers else None
    loader = SessionFromArtifact(artifact, threads, resolved, spinning, level, form)
    return OnnxRuntimeRunner(loader)


class OnnxRuntimeRunner(RunnerBase):
    """Runs the session its loader makes (SessionFromArtifact, SessionFromOnnx)."""

    backend = Backend.ONNXRUNTIME

    def __init__(self, loader: Loader[OrtSession]) -> None:
        super().__init__(loader.artifact)
        self._loader = loader
        self._loaded: OrtSession | None = None
        self._inputs: tuple[TensorSpec, ...] = ()
        self._input_names: list[str] = []
        self._output_names: list[str] = []

    def _open(self) -> None:
        self._loaded = self._loader()
        self._inputs = self._specs(self._loaded.session.get_inputs())
        self._input_names = [spec.name for spec in self._inputs]
        self._output_names = [out.name for out in self._loaded.session.get_outputs()]

    def _close(self) -> None:
        self._loaded = None

    @property
    def loaded(self) -> OrtSession:
        self._require_open()
        assert self._loaded is not None
        return self._loaded

    @property
    def session(self) -> Any:
        return self.loaded.session

    @staticmethod
    def _specs(args: Any) -> tuple[TensorSpec, ...]:
        specs = []
        for arg in args:
            shape: tuple[Dim, ...] = tuple(
                d if isinstance(d, int | str) else None for d in arg.shape
            )
            specs.append(TensorSpec(arg.name, shape, np.dtype(_ORT_DTYPES.get(arg.type, object))))
        return tuple(specs)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        self._require_open()
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._specs(self.session.get_outputs())

    @property
    def info(self) -> RunnerInfo:
        loaded = self.loaded
        settings = loaded.settings
        provider = loaded.session.get_providers()[0]
        return RunnerInfo(
            backend=self.backend,
            device="cpu" if provider == CPU else provider.removesuffix("ExecutionProvider"),
            threads=settings.threads,
            details={
                "provider": provider,
                "providers": list(loaded.session.get_providers()),
                "optimization": settings.optimization.value,
                "spinning": settings.spinning,
                "model_format": settings.model_format.value,
                "built": loaded.built,
            },
        )

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.session
        self.check_feed(feed, self._input_names)
        names = self._output_names
        try:
            values = session.run(names, feed)
        except Exception as exc:  # shape/type mismatches surface as ORT's own exceptions
            raise ResnetOptError(f"{self.artifact}: inference failed ({first_line(exc)})") from exc
        return dict(zip(names, values, strict=True))
