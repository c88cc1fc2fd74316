"""Real TensorRT on a real GPU: build and run small ONNX models in FP32, FP16 and INT8, compare
with ONNX Runtime on the same ONNX, CUDA graphs with eager runs, and the failure modes the
doubles model (a damaged timing cache, the inspector's device per layer), plus a DLA build
where the device has DLA cores.

These need TensorRT, pycuda and a CUDA GPU, and cuda-python for CUDA graphs; no torch: the
models are written with onnx.helper (a one-conv CNN and a small residual network) and
quantized by `resnet-opt quantize`. Here they are skipped with the reason; `pytest -m gpu`
runs them where those exist (scripts/hardware_report.py runs them all and collects the
results). Nothing here is faked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.core.manifest import (
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    write_manifest,
)
from tests.conftest import TINY_CONTRACT, gpu_tests_missing, make_tiny_cnn, write_image_folder

MISSING = gpu_tests_missing()
GRAPHS_MISSING = gpu_tests_missing(cuda_python=True)
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


def _fp32(path: Path, name: str) -> Path:
    """An FP32 ONNX written with onnx.helper, with an export manifest (no torch)."""
    if name == "tiny_cnn":
        make_tiny_cnn(path)
    else:
        from tests.qdq_models import tiny_resnet

        onnx.save(tiny_resnet(), str(path))
    manifest = new_manifest(
        stage=Stage.EXPORT,
        artifact=path,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=TINY_CONTRACT,
    )
    write_manifest(manifest_path(path), manifest)
    return path


@pytest.fixture(scope="module", params=["tiny_cnn", "tiny_resnet"])
def models(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """FP32, FP16 and INT8 (TensorRT layout) ONNX of one model, with manifests."""
    folder = tmp_path_factory.mktemp(request.param)
    fp32 = _fp32(folder / "model.onnx", request.param)
    fp16, int8 = folder / "model.fp16.onnx", folder / "model.int8.onnx"
    _cli("quantize", str(fp32), "-o", str(fp16), "--precision", "fp16")
    calib = write_image_folder(folder / "calib", {"a": 8, "b": 8, "c": 8, "d": 8}, size=8)
    int8_args = ["--precision", "int8", "--target", "tensorrt", "--calib", str(calib)]
    _cli("quantize", str(fp32), "-o", str(int8), *int8_args, "--eval", "none")
    return {"fp32": fp32, "fp16": fp16, "int8": int8}


def _shape(engine: object) -> tuple[int, ...]:
    spec = engine.inputs[0]  # type: ignore[attr-defined]
    return tuple(int(d) for d in spec.shape[1:] if isinstance(d, int))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_and_run_on_the_gpu(models: dict[str, Path], precision: str) -> None:
    from resnet_opt.core.manifest import read_manifest
    from resnet_opt.pipeline.verify import compare_runners, random_batches
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.tensorrt import open_tensorrt

    source = models[precision]
    plan = source.with_suffix(".plan")
    _cli("build", str(source), "-o", str(plan), "--backend", "tensorrt", "--batch", "1:4:8")
    manifest = read_manifest(plan)
    assert manifest is not None
    assert manifest.details["precision"]["engine"] == precision
    layers = manifest.details["layers"]
    assert layers["available"] and layers["on_dla"] == 0  # a GPU engine: no layer on a DLA
    assert manifest.verification["top1_agreement"] >= AGREEMENT[precision]
    with open_onnxruntime(source) as ort, open_tensorrt(plan) as engine:
        shape = _shape(engine)
        for batch in (1, 5, 8):
            x = np.zeros((batch, *shape), np.float32)
            assert (
                engine.infer({engine.inputs[0].name: x})[engine.outputs[0].name].shape[0] == batch
            )
        comparison = compare_runners(ort, engine, random_batches(shape, 32, 8, seed=1))
    assert comparison.top1_agreement >= AGREEMENT[precision]


@pytest.mark.skipif(GRAPHS_MISSING is not None, reason=GRAPHS_MISSING or "")
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cuda_graphs_give_the_eager_results(models: dict[str, Path], precision: str) -> None:
    from resnet_opt.runners.tensorrt import open_tensorrt

    source = models[precision]
    plan = source.with_suffix(".graph.plan")
    _cli("build", str(source), "-o", str(plan), "--backend", "tensorrt", "--batch", "1:4:8")
    rng = np.random.default_rng(2)
    with open_tensorrt(plan) as eager, open_tensorrt(plan, cuda_graph=True) as graphed:
        name, out = eager.inputs[0].name, eager.outputs[0].name
        for batch in (4, 4, 1, 8, 4, 1, 1, 8):  # shape changes: one context and graph per batch
            x = rng.standard_normal((batch, *_shape(eager)), dtype=np.float32)
            want = eager.infer({name: x})[out]
            got = graphed.infer({name: x})[out]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert graphed.info.details["cuda_graph_fallback"] is None  # captured, not eager


def test_timing_cache_and_version_compatible_on_the_gpu(
    models: dict[str, Path], tmp_path: Path
) -> None:
    from resnet_opt.runners.tensorrt import open_tensorrt

    cache = tmp_path / "timing.cache"
    plan = tmp_path / "vc.plan"
    build = ["build", str(models["fp32"]), "--backend", "tensorrt", "--timing-cache", str(cache)]
    _cli(*build, "-o", str(plan), "--version-compatible", "--workspace", "1G", "--opt-level", "2")
    assert cache.stat().st_size > 0
    _cli(*build, "-o", str(tmp_path / "again.plan"))  # the cache read back by this TensorRT
    with open_tensorrt(plan) as engine:
        engine.infer({engine.inputs[0].name: np.zeros((2, *_shape(engine)), np.float32)})


def test_a_damaged_timing_cache_is_refused_and_kept(
    models: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "timing.cache"
    damaged = b"\x00not a TensorRT timing cache" * 64
    cache.write_bytes(damaged)
    plan = tmp_path / "m.plan"
    result = runner.invoke(
        app,
        [
            "build",
            str(models["fp32"]),
            "-o",
            str(plan),
            "--backend",
            "tensorrt",
            "--timing-cache",
            str(cache),
        ],
    )
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:  # TensorRT could not read it: one line, no plan, the file kept
        assert "--timing-cache" in result.output and not plan.exists()
        assert cache.read_bytes() == damaged
    else:  # TensorRT started afresh: the file now holds a real (non-empty) cache
        assert cache.stat().st_size > 0


def test_dla_build_and_run(models: dict[str, Path], tmp_path: Path) -> None:
    """INT8 and FP16 on DLA core 0 (TensorRT 10.x up to 10.7: implicit INT8 from the quantize
    cache; 11.4.1+: strongly typed), where the device has DLA cores."""
    from resnet_opt.core.manifest import read_manifest
    from resnet_opt.pipeline.verify import compare_runners, random_batches
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.tensorrt import open_tensorrt
    from resnet_opt.tensorrt.device import probe_device

    device = probe_device()
    if not device.dla_cores:
        pytest.skip(f"{device.describe()} has no DLA cores")
    for precision in ("int8", "fp16"):
        source = models[precision]
        plan = tmp_path / f"{precision}.dla.plan"
        _cli(
            "build",
            str(source),
            "-o",
            str(plan),
            "--backend",
            "tensorrt",
            "--dla-core",
            "0",
            "--batch",
            "4",
        )
        manifest = read_manifest(plan)
        assert manifest is not None and manifest.details["dla"]["core"] == 0
        assert manifest.details["layers"]["on_dla"] >= 1
        with open_onnxruntime(source) as ort, open_tensorrt(plan) as engine:
            comparison = compare_runners(ort, engine, random_batches(_shape(engine), 16, 4, seed=3))
        assert comparison.top1_agreement >= AGREEMENT[precision]
