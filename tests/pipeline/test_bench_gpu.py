"""bench on a real TensorRT engine (GPU only): timing with and without CUDA graphs, accuracy
against the ONNX source scored by ONNX Runtime. Skipped here, with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from tests.benchkit import tiny_set
from tests.conftest import gpu_tests_missing

MISSING = gpu_tests_missing()
GRAPHS_MISSING = gpu_tests_missing(cuda_python=True)
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
graphs = pytest.mark.skipif(GRAPHS_MISSING is not None, reason=GRAPHS_MISSING or "")


@pytest.mark.parametrize(
    "flags",
    [
        [],
        pytest.param(["--cuda-graph"], marks=graphs),
        ["--no-data-transfers"],
        pytest.param(["--cuda-graph", "--no-data-transfers"], marks=graphs),
    ],
)
def test_bench_a_tensorrt_engine(tmp_path: Path, flags: list[str]) -> None:
    source, _, data = tiny_set(tmp_path)
    engine = tmp_path / "model.plan"
    runner = CliRunner()
    built = runner.invoke(
        app, ["build", str(source), "-o", str(engine), "--backend", "tensorrt", "--batch", "1:4:4"]
    )
    assert built.exit_code == 0, built.output
    args = ["bench", str(engine), str(source), "--data", str(data), "--batch", "1,4"]
    args += ["--iterations", "50", "--backend", "tensorrt,onnxruntime", "--json", *flags]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    trt = [m for m in report["measurements"] if m["backend"] == "tensorrt"]
    assert [m["batch"] for m in trt] == [1, 4]
    assert all(m["iterations"] == 50 and m["throughput"] > 0 for m in trt)
    for m in trt:
        assert m["options"]["cuda_graph"] is ("--cuda-graph" in flags)
        assert m["options"]["no_data_transfers"] is ("--no-data-transfers" in flags)
    assert report["settings"]["cuda_graph"] is ("--cuda-graph" in flags)
    (acc,) = [a for a in report["accuracy"] if a["backend"] == "tensorrt"]
    assert acc["reference"] == "model.onnx"
    assert acc["top1_agreement"] >= 90.0
