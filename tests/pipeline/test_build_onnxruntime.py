"""`build --backend onnxruntime`: the ORT-optimized artifact, its manifest, loading it as built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import (
    InputRef,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    read_manifest,
    write_manifest,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime
from resnet_opt.pipeline.verify import compare_runners, random_batches
from resnet_opt.runners.base import Backend, open_runner, run_batch
from resnet_opt.runners.onnxruntime import (
    GraphOptimization,
    OrtFormat,
    OrtProvider,
    check_cpu_layout,
    cpu_layout,
    open_onnxruntime,
)
from tests.conftest import make_tiny_cnn


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source, artifact at the default options), built once for the module."""
    root = tmp_path_factory.mktemp("ort-build")
    source = make_tiny_cnn(root / "tiny.onnx", size=16)
    artifact = root / "tiny.opt.onnx"
    build_onnxruntime(source, artifact, OrtBuildOptions(threads=1))
    return source, artifact


def test_artifact_matches_source_and_manifest_says_how_it_was_built(
    built: tuple[Path, Path],
) -> None:
    source, artifact = built
    manifest = read_manifest(artifact)
    assert manifest is not None
    assert manifest.stage is Stage.BUILD and manifest.precision is Precision.FP32
    details = manifest.details
    assert details["backend"] == "onnxruntime" and details["format"] == "onnx"
    assert details["provider"] == "CPUExecutionProvider"
    assert details["optimization"] == "all" and details["threads"] == 1
    # level "all" saves the NCHWc layout: tied to this CPU family, which the manifest names
    assert details["hardware_specific"] is True
    assert details["cpu"]["layout"] == cpu_layout()
    assert details["runner"] == {
        "optimization": "disabled",
        "providers": ["CPUExecutionProvider"],
        "threads": 1,
        "model_format": "onnx",
    }
    check = manifest.verification
    assert check["passed"] is True and check["samples"] == 8
    assert 0.0 <= check["max_abs_error"] <= 1e-3
    assert manifest.inputs[0].role == "source" and manifest.inputs[0].path == str(source)
    with open_runner(Backend.ONNXRUNTIME, artifact) as runner:
        info = runner.info
        assert info.details["built"] is True
        assert info.details["optimization"] == "disabled"  # loaded as built, not re-optimized
        assert info.threads == 1
        with open_runner(Backend.ONNXRUNTIME, source, threads=1) as reference:
            result = compare_runners(reference, runner, random_batches((3, 16, 16), 16, 4, 1))
    assert result.max_abs_error <= 1e-5 and result.top1_agreement == 100.0


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_artifact_gives_the_source_outputs_for_any_batch(
    built: tuple[Path, Path], batch: int, seed: int
) -> None:
    source, artifact = built
    x = np.random.default_rng(seed).normal(0, 2, (batch, 3, 16, 16)).astype(np.float32)
    with (
        open_runner(Backend.ONNXRUNTIME, source, threads=1) as reference,
        open_runner(Backend.ONNXRUNTIME, artifact) as runner,
    ):
        np.testing.assert_allclose(run_batch(runner, x), run_batch(reference, x), atol=1e-5)


def test_ort_format_is_built_and_loaded_by_its_suffix(tmp_path: Path) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    artifact = tmp_path / "tiny.ort"
    manifest = build_onnxruntime(source, artifact, OrtBuildOptions())
    assert manifest.details["format"] == "ort"
    assert manifest.details["runner"]["model_format"] == "ort"
    assert artifact.read_bytes()[4:8] == b"ORTM"  # the flatbuffer's file identifier
    assert manifest.verification["max_abs_error"] <= 1e-5
    with open_runner(Backend.ONNXRUNTIME, artifact) as runner:
        assert runner.info.details["model_format"] == "ort"
        assert run_batch(runner, np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 4)


def test_portable_build_leaves_the_layout_to_the_runner(tmp_path: Path) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    artifact = tmp_path / "tiny.portable.onnx"
    manifest = build_onnxruntime(source, artifact, OrtBuildOptions(portable=True))
    assert manifest.details["portable"] is True and manifest.details["hardware_specific"] is False
    assert manifest.details["runner"]["optimization"] == "all"
    with open_runner(Backend.ONNXRUNTIME, artifact) as runner:
        assert runner.info.details["optimization"] == "all"


def test_lower_levels_are_portable_and_load_without_optimizing(tmp_path: Path) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    artifact = tmp_path / "tiny.ext.onnx"
    options = OrtBuildOptions(optimization=GraphOptimization.EXTENDED)
    manifest = build_onnxruntime(source, artifact, options)
    assert manifest.details["hardware_specific"] is False
    assert manifest.details["runner"]["optimization"] == "disabled"


