"""What `quantize` takes besides IN and OUT: one schema for the command line, `run` and Python.

`QuantizeOptions` is filled by the `quantize` command's flags, by `run`'s TOML decoder (every
key of a `[[quantize]]` table is a field, see `run_config.VariantConfig`) and by Python callers
alike, and `check_options` holds every rule about the options once. A refusal names an option
the way its user gave it (`OptionNames`): `--percentile` on the command line,
`config: quantize[0].percentile` in a `run` config. So a new option is a field here, a flag in
the `quantize` command and the code that uses it; `run`'s config and the manifest take it up by
themselves.

Also here: which calibration and evaluation data apply when none is named (the bundled splits,
for the bundled model only), and the contract of a model without a manifest from the
command line's preprocessing options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from resnet_opt.calibration.ranges import Method
from resnet_opt.core import validation as v
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.fields import CHOICES, take_choices
from resnet_opt.core.manifest import Precision
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.quantization.plan import QdqTarget

NO_EVAL = "none"  # --eval none: do not score the artifact
PRECISIONS = (Precision.INT8, Precision.FP16)  # what `quantize` writes
# refused for fp16
INT8_ONLY = ("target", "method", "percentile", "accuracy_budget", "bias_correction")
GATES = ("max_drop", "accuracy_budget")  # measured on the evaluation data

# field metadata (besides core.fields'): MANIFEST_KEY renames a field in the manifest, None
# leaves it out
MANIFEST_KEY = "manifest_key"


@dataclass(frozen=True)
class QuantizeOptions:
    """What `resnet-opt quantize` takes besides IN and OUT.

    None means "not given": the stage picks the documented default, and refuses options that do
    not apply (e.g. a target for FP16) instead of ignoring them. An enum field also takes its
    value as a string (`method="max"`); an unknown one is refused, listing the choices.
    """

    precision: Precision = field(default=Precision.INT8, metadata={CHOICES: PRECISIONS})
    target: QdqTarget | None = None  # int8 only; default tensorrt
    method: Method | None = None  # int8 only; default entropy (TensorRT's EntropyCalibration2)
    percentile: float | None = None  # method percentile only; default 99.99
    calib: str | None = None  # DATA; default: the bundled calib split for the bundled model
    calib_samples: int | None = None  # default: 512, or all there are
    seed: int = 0
    calib_cache: Path | None = None
    # DATA or "none"; default: the bundled test split if it applies
    eval_data: str | None = field(default=None, metadata={MANIFEST_KEY: "eval"})
    eval_samples: int | None = None
    # a FILE LABEL list (ImageNet's val.txt): eval_data is then a flat folder of its images
    eval_labels: Path | None = None
    max_drop: float | None = None
    accuracy_budget: float | None = None  # int8 only
    exclude: tuple[str, ...] = ()
    keep_io_types: bool = False  # fp16 only
    strict: bool = False
    threads: int | None = None
    # for an input without a manifest; recorded as the manifest's own preprocessing section
    preprocessing: PreprocessContract | None = field(default=None, metadata={MANIFEST_KEY: None})
    tensorrt_version: str | None = None  # int8 tensorrt only; default 10.3.0
    # int8 cpu only: 7-bit weights ([-64, 64]) that cannot saturate the u8×s8 kernels of CPUs
    # without VNNI (default True); False keeps full 8 bits, for VNNI/AMX/Arm-dotprod CPUs only
    reduce_range: bool | None = None
    # int8 only: fold the mean output shift that rounding a layer's weights causes (measured on
    # the calibration data) into its bias (default True); False writes the rounded weights alone
    bias_correction: bool | None = None

    def __post_init__(self) -> None:
        take_choices(self)

    def to_manifest(self) -> dict[str, Any]:
        """The options as the manifest records them: enums as their values, paths as text."""
        recorded: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            key = f.metadata.get(MANIFEST_KEY, f.name)
            if key is not None:
                recorded[key] = _plain(getattr(self, f.name))
        return recorded


OLDEST_TENSORRT = 8000  # TensorRT 8.0 (JetPack 5's line is 8.5), as NV_TENSORRT_VERSION


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


# -- how a refusal names an option ----------------------------------------------------------


class OptionNames(Protocol):
    """How a refusal names an option: as the user gave it, a flag or a config key."""

    @property
    def prefix(self) -> str:
        """What starts every message ("" for flags, "config: " for config keys)."""
        ...

    def option(self, name: str, value: object = None) -> str:
        """The option `name` (a QuantizeOptions field) given as `value`: `--percentile`."""
        ...

    def setting(self, name: str, value: str) -> str:
        """The option `name` set to `value`: `--method percentile`, `method = "percentile"`."""
        ...

    def int8_target(self, target: QdqTarget) -> str:
        """The int8 layout `target`: "the int8 cpu target", 'int8 with target = "cpu"'."""
        ...


@dataclass(frozen=True)
class FlagNames:
    """The `quantize` command's flags (Python callers read the same names)."""

    prefix: str = ""

    def option(self, name: str, value: object = None) -> str:
        flag = {"eval_data": "eval"}.get(name, name).replace("_", "-")
        return f"--no-{flag}" if value is False else f"--{flag}"

    def setting(self, name: str, value: str) -> str:
        return f"{self.option(name)} {value}"

    def int8_target(self, target: QdqTarget) -> str:
        return f"the int8 {target.value} target"


