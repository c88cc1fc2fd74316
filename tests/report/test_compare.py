"""`compare`: improvement, a regression on each threshold, incomparable reports, exit codes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.report.compare import (
    Status,
    Thresholds,
    compare_reports,
    parse_percent,
)
from resnet_opt.report.schema import Latency, Measurement, Report, report_json
from tests.benchkit import small_report


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return small_report(tmp_path_factory.mktemp("bench"))


def _scaled(m: Measurement, speed: float) -> Measurement:
    """The same point run `speed` times as fast."""
    lat = m.latency_ms
    return dataclasses.replace(
        m,
        throughput=m.throughput * speed,
        total_s=m.total_s / speed,
        latency_ms=Latency(*(v / speed for v in dataclasses.astuple(lat))),
    )


def _with(
    report: Report, *, speed: float = 1.0, which: str | None = None, top1: float = 0.0
) -> Report:
    """`report` with the points of artifact `which` (all when None) `speed`× as fast and its
    top-1 moved by `top1` points."""
    points = tuple(
        _scaled(m, speed) if which in (None, m.artifact) else m for m in report.measurements
    )
    accuracy = tuple(
        dataclasses.replace(a, top1=a.top1 + top1) if which in (None, a.artifact) else a
        for a in report.accuracy
    )
    return dataclasses.replace(report, measurements=points, accuracy=accuracy)


def _files(tmp_path: Path, base: Report, new: Report) -> tuple[str, str]:
    a, b = tmp_path / "base.json", tmp_path / "new.json"
    a.write_text(report_json(base))
    b.write_text(report_json(new))
    return str(a), str(b)


def _run(tmp_path: Path, base: Report, new: Report, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["compare", *_files(tmp_path, base, new), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_same_report_passes(tmp_path: Path, base: Report) -> None:
    code, out, err = _run(tmp_path, base, base)
    assert code == 0, err
    assert "No regression." in out and "| model.onnx | fp32 | onnxruntime | 1 |" in out
    assert "REGRESSION" not in out and err == ""


def test_improvement_passes(tmp_path: Path, base: Report) -> None:
    code, out, _ = _run(tmp_path, base, _with(base, speed=1.5, top1=1.0))
    assert code == 0
    assert "+50.0%" in out and "improved" in out and "No regression." in out


def test_throughput_regression_exits_3(tmp_path: Path, base: Report) -> None:
    slower = _with(base, speed=0.9, which="model.int8.onnx")  # 10 % fewer img/s, 11 % more ms
    code, out, err = _run(tmp_path, base, slower, "--max-latency-rise", "off")
    assert code == 3
    assert "| model.int8.onnx | int8 | onnxruntime | 1 |" in out and "REGRESSION" in out
    assert err.count("\n") == 1
    assert "model.int8.onnx onnxruntime batch 1: throughput 10.0% lower (limit 5%)" in err
    # the same drop within a looser limit passes; "12" and "12%" mean the same
    assert (
        _run(tmp_path, base, slower, "--max-throughput-drop", "12", "--max-latency-rise", "off")[0]
        == 0
    )


def test_latency_regression_exits_3(tmp_path: Path, base: Report) -> None:
    new = dataclasses.replace(
        base,
        measurements=tuple(
            dataclasses.replace(
                m, latency_ms=dataclasses.replace(m.latency_ms, p99=m.latency_ms.p99 * 2)
            )
            for m in base.measurements
        ),
    )
    assert _run(tmp_path, base, new)[0] == 0  # p50 gated by default: p99 alone passes
    code, _, err = _run(tmp_path, base, new, "--latency-stat", "p99", "--max-latency-rise", "50%")
    assert code == 3
    assert "p99 latency 100.0% higher (limit 50%)" in err


def test_accuracy_regression_exits_3(tmp_path: Path, base: Report) -> None:
    worse = _with(base, top1=-0.5, which="model.int8.onnx")
    code, out, err = _run(tmp_path, base, worse)
    assert code == 3
    assert "model.int8.onnx onnxruntime: top-1 0.50 points lower (limit 0.2)" in err
    assert "-0.50" in out
    assert _run(tmp_path, base, worse, "--max-accuracy-drop", "0.6")[0] == 0


def test_new_and_missing_points(tmp_path: Path, base: Report) -> None:
    dropped = dataclasses.replace(
        base, measurements=tuple(m for m in base.measurements if m.batch != 4)
    )
    code, out, _ = _run(tmp_path, base, dropped)
    assert code == 0 and "missing" in out
    code, out, _ = _run(tmp_path, dropped, base)
    assert code == 0 and "| new |" in out
    code, _, err = _run(tmp_path, base, dropped, "--fail-on-missing")
    assert code == 3 and "missing from the new report" in err


def test_different_machine_is_refused(tmp_path: Path, base: Report) -> None:
    machine = dataclasses.replace(base.machine, cpu_model="AMD EPYC 9654", cpu_cores=96)
    other = dataclasses.replace(base, machine=machine)
    code, _, err = _run(tmp_path, base, other)
    assert code == 1 and err.count("\n") == 1
    assert "different machines (CPU model" in err and "--allow-different-hardware" in err
    code, out, _ = _run(tmp_path, base, other, "--allow-different-hardware")
    assert code == 0 and "compared despite different machines" in out


def test_different_settings_are_refused(tmp_path: Path, base: Report) -> None:
    other = dataclasses.replace(base, settings=dataclasses.replace(base.settings, threads=8))
    code, _, err = _run(tmp_path, base, other)
    assert code == 1 and "different settings (threads 1 vs 8)" in err
    # a different budget only changes the noise: compared, with a note
    longer = dataclasses.replace(
        base, settings=dataclasses.replace(base.settings, iterations=None, duration_s=2.0)
    )
    code, out, _ = _run(tmp_path, base, longer)
    assert code == 0 and "measuring budgets differ" in out


def test_other_schema_version_is_one_line_exit_1(tmp_path: Path, base: Report) -> None:
    a, b = _files(tmp_path, base, base)
    data = json.loads(Path(b).read_text())
    data["schema_version"] = 2
    Path(b).write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["compare", a, b])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "report schema version 2; this resnet-opt reads version 1" in result.stderr


def test_summary_is_appended_or_said_missing(
    tmp_path: Path, base: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code, _, err = _run(tmp_path, base, base, "--summary")
    assert code == 0 and "GITHUB_STEP_SUMMARY is not set; no step summary written" in err
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err = _run(tmp_path, base, base, "--summary")
    assert code == 0 and f"appended the summary to {summary}" in err
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "No regression." in text


def test_json_output(tmp_path: Path, base: Report) -> None:
    code, out, _ = _run(tmp_path, base, _with(base, speed=0.5), "--json")
    assert code == 3
    data = json.loads(out)
    assert data["regressed"] is True and data["points"][0]["status"] == "REGRESSION"


def test_library_verdicts(base: Report) -> None:
    c = compare_reports(base, _with(base, speed=0.97), Thresholds())
    assert not c.regressed and {d.status for d in c.points} == {Status.OK}
    c = compare_reports(base, _with(base, speed=0.9), Thresholds(max_latency_rise_pct=None))
    assert c.regressed and len(c.regressions) == len(base.measurements)


def test_parse_percent() -> None:
    assert parse_percent("5%", "x") == parse_percent("5", "x") == parse_percent(" 5 % ", "x") == 5
    with pytest.raises(ResnetOptError, match="expected a percentage"):
        parse_percent("five", "--max-throughput-drop")
    with pytest.raises(ResnetOptError, match="zero or more"):
        parse_percent("-3%", "--max-throughput-drop")
