"""CUDA graphs in the TensorRT runner, through the TensorRT, pycuda and cuda-python doubles.

The doubles do what the real libraries do: pycuda has no graph API (capture goes through
cuda.bindings.driver), an enqueue right after a shape change cannot be captured, a graph
replays the state its context had at capture (a context whose shape changed since would
compute with stale state: the double fails that), and an engine with uncapturable work fails
its enqueue under capture and invalidates it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from resnet_opt.errors import MissingDependencyError
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.runners.base import run_batch
from resnet_opt.runners.onnxruntime import open_onnxruntime
from resnet_opt.runners.tensorrt import open_tensorrt
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import fp32_model

BATCHES = (4, 4, 2, 4, 2, 2, 8, 4)


def built(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gpu: FakeGpu | None = None,
    **install_args: bool,
) -> tuple[FakeGpu, Path, Path]:
    gpu = gpu or FakeGpu()
    install(monkeypatch, gpu, **install_args)
    source = fp32_model(tmp_path / "m.onnx")
    plan = tmp_path / "m.plan"
    build_tensorrt(source, plan, TensorRtBuildOptions(batch=BatchProfile(1, 4, 8), verify=False))
    gpu.calls.clear()
    return gpu, source, plan


def feeds() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal((b, 3, 8, 8), dtype=np.float32) for b in BATCHES]


def run_all(plan: Path, *, cuda_graph: bool = False) -> list[np.ndarray]:
    with open_tensorrt(plan, cuda_graph=cuda_graph) as engine:
        return [engine.infer({"input": x})["logits"] for x in feeds()]


def test_graphs_give_the_eager_results_with_one_context_per_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu, source, plan = built(tmp_path, monkeypatch)
    eager = run_all(plan)
    gpu.calls.clear()
    graphed = run_all(plan, cuda_graph=True)
    with open_onnxruntime(source) as ort:
        expected = [run_batch(ort, x) for x in feeds()]
    for got, want, ref in zip(graphed, eager, expected, strict=True):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, ref)
    # one context for the engine, one per captured batch size (4, 2, 8)
    assert len(gpu.calls_named("ICudaEngine.create_execution_context")) == 1 + 3
    executes = gpu.calls_named("IExecutionContext.execute_async_v3")
    # each shape: one eager (flushing) run on its own context, then the capture
    assert [c.args["capturing"] for c in executes] == [False, True] * 3
    assert len({c.args["context"] for c in executes}) == 3
    begins = gpu.calls_named("cuda.driver.cuStreamBeginCapture")
    assert [c.args["mode"] for c in begins] == ["CU_STREAM_CAPTURE_MODE_THREAD_LOCAL"] * 3
    assert len(gpu.calls_named("cuda.driver.cuGraphInstantiate")) == 3
    assert len(gpu.calls_named("cuda.driver.cuGraphLaunch")) == len(BATCHES) - 3
    assert len(gpu.calls_named("cuda.driver.cuGraphExecDestroy")) == 3  # freed on close
    assert not [n for n in gpu.names() if n.startswith("cudart.")]  # never the runtime API


def test_a_failed_capture_runs_eagerly_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gpu, _, plan = built(tmp_path, monkeypatch)
    eager = run_all(plan)
    gpu.uncapturable = True
    with (
        caplog.at_level(logging.WARNING, logger="resnet_opt"),
        open_tensorrt(plan, cuda_graph=True) as engine,
    ):
        results = [engine.infer({"input": x})["logits"] for x in feeds()]
        assert engine.info.details["cuda_graph_fallback"].startswith("TensorRT's enqueue failed")
    for got, want in zip(results, eager, strict=True):
        np.testing.assert_array_equal(got, want)
    warnings = [r for r in caplog.records if "CUDA graph capture failed" in r.getMessage()]
    assert len(warnings) == 1
    assert len(gpu.calls_named("cuda.driver.cuStreamBeginCapture")) == 1  # not retried
    assert len(gpu.calls_named("cuda.driver.cuStreamEndCapture")) == 1  # the capture was ended
    assert not gpu.capturing
    assert "cuda.driver.cuGraphLaunch" not in gpu.names()


def test_cuda_graph_without_cuda_python_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu, _, plan = built(tmp_path, monkeypatch, cudart=False)
    with pytest.raises(MissingDependencyError) as err:
        open_tensorrt(plan, cuda_graph=True).__enter__()
    message = str(err.value)
    assert "\n" not in message
    assert "--cuda-graph needs NVIDIA's cuda-python" in message
    assert "pip install '.[tensorrt-cu12]'" in message
    assert "cuda.Context.push" not in gpu.names()  # refused before any GPU work
    assert run_all(plan)  # without --cuda-graph pycuda alone is enough


def test_the_double_refuses_what_cuda_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Capture right after a shape change fails; a graph replayed after its context's shape
    changed is caught: the mistakes a single-context runner would make."""
    import sys

    _, _, plan = built(tmp_path, monkeypatch)
    cu = sys.modules["cuda.bindings.driver"]
    thread_local = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
    with open_tensorrt(plan) as engine:
        context, stream = engine._exec, engine._stream
        assert stream is not None
        context.set_input_shape("input", (2, 3, 8, 8))
        assert cu.cuStreamBeginCapture(stream.handle, thread_local) == (0,)
        assert cu.cuStreamBeginCapture(stream.handle, thread_local)[0] != 0
        assert not context.execute_async_v3(stream.handle)  # no flushing run before
        err, graph = cu.cuStreamEndCapture(stream.handle)
        assert err.name == "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED" and graph is None
        assert context.execute_async_v3(stream.handle)  # the flush
        cu.cuStreamBeginCapture(stream.handle, thread_local)
        assert context.execute_async_v3(stream.handle)
        err, graph = cu.cuStreamEndCapture(stream.handle)
        _, instance = cu.cuGraphInstantiate(graph, 0)
        context.set_input_shape("input", (4, 3, 8, 8))
        with pytest.raises(AssertionError, match="after its execution context's input shape"):
            cu.cuGraphLaunch(instance, stream.handle)


