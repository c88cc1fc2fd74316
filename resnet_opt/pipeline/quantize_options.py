"""What `quantize` takes besides IN and OUT: one schema for the command line, `run` and Python.

`QuantizeOptions` is filled by the `quantize` command's flags, by `run`'s TOML decoder (every
key of a `[[quantize]]` table is a field, see `run_config.VariantConfig`) and by Python callers
alike, and `check_options` holds every rule about the options once. A refusal names the field
(`core.naming.OptionError`), which each face words the way its user gave it: `--percentile` on
the command line, `config: quantize[0].percentile` in a `run` config. So a new option is a
field here, a flag in the `quantize` command and the code that uses it; `run`'s config and the
manifest take it up by themselves.

Also here: which calibration and evaluation data apply when none is named (the bundled splits,
for the bundled model only), and the contract of a model without a manifest from the
command line's preprocessing options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from resnet_opt.calibration.ranges import Method
from resnet_opt.core import validation as v
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.fields import CHOICES, take_choices
from resnet_opt.core.manifest import Precision
from resnet_opt.core.naming import Option, OptionError, OptionNames, OptionUsageError, Words
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


# -- the rules ------------------------------------------------------------------------------


def check_options(options: QuantizeOptions) -> None:
    """Refuse options that are wrong in themselves (exit 2), before any file is read, each
    named by its field (`core.naming`: the CLI words it as a flag, `run` as a config key). The
    stage runs this; `run` runs it on every variant up front."""
    from resnet_opt.calibration.tensorrt_cache import tensorrt_version_int

    def refuse(field: str, words: Words | str) -> None:
        raise OptionUsageError(field, words)

    if options.precision not in PRECISIONS:
        choices = " or ".join(p.value for p in PRECISIONS)
        bad = options.precision.value
        refuse("precision", lambda n: f"{n.option('precision')} must be {choices}, not {bad}")
    int8 = options.precision is Precision.INT8
    if not int8:
        given = [name for name in INT8_ONLY if getattr(options, name) is not None]
        if given:
            refuse(
                given[0],
                lambda n: (
                    f"not for fp16: {', '.join(n.option(g) for g in given)} (these apply "
                    f"to int8 only: {', '.join(n.option(name) for name in INT8_ONLY)})"
                ),
            )
    elif options.keep_io_types:
        refuse(
            "keep_io_types",
            lambda n: (
                f"{n.option('keep_io_types')} applies to fp16 only (int8 models keep fp32 I/O)"
            ),
        )
    if options.percentile is not None:
        if options.method is not Method.PERCENTILE:
            refuse(
                "percentile",
                lambda n: f"{n.option('percentile')} needs {n.setting('method', 'percentile')}",
            )
        if not 0 < options.percentile <= 100:  # NaN fails too
            refuse("percentile", f" must be in (0, 100], not {options.percentile:g}")
    for name in GATES:
        value = getattr(options, name)
        if value is not None:
            v.at_least(value, 0, Option(name))  # points of top-1
    if options.tensorrt_version is not None:
        _check_tensorrt_version(options, int8, tensorrt_version_int)
    if options.reduce_range is not None and (not int8 or options.target is not QdqTarget.CPU):
        why = (
            "TensorRT's int8 kernels accumulate in int32 and always take full 8-bit weights"
            if int8
            else "fp16 has no int8 weights"
        )
        given_range = options.reduce_range
        refuse(
            "reduce_range",
            lambda n: (
                f"{n.option('reduce_range', given_range)} applies to "
                f"{n.int8_target(QdqTarget.CPU.value)} only (it limits the weights to 7 bits "
                f"so that x86 u8×s8 kernels without VNNI cannot saturate); {why}"
            ),
        )
    for name in ("calib_samples", "eval_samples", "threads"):
        count = getattr(options, name)
        if count is not None:
            v.positive_int(count, Option(name))
    v.seed(options.seed, Option("seed"))
    if any(not part.strip() for part in options.exclude):
        refuse("exclude", ": an empty name")
    if options.eval_labels is not None and options.eval_data in (None, NO_EVAL):
        refuse(
            "eval_labels",
            lambda n: (
                f"{n.option('eval_labels')} names the labels of {n.option('eval_data')} "
                "DATA (a flat folder of the images it lists); give that folder"
            ),
        )
    if options.eval_data == NO_EVAL:
        check_gates_measurable(options, None)  # nothing can measure a gate then


def _check_tensorrt_version(
    options: QuantizeOptions, int8: bool, encode: Callable[[str], int]
) -> None:
    """The TensorRT version of the calibration cache: for the tensorrt target, 8.0 or later."""
    version = options.tensorrt_version
    assert version is not None
    if not int8 or options.target not in (None, QdqTarget.TENSORRT):
        raise OptionUsageError(
            "tensorrt_version",
            lambda n: (
                f"{n.option('tensorrt_version')} applies to "
                f"{n.int8_target(QdqTarget.TENSORRT.value)} only (it is the version of the "
                "TensorRT calibration cache written beside the model)"
            ),
        )
    try:  # refused now, not after calibrating; a usage error whichever way it is wrong
        encoded = encode(version)
    except ResnetOptError as exc:
        raise OptionUsageError("tensorrt_version", f": {exc}") from None
    if encoded < OLDEST_TENSORRT:  # 7.0 has no DLA INT8 cache that this writes for Orin
        raise OptionUsageError(
            "tensorrt_version",
            f": TensorRT {version} is older than 8.0, the oldest whose calibration cache "
            "resnet-opt writes",
        )


def check_gates_measurable(options: QuantizeOptions, eval_spec: str | None) -> None:
    """A gate that cannot be measured must not pass silently: `max_drop` and
    `accuracy_budget` need labelled evaluation data (`eval_spec`, None when there is none)."""
    for name in GATES:
        if getattr(options, name) is None or eval_spec is not None:
            continue
        if options.eval_data == NO_EVAL:
            raise OptionUsageError(name, _needs_evaluation_data(name, NO_EVAL))
        raise OptionError(name, _needs_evaluation_data(name, None))  # it depends on the model


def _needs_evaluation_data(gate: str, given: str | None) -> Words:
    def words(n: OptionNames) -> str:
        if given is not None:
            return f"{n.option(gate)} needs evaluation data; it cannot go with " + n.setting(
                "eval_data", given
            )
        return (
            f"{n.option(gate)} needs evaluation data: give labelled data with "
            f"{n.option('eval_data')} (the bundled test split applies to the bundled model only)"
        )

    return words


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
