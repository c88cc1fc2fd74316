"""`build --backend tensorrt` through the recording TensorRT double, on 10.3 and 11.x paths.

The double enforces TensorRT's own rules (profiles, typing, flags, DLA), so these tests fail
when the build sets a wrong flag, forgets a call or calls in the wrong order. They cannot show
that real TensorRT builds fast engines: tests/tensorrt/test_gpu.py does that on a GPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import Precision, Stage, manifest_path, read_manifest
from resnet_opt.core.naming import FLAGS, worded
from resnet_opt.errors import MissingDependencyError, ResnetOptError
from resnet_opt.pipeline.build import build
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.tensorrt.options import TensorRtBuildOptions, parse_bytes
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.versions import HardwareCompat
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.fake_tensorrt import PLAN_MAGIC
from tests.fakes.tiny_models import (
    calibration_cache,
    fp16_model,
    fp32_model,
    qdq_model,
    unsupported_op_model,
)

runner = CliRunner()
TENSORS = ["input", "c", "r", "p", "f", "logits"]


def fake(monkeypatch: pytest.MonkeyPatch, version: str = "10.3.0.30", **kw: Any) -> FakeGpu:
    gpu = FakeGpu(tensorrt_version=version, **kw)
    install(monkeypatch, gpu)
    return gpu


def calls(gpu: FakeGpu, name: str) -> list[dict[str, Any]]:
    return [c.args for c in gpu.calls_named(name)]


def assert_in_order(gpu: FakeGpu, order: list[str]) -> None:
    """`order` is a subsequence of the recorded calls (each after the one before it)."""
    names, at = gpu.names(), -1
    for name in order:
        later = [i for i, n in enumerate(names) if n == name and i > at]
        assert later, f"{name} not called after {names[at] if at >= 0 else 'start'}: {names}"
        at = later[0]


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_gpu_build_on_tensorrt_10_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx")
    out = tmp_path / "m.plan"
    options = TensorRtBuildOptions(
        batch=BatchProfile(1, 4, 8), workspace_bytes=parse_bytes("256M"), opt_level=2
    )
    manifest = build_tensorrt(source, out, options)

    order = [
        "Builder",
        "Builder.create_network",
        "OnnxParser",
        "OnnxParser.parse_from_file",
        "Builder.create_builder_config",
        "IBuilderConfig.set_memory_pool_limit",
        "IBuilderConfig.builder_optimization_level",
        "IBuilderConfig.profiling_verbosity",
        "Builder.create_optimization_profile",
        "IOptimizationProfile.set_shape",
        "IBuilderConfig.add_optimization_profile",
        "Builder.build_serialized_network",
        "Runtime",
        "Runtime.deserialize_cuda_engine",
        "ICudaEngine.create_engine_inspector",
        "EngineInspector.get_engine_information",
    ]
    assert_in_order(gpu, order)
    assert calls(gpu, "Builder.create_network") == [{"flags": 1 << 1}]  # STRONGLY_TYPED
    assert calls(gpu, "IBuilderConfig.set_flag") == []  # precision comes from the ONNX
    assert calls(gpu, "IBuilderConfig.set_memory_pool_limit") == [
        {"pool": "WORKSPACE", "size": 256 * 2**20}
    ]
    assert calls(gpu, "IBuilderConfig.builder_optimization_level") == [{"value": 2}]
    assert calls(gpu, "IBuilderConfig.profiling_verbosity") == [{"value": "DETAILED"}]
    assert calls(gpu, "IOptimizationProfile.set_shape") == [
        {"input": "input", "min": (1, 3, 8, 8), "opt": (4, 3, 8, 8), "max": (8, 3, 8, 8)}
    ]
    assert calls(gpu, "OnnxParser.parse_from_file") == [{"path": str(source)}]

    # the plan file is exactly what TensorRT serialized: no header of ours in front
    assert out.read_bytes() == gpu.plans[-1] and out.read_bytes().startswith(PLAN_MAGIC)
    assert manifest_path(out).is_file() and left_in(tmp_path) == [
        "m.onnx",
        "m.onnx.json",
        "m.plan",
        "m.plan.json",
    ]
    assert manifest == read_manifest(out)
    d = manifest.details
    assert manifest.stage is Stage.BUILD and manifest.precision is Precision.FP32
    assert manifest.sha256 == sha256_file(out)
    assert manifest.inputs[0].role == "onnx" and manifest.inputs[0].sha256 == sha256_file(source)
    assert manifest.lineage[-1]["stage"] == "export" and manifest.preprocessing is not None
    assert d["backend"] == "tensorrt" and d["tensorrt_version"] == "10.3.0.30"
    assert d["gpu"]["name"] == "NVIDIA Fake GPU" and d["gpu"]["compute_capability"] == "8.6"
    assert d["jetson"] is None
    assert d["profile"]["batch"] == {"min": 1, "opt": 4, "max": 8}
    assert d["precision"] == {"onnx": "fp32", "qdq_nodes": 0, "fp16_tensors": 0, "engine": "fp32"}
    assert d["engine_bytes"] == out.stat().st_size and d["build_seconds"] >= 0
    assert d["build_options"]["network_flags"] == ["STRONGLY_TYPED"]
    assert d["build_options"]["workspace_bytes"] == 256 * 2**20
    assert d["layers"]["available"] and d["layers"]["precisions"] == {"fp32": 3}
    assert d["runner"] == {
        "backend": "tensorrt",
        "input": "input",
        "outputs": ["logits"],
        "batch": {"min": 1, "opt": 4, "max": 8},
        "version_compatible": False,
        "dla_core": None,
    }
    # the engine was run against ONNX Runtime on the source (the double runs that ONNX)
    check = manifest.verification
    assert check["samples"] == 16 and check["max_abs_error"] < 1e-6
    assert check["top1_agreement"] == 100.0


def test_tensorrt_11_builds_the_qdq_onnx_without_any_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch, "11.1.0")
    source = qdq_model(tmp_path / "m.int8.onnx")
    manifest = build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions())
    assert calls(gpu, "Builder.create_network") == [{"flags": 0}]  # strongly typed by default
    assert calls(gpu, "IBuilderConfig.set_flag") == []
    assert calls(gpu, "IBuilderConfig.set_memory_pool_limit") == []  # TensorRT's default
    assert calls(gpu, "IOptimizationProfile.set_shape")[0]["max"] == (32, 3, 8, 8)  # 1:8:32
    assert manifest.precision is Precision.INT8
    assert manifest.details["precision"]["qdq_nodes"] == 3
    assert manifest.details["layers"]["precisions"] == {"fp32": 1, "int8": 2}
    assert manifest.details["build_options"]["network_flags"] == []


def test_tensorrt_10_builds_qdq_and_fp16_strongly_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch, "10.3.0.30")
    int8 = build_tensorrt(
        qdq_model(tmp_path / "q.onnx"), tmp_path / "q.plan", TensorRtBuildOptions()
    )
    half = build_tensorrt(
        fp16_model(tmp_path / "h.onnx"), tmp_path / "h.plan", TensorRtBuildOptions()
    )
    assert calls(gpu, "Builder.create_network") == [{"flags": 2}, {"flags": 2}]
    assert calls(gpu, "IBuilderConfig.set_flag") == []
    assert int8.precision is Precision.INT8 and half.precision is Precision.FP16
    assert half.details["layers"]["precisions"]["fp16"] == 2


def test_fixed_batch_onnx_gets_that_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx", batch=2)
    build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions())
    shape = calls(gpu, "IOptimizationProfile.set_shape")[0]
    assert shape["min"] == shape["opt"] == shape["max"] == (2, 3, 8, 8)
    with pytest.raises(ResnetOptError, match="fixed batch of 2"):
        build_tensorrt(
            source, tmp_path / "n.plan", TensorRtBuildOptions(batch=BatchProfile(1, 8, 32))
        )


def test_timing_cache_is_read_and_updated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx")
    cache = tmp_path / "caches" / "t.cache"
    first = build_tensorrt(source, tmp_path / "a.plan", TensorRtBuildOptions(timing_cache=cache))
    assert cache.is_file()
    written = cache.read_bytes()
    assert calls(gpu, "IBuilderConfig.create_timing_cache") == [{"nbytes": 0}]
    assert calls(gpu, "IBuilderConfig.set_timing_cache") == [{"ignore_mismatch": False}]
    assert (
        gpu.index("IBuilderConfig.set_timing_cache")
        < gpu.index("Builder.build_serialized_network")
        < gpu.index("IBuilderConfig.get_timing_cache")
    )
    assert first.details["timing_cache"]["existed"] is False
    assert [r.role for r in first.inputs] == ["onnx"]

    second = build_tensorrt(source, tmp_path / "b.plan", TensorRtBuildOptions(timing_cache=cache))
    assert calls(gpu, "IBuilderConfig.create_timing_cache")[1] == {"nbytes": len(written)}
    assert cache.read_bytes() != written  # updated with this build's timings
    assert second.details["timing_cache"]["sha256_after"] == sha256_file(cache)
    assert [r.role for r in second.inputs] == ["onnx", "timing_cache"]


def test_foreign_timing_cache_is_refused_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch)
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"FAKE-TIMING 10.3.0.30 NVIDIA Other GPU\nx\n")
    with pytest.raises(ResnetOptError, match="TensorRT rejected the file"):
        build_tensorrt(
            fp32_model(tmp_path / "m.onnx"),
            tmp_path / "m.plan",
            TensorRtBuildOptions(timing_cache=cache),
        )
    assert cache.read_bytes().startswith(b"FAKE-TIMING 10.3.0.30 NVIDIA Other")
    assert "m.plan" not in left_in(tmp_path)


def test_dla_on_tensorrt_10_3_implicit_int8_from_the_quantize_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch, "10.3.0.30", gpu_name="Orin", compute_capability=(8, 7), dla_cores=2)
    source = fp32_model(tmp_path / "m.onnx")
    calibration_cache(tmp_path / "m.int8.calib", TENSORS)
    int8 = qdq_model(tmp_path / "m.int8.onnx", source=source, cache="m.int8.calib")
    manifest = build_tensorrt(
        int8,
        tmp_path / "m.dla.plan",
        TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=1, verify=False),
    )
    assert calls(gpu, "OnnxParser.parse_from_file") == [{"path": str(source)}]
    assert calls(gpu, "Builder.create_network") == [{"flags": 0}]  # weakly typed
    assert [c["flag"] for c in calls(gpu, "IBuilderConfig.set_flag")] == [
        "INT8",
        "FP16",
        "GPU_FALLBACK",
    ]
    assert calls(gpu, "IBuilderConfig.int8_calibrator") == [{"value": "IInt8EntropyCalibrator2"}]
    assert gpu.index("IBuilderConfig.add_optimization_profile") < gpu.index(
        "IBuilderConfig.set_calibration_profile"
    )
    assert calls(gpu, "IBuilderConfig.default_device_type") == [{"value": "DLA"}]
    assert calls(gpu, "IBuilderConfig.DLA_core") == [{"value": 1}]
    assert calls(gpu, "Runtime.deserialize_cuda_engine")[0]["dla_core"] == 1
    assert manifest.precision is Precision.INT8
    dla = manifest.details["dla"]
    assert dla["mode"] == "implicit" and dla["network"] == str(source)
    assert dla["calibration_cache"] == str(tmp_path / "m.int8.calib")
    assert [r.role for r in manifest.inputs] == ["onnx", "network", "calibration_cache"]
    assert manifest.details["runner"]["dla_core"] == 1
    assert manifest.verification == {"skipped": "--no-verify"}


def test_dla_on_tensorrt_11_4_1_is_strongly_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch, "11.4.1", gpu_name="Orin", compute_capability=(8, 7), dla_cores=2)
    source = qdq_model(tmp_path / "m.int8.onnx")
    manifest = build_tensorrt(
        source, tmp_path / "m.plan", TensorRtBuildOptions(batch=BatchProfile(1, 1, 1), dla_core=0)
    )
    assert calls(gpu, "Builder.create_network") == [{"flags": 0}]
    assert [c["flag"] for c in calls(gpu, "IBuilderConfig.set_flag")] == ["GPU_FALLBACK"]
    assert calls(gpu, "IBuilderConfig.int8_calibrator") == []
    assert calls(gpu, "OnnxParser.parse_from_file") == [{"path": str(source)}]
    assert manifest.details["dla"]["mode"] == "strongly-typed"


@pytest.mark.parametrize("version", ["10.13.0.35", "11.0.0"])
def test_dla_refused_where_tensorrt_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    gpu = fake(monkeypatch, version, dla_cores=2)
    with pytest.raises(ResnetOptError, match="--dla-core: TensorRT"):
        build_tensorrt(
            qdq_model(tmp_path / "q.onnx"),
            tmp_path / "q.plan",
            TensorRtBuildOptions(batch=BatchProfile(1, 1, 1), dla_core=0),
        )
    assert "Builder" not in gpu.names() and "q.plan" not in left_in(tmp_path)


def test_version_and_hardware_compatible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch, "10.3.0.30", compute_capability=(8, 6))
    source = fp32_model(tmp_path / "m.onnx")
    vc = build_tensorrt(source, tmp_path / "v.plan", TensorRtBuildOptions(version_compatible=True))
    assert [c["flag"] for c in calls(gpu, "IBuilderConfig.set_flag")] == ["VERSION_COMPATIBLE"]
    assert all(c["host_code"] for c in calls(gpu, "Runtime.deserialize_cuda_engine"))
    assert vc.details["runner"]["version_compatible"] is True
    hw = build_tensorrt(
        source,
        tmp_path / "h.plan",
        TensorRtBuildOptions(hardware_compatible=HardwareCompat.AMPERE_PLUS),
    )
    assert calls(gpu, "IBuilderConfig.hardware_compatibility_level") == [{"value": "AMPERE_PLUS"}]
    assert hw.details["build_options"]["hardware_compatible"] == "ampere-plus"
    with pytest.raises(ResnetOptError, match=r"came with TensorRT 10.9"):
        build_tensorrt(
            source,
            tmp_path / "s.plan",
            TensorRtBuildOptions(hardware_compatible=HardwareCompat.SAME_COMPUTE_CAPABILITY),
        )


def test_same_compute_capability_on_10_13(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch, "10.13.0.35")
    build_tensorrt(
        fp32_model(tmp_path / "m.onnx"),
        tmp_path / "s.plan",
        TensorRtBuildOptions(hardware_compatible=HardwareCompat.SAME_COMPUTE_CAPABILITY),
    )
    assert calls(gpu, "IBuilderConfig.hardware_compatibility_level") == [
        {"value": "SAME_COMPUTE_CAPABILITY"}
    ]


def test_hardware_compatible_refused_on_jetson_and_old_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = fp32_model(tmp_path / "m.onnx")
    options = TensorRtBuildOptions(hardware_compatible=HardwareCompat.AMPERE_PLUS)
    fake(monkeypatch, gpu_name="Orin", compute_capability=(8, 7), integrated=True)
    with pytest.raises(ResnetOptError, match="not on Jetson"):
        build_tensorrt(source, tmp_path / "a.plan", options)
    fake(monkeypatch, gpu_name="Tesla T4", compute_capability=(7, 5))
    with pytest.raises(ResnetOptError, match=r"needs an Ampere or newer GPU \(sm >= 8.0\)"):
        build_tensorrt(source, tmp_path / "b.plan", options)


def test_parser_errors_leave_no_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    source = unsupported_op_model(tmp_path / "u.onnx")
    with pytest.raises(ResnetOptError) as err:
        build_tensorrt(source, tmp_path / "out" / "u.plan", TensorRtBuildOptions())
    assert "ONNX parser refused it: No importer registered for op: FancyActivation" in str(
        err.value
    )
    assert "(node relu)" in str(err.value)
    assert left_in(tmp_path) == ["u.onnx", "u.onnx.json"]  # no plan, no temp, no folder


def test_not_a_file_not_onnx_existing_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch)
    with pytest.raises(ResnetOptError, match="no such file"):
        build_tensorrt(tmp_path / "absent.onnx", tmp_path / "x.plan", TensorRtBuildOptions())
    garbage = tmp_path / "g.onnx"
    garbage.write_bytes(b"\x00not a protobuf at all\xff" * 10)
    from tests.fakes.tiny_models import with_manifest

    with_manifest(garbage, Precision.FP32)
    with pytest.raises(ResnetOptError, match="not an ONNX model"):
        build_tensorrt(garbage, tmp_path / "g.plan", TensorRtBuildOptions())
    source = fp32_model(tmp_path / "m.onnx")
    (tmp_path / "m.plan").write_bytes(b"old")
    with pytest.raises(ResnetOptError, match="exists; pass --force"):
        build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions())
    build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions(), force=True)
    assert (tmp_path / "m.plan").read_bytes().startswith(PLAN_MAGIC)


def test_without_tensorrt_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = fp32_model(tmp_path / "m.onnx")
    # as on this machine: only tensorrt-stubs' namespace package, or nothing at all
    for module in (sys.modules.get("tensorrt"), None):
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        if module is None:
            monkeypatch.delitem(sys.modules, "tensorrt")
            monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
        with pytest.raises(MissingDependencyError, match=r"pip install '\.\[tensorrt-cu12\]'"):
            build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions())
    assert "m.plan" not in left_in(tmp_path)


def test_no_gpu_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    monkeypatch.setattr("resnet_opt.tensorrt.device._load_libcuda", lambda: None)
    with pytest.raises(ResnetOptError, match="builds on a CUDA GPU and this machine has none"):
        build_tensorrt(fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", TensorRtBuildOptions())


def test_calib_cache_needs_dla_and_options_validate() -> None:
    with pytest.raises(ResnetOptError, match=r"^calib_cache is for DLA builds") as error:
        TensorRtBuildOptions(calib_cache=Path("c.calib"))  # from Python: the field
    assert worded(error.value, FLAGS).startswith("--calib-cache is for DLA builds")  # the CLI
    with pytest.raises(ResnetOptError, match=r"^opt_level 6: .*levels are 0..5"):
        TensorRtBuildOptions(opt_level=6)
    assert parse_bytes("2G") == 2 * 2**30 and parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1024") == 2**30 and parse_bytes("1.5g") == int(1.5 * 2**30)
    with pytest.raises(ResnetOptError, match="give a size"):
        parse_bytes("lots")


def test_dispatcher_builds_the_backend_of_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Which flags belong to which backend is the CLI's: tests/cli/test_app.py.)"""
    fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx")
    manifest = build(source, tmp_path / "m.plan", TensorRtBuildOptions())
    assert manifest.details["backend"] == "tensorrt"


