"""`bench --concurrent`: GPU + DLA0 + DLA1 engines at once, one process each, with TensorRT's
double (as an Orin) installed in every process; per-engine and total throughput."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson import facts as jetson_facts
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import BenchOptions
from resnet_opt.pipeline.bench_concurrent import bench_concurrent
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.report.markdown import render
from resnet_opt.report.schema import Report, report_json
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from tests.fakes.tiny_models import calibration_cache, fp32_model, qdq_model
from tests.orin_double import install_into

TENSORS = ["input", "c", "r", "p", "f", "logits"]
INIT = "tests.orin_double:install"


def engines(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A GPU engine of the Q/DQ INT8 ONNX and one per DLA core (implicit INT8 from the cache)."""
    install_into(monkeypatch)
    source = fp32_model(folder / "m.onnx")
    calibration_cache(folder / "m.int8.calib", TENSORS)
    int8 = qdq_model(folder / "m.int8.onnx", source=source, cache="m.int8.calib")
    profile = BatchProfile(4, 4, 4)
    built = []
    for name, core in (("gpu.plan", None), ("dla0.plan", 0), ("dla1.plan", 1)):
        options = TensorRtBuildOptions(batch=profile, dla_core=core, verify=False)
        build_tensorrt(int8, folder / name, options)
        built.append(folder / name)
    return built


def options(**kw: object) -> BenchOptions:
    base: dict[str, object] = {
        "batches": (4,),
        "budget": Budget(duration_s=0.3, warmup_s=0.05, min_iterations=3),
        "data": None,
        "threads": 1,
    }
    return BenchOptions(**{**base, **kw})  # type: ignore[arg-type]


def test_gpu_and_two_dlas_run_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", Path(__file__).parent / "data/jetson/agx_orin")
    plans = engines(tmp_path, monkeypatch)
    report = bench_concurrent(plans, options(), initializer=INIT)
    (run,) = report.concurrent
    assert [e.artifact for e in run.engines] == ["gpu.plan", "dla0.plan", "dla1.plan"]
    assert len({e.device for e in run.engines}) == 3  # the GPU and each DLA core
    assert run.total_throughput == pytest.approx(sum(e.throughput for e in run.engines))
    assert run.power_w is not None and run.images_per_s_per_w is not None  # AGX rails
    rows = report.measurements
    assert [(m.artifact, m.batch) for m in rows] == [(p.name, 4) for p in plans]
    assert rows[0].options["concurrent_with"] == ["dla0.plan", "dla1.plan"]
    assert all(m.iterations >= 3 for m in rows)
    again = Report.from_dict(json.loads(report_json(report)))  # schema-valid, round trip
    assert again.concurrent == report.concurrent
    text = render(again)
    assert "### Engines at the same time (aggregate)" in text and "total img/s" in text


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plans = engines(tmp_path, monkeypatch)
    with pytest.raises(ResnetOptError, match="two or more engines"):
        bench_concurrent(plans[:1], options())
    with pytest.raises(ResnetOptError, match="--no-accuracy"):
        bench_concurrent(plans, options(data="default"))
    with pytest.raises(ResnetOptError, match="does not take --cuda-graph"):
        bench_concurrent(plans, options(cuda_graph=True))
    with pytest.raises(ResnetOptError, match="does not take --no-data-transfers"):
        bench_concurrent(plans, options(no_data_transfers=True))
    with pytest.raises(ResnetOptError, match="not this artifact"):
        bench_concurrent([plans[0], tmp_path / "m.int8.onnx"], options())


def test_cli_concurrent_needs_no_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plans = engines(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["bench", *map(str, plans), "--concurrent"])
    assert result.exit_code == 1 and "--no-accuracy" in result.stderr
