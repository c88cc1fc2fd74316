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
    monkeypatch.setattr(
        jetson_facts, "SYSTEM_ROOT", Path(__file__).parents[1] / "data/jetson/agx_orin"
    )
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
    assert result.exit_code == 2 and "--no-accuracy" in result.stderr


def test_the_total_does_not_grow_when_one_engine_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast GPU engine (25 ms) and two DLA engines that take 200 ms while the GPU runs and
    50 ms after it stopped, all for the same number of inferences: the GPU stops first. Read
    inside the common window, no DLA engine beats its contended latency (the sleeps are lower
    bounds), so the total stays under what the three deliver together; each engine's rate over
    its own loop counts the DLAs' uncontended tail and overstates it."""
    from tests import orin_double

    plans = engines(tmp_path, monkeypatch)
    iterations, batch = 24, 4
    marker = tmp_path / "gpu-running"
    marker.touch()
    monkeypatch.setenv(orin_double.CONTENTION_ENV, f"{marker}:{iterations}")
    budget = Budget(iterations=iterations, warmup_s=0.0, min_iterations=1)
    report = bench_concurrent(
        plans, options(budget=budget), initializer="tests.orin_double:install_contended"
    )
    assert not marker.exists()  # the GPU engine ran all its inferences
    (run,) = report.concurrent
    gpu, dla0, dla1 = run.engines
    contended = batch / orin_double.DLA_LATENCY_S[True]  # a DLA's most while the GPU runs
    assert dla0.throughput <= contended * 1.05 and dla1.throughput <= contended * 1.05
    together = batch / orin_double.GPU_LATENCY_S + 2 * contended
    assert run.total_throughput <= together * 1.05, (run.total_throughput, together)
    assert run.total_throughput == pytest.approx(gpu.throughput + dla0.throughput + dla1.throughput)
    own = [m.throughput for m in report.measurements]  # each engine's rate over its own loop
    assert own[1] > dla0.throughput * 1.2 and sum(own) > run.total_throughput
    assert report.measurements[1].options["window_throughput"] == dla0.throughput
    assert run.window_s is not None
    assert 0 < run.window_s <= report.measurements[0].total_s * 1.01  # ends as the GPU stops
    text = render(Report.from_dict(json.loads(report_json(report))))
    assert "common window s" in text


def test_the_window_is_read_from_each_engines_timestamps() -> None:
    """Numbers: a GPU engine ran 10 inferences of 0.1 s from t=0; a DLA engine 3 of 0.5 s from
    t=0.05. Window: 0.05 to 1.0. In it the GPU did 9.5 inferences, the DLA 1.9 (the last one
    cut at 1.0)."""
    from resnet_opt.measure.concurrent import common_window, inferences_in

    gpu = [i * 0.1 for i in range(11)]
    dla = [0.05, 0.55, 1.05, 1.55]
    window = common_window([gpu, dla])
    assert window.start == pytest.approx(0.05) and window.end == pytest.approx(1.0)
    assert inferences_in(gpu, window) == pytest.approx(9.5)
    assert inferences_in(dla, window) == pytest.approx(1.0 + 0.45 / 0.5)
    with pytest.raises(ResnetOptError, match="did not overlap"):
        common_window([[0.0, 1.0], [2.0, 3.0]])


def test_power_is_averaged_over_the_window() -> None:
    from resnet_opt.jetson.power import PowerSamples

    samples = PowerSamples([10.0, 20.0, 30.0, 40.0], [0.0, 1.0, 2.0, 3.0])
    assert samples.mean_between(0.5, 2.5) == pytest.approx(25.0)
    assert samples.mean_between(1.2, 1.4) == pytest.approx(25.0)  # the samples around it
    assert PowerSamples([], []).mean_between(0.0, 1.0) is None
