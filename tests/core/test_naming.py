"""core/naming: one rule for naming an option in an error. Library and stage code raise with the
field; Python reads the field, the CLI the flag, a `run` config the key (no face rewrites
another's text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.core.naming import (
    FIELD_NAMES,
    FLAGS,
    Option,
    OptionError,
    OptionUsageError,
    flag_of,
)
from resnet_opt.core.validation import positive_count
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.pipeline.bench import BenchOptions
from resnet_opt.pipeline.export import ExportOptions
from resnet_opt.pipeline.quantize_options import QuantizeOptions, check_options
from resnet_opt.pipeline.run_config import VariantKeys, load_config
from resnet_opt.tensorrt.options import TensorRtBuildOptions, parse_bytes
from tests.conftest import make_tiny_cnn


def test_each_face_words_the_field_its_way() -> None:
    assert (FIELD_NAMES.option("opt_level"), FLAGS.option("opt_level")) == (
        "opt_level",
        "--opt-level",
    )
    assert FLAGS.option("reduce_range", False) == "--no-reduce-range"
    assert FLAGS.option("eval_data") == "--eval" and flag_of("workspace_bytes") == "--workspace"
    assert FLAGS.setting("method", "max") == "--method max"
    assert FIELD_NAMES.setting("method", "max") == "method='max'"
    assert VariantKeys(1).option("exclude") == "quantize[1].exclude"
    assert VariantKeys(1).option("calib") == "data.calibration"  # run supplies it


def test_an_option_error_keeps_its_exit_code_when_reworded() -> None:
    usage = OptionUsageError("seed", ": must be 0 or more")
    model = OptionError("exclude", " Foo: no such node")
    assert (usage.exit_code, model.exit_code) == (2, 1)
    assert isinstance(usage, UsageError) and not isinstance(model, UsageError)
    assert str(usage) == "seed: must be 0 or more"  # Python: the field
    again = usage.reworded(VariantKeys(0))
    assert type(again) is UsageError and str(again) == "config: data.seed: must be 0 or more"
    assert type(model.reworded(FLAGS)) is ResnetOptError
    assert str(model.reworded(FLAGS)) == "--exclude Foo: no such node"


def test_a_validation_check_on_an_option_names_the_field() -> None:
    with pytest.raises(OptionUsageError) as error:
        positive_count(0, Option("calib_samples"))
    assert str(error.value) == "calib_samples must be positive, not 0"
    assert error.value.worded(FLAGS) == "--calib-samples must be positive, not 0"


# -- from Python, every options class names the field --------------------------------------------


def _export(**kwargs: Any) -> None:
    ExportOptions(**kwargs).validate()


def _quantize(**kwargs: Any) -> None:
    check_options(QuantizeOptions(**kwargs))


REFUSALS = [  # (make the options, the field, what the CLI says)
    (lambda: TensorRtBuildOptions(opt_level=9), "opt_level", "--opt-level 9: TensorRT's builder"),
    (lambda: TensorRtBuildOptions(workspace_bytes=0), "workspace_bytes", "--workspace must be"),
    (lambda: TensorRtBuildOptions(dla_core=-1), "dla_core", "--dla-core -1: DLA cores are"),
    (lambda: TensorRtBuildOptions(calib_cache=Path("c")), "calib_cache", "--calib-cache is for"),
    (lambda: parse_bytes("lots"), "workspace_bytes", "--workspace 'lots': give a size"),
    (lambda: _export(opset=3), "opset", "--opset 3: the torchscript exporter"),
    (lambda: _export(tolerance=0.0), "tolerance", "--tolerance must be a positive number"),
    (lambda: _export(batch=0), "batch", "--batch must be positive, not 0"),
    (lambda: _export(data_samples=0), "data_samples", "--data-samples must be positive"),
    (lambda: _export(num_classes=0), "num_classes", "--num-classes must be positive"),
    (lambda: BenchOptions(batches=(1,), plot_batch=8), "plot_batch", "--plot-batch 8 is not"),
    (lambda: _quantize(percentile=99.0), "percentile", "--percentile needs --method percentile"),
    (lambda: _quantize(calib_samples=0), "calib_samples", "--calib-samples: must be 1 or more"),
    (lambda: _quantize(exclude=("",)), "exclude", "--exclude: an empty name"),
]


@pytest.mark.parametrize(("make", "field", "flag_words"), REFUSALS)
def test_every_options_class_refuses_naming_the_field(
    make: Any, field: str, flag_words: str
) -> None:
    with pytest.raises(OptionError) as error:
        make()
    assert error.value.field == field
    text = str(error.value)
    assert field in text and "--" not in text  # a Python caller never typed a flag
    assert error.value.worded(FLAGS).startswith(flag_words)


# -- the TOML decoder names the config key; the CLI names the flag --------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[build.tensorrt]\nopt_level = 9\n", "config: build.tensorrt.opt_level 9: TensorRT"),
        ("[build.tensorrt]\nworkspace = '0'\n", "config: build.tensorrt.workspace '0': must"),
        ("[build.tensorrt]\nbatch = '8:1'\n", "config: build.tensorrt.batch '8:1': give N"),
    ],
)
def test_the_config_decoder_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as error:
        load_config(path)
    assert str(error.value).startswith(message) and "--" not in str(error.value)


@pytest.mark.parametrize(
    ("args", "line", "code"),
    [
        (["build", "tensorrt", "{m}", "-o", "{o}", "--workspace", "0"], "--workspace '0':", 2),
        (["build", "tensorrt", "{m}", "-o", "{o}", "--batch", "8:1"], "--batch '8:1': give", 2),
        (["build", "tensorrt", "{m}", "-o", "{o}", "--calib-cache", "c"], "--calib-cache is", 1),
        (["quantize", "{m}", "-o", "{o}", "--percentile", "99"], "--percentile needs --method", 2),
        (["quantize", "{m}", "-o", "{o}", "--no-reduce-range"], "--no-reduce-range applies", 2),
    ],
)
def test_the_cli_names_the_flag(tmp_path: Path, args: list[str], line: str, code: int) -> None:
    model = make_tiny_cnn(tmp_path / "m.onnx")
    given = [a.format(m=model, o=tmp_path / "out") for a in args]
    result = CliRunner().invoke(app, given)
    assert result.exit_code == code, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {line}")
