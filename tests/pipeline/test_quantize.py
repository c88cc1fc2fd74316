"""The quantize stage on the bundled default model: accuracy per method and target, manifests,
reproducibility, the --max-drop gate, --accuracy-budget, --exclude, and every bad input.

One calibration pass (module fixture, through --calib-cache) serves the method/target matrix, so
the matrix costs only range computation, the rewrite and the evaluation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from resnet_opt.calibration.ranges import Method
from resnet_opt.calibration.tensorrt_cache import read_tensorrt_cache
from resnet_opt.cli import app
from resnet_opt.core.manifest import Precision, Stage, manifest_path, read_manifest
from resnet_opt.graph import index_graph
from resnet_opt.pipeline.quantize import quantize
from resnet_opt.pipeline.quantize_int8 import tensorrt_cache_path
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization.plan import QdqTarget
from tests.conftest import write_image_folder
from tests.quantization.test_placement import assert_tensorrt_placement

runner = CliRunner()


def _cli(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _no_outputs(folder: Path) -> bool:
    return not any(p for p in folder.iterdir() if p.name.startswith("out"))


@pytest.fixture(scope="module")
def calib_cache(default_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quantize-cache")
    cache = folder / "default.calib.npz"
    quantize(
        default_onnx,
        folder / "first.onnx",
        QuantizeOptions(method=Method.MAX, calib_cache=cache, eval_data="none"),
    )
    assert cache.is_file()
    return cache


# -- accuracy (acceptance) ---------------------------------------------------------------------


@pytest.mark.parametrize("target", list(QdqTarget))
@pytest.mark.parametrize("method", list(Method))
def test_every_method_keeps_top1_within_half_a_point(
    default_onnx: Path, calib_cache: Path, tmp_path: Path, target: QdqTarget, method: Method
) -> None:
    out = tmp_path / f"out.{target.value}.{method.value}.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(target=target, method=method, calib_cache=calib_cache, max_drop=0.5),
    )
    check = result.manifest.verification
    assert check["evaluated"] and check["count"] == 539  # the bundled test split, all of it
    assert check["drop_points"] <= 0.5, check
    assert check["gate"]["passed"]
    assert result.manifest.details["calibration"]["cache"]["reused"]


# -- what the manifest and the side files say --------------------------------------------------


def test_manifest_and_tensorrt_cache(default_onnx: Path, calib_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.int8.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(method=Method.PERCENTILE, calib_cache=calib_cache, eval_samples=64),
    )
    manifest = read_manifest(out)
    assert manifest is not None and manifest.to_dict() == result.manifest.to_dict()
    assert manifest.stage is Stage.QUANTIZE and manifest.precision is Precision.INT8
    parent = read_manifest(default_onnx)
    assert parent is not None and manifest.preprocessing == parent.preprocessing
    assert manifest.lineage[-1]["sha256"] == parent.sha256
    calib = manifest.details["calibration"]
    assert calib["method"] == "percentile" and calib["percentile"] == 99.99
    assert calib["samples"] == 257 and calib["available"] == 257 and calib["requested"] is None
    quant = manifest.details["quantization"]
    assert quant["target"] == "tensorrt" and quant["activation_type"] == "int8"
    assert quant["bias"] == "float" and quant["per_channel_weights"] is True
    assert quant["int8_layers"] == len(quant["layers"]) and quant["excluded"] == []
    assert_tensorrt_placement(onnx.load(str(out)))

    trt = tensorrt_cache_path(out)
    assert manifest.details["tensorrt_calibration_cache"] == trt.name == "out.int8.trt-calib.cache"
    cache = read_tensorrt_cache(trt)
    model_tensors = {n for node in onnx.load(str(default_onnx)).graph.node for n in node.output}
    assert "input" in cache.scales and set(cache.scales) - {"input"} <= model_tensors


def test_cpu_target_manifest(default_onnx: Path, calib_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.cpu.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(
            target=QdqTarget.CPU, method=Method.MAX, calib_cache=calib_cache, eval_data="none"
        ),
    )
    quant = result.manifest.details["quantization"]
    assert quant["activation_type"] == "uint8" and quant["bias"].startswith("int32")
    assert result.tensorrt_cache is None and not tensorrt_cache_path(out).exists()
    model = onnx.load(str(out))
    index = index_graph(model.graph)
    zero_points = {
        int(onnx.numpy_helper.to_array(index.initializers[n.input[2]]))
        for n in model.graph.node
        if n.op_type == "QuantizeLinear"
    }
    assert zero_points == {0, 128}  # non-negative tensors at 0, signed ones at 128


def test_same_inputs_and_seed_give_identical_bytes(default_onnx: Path, tmp_path: Path) -> None:
    options = QuantizeOptions(method=Method.MAX, calib_samples=64, seed=3, eval_data="none")
    a = quantize(default_onnx, tmp_path / "a" / "out.onnx", options)
    b = quantize(default_onnx, tmp_path / "b" / "out.onnx", options)
    assert a.output.read_bytes() == b.output.read_bytes()
    assert a.tensorrt_cache is not None and b.tensorrt_cache is not None
    assert a.tensorrt_cache.read_bytes() == b.tensorrt_cache.read_bytes()
    assert a.manifest.details["calibration"]["samples"] == 64


# -- gates and mixed precision -------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Calibration data that says nothing about real inputs: ranges far too small."""
    path = tmp_path_factory.mktemp("zeros") / "zeros.npy"
    np.save(path, np.zeros((8, 8, 8), np.uint8))
    return path


