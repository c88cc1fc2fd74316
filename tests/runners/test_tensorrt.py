"""The TensorRT runner through the recording TensorRT + pycuda doubles.

The double's engine runs the plan's ONNX with ONNX Runtime on the bytes the runner copied to
"device" memory, so equal outputs prove the data path: pinned host buffers, async copies on
one stream, input shapes, tensor addresses and execute_async_v3.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resnet_opt.core.manifest import read_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.runners.base import Backend, open_runner, run_batch
from resnet_opt.runners.onnxruntime import open_onnxruntime
from resnet_opt.runners.tensorrt import TensorRtRunner, open_tensorrt
from resnet_opt.tensorrt.device import probe_device
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile, check_batch_in_profile
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import fp32_model, qdq_model


def built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object
) -> tuple[FakeGpu, Path, Path]:
    gpu = FakeGpu()
    install(monkeypatch, gpu)
    source = fp32_model(tmp_path / "m.onnx")
    plan = tmp_path / "m.plan"
    opts = TensorRtBuildOptions(batch=BatchProfile(1, 4, 8), verify=False, **options)  # type: ignore[arg-type]
    build_tensorrt(source, plan, opts)
    gpu.calls.clear()
    return gpu, source, plan


def reference(source: Path, x: np.ndarray) -> np.ndarray:
    with open_onnxruntime(source) as ort:
        return run_batch(ort, x)


def test_outputs_match_onnx_runtime_for_every_batch_in_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu, source, plan = built(tmp_path, monkeypatch)
    rng = np.random.default_rng(0)
    with open_runner(Backend.TENSORRT, plan) as engine:
        assert isinstance(engine, TensorRtRunner)
        assert [(s.name, s.shape, s.dtype) for s in engine.inputs] == [
            ("input", ("batch", 3, 8, 8), np.dtype(np.float32))
        ]
        assert engine.outputs[0].name == "logits" and engine.outputs[0].shape == ("batch", 4)
        for batch in (1, 3, 8, 3):
            x = rng.standard_normal((batch, 3, 8, 8), dtype=np.float32)
            out = engine.infer({"input": x})["logits"]
            np.testing.assert_array_equal(out, reference(source, x))
        info = engine.info
        assert info.backend is Backend.TENSORRT and info.precision == "fp32"
        assert info.device == "NVIDIA Fake GPU (sm 8.6) with TensorRT 10.3.0.30"
        assert info.details["profile"] == "1:4:8"
    names = gpu.names()
    # buffers once, for the largest batch, pinned; addresses set once
    assert [c.args for c in gpu.calls_named("cuda.pagelocked_empty")] == [
        {"shape": 8 * 3 * 8 * 8, "dtype": "float32"},
        {"shape": 8 * 4, "dtype": "float32"},
    ]
    assert len(gpu.calls_named("IExecutionContext.set_tensor_address")) == 2
    # set_input_shape only when the batch changes: 8 (allocation), 1, 3, 8, 3
    shapes = [c.args["shape"][0] for c in gpu.calls_named("IExecutionContext.set_input_shape")]
    assert shapes == [8, 1, 3, 8, 3]
    stream = gpu.calls_named("cuda.Stream")[0].args["handle"]
    assert {c.args["stream"] for c in gpu.calls_named("IExecutionContext.execute_async_v3")} == {
        stream
    }
    first = names.index("cuda.memcpy_htod_async")
    assert names[first : first + 4] == [
        "cuda.memcpy_htod_async",
        "IExecutionContext.execute_async_v3",
        "cuda.memcpy_dtoh_async",
        "cuda.Stream.synchronize",
    ]
    assert names.index("cuda.Context.push") < names.index("Runtime.deserialize_cuda_engine")
    # closed: device memory freed and the context popped
    assert len(gpu.calls_named("cuda.DeviceAllocation.free")) == 2 and not gpu.memory
    assert names[-2:] == ["cuda.Context.pop", "cuda.Context.detach"]


def test_batch_outside_profile_and_bad_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, plan = built(tmp_path, monkeypatch)
    manifest = read_manifest(plan)
    assert manifest is not None
    check_batch_in_profile(manifest, 8)
    with open_tensorrt(plan) as engine:
        with pytest.raises(
            ResnetOptError, match=r"batch 9 is outside the engine's profile \(1\.\.8"
        ):
            engine.infer({"input": np.zeros((9, 3, 8, 8), np.float32)})
        with pytest.raises(
            ResnetOptError, match=r"shape \(2, 3, 9, 9\), the engine takes \(batch, 3, 8, 8\)"
        ):
            engine.infer({"input": np.zeros((2, 3, 9, 9), np.float32)})
        with pytest.raises(ResnetOptError, match="feed has \\['x'\\]"):
            engine.infer({"x": np.zeros((2, 3, 8, 8), np.float32)})
        out = engine.infer({"input": np.zeros((2, 3, 8, 8), np.float64)})  # cast to the engine's
        assert out["logits"].shape == (2, 4)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        engine.infer({"input": np.zeros((2, 3, 8, 8), np.float32)})


def test_engine_from_another_gpu_or_tensorrt_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, plan = built(tmp_path, monkeypatch)
    other = FakeGpu(tensorrt_version="10.3.0.30", gpu_name="NVIDIA A10", compute_capability=(8, 6))
    install(monkeypatch, other)
    with pytest.raises(
        ResnetOptError,
        match=r"built for NVIDIA Fake GPU \(sm 8.6\) with TensorRT "
        r"10.3.0.30, this is NVIDIA A10 \(sm 8.6\) with TensorRT 10.3.0.30: rebuild",
    ):
        open_tensorrt(plan).__enter__()
    newer = FakeGpu(tensorrt_version="10.7.0.23")
    install(monkeypatch, newer)
    with pytest.raises(
        ResnetOptError, match=r"with TensorRT 10.7.0.23: rebuild with `resnet-opt build`"
    ):
        open_tensorrt(plan).__enter__()
    assert "Runtime.deserialize_cuda_engine" not in other.names() + newer.names()


def test_version_compatible_plan_loads_on_a_later_tensorrt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, source, plan = built(tmp_path, monkeypatch, version_compatible=True)
    later = FakeGpu(tensorrt_version="10.7.0.23")
    install(monkeypatch, later)
    x = np.ones((2, 3, 8, 8), np.float32)
    with open_tensorrt(plan) as engine:
        np.testing.assert_array_equal(engine.infer({"input": x})["logits"], reference(source, x))
    assert later.calls_named("Runtime.deserialize_cuda_engine")[0].args["host_code"] is True


def test_machine_without_gpu_or_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, plan = built(tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr("resnet_opt.tensorrt.device._load_libcuda", lambda: None)
    with pytest.raises(ResnetOptError) as err:
        open_tensorrt(plan).__enter__()
    message = str(err.value)
    assert (
        "built for NVIDIA Fake GPU (sm 8.6) with TensorRT 10.3.0.30, this machine has no CUDA GPU"
        in message
    )
    assert "and no TensorRT" in message and message.endswith(
        "rebuild with resnet-opt build on the target"
    )


def test_modified_plan_or_missing_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, plan = built(tmp_path, monkeypatch)
    plan.write_bytes(plan.read_bytes() + b"x")
    with pytest.raises(ResnetOptError, match="does not match its manifest"):
        open_tensorrt(plan).__enter__()
    (tmp_path / "m.plan.json").unlink()
    with pytest.raises(ResnetOptError, match="no manifest"):
        open_tensorrt(plan).__enter__()


def test_qdq_engine_on_tensorrt_11(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(tensorrt_version="11.1.0")
    install(monkeypatch, gpu)
    source = qdq_model(tmp_path / "q.onnx")
    plan = tmp_path / "q.plan"
    manifest = build_tensorrt(source, plan, TensorRtBuildOptions(batch=BatchProfile(2, 2, 2)))
    assert manifest.verification["max_abs_error"] < 1e-6
    with open_tensorrt(plan, device=probe_device()) as engine:
        assert engine.inputs[0].shape == (2, 3, 8, 8)  # fixed profile: a fixed batch
        assert engine.info.precision == "int8"


def test_dla_engine_sets_the_runtime_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(
        tensorrt_version="11.4.1", gpu_name="Orin", compute_capability=(8, 7), dla_cores=2
    )
    install(monkeypatch, gpu)
    plan = tmp_path / "q.plan"
    build_tensorrt(
        qdq_model(tmp_path / "q.onnx"),
        plan,
        TensorRtBuildOptions(batch=BatchProfile(1, 1, 1), dla_core=1, verify=False),
    )
    gpu.calls.clear()
    with open_tensorrt(plan) as engine:
        assert engine.info.device.startswith("DLA core 1 of Orin (sm 8.7)")
    assert gpu.calls_named("Runtime.deserialize_cuda_engine")[0].args["dla_core"] == 1
    fewer = dataclasses.replace(probe_device(), dla_cores=1)
    with pytest.raises(ResnetOptError, match="built for DLA core 1, this device has 1 DLA cores"):
        open_tensorrt(plan, device=fewer).__enter__()


def test_help_build_help_and_the_runner_import_no_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from resnet_opt.cli import app\n"
        "import resnet_opt.runners.tensorrt, resnet_opt.pipeline.build_tensorrt\n"
        "import resnet_opt.tensorrt.builder, resnet_opt.pipeline.build\n"
        "for args in (['--help'], ['build', '--help']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = ('torch', 'torchvision', 'tensorrt', 'pycuda', 'openvino')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_whole_build_and_run_imports_no_torch(tmp_path: Path) -> None:
    """The Jetson case: TensorRT + pycuda (here the doubles), numpy, no torch."""
    code = f"""
