"""The report: JSON Schema, round trip, Markdown, the PNG plot and the Pareto front."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resnet_opt.errors import ResnetOptError
from resnet_opt.report import load_report, write_report
from resnet_opt.report.markdown import render
from resnet_opt.report.plot import DPI, HEIGHT_IN, WIDTH_IN, pareto_front, plot_report
from resnet_opt.report.schema import Report, json_schema, report_json, validate
from tests.benchkit import small_report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return small_report(tmp_path_factory.mktemp("bench"))


def test_json_validates_against_the_schema_file(report: Report) -> None:
    import jsonschema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(report_json(report))
    jsonschema.validate(data, schema)
    assert data["schema_version"] == 1
    assert set(data["machine"]) >= {"cpu_model", "cpu_cores", "gpus", "cuda_driver", "jetpack"}
    assert data["versions"]["onnxruntime"]
    assert len(data["load_average"]["before"]) == 3


def test_round_trip(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(report_json(report))
    assert load_report(path) == report


def test_schema_rejects_what_is_wrong(report: Report) -> None:
    data = report.to_dict()
    data["measurements"][0]["throughput"] = -1
    with pytest.raises(ResnetOptError, match="invalid report at measurements/0/throughput"):
        validate(data)
    data = report.to_dict()
    del data["machine"]["cpu_model"]
    with pytest.raises(ResnetOptError, match="'cpu_model' is a required property"):
        validate(data)
    data = report.to_dict()
    data["measurements"][0]["backend"] = "tvm"
    with pytest.raises(ResnetOptError, match="measurements/0/backend"):
        validate(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kind": "resnet-opt-bench-report", "schema_version": 2}', "schema version 2"),
        ('{"kind": "something else"}', "not a resnet-opt bench report"),
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not (valid )?JSON"),
    ],
)
def test_load_refuses(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ResnetOptError, match=message):
        load_report(path)


def test_markdown(report: Report) -> None:
    text = render(report)
    assert text.startswith(f"## resnet-opt bench: {report.machine.cpu_model}")
    header = (
        "| artifact | backend | precision | size | top-1 % | top-5 % | top-1 drop (pts) | "
        "agreement % | img/s @1 | img/s @4 |"
    )
    assert header in text
    assert "| model.int8.onnx | onnxruntime | int8 |" in text
    assert text.count("| model.onnx | onnxruntime | 1 | 20 |") == 1  # latency table row
    assert "1 threads; per point: 0 s warm-up, then 20 timed runs; real images" in text
    skipped = dataclasses.replace(
        report, notes=("random weights",), skipped=report.skipped + _skip()
    )
    text = render(skipped, image="report.png")
    assert "- model.onnx · openvino: not installed" in text
    assert "- random weights" in text and "![throughput vs top-1 accuracy](report.png)" in text


def _skip() -> tuple:  # type: ignore[type-arg]
    from resnet_opt.report.schema import Skip

    return (Skip("model.onnx", "openvino", "not installed"),)


def test_pareto_front() -> None:
    # (throughput, accuracy): c dominates b; d is the fastest; a the most accurate
    points = [(100.0, 99.0), (150.0, 97.0), (200.0, 98.0), (400.0, 90.0), (50.0, 95.0)]
    assert pareto_front(points) == [0, 2, 3]
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0]  # ties: the first is kept


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
        return np.asarray(image.convert("L"))


def test_png_is_a_real_plot(report: Report, tmp_path: Path) -> None:
    path = plot_report(report, tmp_path / "plot.png")
    pixels = _pixels(path)
    assert pixels.std() > 5  # not blank
    assert (pixels < 100).mean() > 0.002  # dark ink: axes, labels, points
    bars = dataclasses.replace(report, accuracy=())
    pixels = _pixels(plot_report(bars, tmp_path / "bars.png"))
    assert pixels.std() > 5
    with pytest.raises(ResnetOptError, match="no measurement at batch 64"):
        plot_report(report, tmp_path / "none.png", batch=64)


def test_write_report_is_atomic_and_keeps_existing(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = write_report(report, out)
    assert load_report(files.json) == report
    assert files.markdown.read_text().startswith("## resnet-opt bench")
    _pixels(files.plot)
    with pytest.raises(ResnetOptError, match="exists; pass --force"):
        write_report(report, out)
    write_report(report, out, force=True)
    broken = dataclasses.replace(report, measurements=())  # nothing to plot: fails at the plot
    other = tmp_path / "other"
    with pytest.raises(ResnetOptError):
        write_report(broken, other)
    assert not other.exists()  # nothing half-written, not even the folder


def test_accuracy_axis_stays_within_0_and_100(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All points at one high accuracy must not stretch the axis past 100 %."""
    import matplotlib.pyplot as plt

    figures: list[Any] = []
    close = plt.close

    def keep(fig: Any) -> None:
        figures.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    top = dataclasses.replace(
        report, accuracy=tuple(dataclasses.replace(a, top1=99.5) for a in report.accuracy)
    )
    plot_report(top, tmp_path / "top.png")
    (fig,) = figures
    low, high = fig.axes[0].get_ylim()
    assert 99.5 < high <= 100.5 and low < 99.5