def test_max_drop_gate_exits_3_and_keeps_the_artifact(
    default_onnx: Path, zeros_npy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.onnx"
    code, _, err = _cli(
        "quantize",
        default_onnx,
        "-o",
        out,
        "--calib",
        zeros_npy,
        "--method",
        "max",
        "--max-drop",
        "1",
        "--eval-samples",
        "100",
    )
    assert code == 3, err
    assert "over --max-drop 1" in err and "kept for inspection" in err
    assert "out.onnx: top-1 dropped" in err and "try another --method" in err
    manifest = read_manifest(out)
    assert manifest is not None
    gate = manifest.verification["gate"]
    assert gate["passed"] is False and gate["drop_points"] > 1


def test_accuracy_budget_keeps_the_most_sensitive_layers(
    default_onnx: Path, calib_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.onnx"
    code, _, err = _cli(
        "quantize",
        default_onnx,
        "-o",
        out,
        "--method",
        "percentile",
        "--percentile",
        "99",
        "--calib-cache",
        calib_cache,
        "--accuracy-budget",
        "0.2",
        "--eval-samples",
        "270",
    )
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest is not None and manifest.precision is Precision.MIXED
    budget = manifest.details["accuracy_budget"]
    assert budget["drop_before"] > 0.2 and budget["met"] is True
    kept = budget["kept"]
    assert kept and manifest.verification["drop_points"] <= 0.2
    assert 0 < budget["kept_macs_share"] < 1
    assert manifest.details["quantization"]["kept_for_budget"] == kept
    ranked = [layer["layer"] for layer in budget["sensitivity"]["layers"]]
    assert ranked[: len(kept)] == kept  # the most sensitive ones, in order
    assert budget["trials"][0] == {"kept": 0, "drop_points": budget["drop_before"]}
    assert "accuracy budget 0.2 points met" in err and kept[0] in err
    nodes = {n.name: n for n in onnx.load(str(out)).graph.node}
    index = index_graph(onnx.load(str(out)).graph)
    for layer in kept:
        if nodes[layer].op_type == "Conv":  # float weight, no DQ
            assert nodes[layer].input[1] in index.initializers


def test_exclude_op_type_keeps_every_add_float(
    default_onnx: Path, calib_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(exclude=("Add",), calib_cache=calib_cache, eval_data="none"),
    )
    assert result.manifest.precision is Precision.MIXED
    model = onnx.load(str(out))
    index = index_graph(model.graph)
    adds = [n for n in model.graph.node if n.op_type == "Add"]
    assert len(result.manifest.details["quantization"]["excluded"]) == len(adds) > 0
    for add in adds:
        assert all(
            getattr(index.producer(x), "op_type", None) != "DequantizeLinear" for x in add.input
        )


# -- bad input: one line on stderr, exit 1, no file left --------------------------------------


def _assert_refused(code: int, err: str, folder: Path, needle: str, expected: int = 1) -> None:
    assert code == expected, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle in err, err
    assert _no_outputs(folder)


def test_already_quantized_input(default_onnx: Path, calib_cache: Path, tmp_path: Path) -> None:
    first = tmp_path / "int8" / "model.onnx"
    quantize(default_onnx, first, QuantizeOptions(calib_cache=calib_cache, eval_data="none"))
    code, _, err = _cli("quantize", first, "-o", tmp_path / "out.onnx")
    _assert_refused(code, err, tmp_path, "already quantized")


def test_no_manifest_and_no_preprocessing(default_onnx: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.onnx"
    shutil.copy(default_onnx, bare)
    code, _, err = _cli("quantize", bare, "-o", tmp_path / "out.onnx")
    _assert_refused(code, err, tmp_path, "no manifest with a preprocessing contract")
    code, _, err = _cli("quantize", bare, "-o", tmp_path / "out.onnx", "--input-size", "32")
    _assert_refused(code, err, tmp_path, "need at least --input-size, --mean and --std")


def test_preprocessing_options_for_a_bare_model(default_onnx: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.onnx"
    shutil.copy(default_onnx, bare)
    out = tmp_path / "out.onnx"
    code, _, err = _cli(
        "quantize",
        bare,
        "-o",
        out,
        "--input-size",
        "32",
        "--mean",
        "0.305",
        "--std",
        "0.3227",
        "--method",
        "max",
        "--calib-samples",
        "32",
        "--eval-samples",
        "64",
    )
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest is not None and manifest.preprocessing is not None
    assert manifest.preprocessing.num_classes == 10 and manifest.lineage == ()
    assert manifest.verification["evaluated"] is True  # the bundled contract: test split applies


def test_a_gate_without_evaluation_data_is_refused(default_onnx: Path, tmp_path: Path) -> None:
    """Not the bundled contract, so no default test split: --max-drop cannot be measured."""
    bare = tmp_path / "bare.onnx"
    shutil.copy(default_onnx, bare)
    contract = ["--input-size", "32", "--mean", "0.5", "--std", "0.3", "--calib", "default"]
    for gate in (["--max-drop", "1"], ["--accuracy-budget", "1"]):
        code, _, err = _cli("quantize", bare, "-o", tmp_path / "out.onnx", *contract, *gate)
        _assert_refused(code, err, tmp_path, f"{gate[0]} needs evaluation data")


def test_empty_calibration_folder(default_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(
        "quantize", default_onnx, "-o", tmp_path / "out.onnx", "--calib", tmp_path / "empty"
    )
    _assert_refused(code, err, tmp_path, "no image files found")


def test_corrupt_files_are_skipped_or_refused_under_strict(
    default_onnx: Path, tmp_path: Path
) -> None:
    data = write_image_folder(tmp_path / "data", {"3": 3, "7": 3}, size=8, mode="L")
    (data / "3" / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out.onnx"
    code, _, err = _cli(
        "quantize", default_onnx, "-o", out, "--calib", data, "--method", "max", "--eval", "none"
    )
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest.details["calibration"]["skipped"] == 1
    assert manifest.details["calibration"]["samples"] == 6
    out.unlink()
    manifest_path(out).unlink()
    tensorrt_cache_path(out).unlink()
    code, _, err = _cli("quantize", default_onnx, "-o", out, "--calib", data, "--strict")
    _assert_refused(code, err, tmp_path, "broken.png")


def test_wrong_channel_count_under_strict(default_onnx: Path, tmp_path: Path) -> None:
    # without --strict, RGB images are converted to L for this 1-channel model (tested with
    # the other modes in tests/product/test_real_datasets.py); --strict refuses before calibrating
    data = write_image_folder(tmp_path / "rgb", {"a": 2}, size=8, mode="RGB")
    code, _, err = _cli(
        "quantize", default_onnx, "-o", tmp_path / "out.onnx", "--calib", data, "--strict"
    )
    _assert_refused(code, err, tmp_path, "RGB image, the model takes L")


def test_nan_in_npy(default_onnx: Path, tmp_path: Path) -> None:
    x = np.zeros((4, 1, 32, 32), np.float32)
    x[2, 0, 5, 5] = np.nan
    np.save(tmp_path / "nan.npy", x)
    code, _, err = _cli(
        "quantize", default_onnx, "-o", tmp_path / "out.onnx", "--calib", tmp_path / "nan.npy"
    )
    _assert_refused(code, err, tmp_path, "NaN or inf")


def test_fewer_samples_than_asked_warns_and_records(default_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    code, _, err = _cli(
        "quantize",
        default_onnx,
        "-o",
        out,
        "--calib-samples",
        "1000",
        "--method",
        "max",
        "--eval",
        "none",
    )
    assert code == 0, err
    assert "fewer than the 1000 asked for" in err
    manifest = read_manifest(out)
    assert manifest is not None
    calib = manifest.details["calibration"]
    assert (calib["samples"], calib["requested"]) == (257, 1000)


def test_stale_calibration_cache(default_onnx: Path, calib_cache: Path, tmp_path: Path) -> None:
    code, _, err = _cli(
        "quantize",
        default_onnx,
        "-o",
        tmp_path / "out.onnx",
        "--calib-cache",
        calib_cache,
        "--seed",
        "7",
        "--calib-samples",
        "100",
    )
    _assert_refused(code, err, tmp_path, "was made for")


@pytest.mark.parametrize(
    ("args", "needle", "expected"),
    [  # 2: the command line is wrong in itself; 1: it does not fit this model
        (["--precision", "fp16", "--target", "cpu"], "apply to int8 only", 2),
        (["--percentile", "99"], "--percentile needs --method percentile", 2),
        (["--method", "kl"], "--method 'kl': choose max, percentile, entropy, mse", 2),
        (["--exclude", "NoSuchLayer"], "no node or op type of that name", 1),
        (["--exclude", "/Flatten"], "not a layer this target quantizes", 1),
        (["--keep-io-types"], "applies to fp16 only", 2),
        (["--eval", "none", "--max-drop", "1"], "--max-drop needs evaluation data", 2),
        (["--target", "cpu", "--tensorrt-version", "10.13"], "int8 tensorrt target only", 2),
        (["--precision", "fp16", "--tensorrt-version", "10.3.0"], "int8 tensorrt target only", 2),
        (["--tensorrt-version", "ten"], "not a TensorRT version: 'ten'", 2),
        (["--reduce-range"], "--reduce-range applies to the int8 cpu target only", 2),
        (["--target", "tensorrt", "--no-reduce-range"], "int8 cpu target only", 2),
        (["--precision", "fp16", "--no-reduce-range"], "fp16 has no int8 weights", 2),
    ],
)
def test_option_errors(
    default_onnx: Path, tmp_path: Path, args: list[str], needle: str, expected: int
) -> None:
    code, _, err = _cli("quantize", default_onnx, "-o", tmp_path / "out.onnx", *args)
    _assert_refused(code, err, tmp_path, needle, expected)


def test_unknown_target_lists_the_choices(default_onnx: Path, tmp_path: Path) -> None:
    code, _, err = _cli("quantize", default_onnx, "-o", tmp_path / "out.onnx", "--target", "gpu")
    assert code == 2 and "'gpu': choose tensorrt, cpu" in err, err
    assert _no_outputs(tmp_path)


def test_json_output(default_onnx: Path, calib_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    code, stdout, err = _cli(
        "quantize",
        default_onnx,
        "-o",
        out,
        "--calib-cache",
        calib_cache,
        "--target",
        "cpu",
        "--method",
        "max",
        "--eval-samples",
        "64",
        "--json",
    )
    assert code == 0, err
    data = json.loads(stdout)
    assert data["output"] == str(out) and data["stage"] == "quantize"
    assert data["verification"]["drop_points"] <= 0.5


def test_calibration_reports_progress(default_onnx: Path, tmp_path: Path) -> None:
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

    seen: list[tuple[int, int]] = []
    options = QuantizeOptions(method=Method.MAX, calib_samples=40, eval_data="none")
    quantize(
        default_onnx, tmp_path / "out.onnx", options, progress=lambda d, t: seen.append((d, t))
    )
    assert seen and seen[-1] == (40, 40)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