def test_bench_cuda_graph_without_cuda_python_stops_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app
    from tests.conftest import write_image_folder

    gpu, _, plan = built(tmp_path, monkeypatch, cudart=False)
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 2, "d": 2}, size=8)
    args = ["bench", str(plan), "--data", str(data), "--batch", "1", "--iterations", "2"]
    result = CliRunner().invoke(app, [*args, "--cuda-graph", "-o", str(tmp_path / "r")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cuda-graph needs NVIDIA's cuda-python" in lines[0]
    assert "IExecutionContext.execute_async_v3" not in gpu.names()


def test_jetpack_6_captures_through_the_driver_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JetPack 6: a CUDA 12.6 driver and the cuda-bindings 12.9 the jetson extra installs. The
    runtime module refuses that driver (its static CUDA runtime is 12.9: what made every
    JetPack 6 capture fall back to eager); the driver API, which the runner uses, captures."""
    import sys

    from tests.orin_double import orin

    gpu, _, plan = built(tmp_path, monkeypatch, orin())
    assert gpu.driver_cuda == (12, 6) and gpu.bindings_cuda == (12, 9)
    runtime = sys.modules["cuda.bindings.runtime"]
    mode = runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    (err,) = runtime.cudaStreamBeginCapture(0, mode)
    assert err.name == "cudaErrorInsufficientDriver"
    runtime.cudaGetLastError()
    eager = run_all(plan)
    with open_tensorrt(plan, cuda_graph=True) as engine:
        graphed = [engine.infer({"input": x})["logits"] for x in feeds()]
        assert engine.info.details["cuda_graph_fallback"] is None
    for got, want in zip(graphed, eager, strict=True):
        np.testing.assert_array_equal(got, want)
    assert gpu.calls_named("cuda.driver.cuGraphLaunch")


@pytest.mark.parametrize(
    ("driver", "bindings", "refused"),
    [((12, 6), (12, 9), False), ((12, 4), (13, 5), True), ((13, 0), (12, 9), True)],
)
def test_the_bindings_major_must_be_the_drivers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    driver: tuple[int, int],
    bindings: tuple[int, int],
    refused: bool,
) -> None:
    """Derived from the versions: cuda-bindings of another CUDA major than the driver's runs
    eagerly with one warning that names the bindings to install."""
    gpu, _, plan = built(tmp_path, monkeypatch, FakeGpu(driver_cuda=driver, bindings_cuda=bindings))
    eager = run_all(plan)
    with caplog.at_level(logging.WARNING, logger="resnet_opt"):
        graphed = run_all(plan, cuda_graph=True)
    for got, want in zip(graphed, eager, strict=True):
        np.testing.assert_array_equal(got, want)
    warnings = [r.getMessage() for r in caplog.records if "CUDA graph" in r.getMessage()]
    if not refused:
        assert warnings == [] and gpu.calls_named("cuda.driver.cuGraphLaunch")
        return
    (warning,) = warnings
    major = driver[0]
    assert f"this driver runs CUDA {driver[0]}.{driver[1]}" in warning
    assert f"'cuda-bindings>={major}.0,<{major + 1}'" in warning
    assert "cuda.driver.cuStreamBeginCapture" not in gpu.names()


def test_a_driver_without_the_graph_functions_is_refused_by_the_double(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cuda-bindings resolves each function in the driver: one older than the function fails."""
    from tests.fakes.fake_cudart import make_driver

    cu = make_driver(FakeGpu(driver_cuda=(11, 2), bindings_cuda=(11, 8)))
    with pytest.raises(RuntimeError, match='Function "cuGraphInstantiate" not found'):
        cu.cuGraphInstantiate(None, 0)


@pytest.mark.parametrize(("version", "shared"), [("10.3.0.30", True), ("11.4.1", False)])
def test_per_batch_contexts_share_one_activation_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, shared: bool
) -> None:
    """TensorRT 10.1+: every per-batch context is USER_MANAGED with the one buffer (one
    allocation, not one per batch size); elsewhere each context allocates its own (STATIC)."""
    gpu, _, plan = built(tmp_path, monkeypatch, FakeGpu(tensorrt_version=version))
    eager = run_all(plan)
    gpu.calls.clear()
    graphed = run_all(plan, cuda_graph=True)
    for got, want in zip(graphed, eager, strict=True):
        np.testing.assert_array_equal(got, want)
    created = gpu.calls_named("ICudaEngine.create_execution_context")
    per_batch = [c.args["strategy"] for c in created[1:]]  # the first is the eager context
    assert len(per_batch) == 3
    memory = gpu.calls_named("IExecutionContext.set_device_memory")
    if shared:
        assert per_batch == ["USER_MANAGED"] * 3
        assert len(memory) == 3 and len({c.args["memory"] for c in memory}) == 1
    else:
        assert per_batch == ["STATIC"] * 3 and memory == []
