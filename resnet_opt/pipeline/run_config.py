"""The `resnet-opt run` configuration: one TOML file for every stage.

Every section is a frozen dataclass and every key is checked: an unknown key is an error that
names it (a typo must not silently fall back to a default), and a value of the wrong type says
which key and what was expected. With no file at all, `RunConfig()` is the bundled-default
pipeline: export → quantize (int8 for the CPU, int8 for TensorRT, fp16) → build → bench.

A `[[quantize]]` table is decoded straight into `QuantizeOptions`, and `[build.<backend>]`
(`tensorrt`, `onnxruntime`, `openvino`: every build backend's unit) into its options class,
`TensorRtBuildOptions`, `OrtBuildOptions`, `OpenVinoBuildOptions`: the schemas the commands fill
too. Each field is a key (an enum field
takes its value's text, a path field a string, a tuple a list), named and parsed as its field's
metadata says (`core.fields`: `workspace = "2G"` is `workspace_bytes`, through the flag's own
parser), except those `run` supplies (`RUN_SUPPLIED`) or cannot honour (`NOT_IN_RUN`). So a new
quantize or build option is a config key with no edit here. A refusal from an options class or
a parser names the field (`core.naming.OptionError`); here it is worded with the config key.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union, get_args, get_origin, get_type_hints

from resnet_opt.backends.registry import build_backends, build_part
from resnet_opt.backends.spec import resolve
from resnet_opt.core.fields import CHOICES, TEXT, choice_text, config_key, member_of
from resnet_opt.core.manifest import Precision
from resnet_opt.core.naming import OptionError
from resnet_opt.core.readers import read_toml
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.measure.jetson_budget import HostDefault
from resnet_opt.pipeline.build import BuildOptions
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization.plan import QdqTarget


@dataclass(frozen=True)
class ModelConfig:
    """What `export` is given: the model and its preprocessing (None: the model's default).

    An ONNX `source` (a model from another toolchain) skips export: `run` imports it with the
    preprocessing and labels of this table (input_size, mean and std required) and starts at
    fold; the keys only export reads (weights, trust_pickle, num_classes, channels, batch,
    opset) are refused with it."""

    # registry name, FILE.py:FACTORY, PKG.MOD:FACTORY, timm:NAME, TorchScript file, or an ONNX
    source: str = "default"
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
    # a FILE LABEL list (ImageNet's val.txt): evaluation is then a flat folder of its images
    evaluation_labels: str | None = None
    calib_samples: int | None = None
    eval_samples: int | None = None
    seed: int = 0


# QuantizeOptions fields that `run` fills from other sections, so a [[quantize]] table does not
# set them: field → the config key run takes it from (also how a refusal names it)
RUN_SUPPLIED: Mapping[str, str] = MappingProxyType(
    {
        "calib": "data.calibration",
        "calib_samples": "data.calib_samples",
        "seed": "data.seed",
        "eval_data": "data.evaluation",
        "eval_samples": "data.eval_samples",
        "eval_labels": "data.evaluation_labels",
        "max_drop": "gates.max_drop",
        "preprocessing": "model",
    }
)


@dataclass(frozen=True)
class VariantConfig:
    """One quantized artifact: `name` becomes part of its file name (model.<name>.onnx); every
    other key of its [[quantize]] table is a QuantizeOptions field, except RUN_SUPPLIED's."""

    name: str
    options: QuantizeOptions = field(default_factory=QuantizeOptions)


DEFAULT_VARIANTS = (
    VariantConfig("int8-cpu", QuantizeOptions(precision=Precision.INT8, target=QdqTarget.CPU)),
    VariantConfig(
        "int8-tensorrt", QuantizeOptions(precision=Precision.INT8, target=QdqTarget.TENSORRT)
    ),
    VariantConfig("fp16", QuantizeOptions(precision=Precision.FP16)),
)


@dataclass(frozen=True)
class VariantKeys:
    """How a refusal names an option of [[quantize]] number `index`: by its config key, and
    one that `run` supplies by the key it comes from (`data.evaluation`)."""

    index: int
    prefix: str = "config: "

    def option(self, name: str, value: object = None) -> str:
        return RUN_SUPPLIED.get(name, f"quantize[{self.index}].{name}")

    def setting(self, name: str, value: str) -> str:
        return f'{RUN_SUPPLIED.get(name, name)} = "{value}"'

    def int8_target(self, target: str) -> str:
        return f"int8 with {self.setting('target', target)}"


@dataclass(frozen=True)
class _TableKeys:
    """How a refusal names an option of the table at `at` (`build.tensorrt`): by the key
    that gives the field (`core.fields.config_key`: `workspace` gives `workspace_bytes`)."""

    at: _At
    keys: Mapping[str, str]  # field name → its key in the table
    prefix: str = "config: "

    def option(self, name: str, value: object = None) -> str:
        return self.at.child(self.keys.get(name, name)).key

    def setting(self, name: str, value: str) -> str:
        return f'{self.option(name)} = "{value}"'

    def int8_target(self, target: str) -> str:
        return f"int8 with {self.setting('target', target)}"


# Options-class fields a config does not set, because `run` cannot honour one value of them for
# every artifact it builds: field → why (the refusal says it), each backend unit's `run_refused`.
# Everything else is a key.
NOT_IN_RUN: Mapping[type, Mapping[str, str]] = MappingProxyType(
    {resolve(build_part(b).options): build_part(b).run_refused for b in build_backends()}
)


def _default_tables() -> dict[str, BuildOptions]:
    """Each build backend's default options, by its name (its [build.<backend>] table)."""
    return {b.value: resolve(build_part(b).options)() for b in build_backends()}


@dataclass(frozen=True)
class BuildConfig:
    """Which backends to build for, and the options of each (its [build.<backend>] table, one per
    registered build backend, `config.build.tensorrt` read as an attribute too). Each builds the
    artifacts its unit's `run_builds` says: ONNX Runtime the FP32 model and the cpu-target INT8;
    TensorRT the FP32, FP16 and tensorrt-target INT8; OpenVINO the FP32 and the tensorrt-target
    INT8 (one INT8 file serves GPU and CPU there)."""

    backends: tuple[str, ...] = ("onnxruntime", "tensorrt")
    tables: Mapping[str, BuildOptions] = field(default_factory=_default_tables)

    def options(self, backend: str) -> BuildOptions:
        """The build options of `backend` (a `runners.base.Backend` value)."""
        return self.tables[backend]

    def __getattr__(self, name: str) -> Any:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "backends": list(self.backends),
            **{name: dataclasses.asdict(options) for name, options in self.tables.items()},
        }


