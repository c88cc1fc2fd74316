"""One schema for the quantize options: the command line, `run`'s config and Python fill the same
`QuantizeOptions`, and each rule about them is written once and names the option as its user
gave it (no model is needed here: every rule holds before a file is read)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from resnet_opt.calibration.ranges import Method
from resnet_opt.core.manifest import Precision
from resnet_opt.core.naming import FLAGS, OptionError
from resnet_opt.errors import UsageError
from resnet_opt.pipeline.quantize_options import (
    QuantizeOptions,
    check_gates_measurable,
    check_options,
)
from resnet_opt.pipeline.run_config import RUN_SUPPLIED, RunConfig, VariantKeys, load_config
from resnet_opt.quantization.plan import QdqTarget
from tests.config_samples import toml_sample

# the manifest's "options" keys so far; readers of manifests rely on them
MANIFEST_KEYS = [
    "precision",
    "target",
    "method",
    "percentile",
    "calib",
    "calib_samples",
    "seed",
    "calib_cache",
    "eval",
    "eval_samples",
    "max_drop",
    "accuracy_budget",
    "exclude",
    "keep_io_types",
    "strict",
    "threads",
    "tensorrt_version",
    "reduce_range",
]


def _toml(tmp_path: Path, text: str) -> RunConfig:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return load_config(path)


def test_enum_options_take_their_value_as_text() -> None:
    options = QuantizeOptions(precision="fp16", target="cpu", method="max")  # type: ignore[arg-type]
    assert options.precision is Precision.FP16
    assert options.target is QdqTarget.CPU and options.method is Method.MAX


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"method": "kl"}, "unknown method 'kl' (choose max, percentile, entropy, mse)"),
        ({"precision": "fp32"}, "unknown precision 'fp32' (choose int8, fp16)"),
        ({"target": "gpu"}, "unknown target 'gpu' (choose tensorrt, cpu, openvino)"),
    ],
)
def test_unknown_text_choice_is_a_usage_error_listing_the_choices(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QuantizeOptions(**given)


def test_manifest_keeps_its_keys_and_plain_values() -> None:
    options = QuantizeOptions(
        target=QdqTarget.CPU,
        method=Method.PERCENTILE,
        calib_cache=Path("c.npz"),
        eval_data="none",
        exclude=("Add",),
    )
    recorded = options.to_manifest()
    assert [k for k in recorded if k in MANIFEST_KEYS] == MANIFEST_KEYS  # a new option adds one
    assert "eval_data" not in recorded and "preprocessing" not in recorded  # "eval"; own section
    assert recorded["target"] == "cpu" and type(recorded["target"]) is str
    assert recorded["method"] == "percentile" and type(recorded["method"]) is str
    assert recorded["precision"] == "int8" and type(recorded["precision"]) is str
    assert recorded["calib_cache"] == "c.npz" and recorded["exclude"] == ["Add"]
    assert recorded["eval"] == "none"


# -- one rule, two ways of naming the option --------------------------------------------------

RULES = [  # options, the command line's words, the config's words
    (
        QuantizeOptions(percentile=99.0),
        "--percentile needs --method percentile",
        'config: quantize[2].percentile needs method = "percentile"',
    ),
    (
        QuantizeOptions(method=Method.PERCENTILE, percentile=101.0),
        "--percentile must be in (0, 100], not 101",
        "config: quantize[2].percentile must be in (0, 100], not 101",
    ),
    (
        QuantizeOptions(precision=Precision.FP16, target=QdqTarget.CPU),
        "not for fp16: --target",
        "config: not for fp16: quantize[2].target",
    ),
    (
        QuantizeOptions(keep_io_types=True),
        "--keep-io-types applies to fp16 only",
        "config: quantize[2].keep_io_types applies to fp16 only",
    ),
    (
        QuantizeOptions(reduce_range=False),
        "--no-reduce-range applies to the int8 cpu target only",
        'config: quantize[2].reduce_range applies to int8 with target = "cpu" only',
    ),
    (
        QuantizeOptions(target=QdqTarget.CPU, tensorrt_version="10.3"),
        "--tensorrt-version applies to the int8 tensorrt target only",
        'config: quantize[2].tensorrt_version applies to int8 with target = "tensorrt" only',
    ),
    (
        QuantizeOptions(tensorrt_version="ten"),
        "--tensorrt-version: not a TensorRT version: 'ten'",
        "config: quantize[2].tensorrt_version: not a TensorRT version: 'ten'",
    ),
    (
        QuantizeOptions(accuracy_budget=float("nan")),
        "--accuracy-budget: nan is not a finite number",
        "config: quantize[2].accuracy_budget: nan is not a finite number",
    ),
    (
        QuantizeOptions(max_drop=-1.0),
        "--max-drop: must be at least 0",
        "config: gates.max_drop: must be at least 0",
    ),
    (
        QuantizeOptions(calib_samples=0),
        "--calib-samples: must be 1 or more",
        "config: data.calib_samples: must be 1 or more",
    ),
    (
        QuantizeOptions(exclude=(" ",)),
        "--exclude: an empty name",
        "config: quantize[2].exclude: an empty name",
    ),
    (
        QuantizeOptions(eval_data="none", accuracy_budget=1.0),
        "--accuracy-budget needs evaluation data; it cannot go with --eval none",
        "config: quantize[2].accuracy_budget needs evaluation data; it cannot go with "
        'data.evaluation = "none"',
    ),
]


@pytest.mark.parametrize(("options", "flags", "keys"), RULES)
def test_each_rule_names_the_option_as_it_was_given(
    options: QuantizeOptions, flags: str, keys: str
) -> None:
    """The rule raises by the field (Python's words); the CLI words it as flags, `run` as keys."""
    with pytest.raises(OptionError) as error:
        check_options(options)
    assert isinstance(error.value, UsageError)
    assert flags in error.value.worded(FLAGS)
    assert keys in error.value.worded(VariantKeys(2))
    assert "--" not in error.value.worded(VariantKeys(2))
    python = str(error.value)  # from Python: the field, never a flag
    assert "--" not in python and error.value.field in python


def test_a_gate_without_evaluation_data_names_where_to_give_it() -> None:
    options = QuantizeOptions(accuracy_budget=1.0)
    check_gates_measurable(options, "default:test")  # measurable: nothing to say
    with pytest.raises(OptionError) as error:
        check_gates_measurable(options, None)
    assert error.value.worded(FLAGS).startswith("--accuracy-budget needs evaluation data: give")
    assert str(error.value).startswith("accuracy_budget needs evaluation data: give")
    keys = error.value.worded(VariantKeys(0))
    assert "config: quantize[0].accuracy_budget needs evaluation data" in keys
    assert "data.evaluation" in keys
    assert not isinstance(error.value, UsageError)  # it depends on the model: exit 1
    assert not isinstance(error.value.reworded(VariantKeys(0)), UsageError)


# -- the [[quantize]] table is the schema -----------------------------------------------------


@pytest.mark.parametrize(
    "name", [f.name for f in dataclasses.fields(QuantizeOptions) if f.name not in RUN_SUPPLIED]
)
def test_every_option_run_does_not_supply_is_a_quantize_key(tmp_path: Path, name: str) -> None:
    """A new QuantizeOptions field is a [[quantize]] key with no edit to the config code (nor
    to this test: a value of the field's type is made from its type)."""
    field = next(f for f in dataclasses.fields(QuantizeOptions) if f.name == name)
    text, expected = toml_sample(get_type_hints(QuantizeOptions)[name], field)
    config = _toml(tmp_path, f"[[quantize]]\nname = 'a'\n{name} = {text}\n")
    assert getattr(config.quantize[0].options, name) == expected


def test_a_whole_quantize_table(tmp_path: Path) -> None:
    given = {
        "precision": "'int8'",
        "target": "'cpu'",
        "method": "'percentile'",
        "percentile": "99.9",
        "calib_cache": "'c.npz'",
        "accuracy_budget": "0.5",
        "exclude": "['Add']",
        "keep_io_types": "false",
        "strict": "true",
        "threads": "1",
        "tensorrt_version": "'10.3.0'",
        "reduce_range": "false",
    }
    lines = "\n".join(f"{key} = {value}" for key, value in given.items())
    config = _toml(tmp_path, f"[[quantize]]\nname = 'a'\n{lines}\n")
    options = config.quantize[0].options
    assert options == QuantizeOptions(
        target=QdqTarget.CPU,
        method=Method.PERCENTILE,
        percentile=99.9,
        calib_cache=Path("c.npz"),
        accuracy_budget=0.5,
        exclude=("Add",),
        strict=True,
        threads=1,
        tensorrt_version="10.3.0",
        reduce_range=False,
    )


@pytest.mark.parametrize("key", sorted(RUN_SUPPLIED))
def test_what_run_supplies_is_refused_per_variant(tmp_path: Path, key: str) -> None:
    with pytest.raises(UsageError, match=f"'{key}' is not set per variant; run takes it from"):
        _toml(tmp_path, f"[[quantize]]\nname = 'a'\n{key} = 1\n")


def test_run_fills_what_it_supplies_from_the_data_section(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        "[data]\ncalibration = 'c'\nevaluation = 'e'\ncalib_samples = 8\neval_samples = 9\n"
        "seed = 3\nevaluation_labels = 'val.txt'\n[[quantize]]\nname = 'a'\n",
    )
    options = config.quantize_options(config.quantize[0])
    filled = {f: getattr(options, f) for f in RUN_SUPPLIED}
    assert filled == {
        "calib": "c",
        "calib_samples": 8,
        "seed": 3,
        "eval_data": "e",
        "eval_samples": 9,
        "eval_labels": Path("val.txt"),
        "max_drop": None,  # added at the stage, where it can be measured
        "preprocessing": None,  # the exported model's manifest carries it
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "method = 'kl'",
            "config: quantize[0].method = 'kl' (choose max, percentile, entropy, mse)",
        ),
        ("precision = 'fp32'", "config: quantize[0].precision = 'fp32' (choose int8, fp16)"),
        ("target = 3", "config: quantize[0].target = 3 (choose tensorrt, cpu, openvino)"),
        ("calib_cache = 3", "quantize[0]: calib_cache: expected a path"),
    ],
)
def test_config_choices_are_decoded_by_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        _toml(tmp_path, f"[[quantize]]\nname = 'a'\n{text}\n")
    assert message in str(error.value)
