"""`details` of a `build tensorrt` manifest, typed (schema v1; `core/build_details.py` says how
absent keys read).

It lives here, in `tensorrt/`, rather than beside the TensorRT runner, because the engine checks
below the runners read it: `compat.check_engine_compatible` (version, GPU, host, DLA core) and
`profiles.profile_of`. The parts other modules own are kept as they wrote them: `build_options`
(`TensorRtBuildOptions.to_dict()` and the `BuildSpec` flags), `layers` (the inspector's
`LayerReport`), `jetson_facts` and `runner` (read by `runners.tensorrt.TensorRtRunnerDetails`);
their few facts readers need are properties here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resnet_opt.core.build_details import WeightsFile, built_backend
from resnet_opt.core.details import Fields, written

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest

BACKEND = "tensorrt"  # the backend unit's name


def engine_details(manifest: Manifest) -> TensorRtBuildDetails | None:
    """A `build tensorrt` manifest's details, validated (None: not a TensorRT engine's)."""
    if built_backend(manifest) != BACKEND:
        return None
    return manifest.read_details(TensorRtBuildDetails)


@dataclass(frozen=True)
class GpuIdentity:
    """The GPU a plan was built (and its tactics timed) on."""

    name: str | None = None
    compute_capability: str | None = None  # "8.7"
    integrated: bool | None = None
    cuda_driver: str | None = None
    sm_count: int | None = None
    module: str | None = None  # a Jetson's part number, e.g. p3701-0005
    power_mode: str | None = None  # nvpmodel's mode the tactics were timed at
    absent: frozenset[str] = frozenset()

    KEYS = (
        "name",
        "compute_capability",
        "integrated",
        "cuda_driver",
        "sm_count",
        "module",
        "power_mode",
    )

    def to_dict(self) -> dict[str, object]:
        return written(
            [
                ("name", self.name),
                ("compute_capability", self.compute_capability),
                ("integrated", self.integrated),
                ("cuda_driver", self.cuda_driver),
                ("sm_count", self.sm_count),
                ("module", self.module),
                ("power_mode", self.power_mode),
            ],
            self.absent,
        )

    @classmethod
    def read(cls, f: Fields) -> GpuIdentity:
        return cls(
            name=f.maybe("name", str),
            compute_capability=f.maybe("compute_capability", str),
            integrated=f.maybe("integrated", bool),
            cuda_driver=f.maybe("cuda_driver", str),
            sm_count=f.maybe("sm_count", int),
            module=f.maybe("module", str),
            power_mode=f.maybe("power_mode", str),
            absent=f.absent(*cls.KEYS),
        )


@dataclass(frozen=True)
class JetsonRelease:
    l4t: str | None
    jetpack: str | None

    def to_dict(self) -> dict[str, object]:
        return {"l4t": self.l4t, "jetpack": self.jetpack}

    @classmethod
    def read(cls, f: Fields) -> JetsonRelease:
        return cls(l4t=f.maybe("l4t", str), jetpack=f.maybe("jetpack", str))


@dataclass(frozen=True)
class EngineProfile:
    """The optimization profile: the input it shapes, its batch range and the full shapes."""

    input: str | None = None
    batch: Mapping[str, int] | None = None  # min, opt, max (`profiles.BatchProfile`)
    min: tuple[int, ...] | None = None
    opt: tuple[int, ...] | None = None
    max: tuple[int, ...] | None = None
    absent: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return written(
            [
                ("input", self.input),
                ("batch", _plain(self.batch)),
                ("min", _listed(self.min)),
                ("opt", _listed(self.opt)),
                ("max", _listed(self.max)),
            ],
            self.absent,
        )

    @classmethod
    def read(cls, f: Fields) -> EngineProfile:
        return cls(
            input=f.maybe("input", str),
            batch=None if f.maybe("batch", dict) is None else f.counts("batch"),
            min=_shape(f, "min"),
            opt=_shape(f, "opt"),
            max=_shape(f, "max"),
            absent=f.absent("input", "batch", "min", "opt", "max"),
        )


@dataclass(frozen=True)
class EnginePrecision:
    """The precision read from the ONNX (`NetworkFacts.precision_dict`) and the engine's."""

    onnx: str | None = None
    qdq_nodes: int | None = None
    fp16_tensors: int | None = None
    engine: str | None = None
    absent: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return written(
            [
                ("onnx", self.onnx),
                ("qdq_nodes", self.qdq_nodes),
                ("fp16_tensors", self.fp16_tensors),
                ("engine", self.engine),
            ],
            self.absent,
        )

    @classmethod
    def read(cls, f: Fields) -> EnginePrecision:
        return cls(
            onnx=f.maybe("onnx", str),
            qdq_nodes=f.maybe("qdq_nodes", int),
            fp16_tensors=f.maybe("fp16_tensors", int),
            engine=f.maybe("engine", str),
            absent=f.absent("onnx", "qdq_nodes", "fp16_tensors", "engine"),
        )


@dataclass(frozen=True)
class TimingCacheUse:
    """The timing cache a build read and updated (`--timing-cache`)."""

    path: str
    existed: bool
    sha256_before: str | None
    sha256_after: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "existed": self.existed,
            "sha256_before": self.sha256_before,
            "sha256_after": self.sha256_after,
        }

    @classmethod
    def read(cls, f: Fields) -> TimingCacheUse:
        return cls(
            path=f.text("path"),
            existed=f.flag("existed"),
            sha256_before=f.optional_text("sha256_before"),
            sha256_after=f.optional_text("sha256_after"),
        )