@dataclass(frozen=True)
class BenchConfig:
    batches: tuple[int, ...] = (1, 8, 32)
    # seconds per point; None with `iterations`. The defaults are run's own off a Jetson; on
    # one, trtexec's (3 s, 0.2 s), as bench's: a HostDefault is "not given"
    duration: float | None = HostDefault(0.3)
    iterations: int | None = None
    warmup: float = HostDefault(0.1)
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
        # run writes model.onnx, model.<name>.onnx and, per ONNX, model[.<name>].optimized.onnx
        # (the ONNX Runtime build): a variant named "optimized" would be overwritten by the FP32
        # build, one named "int8.optimized" by the int8 variant's build
        builds = {"optimized", *(f"{n}.optimized" for n in names)}
        for name in names:
            if name in builds or name.endswith(".optimized"):
                raise UsageError(
                    f"config: quantize variant name {name!r} collides with run's own file "
                    f"model.{name}.onnx (an ONNX Runtime build's output): choose another name"
                )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "build": self.build.to_dict()}

    def quantize_options(self, variant: VariantConfig) -> QuantizeOptions:
        """`variant`'s options with what `run` supplies from [data] (see RUN_SUPPLIED);
        gates.max_drop is added by `run` at the stage, where it can be measured."""
        data = self.data
        return dataclasses.replace(
            variant.options,
            calib=data.calibration,
            calib_samples=data.calib_samples,
            seed=data.seed,
            eval_data=data.evaluation,
            eval_samples=data.eval_samples,
            eval_labels=Path(data.evaluation_labels) if data.evaluation_labels else None,
        )


def _toml_loads() -> Callable[[str], dict[str, Any]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    return tomllib.loads


def load_config(path: Path | None) -> RunConfig:
    """The config in `path` (TOML), or the bundled-default pipeline when `path` is None."""
    if path is None:
        return RunConfig()
    if not path.exists():
        raise ResnetOptError(f"{path}: no such config file")
    data = read_toml(
        path, _toml_loads(), error=UsageError
    )  # bounded; a bad config is a usage error (exit 2)
    config: RunConfig = _build(RunConfig, data, _At(str(path)))
    return config


@dataclass(frozen=True)
class _At:
    """Where a value is in the file, for messages: `run.toml: quantize[0]: method` (`str`), or
    as a config key, `quantize[0].method` (`key`)."""

    file: str
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ": ".join((self.file, *self.keys))

    @property
    def key(self) -> str:
        return ".".join(self.keys)

    def child(self, name: str) -> _At:
        return _At(self.file, (*self.keys, name))

    def item(self, index: int) -> _At:
        return _At(self.file, (*self.keys[:-1], f"{self.keys[-1]}[{index}]"))


def _build(cls: type[Any], data: Any, at: _At) -> Any:
    """Make dataclass `cls` from a TOML table, refusing unknown keys and wrong types: each field
    is given by its `config_key`, decoded by its type and metadata (`_field`)."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{at}: expected a table, got {_kind(data)}")
    hints = get_type_hints(cls)
    fields = {config_key(f): f for f in dataclasses.fields(cls)}
    refused = NOT_IN_RUN.get(cls, {})
    for key in data:
        if key in fields and fields[key].name in refused:
            raise UsageError(
                f"{at}: {key!r} is not set in a run config: {refused[fields[key].name]}"
            )
    _refuse_unknown(data, [k for k, f in fields.items() if f.name not in refused], at)
    values = {
        fields[key].name: _field(fields[key], hints[fields[key].name], value, at.child(key))
        for key, value in data.items()
    }
    try:
        return cls(**values)
    except ResnetOptError as exc:  # a rule of the options class, in words of its flags
        if not at.keys:  # RunConfig's own rules name their keys already
            raise
        keys = {f.name: key for key, f in fields.items()}
        raise _reworded(exc, _TableKeys(at, keys), at) from exc
    except TypeError as exc:  # a required key (a variant's name) is missing
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        raise UsageError(f"{at}: missing key {', '.join(map(repr, missing))}") from exc


def _refuse_unknown(data: Mapping[str, Any], known: Iterable[str], at: _At) -> None:
    known = set(known)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{at}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(sorted(known))})"
        )


def _variant(data: Any, at: _At) -> VariantConfig:
    """A [[quantize]] table: `name`, and the QuantizeOptions fields `run` does not supply."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{at}: expected a table, got {_kind(data)}")
    supplied = sorted(set(data) & set(RUN_SUPPLIED))
    if supplied:
        raise UsageError(
            f"{at}: {supplied[0]!r} is not set per variant; run takes it from "
            f"{RUN_SUPPLIED[supplied[0]]}"
        )
    allowed = {f.name for f in dataclasses.fields(QuantizeOptions)} - set(RUN_SUPPLIED)
    _refuse_unknown(data, allowed | {"name"}, at)
    if "name" not in data:
        raise UsageError(f"{at}: missing key 'name'")
    options = _build(QuantizeOptions, {k: v for k, v in data.items() if k != "name"}, at)
    return VariantConfig(_value(str, data["name"], at.child("name")), options)