FLAGS = FlagNames()


# -- the rules ------------------------------------------------------------------------------


def check_options(options: QuantizeOptions, names: OptionNames = FLAGS) -> None:
    """Refuse options that are wrong in themselves (exit 2), before any file is read, each
    named as `names` says. The stage runs this; `run` runs it on every variant up front."""
    from resnet_opt.calibration.tensorrt_cache import tensorrt_version_int

    def refuse(message: str) -> None:
        raise UsageError(names.prefix + message)

    def key(name: str) -> str:
        return names.prefix + names.option(name)

    option = names.option
    if options.precision not in PRECISIONS:
        choices = " or ".join(p.value for p in PRECISIONS)
        refuse(f"{option('precision')} must be {choices}, not {options.precision.value}")
    int8 = options.precision is Precision.INT8
    if not int8:
        given = [option(n) for n in INT8_ONLY if getattr(options, n) is not None]
        if given:
            int8_only = ", ".join(option(n) for n in INT8_ONLY)
            refuse(f"not for fp16: {', '.join(given)} (these apply to int8 only: {int8_only})")
    elif options.keep_io_types:
        refuse(f"{option('keep_io_types')} applies to fp16 only (int8 models keep fp32 I/O)")
    if options.percentile is not None:
        if options.method is not Method.PERCENTILE:
            refuse(f"{option('percentile')} needs {names.setting('method', 'percentile')}")
        if not 0 < options.percentile <= 100:  # NaN fails too
            refuse(f"{option('percentile')} must be in (0, 100], not {options.percentile:g}")
    for name in GATES:
        value = getattr(options, name)
        if value is not None:
            v.at_least(value, 0, key(name))  # points of top-1
    if options.tensorrt_version is not None:
        if not int8 or options.target not in (None, QdqTarget.TENSORRT):
            refuse(
                f"{option('tensorrt_version')} applies to "
                f"{names.int8_target(QdqTarget.TENSORRT)} only (it is the version of the "
                "TensorRT calibration cache written beside the model)"
            )
        try:  # refused now, not after calibrating; a usage error whichever way it is wrong
            encoded = tensorrt_version_int(options.tensorrt_version)
        except ResnetOptError as exc:
            raise UsageError(f"{key('tensorrt_version')}: {exc}") from None
        if encoded < OLDEST_TENSORRT:  # 7.0 has no DLA INT8 cache that this writes for Orin
            refuse(
                f"{key('tensorrt_version')}: TensorRT {options.tensorrt_version} is older than "
                "8.0, the oldest whose calibration cache resnet-opt writes"
            )
    if options.reduce_range is not None and (not int8 or options.target is not QdqTarget.CPU):
        why = (
            "TensorRT's int8 kernels accumulate in int32 and always take full 8-bit weights"
            if int8
            else "fp16 has no int8 weights"
        )
        refuse(
            f"{option('reduce_range', options.reduce_range)} applies to "
            f"{names.int8_target(QdqTarget.CPU)} only (it limits the weights to 7 bits so that "
            f"x86 u8×s8 kernels without VNNI cannot saturate); {why}"
        )
    for name in ("calib_samples", "eval_samples", "threads"):
        count = getattr(options, name)
        if count is not None:
            v.positive_int(count, key(name))
    v.seed(options.seed, key("seed"))
    if any(not part.strip() for part in options.exclude):
        refuse(f"{option('exclude')}: an empty name")
    if options.eval_labels is not None and options.eval_data in (None, NO_EVAL):
        refuse(
            f"{option('eval_labels')} names the labels of {option('eval_data')} DATA (a flat "
            "folder of the images it lists); give that folder"
        )
    if options.eval_data == NO_EVAL:
        check_gates_measurable(options, None, names)  # nothing can measure a gate then


