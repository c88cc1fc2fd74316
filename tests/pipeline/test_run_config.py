"""`run`'s [build.<backend>] tables are the build options classes: each field is a key, decoded by
its type and metadata (`core.fields`), with no code per key in `run`; the keys that existed
before keep their meaning, and the options they make are the ones `run` built by hand (so a
stage key, `repr(options)`, is unchanged and an unchanged config skips its builds)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from resnet_opt.core.fields import config_key
from resnet_opt.errors import UsageError
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions
from resnet_opt.pipeline.run_config import NOT_IN_RUN, BuildConfig, RunConfig, load_config
from resnet_opt.runners.base import BUILD_BACKENDS
from resnet_opt.runners.onnxruntime import GraphOptimization
from resnet_opt.runners.openvino import OvPrecision
from resnet_opt.tensorrt.options import TensorRtBuildOptions, parse_bytes
from resnet_opt.tensorrt.profiles import parse_batch
from tests.config_samples import toml_sample

TABLES: dict[str, type[Any]] = {
    "tensorrt": TensorRtBuildOptions,
    "onnxruntime": OrtBuildOptions,
    "openvino": OpenVinoBuildOptions,
}


def _toml(tmp_path: Path, text: str) -> RunConfig:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return load_config(path)


def _keys() -> list[tuple[str, str]]:
    """(table, field) for every build option field a config sets."""
    return [
        (table, f.name)
        for table, cls in TABLES.items()
        for f in dataclasses.fields(cls)
        if f.name not in NOT_IN_RUN.get(cls, {})
    ]


@pytest.mark.parametrize(("table", "name"), _keys())
def test_every_build_option_is_a_key_of_its_table(tmp_path: Path, table: str, name: str) -> None:
    """A new build option is a [build.<backend>] key with no edit to the config code (nor to
    this test, unless it brings a new text parser)."""
    cls = TABLES[table]
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    text, expected = toml_sample(get_type_hints(cls)[name], field)
    config = _toml(tmp_path, f"[build.{table}]\n{config_key(field)} = {text}\n")
    assert getattr(getattr(config.build, table), name) == expected


@pytest.mark.parametrize(
    ("table", "name"), [(t, n) for t, cls in TABLES.items() for n in NOT_IN_RUN.get(cls, {})]
)
def test_what_run_cannot_honour_is_refused_with_the_reason(
    tmp_path: Path, table: str, name: str
) -> None:
    cls = TABLES[table]
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    text, _ = toml_sample(get_type_hints(cls)[name], field)
    with pytest.raises(UsageError, match=f"'{name}' is not set in a run config: run "):
        _toml(tmp_path, f"[build.{table}]\n{config_key(field)} = {text}\n")


def test_the_existing_keys_make_the_options_run_made_before(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        "[build.tensorrt]\nbatch = '1:8:32'\nworkspace = '1GiB'\nopt_level = 3\n"
        "timing_cache = 't.cache'\n"
        "[build.onnxruntime]\noptimization = 'extended'\nportable = true\n"
        "[build.openvino]\nprecision = 'bf16'\n",
    )
    # what pipeline/run.py's hand conversion built from the same keys: the stage key is
    # repr(options), so an unchanged config still skips its builds
    before = {
        "tensorrt": TensorRtBuildOptions(
            batch=parse_batch("1:8:32"),
            workspace_bytes=parse_bytes("1GiB"),
            opt_level=3,
            timing_cache=Path("t.cache"),
        ),
        "onnxruntime": OrtBuildOptions(optimization=GraphOptimization.EXTENDED, portable=True),
        "openvino": OpenVinoBuildOptions(precision=OvPrecision.BF16),
    }
    for table, options in before.items():
        assert repr(config.build.options(table)) == repr(options)
    default = load_config(None).build
    assert repr(default.tensorrt) == repr(TensorRtBuildOptions())
    assert repr(default.onnxruntime) == repr(OrtBuildOptions(GraphOptimization.ALL))
    assert repr(default.openvino) == repr(OpenVinoBuildOptions(precision=OvPrecision.F32))


def test_each_build_backend_has_its_table() -> None:
    build = BuildConfig()
    assert {b.value for b in BUILD_BACKENDS} == set(TABLES)
    for backend in BUILD_BACKENDS:
        assert isinstance(build.options(backend.value), TABLES[backend.value])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a rule of the options class, and a parser's refusal, named by the key, not the flag
        ("[build.tensorrt]\nopt_level = 9\n", "config: build.tensorrt.opt_level 9: "),
        ("[build.tensorrt]\nworkspace = '0'\n", "config: build.tensorrt.workspace '0': "),
        ("[build.tensorrt]\nbatch = '8:4:1'\n", "config: build.tensorrt.batch: batch profile"),
        ("[build.tensorrt]\nbatch = 8\n", "build: tensorrt: batch: expected a string"),
        ("[build.tensorrt]\nworkspace_bytes = 8\n", "unknown key 'workspace_bytes'"),
        (
            "[build.tensorrt]\nhardware_compatible = 'any'\n",
            "config: build.tensorrt.hardware_compatible = 'any' (choose ampere-plus, "
            "same-compute-capability)",
        ),
        ("[build.onnxruntime]\ninput_shape = '3,32,32'\n", "input_shape: expected a list"),
        ("[build.tensorrt]\ntiming_cache = ''\n", "timing_cache: expected a path"),
    ],
)
def test_a_bad_build_value_names_its_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        _toml(tmp_path, text)
    assert message in str(error.value)
    assert "--" not in str(error.value)