def _build_config(data: Any, at: _At) -> BuildConfig:
    """[build]: `backends`, and one table per registered build backend decoded into its unit's
    options class (a table not given: that class's defaults)."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{at}: expected a table, got {_kind(data)}")
    names = [b.value for b in build_backends()]
    _refuse_unknown(data, ["backends", *names], at)
    tables = {
        name: _build(type(default), data[name], at.child(name)) if name in data else default
        for name, default in _default_tables().items()
    }
    if "backends" not in data:
        return BuildConfig(tables=tables)
    backends = _value(tuple[str, ...], data["backends"], at.child("backends"))
    return BuildConfig(backends, tables)


def _field(f: dataclasses.Field[Any], hint: Any, value: Any, at: _At) -> Any:
    """The value of field `f` from its TOML value: through the field's TEXT parser from a
    string where it has one, else by its type (an enum narrowed to its CHOICES)."""
    parse = f.metadata.get(TEXT)
    if parse is None:
        return _value(hint, value, at, f.metadata.get(CHOICES))
    text = _value(str, value, at)
    try:
        return parse(text)
    except ResnetOptError as exc:
        table = _At(at.file, at.keys[:-1])
        raise _reworded(exc, _TableKeys(table, {f.name: at.keys[-1]}), at) from exc


def _reworded(exc: ResnetOptError, names: _TableKeys, at: _At) -> UsageError:
    """`exc`, from an options class or a text parser, as a config error: an option it refuses
    by its field (`core.naming.OptionError`) named by its config key, any other message put
    under `at`'s key. A usage error: the config is wrong in itself."""
    if isinstance(exc, OptionError):
        return UsageError(exc.worded(names))
    return UsageError(f"config: {at.key}: {exc}")


def _value(hint: Any, value: Any, at: _At, choices: Sequence[Enum] | None = None) -> Any:
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
                return _value(option, value, at, choices)
            except ResnetOptError as exc:
                errors.append(str(exc))
        raise UsageError(
            errors[0]
            if len(errors) == 1
            else f"{at}: {_kind(value)} is not {' or '.join(_name(o) for o in options)}"
        )
    if origin is tuple:
        (item, *_rest) = get_args(hint)
        if not isinstance(value, list):
            raise UsageError(f"{at}: expected a list, got {_kind(value)}")
        return tuple(_value(item, v, at.item(i)) for i, v in enumerate(value))
    if hint is VariantConfig:
        return _variant(value, at)
    if hint is BuildConfig:
        return _build_config(value, at)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, at)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _choice(hint, value, at, choices)
    if hint is Path:
        if not isinstance(value, str) or not value:  # Path("") would be the folder "."
            raise UsageError(f"{at}: expected a path (a string), got {_kind(value)}")
        return Path(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{at}: expected true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{at}: expected an integer, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{at}: expected a number, got {_kind(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{at}: expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug in this module, not user input


def _choice(enum: type[Enum], value: Any, at: _At, choices: Sequence[Enum] | None) -> Enum:
    """The member of `enum` (one of `choices` when given) that a config value names."""
    allowed = tuple(choices or enum)
    member = member_of(enum, value, allowed) if isinstance(value, str) else None
    if member is not None:
        return member
    names = choice_text(allowed)
    raise UsageError(f"config: {at.key} = {value!r} (choose {names})")


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))