def check_gates_measurable(
    options: QuantizeOptions, eval_spec: str | None, names: OptionNames = FLAGS
) -> None:
    """A gate that cannot be measured must not pass silently: `max_drop` and
    `accuracy_budget` need labelled evaluation data (`eval_spec`, None when there is none)."""
    for name in GATES:
        if getattr(options, name) is None or eval_spec is not None:
            continue
        gate = names.prefix + names.option(name)
        if options.eval_data == NO_EVAL:
            raise UsageError(
                f"{gate} needs evaluation data; it cannot go with "
                f"{names.setting('eval_data', NO_EVAL)}"
            )
        raise ResnetOptError(
            f"{gate} needs evaluation data: give labelled data with {names.option('eval_data')} "
            "(the bundled test split applies to the bundled model only)"
        )


# -- the data that applies when none is named -----------------------------------------------


def is_bundled_default(contract: PreprocessContract) -> bool:
    """Whether `contract` is the bundled default model's (its digits splits then apply)."""
    try:
        from resnet_opt.models.default import default_contract

        reference = default_contract()
    except (ImportError, ResnetOptError):
        return False
    return reference.fingerprint() == contract.fingerprint()


def calibration_spec(options: QuantizeOptions, contract: PreprocessContract) -> str | None:
    """The calibration DATA: the one given, else the bundled split for the bundled model."""
    if options.calib is not None:
        return options.calib
    return "default:calib" if is_bundled_default(contract) else None


def evaluation_spec(options: QuantizeOptions, contract: PreprocessContract | None) -> str | None:
    """The evaluation DATA the artifact is scored on (None: not scored): the one given, else
    the bundled test split for the bundled model; "none" switches scoring off."""
    if options.eval_data == NO_EVAL:
        return None
    if options.eval_data is not None:
        return options.eval_data
    return "default:test" if contract is not None and is_bundled_default(contract) else None


# -- the preprocessing of a model without a manifest ----------------------------------------


def contract_from_options(
    model_path: Path,
    *,
    input_size: int | None,
    mean: str | None,
    std: str | None,
    resize: int | None = None,
    crop: int | None = None,
    interpolation: str | None = None,
) -> PreprocessContract | None:
    """The contract of a model without a manifest, from the CLI's preprocessing options.

    None when no option was given (the manifest must then have it); the class count comes from
    the model's output. Partial options are refused: a guessed mean or size would quietly
    calibrate on the wrong inputs.
    """
    from resnet_opt.core.contract import Interpolation, parse_floats
    from resnet_opt.graph import load_onnx

    given = [v for v in (input_size, mean, std, resize, crop, interpolation) if v is not None]
    if not given:
        return None
    if input_size is None or mean is None or std is None:
        raise ResnetOptError(
            "preprocessing options need at least --input-size, --mean and --std "
            "(plus --resize/--crop if the model was trained with them)"
        )
    try:
        filter_ = Interpolation(interpolation or Interpolation.BILINEAR.value)
    except ValueError:
        choices = ", ".join(i.value for i in Interpolation)
        raise UsageError(f"unknown interpolation {interpolation!r} ({choices})") from None
    means = parse_floats(mean, "--mean")
    model = load_onnx(model_path, check=False)
    dims = model.graph.output[0].type.tensor_type.shape.dim if model.graph.output else []
    classes = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else 0
    if classes < 1:
        raise ResnetOptError(f"{model_path}: cannot tell the number of classes from its output")
    return PreprocessContract(
        input_size=input_size,
        channels=len(means),
        mean=means,
        std=parse_floats(std, "--std"),
        resize=resize,
        crop=crop,
        interpolation=filter_,
        num_classes=classes,
    )
