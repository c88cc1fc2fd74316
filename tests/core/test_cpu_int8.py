"""The CPU int8 instruction family: read from the CPU's flags, recorded in reports and eval
output, a different family refused by `compare`, and the one warning line for full-8-bit CPU
artifacts on CPUs whose int8 sums saturate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import resnet_opt.environment
from resnet_opt.cli import app
from resnet_opt.core.cpu_int8 import Int8Family, family_from_flags
from resnet_opt.core.manifest import (
    read_manifest,
)
from resnet_opt.environment import cpu_int8_family
from resnet_opt.quantization.saturation import cpu_weight_max, warning_for
from resnet_opt.report.compare import compare_reports
from resnet_opt.report.schema import Report, report_json, validate
from tests.benchkit import small_report, write_derived, write_export

AVX2_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma"})
VNNI_FLAGS = AVX2_FLAGS | {"avx512f", "avx512bw", "avx512_vnni"}


@pytest.mark.parametrize(
    ("flags", "family"),
    [
        (VNNI_FLAGS | {"amx_tile", "amx_int8", "avx_vnni"}, Int8Family.AMX),
        (VNNI_FLAGS, Int8Family.AVX512_VNNI),
        (AVX2_FLAGS | {"avx_vnni"}, Int8Family.AVX_VNNI),
        (AVX2_FLAGS | {"avx512f", "avx512bw"}, Int8Family.AVX512),
        (AVX2_FLAGS, Int8Family.AVX2),
        ({"fp", "asimd", "asimddp", "i8mm"}, Int8Family.ARM_I8MM),
        ({"fp", "asimd", "asimddp"}, Int8Family.ARM_DOTPROD),
        ({"fp", "asimd"}, Int8Family.UNKNOWN),
        (set(), Int8Family.UNKNOWN),
    ],
)
def test_family_from_flags(flags: set[str], family: Int8Family) -> None:
    assert family_from_flags(flags) is family


def test_which_families_saturate() -> None:
    assert {f for f in Int8Family if f.saturates_u8s8} == {Int8Family.AVX2, Int8Family.AVX512}


def _cpu(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str]) -> None:
    monkeypatch.setattr(resnet_opt.environment, "cpu_flags", lambda: flags)


def test_this_machine_is_read_from_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, AVX2_FLAGS)
    assert cpu_int8_family() is Int8Family.AVX2
    _cpu(monkeypatch, frozenset())
    assert cpu_int8_family() is Int8Family.UNKNOWN


# -- which artifacts saturate, and the warning --------------------------------------------------


def _cpu_int8(folder: Path, name: str, weight_range: list[int] | None) -> Path:
    """A tiny model standing in for a `--target cpu` artifact with the given weight range
    (None: made before the range was recorded, i.e. full 8 bits)."""
    source = folder / "model.onnx"
    if not source.exists():
        write_export(source)
    quant: dict[str, object] = {"target": "cpu"}
    if weight_range is not None:
        quant["weight_range"] = weight_range
    return write_derived(folder / name, source, seed=1, details={"quantization": quant})


def test_weight_range_is_read_from_the_lineage(tmp_path: Path) -> None:
    seven = _cpu_int8(tmp_path, "seven.onnx", [-64, 64])
    eight = _cpu_int8(tmp_path, "eight.onnx", [-127, 127])
    old = _cpu_int8(tmp_path, "old.onnx", None)
    weights = {p.name: cpu_weight_max(read_manifest(p)) for p in (seven, eight, old)}  # type: ignore[arg-type]
    assert weights == {"seven.onnx": 64, "eight.onnx": 127, "old.onnx": 127}
    assert cpu_weight_max(read_manifest(tmp_path / "model.onnx")) is None  # type: ignore[arg-type]


def test_warning_only_for_full_8bit_on_a_saturating_cpu(tmp_path: Path) -> None:
    seven = _cpu_int8(tmp_path, "seven.onnx", [-64, 64])
    eight = _cpu_int8(tmp_path, "eight.onnx", [-127, 127])
    old = _cpu_int8(tmp_path, "old.onnx", None)
    fp32 = tmp_path / "model.onnx"
    for family in (Int8Family.AMX, Int8Family.AVX512_VNNI, Int8Family.ARM_DOTPROD):
        assert warning_for([seven, eight, old, fp32], family) is None
    assert warning_for([seven, fp32], Int8Family.AVX2) is None
    text = warning_for([seven, eight, old, fp32], Int8Family.AVX2)
    assert text is not None and "\n" not in text
    assert text.startswith("eight.onnx, old.onnx: full 8-bit int8 weights")
    assert "(AVX2)" in text and "seven.onnx" not in text


def test_eval_and_bench_say_one_warning_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import write_image_folder

    eight = _cpu_int8(tmp_path, "eight.onnx", [-127, 127])
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 2, "d": 2})
    runner = CliRunner()
    _cpu(monkeypatch, AVX2_FLAGS)
    result = runner.invoke(app, ["eval", str(eight), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "eight.onnx: full 8-bit" in warnings[0]
    assert json.loads(result.stdout)["cpu_int8_family"] == "avx2"
    args = ["bench", str(eight), "--data", str(data), "--batch", "1", "--iterations", "2"]
    result = runner.invoke(app, [*args, "--backend", "onnxruntime", "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("warning:") for line in result.stderr.splitlines()) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["machine"]["cpu_int8_family"] == "avx2"
    assert any(note.startswith("warning: eight.onnx") for note in report["notes"])
    # OpenVINO does not saturate (measured capped at AVX2): no warning when ORT does not run it
    result = runner.invoke(app, [*args, "--backend", "openvino", "-o", str(tmp_path / "ov")])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    _cpu(monkeypatch, VNNI_FLAGS)
    result = runner.invoke(app, ["eval", str(eight), "--data", str(data)])
    assert result.exit_code == 0 and "warning:" not in result.stderr


# -- reports and compare ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return small_report(tmp_path_factory.mktemp("bench"))


def test_report_records_the_family(report: Report) -> None:
    assert report.machine.cpu_int8_family == cpu_int8_family().value
    assert f"CPU int8: {cpu_int8_family().label}" in report.machine.describe()


def test_a_report_without_the_family_still_validates(report: Report, tmp_path: Path) -> None:
    data = json.loads(report_json(report))
    del data["machine"]["cpu_int8_family"]
    validate(data)  # an older v1 report
    old = Report.from_dict(data)
    assert old.machine.cpu_int8_family is None
    assert compare_reports(old, report).notes == ()  # not known to differ: compared
    assert compare_reports(report, old).notes == ()


def _with_family(report: Report, family: Int8Family) -> Report:
    machine = dataclasses.replace(report.machine, cpu_int8_family=family.value)
    return dataclasses.replace(report, machine=machine)


def test_compare_refuses_another_int8_family(report: Report, tmp_path: Path) -> None:
    vnni, avx2 = _with_family(report, Int8Family.AVX512_VNNI), _with_family(report, Int8Family.AVX2)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(report_json(vnni))
    b.write_text(report_json(avx2))
    result = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "CPU int8 family 'avx512-vnni' vs 'avx2'" in result.stderr
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--allow-different-hardware"])
    assert result.exit_code == 0 and "compared despite different machines" in result.stdout


def test_markdown_says_what_int8_buys_on_this_cpu(report: Report) -> None:
    from resnet_opt.report.int8_advice import advice_lines
    from resnet_opt.report.markdown import render

    assert "### What INT8 buys on this CPU" in render(report)
    lines = advice_lines(_with_family(report, Int8Family.AVX2))
    assert lines[0].startswith("CPU int8 instructions: AVX2 (u8×s8 sums saturate")
    bullet = next(line for line in lines if line.startswith("- **onnxruntime**"))
    fp32 = {m.batch: m.throughput for m in report.measurements if m.artifact == "model.onnx"}
    int8 = {m.batch: m.throughput for m in report.measurements if m.artifact == "model.int8.onnx"}
    for batch in report.settings.batches:  # the ratios are the report's own
        assert f"{int8[batch] / fp32[batch]:.2f}× (batch {batch})" in bullet
    vnni = advice_lines(_with_family(report, Int8Family.AVX512_VNNI))
    assert "int32 accumulation: no saturation" in vnni[0]


def test_info_names_the_family(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, AVX2_FLAGS)
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0
    assert "CPU int8      AVX2: u8×s8 pairs summed in int16 with saturation" in result.stdout
    data = json.loads(CliRunner().invoke(app, ["info", "--json"]).stdout)
    assert data["machine"]["cpu_int8_family"] == "avx2"
