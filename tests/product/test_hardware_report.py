"""scripts/hardware_report.py: the report a GPU or Jetson user attaches to an issue.

Here (no GPU, no TensorRT) it still writes the machine and version part and says why the rest
was skipped; the gpu-test table is read from pytest's JUnit XML.
"""

from __future__ import annotations

import importlib.util
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "hardware_report.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hardware_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpu_test_results_from_junit(script: ModuleType, tmp_path: Path) -> None:
    junit = tmp_path / "t.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.tensorrt.test_gpu" name="test_a"/>'
        '<testcase classname="tests.tensorrt.test_gpu" name="test_b">'
        '<failure message="assert 0 == 1&#10;more">trace</failure></testcase>'
        '<testcase classname="tests.tensorrt.test_gpu" name="test_dla">'
        '<skipped message="Orin has no DLA cores"/></testcase>'
        '<testcase classname="" name="tests.pipeline.test_export">'
        '<skipped message="collection skipped"/></testcase>'
        "</testsuite></testsuites>"
    )
    counts, rows = script.gpu_test_results(junit)
    assert counts == {"passed": 1, "failed": 1, "skipped": 1, "error": 0}
    assert rows[1] == ("tests.tensorrt.test_gpu::test_b", "failed", "assert 0 == 1")
    assert rows[2][2] == "Orin has no DLA cores"


def test_without_torch_the_bench_says_where_the_onnx_comes_from(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(script, "has", lambda module: module != "torch")
    monkeypatch.setattr(script, "gpu_missing", lambda: None)  # as on a device
    (step,) = script.bench_steps(tmp_path, None)
    assert step.returncode is None and "export it on a workstation" in step.note
    assert "--onnx resnet20-digits.onnx" in step.note


def test_without_a_gpu_the_bench_says_why(script: ModuleType, tmp_path: Path) -> None:
    (step,) = script.bench_steps(tmp_path, None)  # here: no TensorRT, no GPU
    assert step.returncode is None and "TensorRT is not installed here" in step.note


def test_the_report_and_its_archive(script: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "hw"
    assert script.main(["-o", str(out), "--skip-tests", "--skip-bench"]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# resnet-opt hardware report")
    assert "| cuda-bindings |" in report and "| tensorrt |" in report
    assert "| gpu-tests | skipped |" in report and "| bench | skipped |" in report
    assert "onnxruntime" in (out / "info.log").read_text()
    with tarfile.open(tmp_path / "hw.tar.gz") as tar:
        assert "hw/report.md" in tar.getnames()


def _step(script: ModuleType, code: int | None, note: str = "") -> object:
    return script.Step("gpu-tests", [], code, 1.0, Path("gpu-tests.log"), note)


def test_the_summary_says_how_many_ran_and_passed(script: ModuleType) -> None:
    rows = [("a", "passed", ""), ("b", "failed", "assert"), ("c", "skipped", "no DLA cores")]
    counts = {"passed": 1, "failed": 1, "skipped": 1, "error": 0}
    text = script.gpu_summary(counts, rows, _step(script, 1))
    assert text == "2 gpu tests ran, 1 passed (1 failed); 1 skipped."


def test_the_summary_says_why_none_ran(script: ModuleType) -> None:
    rows = [("a", "skipped", "no CUDA GPU here"), ("b", "skipped", "no CUDA GPU here")]
    counts = {"passed": 0, "failed": 0, "skipped": 2, "error": 0}
    text = script.gpu_summary(counts, rows, _step(script, 0))
    assert text == "0 gpu tests ran: 2 collected, all skipped (2 × no CUDA GPU here)."
    empty = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    assert "collection error" in script.gpu_summary(empty, [], _step(script, 2))
    none = script.gpu_summary(empty, [], _step(script, None, "pytest is not installed"))
    assert none == "No gpu test ran: pytest is not installed."


@pytest.mark.slow
def test_run_here_it_reports_the_skipped_gpu_tests_and_exits_0(tmp_path: Path) -> None:
    """As a user runs it, on this machine (no GPU, no TensorRT): exit 0, the gpu tests
    collected and skipped with the reason, the bench skipped with the reason."""
    import os
    import subprocess

    out = tmp_path / "hw"
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parent.parent)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = (out / "report.md").read_text()
    first = done.stdout.splitlines()[0]
    assert first.startswith("0 gpu tests ran: ") and " collected, all skipped (" in first
    assert "TensorRT is not installed here" in first and f"**{first}**" in report
    assert "| bench | skipped |" in report
