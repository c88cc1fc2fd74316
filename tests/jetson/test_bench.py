"""A Jetson in reports: facts in the machine section, power per point, longer defaults, the clock
warning, and compare's identity (module + power mode). The recorded trees of tests/data/jetson
stand in for / (resnet_opt.jetson.facts.SYSTEM_ROOT)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson import facts as jetson_facts
from resnet_opt.jetson.facts import read_facts
from resnet_opt.jetson.power import module_rails, power_figures, sample_power
from resnet_opt.measure.jetson_budget import budget_defaults, clock_warning
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import BenchOptions, bench
from resnet_opt.report.compare import Thresholds, compare_reports
from resnet_opt.report.markdown import render
from resnet_opt.report.plot import plot_report
from resnet_opt.report.schema import Report, load_report, report_json, validate
from tests.benchkit import small_report, tiny_set

TREES = Path(__file__).parents[1] / "data" / "jetson"


@pytest.fixture
def nano(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "orin_nano")
    return TREES / "orin_nano"


@pytest.fixture(scope="module")
def x86_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return small_report(tmp_path_factory.mktemp("bench"))


def _jetson_report(report: Report, tree: str) -> Report:
    found = read_facts(TREES / tree, run=lambda argv: None)
    machine = dataclasses.replace(report.machine, cpu_model="aarch64", jetson=found)
    return dataclasses.replace(report, machine=machine)


def test_bench_on_a_jetson_records_facts_and_power(nano: Path, tmp_path: Path) -> None:
    source, _, data = tiny_set(tmp_path)
    options = BenchOptions(
        backends=(Target.ONNXRUNTIME,),
        batches=(1, 2),
        budget=Budget(iterations=5, warmup_s=0.0),
        threads=1,
        data=str(data),
    )
    report = bench([source], options=options)
    assert report.machine.jetson is not None
    assert report.machine.jetson.module == "Jetson Orin Nano 8GB (developer kit)"
    watts = 5.056 * 1.520  # the fixture's VDD_IN, constant while sampled
    for m in report.measurements:
        assert m.power_w == pytest.approx(watts, abs=1e-3)
        assert m.energy_per_image_j == pytest.approx(watts / m.throughput)
        assert m.images_per_s_per_w == pytest.approx(m.throughput / watts)
    text = report_json(report)  # validates against the schema
    again = Report.from_dict(json.loads(text))
    assert again.machine.jetson == report.machine.jetson
    assert again.measurements[0].power_w == report.measurements[0].power_w
    markdown = render(again)
    assert "Jetson: Jetson Orin Nano 8GB (developer kit); power mode 15W" in markdown
    assert "clocks NOT locked" in markdown and "| mJ/img | img/s/W |" in markdown
    plot_report(again, tmp_path / "plot.png")  # two panels: throughput and img/s per watt
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_off_a_jetson_reports_have_no_power(x86_report: Report) -> None:
    assert x86_report.machine.jetson is None
    assert all(m.power_w is None for m in x86_report.measurements)
    assert "img/s/W" not in render(x86_report)


def test_a_report_without_the_jetson_fields_still_validates(x86_report: Report) -> None:
    data = x86_report.to_dict()
    del data["machine"]["jetson"]
    for m in data["measurements"]:
        for key in ("power_w", "energy_per_image_j", "images_per_s_per_w"):
            del m[key]
    validate(data)
    assert Report.from_dict(data).machine.jetson is None


def test_compare_refuses_another_module(x86_report: Report, tmp_path: Path) -> None:
    agx = _jetson_report(x86_report, "agx_orin")
    nano = _jetson_report(x86_report, "orin_nano")
    assert agx.machine.identity()["Jetson module"] != nano.machine.identity()["Jetson module"]
    with pytest.raises(ResnetOptError, match="Jetson module"):
        compare_reports(agx, nano, Thresholds())
    compare_reports(agx, agx, Thresholds())  # the same board compares


def test_compare_refuses_another_power_mode(x86_report: Report) -> None:
    maxn = _jetson_report(x86_report, "agx_orin")
    assert maxn.machine.jetson is not None
    mode_30w = dataclasses.replace(
        maxn,
        machine=dataclasses.replace(
            maxn.machine,
            jetson=dataclasses.replace(maxn.machine.jetson, power_mode="MODE_30W", power_mode_id=2),
        ),
    )
    with pytest.raises(ResnetOptError, match="power mode"):
        compare_reports(maxn, mode_30w, Thresholds())


def test_budget_defaults() -> None:
    nano = read_facts(TREES / "orin_nano")
    assert budget_defaults(nano, warmup_s=None, duration_s=None, iterations=None) == (
        budget_defaults(nano, warmup_s=0.2, duration_s=3.0, iterations=None)
    )
    off = budget_defaults(None, warmup_s=None, duration_s=None, iterations=None)
    assert (off.warmup_s, off.duration_s) == (0.1, 0.5)
    mine = budget_defaults(nano, warmup_s=0.0, duration_s=None, iterations=7)
    assert (mine.warmup_s, mine.duration_s) == (0.0, None)


def test_clock_warning_only_when_known_unlocked() -> None:
    nano = read_facts(TREES / "orin_nano")
    warning = clock_warning(nano)
    assert warning is not None and "jetson_clocks" in warning and "\n" not in warning
    assert clock_warning(read_facts(TREES / "agx_orin", run=lambda argv: None)) is None
    assert clock_warning(None) is None


def test_cli_bench_on_a_jetson_warns_and_uses_trtexec_defaults(nano: Path, tmp_path: Path) -> None:
    source, _, _ = tiny_set(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(source),
            "--backend",
            "onnxruntime",
            "--batch",
            "1",
            "--no-accuracy",
            "--duration",
            "0.05",
            "--threads",
            "1",
            "-o",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("clocks scaling (not locked)") == 1
    report = load_report(tmp_path / "r" / "report.json")
    assert report.settings.warmup_s == 0.2  # trtexec's warm-up; the duration was given
    assert report.measurements[0].power_w is not None


def test_cli_info_shows_the_jetson(nano: Path) -> None:
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "Jetson Orin Nano 8GB (developer kit) (p3767-0005, tegra234)" in result.stdout
    assert "power mode    15W (nvpmodel 0)" in result.stdout
    data = json.loads(CliRunner().invoke(app, ["info", "--json"]).stdout)
    assert data["jetson"]["power_mode"] == "15W"


def test_power_sampler(tmp_path: Path) -> None:
    root = tmp_path / "board"
    shutil.copytree(TREES / "orin_nano", root)
    rails = module_rails(root)
    assert [r.label for r in rails] == ["VDD_IN"]
    with sample_power(rails, interval_s=0.001) as power:
        (root / "sys/bus/i2c/devices/1-0040/hwmon/hwmon1/curr1_input").write_text("3040\n")
    assert power.samples[0] == pytest.approx(5.056 * 1.520)
    assert power.samples[-1] == pytest.approx(5.056 * 3.040)
    assert module_rails(TREES / "x86") == ()
    with sample_power(()) as none:
        pass
    assert none.mean_watts is None
    assert power_figures(None, 100.0).power_w is None
    assert power_figures(10.0, 100.0).energy_per_image_j == pytest.approx(0.1)


def test_build_manifest_records_the_jetson(nano: Path, tmp_path: Path) -> None:
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime

    source, _, _ = tiny_set(tmp_path)
    manifest = build_onnxruntime(source, tmp_path / "model.ort.onnx", OrtBuildOptions(threads=1))
    recorded = manifest.details["jetson_facts"]
    assert recorded["part_number"] == "p3767-0005" and recorded["power_mode"] == "15W"


def test_cli_info_in_a_container_names_the_l4t_line(nano: Path) -> None:
    result = CliRunner().invoke(app, ["info", "--json"])
    rows = {p["name"]: p for p in json.loads(result.stdout)["accelerators"]}
    assert rows["jetpack"]["version"] == "6.1 or 6.2 (L4T 36.4)"  # no /etc/nv_tegra_release


# -- the policy is the bench stage's: the CLI, `run` and Python alike ------------------------------


def test_a_budget_request_takes_the_hosts_defaults() -> None:
    from resnet_opt.errors import UsageError
    from resnet_opt.measure.jetson_budget import BudgetRequest
    from resnet_opt.pipeline.run_config import BenchConfig

    nano = read_facts(TREES / "orin_nano")
    assert BudgetRequest().for_host(nano) == Budget(duration_s=3.0, warmup_s=0.2)
    assert BudgetRequest().for_host(None) == Budget()  # the CPU defaults, as before
    mine = BudgetRequest(iterations=7, warmup_s=0.0, min_iterations=3)
    assert mine.for_host(nano) == Budget(iterations=7, warmup_s=0.0, min_iterations=3)
    # run's [bench] defaults are its own off a Jetson, trtexec's on one; a value given is kept
    cfg = BenchConfig()
    run_default = BudgetRequest(duration_s=cfg.duration, warmup_s=cfg.warmup)
    assert run_default.for_host(None) == Budget(duration_s=0.3, warmup_s=0.1)
    assert run_default.for_host(nano) == Budget(duration_s=3.0, warmup_s=0.2)
    given = BudgetRequest(duration_s=0.3, warmup_s=0.1)
    assert given.for_host(nano) == Budget(duration_s=0.3, warmup_s=0.1)
    with pytest.raises(UsageError, match="exclude each other"):  # refused when asked, not later
        BudgetRequest(iterations=5, duration_s=1.0)


def test_python_bench_on_a_jetson_uses_trtexec_defaults_and_warns(
    nano: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from resnet_opt.measure.jetson_budget import BudgetRequest

    source, _, _ = tiny_set(tmp_path)
    options = BenchOptions(
        backends=("onnxruntime",),  # type: ignore[arg-type]
        batches=(1,),
        budget=BudgetRequest(duration_s=0.05),
        threads=1,
        data=None,
    )
    report = bench([source], options=options)
    assert report.settings.warmup_s == 0.2  # trtexec's warm-up; the duration was given
    assert report.settings.duration_s == 0.05
    assert capfd.readouterr().err.count("clocks scaling (not locked)") == 1


def test_run_times_a_jetson_as_bench_does(
    nano: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` hands its [bench] defaults to the stage as not given: a Jetson gets its budget."""
    from resnet_opt.pipeline import bench as bench_stage
    from resnet_opt.pipeline.run import _Orchestrator, _State
    from resnet_opt.pipeline.run_config import BenchConfig, RunConfig

    asked: list[BenchOptions] = []

    class AskedError(Exception):
        pass

    def recording(artifacts: object, *, options: BenchOptions, **kwargs: object) -> None:
        asked.append(options)
        raise AskedError

    monkeypatch.setattr(bench_stage, "bench", recording)
    config = RunConfig(bench=BenchConfig(batches=(1,), threads=1))
    orchestrator = _Orchestrator(config, tmp_path, _State(tmp_path, force=True), None)
    with pytest.raises(AskedError):
        orchestrator._bench([tmp_path / "model.onnx"], None, None, tmp_path / "report")
    measured = bench_stage.for_this_host(asked[0]).timing
    assert (measured.duration_s, measured.warmup_s) == (3.0, 0.2)
