"""OpenVINO: the runner (ONNX, IR, compiled blob), `build --backend openvino`, and `info`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resnet_opt.core.manifest import Precision, manifest_path
from resnet_opt.errors import MissingDependencyError, ResnetOptError
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, OvForm, build_openvino
from resnet_opt.pipeline.verify import compare_runners, random_batches
from resnet_opt.runners.base import Backend, open_runner, run_batch
from resnet_opt.runners.openvino import OvPrecision, check_precision, open_openvino, ov_message
from tests.conftest import make_tiny_cnn

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed")


def make_int8_qdq(source: Path, path: Path, shape: tuple[int, ...]) -> Path:
    """A Q/DQ INT8 model in the TensorRT style (symmetric s8 activations, per-channel weights)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter(
                [{"input": rng.standard_normal((4, *shape), dtype=np.float32)} for _ in range(4)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quantize_static(
        str(source),
        str(path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ov")
    fp32 = make_tiny_cnn(root / "tiny.onnx", size=16)
    return fp32, make_int8_qdq(fp32, root / "tiny.int8.onnx", (3, 16, 16))


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# -- runner ------------------------------------------------------------------------------------


def test_runner_matches_ort_at_f32_for_any_fed_batch(models: tuple[Path, Path]) -> None:
    fp32, _ = models
    with (
        open_runner(Backend.ONNXRUNTIME, fp32, threads=1) as reference,
        open_runner(Backend.OPENVINO, fp32, threads=1) as runner,
    ):
        (spec,) = runner.inputs
        assert spec.name == "input" and spec.shape == (None, 3, 16, 16)
        assert runner.outputs[0].name == "logits"
        for batch in (1, 5, 2):  # each new batch is compiled once, then reused
            x = np.random.default_rng(batch).normal(size=(batch, 3, 16, 16)).astype(np.float32)
            np.testing.assert_allclose(
                run_batch(runner, x), run_batch(reference, x), rtol=0, atol=1e-5
            )
        info = runner.info
    assert info.backend is Backend.OPENVINO and info.device == "CPU"
    assert info.precision == "f32"  # read back from the compiled model
    assert info.details["precision_hint"] == "f32"
    assert info.threads == 1
    assert [[1, 3, 16, 16]] in info.details["compiled_shapes"]
    assert [[5, 3, 16, 16]] in info.details["compiled_shapes"]


def test_runner_on_int8_qdq_agrees_with_ort(models: tuple[Path, Path]) -> None:
    _, int8 = models
    with (
        open_runner(Backend.ONNXRUNTIME, int8, threads=1) as reference,
        open_runner(Backend.OPENVINO, int8, threads=1) as runner,
    ):
        result = compare_runners(reference, runner, random_batches((3, 16, 16), 64, 8, 3))
        assert runner.info.precision == "f32"
    scale = 1.0  # the tiny model's logits are O(1); int8 kernels may move them a step or two
    assert result.top1_agreement >= 95.0
    assert result.max_abs_error <= 0.05 * scale


def test_default_precision_records_what_the_device_chose(models: tuple[Path, Path]) -> None:
    fp32, _ = models
    core = ov.Core()
    expected = core.compile_model(core.read_model(str(fp32)), "CPU")
    chosen = expected.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    with open_runner(Backend.OPENVINO, fp32, precision="default") as runner:
        info = runner.info
    assert info.precision == chosen  # bf16 on this AMX/avx512_bf16 Xeon, f32 on older CPUs
    assert info.details["precision_hint"] == "default"


def test_an_explicit_hint_the_device_does_not_honour_is_refused(tiny_onnx: Path) -> None:
    class Compiled:  # the one call the check makes: what the compiled model reports
        def get_property(self, key: str) -> Any:
            assert key == "INFERENCE_PRECISION_HINT"
            return ov.Type.f32

    with pytest.raises(ResnetOptError, match=r"asked OpenVINO for bf16 .* it would run f32"):
        check_precision(tiny_onnx, OvPrecision.BF16, "CPU", Compiled())
    # no hint given: whatever ran is recorded
    assert check_precision(tiny_onnx, OvPrecision.DEFAULT, "CPU", Compiled()) == "f32"


def test_runner_refuses_bad_files_and_feeds(tmp_path: Path, tiny_onnx: Path) -> None:
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(ResnetOptError, match=r"reads \.onnx, \.xml .* or \.blob"):
        open_openvino(other)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage that is not a protobuf")
    with (
        pytest.raises(ResnetOptError, match="not an ONNX model OpenVINO can read"),
        open_runner(Backend.OPENVINO, bad),
    ):
        pass
    with (
        pytest.raises(ResnetOptError, match="no such file"),
        open_runner(Backend.OPENVINO, tmp_path / "absent.onnx"),
    ):
        pass
    with pytest.raises(ResnetOptError, match="unknown OpenVINO precision"):
        open_openvino(tiny_onnx, precision="int4")
    with (
        pytest.raises(ResnetOptError, match="device 'NPU7' is not available"),
        open_runner(Backend.OPENVINO, tiny_onnx, device="NPU7"),
    ):
        pass
    with open_runner(Backend.OPENVINO, tiny_onnx) as runner:
        with pytest.raises(ResnetOptError, match=r"inference failed \(input 'input'"):
            runner.infer({"input": np.zeros((1, 3, 9, 9), np.float32)})
        with pytest.raises(ResnetOptError, match=r"inference failed .*the model takes"):
            runner.infer({"x": np.zeros((1, 3, 8, 8), np.float32)})


def test_a_fixed_batch_is_not_reshaped(tmp_path: Path) -> None:
    fixed = make_tiny_cnn(tmp_path / "fixed.onnx", batch=2)
    with open_runner(Backend.OPENVINO, fixed) as runner:
        assert runner.inputs[0].shape == (2, 3, 8, 8)
        assert run_batch(runner, np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 4)
        with pytest.raises(ResnetOptError, match="inference failed"):
            run_batch(runner, np.zeros((3, 3, 8, 8), np.float32))


# -- build -------------------------------------------------------------------------------------


def test_build_ir_writes_xml_bin_and_manifest_loaded_as_built(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    _, int8 = models
    out = tmp_path / "ir" / "tiny.int8.xml"
    manifest = build_openvino(int8, out, OpenVinoBuildOptions(threads=1))
    assert _files(out.parent) == {"tiny.int8.xml", "tiny.int8.bin", "tiny.int8.xml.json"}
    assert manifest.precision is Precision.INT8
    details = manifest.details
    assert details["backend"] == "openvino" and details["form"] == "ir"
    assert details["portable"] is True and details["device"] == "CPU"
    assert details["precision_hint"] == "f32" and details["inference_precision"] == "f32"
    assert details["openvino"] == ov.__version__
    assert details["weights"]["file"] == "tiny.int8.bin"
    assert details["runner"] == {"device": "CPU", "precision": "f32", "threads": 1}
    check = manifest.verification
    assert check["gate"] == "top1_agreement" and check["top1_agreement"] >= 90.0
    assert check["max_abs_error"] >= 0.0 and check["reference"].startswith("tiny.int8.onnx")
    with open_runner(Backend.OPENVINO, out) as runner:
        info = runner.info
        assert info.details["built"] is True and info.details["kind"] == "ir"
        assert info.precision == "f32" and info.threads == 1
        assert run_batch(runner, np.zeros((3, 3, 16, 16), np.float32)).shape == (3, 4)


def test_build_fp32_ir_is_gated_by_tolerance(models: tuple[Path, Path], tmp_path: Path) -> None:
    fp32, _ = models
    manifest = build_openvino(fp32, tmp_path / "tiny.xml", OpenVinoBuildOptions())
    check = manifest.verification
    assert check["gate"] == "tolerance" and check["passed"] is True
    assert check["max_abs_error"] <= 1e-5
    # two runtimes sum in different orders: never bit-identical over 64 samples, so a zero
    # tolerance must fail the build, and leave nothing behind
    with pytest.raises(ResnetOptError, match=r"differs from ONNX Runtime by up to .*not written"):
        build_openvino(
            fp32, tmp_path / "t2.xml", OpenVinoBuildOptions(tolerance=0.0, samples=64, seed=1)
        )
    assert not (tmp_path / "t2.xml").exists() and not (tmp_path / "t2.bin").exists()


def test_build_compiled_blob_is_tied_to_the_openvino_version(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    _, int8 = models
    out = tmp_path / "tiny.int8.blob"
    manifest = build_openvino(int8, out, OpenVinoBuildOptions(batch=4))
    details = manifest.details
    assert details["form"] == "compiled" and details["portable"] is False
    assert details["batch"] == 4 and "weights" not in details
    assert manifest.verification["input_shape"] == [4, 3, 16, 16]
    with open_runner(Backend.OPENVINO, out) as runner:
        assert runner.info.details["kind"] == "compiled"
        assert runner.inputs[0].shape == (4, 3, 16, 16)
        assert run_batch(runner, np.zeros((4, 3, 16, 16), np.float32)).shape == (4, 4)
    data = json.loads(manifest_path(out).read_text())
    data["details"]["openvino"] = "2024.0.0-0000"
    manifest_path(out).write_text(json.dumps(data))
    with (
        pytest.raises(ResnetOptError, match=r"compiled with OpenVINO 2024\.0\.0.*rebuild"),
        open_runner(Backend.OPENVINO, out),
    ):
        pass


def test_build_with_the_device_default_precision_says_bf16_where_it_ran(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    fp32, _ = models
    out = tmp_path / "tiny.default.xml"
    manifest = build_openvino(fp32, out, OpenVinoBuildOptions(precision=OvPrecision.DEFAULT))
    ran = manifest.details["inference_precision"]
    assert manifest.details["precision_hint"] == "default" and ran in {"bf16", "f16", "f32"}
    assert manifest.verification["gate"] == ("tolerance" if ran == "f32" else "top1_agreement")
    with open_runner(Backend.OPENVINO, out) as runner:
        assert runner.info.precision == ran


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("out.onnx", OpenVinoBuildOptions(), r"ends in \.xml .* or \.blob"),
        ("out.xml", OpenVinoBuildOptions(form=OvForm.COMPILED), r"written to a \.blob file"),
        ("out.xml", OpenVinoBuildOptions(threads=0), "threads must be positive"),
        ("out.xml", OpenVinoBuildOptions(batch=0), "batch must be positive"),
        ("out.xml", OpenVinoBuildOptions(min_agreement=120), "percentage"),
        ("out.xml", OpenVinoBuildOptions(batch=3, input_shape=None), "fixed batch of 2, not 3"),
    ],
)
def test_bad_build_options_leave_nothing(
    tmp_path: Path, name: str, options: OpenVinoBuildOptions, message: str
) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx", batch=2)
    before = _files(tmp_path)
    with pytest.raises(ResnetOptError, match=message):
        build_openvino(source, tmp_path / name, options)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("content", [None, b"not a model"])
def test_build_refuses_a_source_that_is_not_onnx(tmp_path: Path, content: bytes | None) -> None:
    source = tmp_path / "model.onnx"
    if content is not None:
        source.write_bytes(content)
    before = _files(tmp_path)
    with pytest.raises(ResnetOptError, match=r"model\.onnx: (no such file|not an ONNX model)"):
        build_openvino(source, tmp_path / "out" / "model.xml", OpenVinoBuildOptions())
    assert _files(tmp_path) == before


def test_build_ir_refuses_an_existing_bin_without_force(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    fp32, _ = models
    (tmp_path / "m.bin").write_bytes(b"someone else's weights")
    with pytest.raises(ResnetOptError, match=r"m\.bin: exists; pass --force"):
        build_openvino(fp32, tmp_path / "m.xml", OpenVinoBuildOptions())
    assert _files(tmp_path) == {"m.bin"}


# -- missing extra, info -----------------------------------------------------------------------


def test_missing_openvino_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_onnx: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` fail
    with (
        pytest.raises(MissingDependencyError, match=r"pip install 'resnet-opt\[openvino\]'"),
        open_runner(Backend.OPENVINO, tiny_onnx),
    ):
        pass
    with pytest.raises(MissingDependencyError, match=r"resnet-opt\[openvino\]"):
        build_openvino(tiny_onnx, tmp_path / "out.xml", OpenVinoBuildOptions())
    assert not (tmp_path / "out.xml").exists()


def test_ov_message_keeps_the_reason_not_the_source_location() -> None:
    exc = RuntimeError(
        "Exception from src/inference/src/cpp/core.cpp:84:\n"
        "Check 'x' failed at src/frontends/common/src/frontend.cpp:117:\n"
        "FrontEnd API failed with GeneralFailure:\n"
        'ir: Could not open the file: "nope.xml"\n\n'
    )
    assert ov_message(exc) == 'ir: Could not open the file: "nope.xml"'


def test_info_lists_openvino_devices() -> None:
    from resnet_opt.environment import RELEVANT_CPU_FLAGS, collect

    env = collect()
    devices = {d.name: d for d in env.openvino_devices}
    assert "CPU" in devices and devices["CPU"].full_name
    assert "FP32" in devices["CPU"].capabilities
    order = [RELEVANT_CPU_FLAGS.index(f) for f in env.machine.cpu_flags]
    assert order == sorted(order)  # the known ISA flags this CPU has, in table order


# -- through the command line ------------------------------------------------------------------


def test_cli_build_openvino(models: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    fp32, _ = models
    out = tmp_path / "tiny.xml"
    args = ["build", str(fp32), "-o", str(out), "--backend", "openvino"]
    result = CliRunner().invoke(app, [*args, "--precision-hint", "f32", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["details"]["inference_precision"] == "f32"
    assert _files(tmp_path) == {"tiny.xml", "tiny.bin", "tiny.xml.json"}


def test_cli_build_openvino_min_agreement_is_the_gate_recorded(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    _, int8 = models
    out = tmp_path / "tiny.int8.xml"
    args = ["build", "openvino", str(int8), "-o", str(out), "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--min-agreement", "50", "--samples", "16", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verification"]["gate"] == "top1_agreement"
    assert data["verification"]["min_agreement"] == 50.0 and data["options"]["min_agreement"] == 50
    assert data["verification"]["samples"] == 16
    # a percentage outside 0..100 is a usage error, nothing written
    bad = CliRunner().invoke(app, [*args[:4], str(tmp_path / "b.xml"), "--min-agreement", "101"])
    assert bad.exit_code == 2 and not (tmp_path / "b.xml").exists()


@pytest.mark.parametrize("content", [None, b"\x00garbage"])
def test_cli_build_openvino_bad_source_one_line_exit_1(
    tmp_path: Path, content: bytes | None
) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    source = tmp_path / "model.onnx"
    if content is not None:
        source.write_bytes(content)
    before = _files(tmp_path)
    result = CliRunner().invoke(
        app, ["build", str(source), "-o", str(tmp_path / "m.xml"), "--backend", "openvino"]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert _files(tmp_path) == before


def test_cli_build_openvino_without_openvino_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_onnx: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app

    monkeypatch.setitem(sys.modules, "openvino", None)
    out = tmp_path / "out.xml"
    result = CliRunner().invoke(
        app, ["build", str(tiny_onnx), "-o", str(out), "--backend", "openvino"]
    )
    assert result.exit_code == 1
    assert "pip install 'resnet-opt[openvino]'" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()
