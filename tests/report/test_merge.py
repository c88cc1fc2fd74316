"""`report merge` with reports from several fake devices, and the fleet CI workflow example."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson.facts import read_facts
from resnet_opt.jetson.power import power_figures
from resnet_opt.report.merge import merge_reports, render_fleet, write_fleet
from resnet_opt.report.schema import Report, report_json
from tests.benchkit import small_report

ROOT = Path(__file__).resolve().parents[2]
TREES = Path(__file__).parents[1] / "data" / "jetson"
WORKFLOW = ROOT / "examples" / "ci" / "fleet-bench.yml"


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return small_report(tmp_path_factory.mktemp("bench"))


def as_jetson(report: Report, tree: str, host: str, speed: float) -> Report:
    """`report` as if measured on the board of `tree`, `speed`× as fast, with power readings."""
    facts = read_facts(TREES / tree, run=lambda argv: None)
    assert facts is not None and facts.total_power_w is not None
    machine = dataclasses.replace(
        report.machine, hostname=host, cpu_model="aarch64", jetpack=facts.l4t, jetson=facts
    )
    points = []
    for m in report.measurements:
        throughput = m.throughput * speed
        energy = power_figures(facts.total_power_w, throughput)
        points.append(
            dataclasses.replace(
                m,
                throughput=throughput,
                power_w=energy.power_w,
                energy_per_image_j=energy.energy_per_image_j,
                images_per_s_per_w=energy.images_per_s_per_w,
            )
        )
    return dataclasses.replace(report, machine=machine, measurements=tuple(points))


def write(folder: Path, name: str, report: Report) -> Path:
    path = folder / name / "report.json"
    path.parent.mkdir(parents=True)
    path.write_text(report_json(report))
    return path


def fleet_files(tmp_path: Path, x86: Report) -> list[Path]:
    return [
        write(tmp_path, "report-agx-orin-maxn", as_jetson(x86, "agx_orin", "agx", 6.0)),
        write(tmp_path, "report-orin-nano-15w", as_jetson(x86, "orin_nano", "nano", 2.0)),
        write(tmp_path, "report-x86-cpu", x86),
    ]


def test_merge_three_devices(tmp_path: Path, x86: Report) -> None:
    fleet = merge_reports(fleet_files(tmp_path, x86))
    labels = [d.label for d in fleet.devices]
    assert labels == [
        "Jetson AGX Orin 64GB @ MAXN",
        "Jetson Orin Nano 8GB (developer kit) @ 15W",
        x86.machine.cpu_model,
    ]
    assert fleet.batch == 4 and fleet.batches == (1, 4)
    pairs = {(m.artifact, m.backend) for m in x86.measurements}
    assert len(fleet.rows) == 3 * len(pairs)
    agx = [r for r in fleet.rows if r.device == labels[0]]
    base = {(m.artifact, m.batch): m.throughput for m in x86.measurements}
    for row in agx:
        assert row.throughput[4] == pytest.approx(6.0 * base[(row.artifact, 4)])
        assert row.power_w is not None and row.images_per_s_per_w is not None
    assert all(r.power_w is None for r in fleet.rows if r.device == labels[2])
    text = render_fleet(fleet)
    assert "| device | artifact |" in text and "img/s/W" in text
    assert "Clocks not locked (numbers vary run to run): Jetson Orin Nano" in text
    files = write_fleet(fleet, tmp_path / "fleet")
    data = json.loads(files[0].read_text())
    assert data["kind"] == "resnet-opt-fleet" and len(data["devices"]) == 3
    assert files[2].stat().st_size > 0


def test_merge_refusals(tmp_path: Path, x86: Report) -> None:
    agx = write(tmp_path, "a", as_jetson(x86, "agx_orin", "agx", 1.0))
    with pytest.raises(ResnetOptError, match="two or more reports"):
        merge_reports([agx])
    again = write(tmp_path, "b", as_jetson(x86, "agx_orin", "agx", 1.0))
    with pytest.raises(ResnetOptError, match="a second report from"):
        merge_reports([agx, again])
    other_host = write(tmp_path, "c", as_jetson(x86, "agx_orin", "agx-2", 1.0))
    labels = [d.label for d in merge_reports([agx, other_host]).devices]
    assert labels == ["Jetson AGX Orin 64GB @ MAXN (agx)", "Jetson AGX Orin 64GB @ MAXN (agx-2)"]
    with pytest.raises(ResnetOptError, match="--batch 8: not measured in every report"):
        merge_reports([agx, other_host], batch=8)
    only_one = dataclasses.replace(
        x86,
        settings=dataclasses.replace(x86.settings, batches=(1,), plot_batch=1),
        measurements=tuple(m for m in x86.measurements if m.batch == 1),
    )
    odd = write(tmp_path, "d", only_one)
    assert merge_reports([agx, odd]).batch == 1


def test_cli_report_merge(tmp_path: Path, x86: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    files = [str(p) for p in fleet_files(tmp_path, x86)]
    out = tmp_path / "fleet"
    result = CliRunner().invoke(app, ["report", "merge", *files, "-o", str(out), "--summary"])
    assert result.exit_code == 0, result.output
    assert "## resnet-opt fleet: 3 devices" in result.stdout
    assert "## resnet-opt fleet: 3 devices" in summary.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["fleet.json", "fleet.md", "fleet.png"]
    again = CliRunner().invoke(app, ["report", "merge", *files, "-o", str(out)])
    assert again.exit_code == 1 and "pass --force" in again.stderr
    bad = CliRunner().invoke(app, ["report", "merge", files[0], str(tmp_path / "none.json")])
    assert bad.exit_code == 2  # -o is required: a usage error


# -- the workflow ------------------------------------------------------------------------------


def workflow() -> dict[str, Any]:
    from ruamel.yaml import YAML

    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return loaded


def test_workflow_matches_the_github_workflow_schema() -> None:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (pip install 'resnet-opt[dev]')")
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema"]
    done = subprocess.run(
        [*command, "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_runs_a_fleet_and_compares_with_main() -> None:
    jobs = workflow()["jobs"]
    matrix = jobs["bench"]["strategy"]["matrix"]["include"]
    jetsons = [m for m in matrix if isinstance(m["runner"], list) and "self-hosted" in m["runner"]]
    assert len(jetsons) >= 2 and all("jetson" in m["runner"] for m in jetsons)
    assert any(m["runner"] == "ubuntu-24.04" for m in matrix)  # the x86 runner
    bench_steps = jobs["bench"]["steps"]
    uploads = [
        s for s in bench_steps if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and uploads[0]["with"]["name"] == "report-${{ matrix.device }}"
    runs = "\n".join(str(s.get("run", "")) for job in jobs.values() for s in job["steps"])
    assert "--system-site-packages" in runs and "'.[jetson]'" in runs
    assert "resnet-opt report merge reports/*/report.json -o fleet --summary" in runs
    assert 'resnet-opt compare "$base" "$new" --summary' in runs
    assert jobs["merge"]["needs"] == "bench"


def _commands_in(runs: str) -> list[tuple[list[str], list[str]]]:
    """(command words, --options) of every resnet-opt call in the workflow's scripts."""
    found = []
    text = runs.replace("\\\n", " ")
    for match in re.finditer(r"resnet-opt ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)([^\n]*)", text):
        words = match.group(1).split()
        words = words[:2] if words[0] == "report" else words[:1]
        options = re.findall(r"(--[a-z][a-z-]*)", match.group(2))
        backend = re.search(r"--backend[ =]([a-z]+)", match.group(2))
        if words == ["build"] and backend:  # `build SOURCE --backend X` is `build X SOURCE`
            words, options = [*words, backend.group(1)], [o for o in options if o != "--backend"]
        found.append((words, options))
    return found


def test_every_resnet_opt_call_in_the_workflow_exists() -> None:
    runs = "\n".join(
        str(s.get("run", "")) for job in workflow()["jobs"].values() for s in job["steps"]
    )
    calls = _commands_in(runs)
    assert {" ".join(w) for w, _ in calls} >= {
        "export",
        "quantize",
        "bundle",
        "bundle-verify",
        "info",
        "build tensorrt",
        "bench",
        "report merge",
        "compare",
    }
    runner = CliRunner()
    for words, options in calls:
        result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (words, result.output)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
        for option in options:
            assert option in plain, f"resnet-opt {' '.join(words)} has no {option}"