@dataclass(frozen=True)
class EngineCacheUse:
    """Where `--engine-cache` keeps this plan (`pipeline/engine_cache.py`), and whether this
    copy came from it."""

    key: str
    hit: bool
    entry: str

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "hit": self.hit, "entry": self.entry}

    @classmethod
    def read(cls, f: Fields) -> EngineCacheUse:
        return cls(key=f.text("key"), hit=f.flag("hit"), entry=f.text("entry"))


@dataclass(frozen=True)
class LayerSummary:
    """What the engine inspector reported, counted (`inspector.LayerReport`; None when it could
    not report layers)."""

    precisions: Mapping[str, int]
    on_dla: int

    @classmethod
    def read(cls, f: Fields) -> LayerSummary | None:
        if not f.maybe("available", bool):
            return None
        return cls(precisions=f.counts("precisions"), on_dla=f.maybe("on_dla", int) or 0)


@dataclass(frozen=True)
class TensorRtBuildDetails:
    """What a TensorRT plan is and what it is tied to: TensorRT version, host platform, GPU
    (and Jetson release), profile, precision, build options and flags, size, layers, DLA."""

    backend: str | None = BACKEND
    tensorrt_version: str | None = None
    host_arch: str | None = None  # plans do not move across CPU platforms
    gpu: GpuIdentity | None = None
    jetson: JetsonRelease | None = None  # None: not a Jetson
    jetson_facts: Mapping[str, Any] | None = None  # `jetson.facts` (None off a Jetson)
    profile: EngineProfile | None = None
    precision: EnginePrecision | None = None
    build_options: Mapping[str, Any] | None = None
    build_seconds: float | None = None
    engine_bytes: int | None = None
    layers: Mapping[str, Any] | None = None
    dla: Mapping[str, Any] | None = None  # `DlaPlan.to_dict()` (None: the GPU)
    timing_cache: TimingCacheUse | None = None
    runner: Mapping[str, Any] | None = None
    engine_cache: EngineCacheUse | None = None  # absent: not through --engine-cache
    absent: frozenset[str] = frozenset()

    KEYS = (
        "backend",
        "tensorrt_version",
        "host_arch",
        "gpu",
        "jetson",
        "jetson_facts",
        "profile",
        "precision",
        "build_options",
        "build_seconds",
        "engine_bytes",
        "layers",
        "dla",
        "timing_cache",
        "runner",
        "engine_cache",
    )

    @property
    def weights_file(self) -> WeightsFile | None:
        return None  # the plan holds its weights

    @property
    def dla_core(self) -> int | None:
        """The DLA core the plan runs on (None: the GPU)."""
        return None if not self.dla else int(self.dla["core"])

    @property
    def layer_summary(self) -> LayerSummary | None:
        """The layer counts by precision (None: the inspector reported none)."""
        return None if self.layers is None else LayerSummary.read(Fields(self.layers, "layers"))

    @property
    def version_compatible(self) -> bool:
        return bool((self.build_options or {}).get("version_compatible"))

    @property
    def hardware_compatible(self) -> str | None:
        level = (self.build_options or {}).get("hardware_compatible")
        return None if level is None else str(level)

    def to_dict(self) -> dict[str, object]:
        timing, cached = self.timing_cache, self.engine_cache
        return written(
            [
                ("backend", self.backend),
                ("tensorrt_version", self.tensorrt_version),
                ("host_arch", self.host_arch),
                ("gpu", None if self.gpu is None else self.gpu.to_dict()),
                ("jetson", None if self.jetson is None else self.jetson.to_dict()),
                ("jetson_facts", _plain(self.jetson_facts)),
                ("profile", None if self.profile is None else self.profile.to_dict()),
                ("precision", None if self.precision is None else self.precision.to_dict()),
                ("build_options", _plain(self.build_options)),
                ("build_seconds", self.build_seconds),
                ("engine_bytes", self.engine_bytes),
                ("layers", _plain(self.layers)),
                ("dla", _plain(self.dla)),
                ("timing_cache", None if timing is None else timing.to_dict()),
                ("runner", _plain(self.runner)),
                ("engine_cache", None if cached is None else cached.to_dict()),
            ],
            self.absent,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TensorRtBuildDetails:
        f = Fields(data)
        gpu, jetson = f.maybe_section("gpu"), f.maybe_section("jetson")
        profile, precision = f.maybe_section("profile"), f.maybe_section("precision")
        timing, cached = f.maybe_section("timing_cache"), f.maybe_section("engine_cache")
        dla, layers = f.maybe_section("dla"), f.maybe_section("layers")
        if dla is not None:
            dla.integer("core")  # the one fact of it readers act on
        if layers is not None:
            LayerSummary.read(layers)  # what the summary reads, validated now
        return cls(
            backend=f.maybe("backend", str),
            tensorrt_version=f.maybe("tensorrt_version", str),
            host_arch=f.maybe("host_arch", str),
            gpu=None if gpu is None else GpuIdentity.read(gpu),
            jetson=None if jetson is None else JetsonRelease.read(jetson),
            jetson_facts=f.maybe("jetson_facts", dict),
            profile=None if profile is None else EngineProfile.read(profile),
            precision=None if precision is None else EnginePrecision.read(precision),
            build_options=f.maybe("build_options", dict),
            build_seconds=f.maybe("build_seconds", int, float),
            engine_bytes=f.maybe("engine_bytes", int),
            layers=None if layers is None else dict(layers.data),
            dla=None if dla is None else dict(dla.data),
            timing_cache=None if timing is None else TimingCacheUse.read(timing),
            runner=f.maybe("runner", dict),
            engine_cache=None if cached is None else EngineCacheUse.read(cached),
            absent=f.absent(*cls.KEYS),
        )


def _shape(f: Fields, key: str) -> tuple[int, ...] | None:
    return None if f.maybe(key, list) is None else f.items(key, int)


def _listed(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)


def _plain(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else dict(data)
