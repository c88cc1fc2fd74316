"""The `resnet-opt run` configuration: one TOML file for every stage.

Every section is a frozen dataclass and every key is checked: an unknown key is an error that
names it (a typo must not silently fall back to a default), and a value of the wrong type says
which key and what was expected. With no file at all, `RunConfig()` is the bundled-default
pipeline: export → quantize (int8 for the CPU, int8 for TensorRT, fp16) → build → bench.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from resnet_opt.errors import ResnetOptError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class ModelConfig:
    """What `export` is given: the model and its preprocessing (None: the model's default)."""

    source: str = "default"  # registry name, FILE.py:FACTORY, PKG.MOD:FACTORY, TorchScript file
    weights: str | None = None  # checkpoint path, torchvision weights name, or "none"
    trust_pickle: bool = False
    num_classes: int | None = None
    input_size: int | None = None
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: int | str | None = None  # a size or "none"
    crop: int | str | None = None
    interpolation: str | None = None
    labels: str | None = None  # a file with one label per line, or a comma list
    batch: int | None = None  # fixed batch; None: dynamic
    opset: int | None = None


@dataclass(frozen=True)
class DataConfig:
    """Calibration and evaluation data (DATA as the CLI takes it; None: the stage's default)."""

    calibration: str | None = None
    evaluation: str | None = None
    calib_samples: int | None = None
    eval_samples: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class VariantConfig:
    """One quantized artifact: `name` becomes part of its file name (model.<name>.onnx)."""

    name: str
    precision: str = "int8"
    target: str | None = None  # int8: tensorrt | cpu
    method: str | None = None  # int8: max | percentile | entropy | mse
    percentile: float | None = None
    exclude: tuple[str, ...] = ()
    accuracy_budget: float | None = None
    keep_io_types: bool = False
    reduce_range: bool | None = None  # int8 cpu: 7-bit weights (default true); false: 8-bit


DEFAULT_VARIANTS = (
    VariantConfig(name="int8-cpu", precision="int8", target="cpu"),
    VariantConfig(name="int8-tensorrt", precision="int8", target="tensorrt"),
    VariantConfig(name="fp16", precision="fp16"),
)


@dataclass(frozen=True)
class TensorRtConfig:
    batch: str | None = None  # min:opt:max; None: from the ONNX (dynamic → 1:8:32)
    workspace: str | None = None  # e.g. "1GiB"
    opt_level: int | None = None
    timing_cache: str | None = None


@dataclass(frozen=True)
class OnnxRuntimeConfig:
    optimization: str = "all"
    portable: bool = False


@dataclass(frozen=True)
class OpenVinoConfig:
    precision: str = "f32"


@dataclass(frozen=True)
class BuildConfig:
    """Which backends to build for. Each builds the artifacts it is meant for: ONNX Runtime the
    FP32 model and the cpu-target INT8; TensorRT the FP32, FP16 and tensorrt-target INT8;
    OpenVINO the FP32 and the tensorrt-target INT8 (one INT8 file serves GPU and CPU there)."""

    backends: tuple[str, ...] = ("onnxruntime", "tensorrt")
    tensorrt: TensorRtConfig = field(default_factory=TensorRtConfig)
    onnxruntime: OnnxRuntimeConfig = field(default_factory=OnnxRuntimeConfig)
    openvino: OpenVinoConfig = field(default_factory=OpenVinoConfig)


@dataclass(frozen=True)
class BenchConfig:
    batches: tuple[int, ...] = (1, 8, 32)
    duration: float | None = 0.3  # seconds per point; None with `iterations`
    iterations: int | None = None
    warmup: float = 0.1
    threads: int | None = None  # None: every usable core
    force_threads: bool = False  # allow threads above the CPU count
    backends: str = "onnxruntime"  # "auto" or a comma list (see `resnet-opt bench --help`)
    plot_batch: int | None = None


@dataclass(frozen=True)
class GatesConfig:
    """Quality gates; a failed one makes `run` exit 3 after finishing every stage."""

    max_drop: float | None = 1.0  # top-1 points any quantized artifact may lose vs FP32


@dataclass(frozen=True)
class RunConfig:
    output: str | None = None  # the output folder; `-o` overrides it
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    quantize: tuple[VariantConfig, ...] = DEFAULT_VARIANTS
    build: BuildConfig = field(default_factory=BuildConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)

    def __post_init__(self) -> None:
        names = [v.name for v in self.quantize]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise UsageError(f"config: quantize variant name {repeated[0]!r} is used twice")
        for name in names:
            if not name or any(c in name for c in "/\\:") or name.startswith("."):
                raise UsageError(
                    f"config: quantize variant name {name!r} must be a plain file-name part"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: Path | None) -> RunConfig:
    """The config in `path` (TOML), or the bundled-default pipeline when `path` is None."""
    if path is None:
        return RunConfig()
    if not path.is_file():
        raise ResnetOptError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResnetOptError(f"{path}: cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    config: RunConfig = _build(RunConfig, data, f"{path}")
    return config


def _build(cls: type[Any], data: Any, where: str) -> Any:
    """Make dataclass `cls` from a TOML table, refusing unknown keys and wrong types."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: expected a table, got {_kind(data)}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(sorted(known))})"
        )
    values = {key: _value(hints[key], value, f"{where}: {key}") for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a required key (a variant's name) is missing
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        raise UsageError(f"{where}: missing key {', '.join(map(repr, missing))}") from exc


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _value(option, value, where)
            except ResnetOptError as exc:
                errors.append(str(exc))
        raise UsageError(
            errors[0]
            if len(errors) == 1
            else f"{where}: {_kind(value)} is not {' or '.join(_name(o) for o in options)}"
        )
    if origin is tuple:
        (item, *_rest) = get_args(hint)
        if not isinstance(value, list):
            raise UsageError(f"{where}: expected a list, got {_kind(value)}")
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: expected an integer, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{where}: expected a number, got {_kind(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug in this module, not user input


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))