def test_source_manifest_is_carried(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    parent = new_manifest(
        stage=Stage.QUANTIZE,
        artifact=source,
        precision=Precision.MIXED,
        inputs=(InputRef.of("model", source),),
        preprocessing=tiny_contract,
        details={"note": "stand-in parent"},
    )
    write_manifest(manifest_path(source), parent)
    manifest = build_onnxruntime(source, tmp_path / "out.onnx", OrtBuildOptions())
    assert manifest.precision is Precision.MIXED
    assert manifest.preprocessing == tiny_contract
    assert manifest.lineage[-1]["stage"] == "quantize"


def test_a_layout_built_for_another_cpu_family_is_refused(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, artifact = built
    copy = tmp_path / artifact.name
    copy.write_bytes(artifact.read_bytes())
    data = json.loads(manifest_path(artifact).read_text())
    data["details"]["cpu"]["layout"] = "x86_64/sse"
    manifest_path(copy).write_text(json.dumps(data))
    with (
        pytest.raises(ResnetOptError, match=r"built for a x86_64/sse CPU layout.*rebuild"),
        open_runner(Backend.ONNXRUNTIME, copy),
    ):
        pass
    check_cpu_layout(copy, "x86_64/avx2", "x86_64/avx2")
    check_cpu_layout(copy, "x86_64/avx2", None)  # flags unknown here: nothing to compare


def test_explicit_runner_options_override_the_manifest(built: tuple[Path, Path]) -> None:
    _, artifact = built
    runner = open_onnxruntime(artifact, optimization="basic", threads=2)
    with runner:
        assert runner.info.details["optimization"] == "basic" and runner.info.threads == 2


# -- refusals: one line, nothing written -----------------------------------------------------


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("out.txt", OrtBuildOptions(), r"ends in \.onnx .* or \.ort"),
        ("out.onnx", OrtBuildOptions(format=OrtFormat.ORT), r"ort format is written to a \.ort"),
        ("out.onnx", OrtBuildOptions(optimization=GraphOptimization.DISABLED), "unchanged"),
        ("out.onnx", OrtBuildOptions(provider=OrtProvider.TENSORRT), "--backend tensorrt"),
        ("out.ort", OrtBuildOptions(provider=OrtProvider.CUDA), "CPU provider only"),
        ("out.onnx", OrtBuildOptions(threads=0), "threads must be positive"),
        ("out.onnx", OrtBuildOptions(tolerance=float("nan")), "tolerance"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    tmp_path: Path, name: str, options: OrtBuildOptions, message: str
) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    before = _files(tmp_path)
    with pytest.raises(ResnetOptError, match=message):
        build_onnxruntime(source, tmp_path / name, options)
    assert _files(tmp_path) == before


def test_an_absent_provider_is_refused(tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    with pytest.raises(ResnetOptError, match="CUDAExecutionProvider is not available"):
        build_onnxruntime(source, tmp_path / "out.onnx", OrtBuildOptions(provider=OrtProvider.CUDA))
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("content", [None, b"not a model", b""])
def test_a_source_that_is_not_an_onnx_file_is_refused(
    tmp_path: Path, content: bytes | None
) -> None:
    source = tmp_path / "model.onnx"
    if content is not None:
        source.write_bytes(content)
    before = _files(tmp_path)
    with pytest.raises(ResnetOptError, match=r"model\.onnx: (no such file|not an ONNX model)"):
        build_onnxruntime(source, tmp_path / "out" / "model.opt.onnx", OrtBuildOptions())
    assert _files(tmp_path) == before  # not even the output folder


def test_existing_output_needs_force(built: tuple[Path, Path], tmp_path: Path) -> None:
    source, _ = built
    out = tmp_path / "a.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(ResnetOptError, match="exists; pass --force"):
        build_onnxruntime(source, out, OrtBuildOptions())
    assert out.read_bytes() == b"keep me"
    build_onnxruntime(source, out, OrtBuildOptions(), force=True)
    assert read_manifest(out) is not None


def test_the_source_itself_is_not_an_output(tmp_path: Path) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    with pytest.raises(ResnetOptError, match="is the source model"):
        build_onnxruntime(source, source, OrtBuildOptions(), force=True)


# -- through the command line ------------------------------------------------------------------


def test_cli_build_onnxruntime(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.ort"
    args = ["build", str(source), "-o", str(out), "--backend", "onnxruntime", "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["details"]["format"] == "ort" and data["details"]["threads"] == 1
    assert out.is_file() and manifest_path(out).is_file()


@pytest.mark.parametrize("content", [None, b"\x00garbage"])
def test_cli_build_onnxruntime_bad_source_one_line_exit_1(
    tmp_path: Path, content: bytes | None
) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    source = tmp_path / "model.onnx"
    if content is not None:
        source.write_bytes(content)
    before = _files(tmp_path)
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(
        app, ["build", str(source), "-o", str(out), "--backend", "onnxruntime"]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "model.onnx" in result.stderr
    assert _files(tmp_path) == before


@pytest.mark.parametrize("optimization", ["disabled", "fastest"])
def test_cli_build_onnxruntime_a_refused_level_is_a_usage_error(
    tmp_path: Path, optimization: str
) -> None:
    """'disabled' is a choice the build refuses, as an unknown one is: exit 2, one line."""
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    before = _files(tmp_path)
    args = ["build", "onnxruntime", str(source), "-o", str(tmp_path / "out.onnx")]
    result = CliRunner().invoke(app, [*args, "--optimization", optimization])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "choose" in result.stderr
    assert _files(tmp_path) == before