def test_cli_build_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx")
    out = tmp_path / "m.plan"
    result = runner.invoke(
        app,
        [
            "build",
            str(source),
            "-o",
            str(out),
            "--backend",
            "tensorrt",
            "--batch",
            "1:4:8",
            "--workspace",
            "64M",
            "--opt-level",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and data["details"]["profile"]["batch"]["max"] == 8
    assert calls(gpu, "IBuilderConfig.set_memory_pool_limit")[0]["size"] == 64 * 2**20
    human = runner.invoke(
        app, ["build", str(source), "-o", str(out), "--backend", "tensorrt", "--force"]
    )
    assert human.exit_code == 0
    assert "TensorRT 10.3.0.30 engine for NVIDIA Fake GPU (sm 8.6), fp32, batch 1:8:32" in (
        human.stderr
    )
    assert "top-1 agreement 100.0%" in human.stderr


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [  # 2: the command line is wrong; 1: this device cannot do what it asks
        (["--batch", "8:1:32"], "min <= opt <= max", 2),
        (["--dla-core", "0", "--calib-cache", "x.calib"], "this device has no DLA cores", 1),
        (["--hardware-compatible", "--same-compute-capability"], "pick one", 2),
        (["--threads", "2"], "--threads applies to --backend onnxruntime or openvino", 2),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str, code: int
) -> None:
    fake(monkeypatch, dla_cores=0)
    source = fp32_model(tmp_path / "m.onnx")
    result = runner.invoke(
        app, ["build", str(source), "-o", str(tmp_path / "m.plan"), "--backend", "tensorrt", *args]
    )
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "m.plan" not in left_in(tmp_path)


def test_cli_without_tensorrt(tmp_path: Path) -> None:
    source = fp32_model(tmp_path / "m.onnx")
    result = runner.invoke(
        app, ["build", str(source), "-o", str(tmp_path / "m.plan"), "--backend", "tensorrt"]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "pip install '.[tensorrt-cu12]'" in result.stderr


def test_cli_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "m.onnx", "-o", "m.plan", "--backend", "tflite"])
    assert result.exit_code == 2


def test_verification_uses_whole_batches_of_a_fixed_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch)
    source = fp32_model(tmp_path / "m.onnx", batch=5)
    manifest = build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions())
    assert manifest.verification["samples"] == 20  # 4 batches of 5, none smaller
