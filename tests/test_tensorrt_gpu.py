"""Real TensorRT on a real GPU: build and run the bundled default and resnet18 in FP32, FP16
and INT8, and compare with ONNX Runtime on the same ONNX.

These need TensorRT, pycuda, a CUDA GPU (and torch, to export): they are skipped here, with
the reason, and run where those exist (`pytest -m gpu`). Nothing here is faked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from tests.conftest import gpu_tests_missing, write_image_folder

MISSING = gpu_tests_missing(torch=True)
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]
runner = CliRunner()

# (top-1 agreement with ONNX Runtime on the same ONNX, in percent) a working engine must reach
AGREEMENT = {"fp32": 99.0, "fp16": 95.0, "int8": 90.0}


def _cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module", params=["default", "resnet18"])
def models(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """FP32, FP16 and INT8 (TensorRT layout) ONNX of one model, with manifests."""
    folder = tmp_path_factory.mktemp(request.param)
    fp32 = folder / "model.onnx"
    export = ["export", "-o", str(fp32)]
    if request.param == "resnet18":
        export += ["--model", "resnet18", "--weights", "none"]
    _cli(*export)
    fp16, int8 = folder / "model.fp16.onnx", folder / "model.int8.onnx"
    _cli("quantize", str(fp32), "-o", str(fp16), "--precision", "fp16")
    calib = "default"  # the bundled digits: the default model's own data
    if request.param == "resnet18":  # RGB images, resized and cropped by its ImageNet contract
        calib = str(write_image_folder(folder / "calib", {"a": 8, "b": 8}, size=64))
    int8_args = ["--precision", "int8", "--target", "tensorrt", "--calib", calib]
    _cli("quantize", str(fp32), "-o", str(int8), *int8_args, "--calib-samples", "16")
    return {"fp32": fp32, "fp16": fp16, "int8": int8}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_and_run_on_the_gpu(models: dict[str, Path], precision: str) -> None:
    from resnet_opt.core.manifest import read_manifest
    from resnet_opt.pipeline.verify import compare_runners, random_batches
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.tensorrt import TensorRtRunner

    source = models[precision]
    plan = source.with_suffix(".plan")
    _cli(
        "build",
        str(source),
        "-o",
        str(plan),
        "--backend",
        "tensorrt",
        "--batch",
        "1:4:8",
        "--force",
    )
    manifest = read_manifest(plan)
    assert manifest is not None
    assert manifest.details["precision"]["engine"] == precision
    assert manifest.details["layers"]["available"]
    assert manifest.verification["top1_agreement"] >= AGREEMENT[precision]
    with open_onnxruntime(source) as ort, TensorRtRunner(plan, cuda_graph=True) as engine:
        spec = engine.inputs[0]
        shape = tuple(int(d) for d in spec.shape[1:] if isinstance(d, int))
        for batch in (1, 5, 8):
            x = np.zeros((batch, *shape), np.float32)
            assert engine.infer({spec.name: x})[engine.outputs[0].name].shape[0] == batch
        comparison = compare_runners(ort, engine, random_batches(shape, 32, 8, seed=1))
    assert comparison.top1_agreement >= AGREEMENT[precision]


def test_timing_cache_and_version_compatible_on_the_gpu(
    models: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "timing.cache"
    plan = tmp_path / "vc.plan"
    _cli(
        "build",
        str(models["fp32"]),
        "-o",
        str(plan),
        "--backend",
        "tensorrt",
        "--timing-cache",
        str(cache),
        "--version-compatible",
        "--workspace",
        "1G",
        "--opt-level",
        "2",
    )
    assert cache.stat().st_size > 0
    from resnet_opt.runners.tensorrt import TensorRtRunner

    with TensorRtRunner(plan) as engine:
        spec = engine.inputs[0]
        shape = tuple(int(d) for d in spec.shape[1:] if isinstance(d, int))
        engine.infer({spec.name: np.zeros((2, *shape), np.float32)})