import sys
import numpy as np
import pytest
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import fp32_model
mp = pytest.MonkeyPatch()
sys.modules['torch'] = None  # any import of torch fails loudly
install(mp, FakeGpu())
from pathlib import Path
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.runners.tensorrt import TensorRtRunner, open_tensorrt
from resnet_opt.tensorrt.options import TensorRtBuildOptions
src = fp32_model(Path({str(tmp_path)!r}) / 'm.onnx')
build_tensorrt(src, src.with_suffix('.plan'), TensorRtBuildOptions())
with open_tensorrt(src.with_suffix('.plan')) as r:
    r.infer({{'input': np.zeros((2, 3, 8, 8), np.float32)}})
print('ok')
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_no_data_transfers_skips_the_copies_for_the_same_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu, source, plan = built(tmp_path, monkeypatch)
    x = np.random.default_rng(2).standard_normal((4, 3, 8, 8), dtype=np.float32)
    with open_tensorrt(plan, no_data_transfers=True) as engine:
        first = engine.infer({"input": x})["logits"]
        gpu.calls.clear()
        again = engine.infer({"input": x})["logits"]
        assert engine.info.details["no_data_transfers"] is True
        assert "cuda.memcpy_htod_async" not in gpu.names()
        assert "cuda.memcpy_dtoh_async" not in gpu.names()
        assert gpu.names().count("IExecutionContext.execute_async_v3") == 1
        np.testing.assert_array_equal(again, first)
        y = x + 1  # another array: copied as usual
        np.testing.assert_array_equal(engine.infer({"input": y})["logits"], reference(source, y))
    np.testing.assert_array_equal(first, reference(source, x))
