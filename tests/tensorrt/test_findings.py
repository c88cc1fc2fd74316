"""The defects found by reading the TensorRT layer against NVIDIA's and pycuda's sources (issue
9), each shown on the doubles, which now refuse what the real libraries refuse."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resnet_opt.core.manifest import Manifest, Precision, Stage, new_manifest, read_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.runners.tensorrt import open_tensorrt
from resnet_opt.tensorrt.compat import check_engine_compatible, host_arch
from resnet_opt.tensorrt.device import DeviceInfo, probe_device
from resnet_opt.tensorrt.dla import read_calibration_cache
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.versions import HardwareCompat, capabilities
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import calibration_cache, fp32_model, qdq_model

TENSORS = ["input", "c", "r", "p", "f", "logits"]
ORIN: dict[str, Any] = {"gpu_name": "Orin", "compute_capability": (8, 7), "dla_cores": 2}


def fake(monkeypatch: pytest.MonkeyPatch, version: str = "10.3.0.30", **kw: Any) -> FakeGpu:
    gpu = FakeGpu(tensorrt_version=version, **kw)
    install(monkeypatch, gpu)
    return gpu


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- timing cache -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"FAKE-TIMING 10.7.0.23 NVIDIA Fake GPU\nx\n", "Timing cache version mismatch"),
        (b"\x00\x01 not a timing cache", "invalid magic tag"),
    ],
)
def test_a_timing_cache_tensorrt_cannot_read_is_an_error_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, why: str
) -> None:
    fake(monkeypatch)
    cache = tmp_path / "t.cache"
    cache.write_bytes(content)
    source = fp32_model(tmp_path / "m.onnx")
    with pytest.raises(ResnetOptError) as err:
        build_tensorrt(source, tmp_path / "m.plan", TensorRtBuildOptions(timing_cache=cache))
    message = str(err.value)
    assert message.startswith("--timing-cache: TensorRT could not read the file (")
    assert why in message and "left unchanged" in message and "\n" not in message
    assert cache.read_bytes() == content  # never replaced by an empty cache
    assert "m.plan" not in files(tmp_path)


def test_no_timing_cache_after_the_build_leaves_the_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch)
    trt = sys.modules["tensorrt"]
    monkeypatch.setattr(trt.Builder, "create_builder_config", _config_without_cache(trt))
    cache = tmp_path / "t.cache"
    manifest = build_tensorrt(
        fp32_model(tmp_path / "m.onnx"),
        tmp_path / "m.plan",
        TensorRtBuildOptions(timing_cache=cache, verify=False),
    )
    assert not cache.exists() and manifest.details["timing_cache"]["sha256_after"] is None


def _config_without_cache(trt: Any) -> Any:
    original = trt.Builder.create_builder_config

    def create(self: Any) -> Any:
        config = original(self)
        config.get_timing_cache = lambda: None
        return config

    return create


# -- DLA implicit INT8: EntropyCalibration2 only ----------------------------------------------


def test_dla_needs_an_entropy2_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = fake(monkeypatch, **ORIN)
    source = fp32_model(tmp_path / "m.onnx")
    cache = tmp_path / "minmax.calib"  # TensorRT's format, with a MinMax calibrator's header
    cache.write_text(
        "TRT-100300-MinMaxCalibration\n" + "".join(f"{n}: 3c010a14\n" for n in TENSORS)
    )
    options = TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=0, calib_cache=cache)
    with pytest.raises(ResnetOptError, match=r"DLA INT8 needs an EntropyCalibration2 cache"):
        build_tensorrt(source, tmp_path / "m.plan", options)
    assert "Builder" not in gpu.names()


def test_the_dla_calibrator_is_exactly_an_entropy2_calibrator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_opt.tensorrt.builder import make_cache_calibrator

    fake(monkeypatch, **ORIN)
    cache = read_calibration_cache(
        calibration_cache(tmp_path / "c.calib", TENSORS), capabilities("10.3.0")
    )
    calibrator = make_cache_calibrator(cache)
    trt = sys.modules["tensorrt"]
    assert type(calibrator).__mro__[1] is trt.IInt8EntropyCalibrator2
    own = {n for n in vars(type(calibrator)) if not n.startswith("_")}
    assert own == {
        "get_batch_size",
        "get_batch",
        "read_calibration_cache",
        "write_calibration_cache",
    }
    assert calibrator.read_calibration_cache() == cache.raw


def test_the_double_refuses_other_calibrators_on_dla(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch, **ORIN)
    trt = sys.modules["tensorrt"]

    def build(base: type, dla: bool, **methods: Any) -> Any:
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        assert trt.OnnxParser(network, logger).parse_from_file(str(fp32_model(tmp_path / "m.onnx")))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        shape = trt.Dims([4, 3, 8, 8])
        profile.set_shape("input", shape, shape, shape)
        config.add_optimization_profile(profile)
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = type("C", (base,), methods)()
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
        if dla:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = 0
        return builder.build_serialized_network(network, config)

    header = b"TRT-100300-MinMaxCalibration\ninput: 3c010a14\n"
    methods = {
        "get_batch_size": lambda self: 1,
        "get_batch": lambda self, names: [],
        "read_calibration_cache": lambda self: header,
        "write_calibration_cache": lambda self, cache: None,
    }
    assert build(trt.IInt8MinMaxCalibrator, dla=False, **methods) is not None
    assert build(trt.IInt8MinMaxCalibrator, dla=True, **methods) is None
    with pytest.raises(RuntimeError, match=r"pure virtual function.*get_quantile"):
        build(trt.IInt8LegacyCalibrator, dla=False, **methods)


def test_the_double_builds_dla_engines_with_fixed_shapes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch, "11.4.1", **ORIN)
    trt = sys.modules["tensorrt"]
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    trt.OnnxParser(network, logger).parse_from_file(str(qdq_model(tmp_path / "q.onnx")))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", *(trt.Dims([b, 3, 8, 8]) for b in (1, 2, 4)))
    config.add_optimization_profile(profile)
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = 0
    assert builder.build_serialized_network(network, config) is None


# -- hardware compatibility floors --------------------------------------------------------


def test_same_compute_capability_builds_and_runs_from_turing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = TensorRtBuildOptions(hardware_compatible=HardwareCompat.SAME_COMPUTE_CAPABILITY)
    source = fp32_model(tmp_path / "m.onnx")
    fake(monkeypatch, "10.13.0.35", gpu_name="Tesla T4", compute_capability=(7, 5))
    manifest = build_tensorrt(source, tmp_path / "t4.plan", same)
    t4 = probe_device()
    check_engine_compatible(manifest, dataclasses.replace(t4, gpu_name="Quadro RTX 8000"))
    fake(monkeypatch, "10.13.0.35", gpu_name="Tesla V100", compute_capability=(7, 0))
    with pytest.raises(ResnetOptError, match=r"needs a Turing or newer GPU \(sm >= 7.5\)"):
        build_tensorrt(source, tmp_path / "v100.plan", same)
    ampere = TensorRtBuildOptions(hardware_compatible=HardwareCompat.AMPERE_PLUS)
    fake(monkeypatch, "10.13.0.35", gpu_name="Tesla T4", compute_capability=(7, 5))
    with pytest.raises(ResnetOptError, match=r"needs an Ampere or newer GPU \(sm >= 8.0\)"):
        build_tensorrt(source, tmp_path / "a.plan", ampere)


@pytest.mark.parametrize(
    ("level", "floor"), [("AMPERE_PLUS", (8, 0)), ("SAME_COMPUTE_CAPABILITY", (7, 5))]
)
def test_the_double_enforces_the_floors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str, floor: tuple[int, int]
) -> None:
    source = fp32_model(tmp_path / "m.onnx")
    for cc, builds in ((floor, True), ((floor[0], floor[1] - 5), False)):
        fake(monkeypatch, "10.13.0.35", compute_capability=cc)
        trt = sys.modules["tensorrt"]
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << 1)
        trt.OnnxParser(network, logger).parse_from_file(str(source))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        profile.set_shape("input", *(trt.Dims([b, 3, 8, 8]) for b in (1, 8, 32)))
        config.add_optimization_profile(profile)
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)
        assert (builder.build_serialized_network(network, config) is not None) is builds


# -- the inspector: Myelin ForeignNode layers are GPU layers ---------------------------------


@pytest.mark.parametrize("version", ["10.3.0.30", "11.1.0"])
def test_a_gpu_engine_has_no_dla_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    fake(monkeypatch, version)
    manifest = build_tensorrt(
        fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", TensorRtBuildOptions(verify=False)
    )
    layers = manifest.details["layers"]
    assert any(row["name"].startswith("{ForeignNode") for row in layers["layers"])
    assert layers["on_dla"] == 0
    assert {row["device"] for row in layers["layers"]} == {"gpu"}
    assert layers["io_tensors"] == ["input", "logits"]  # 10.x names, 11.x objects


def test_a_dla_engine_counts_its_dla_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, "11.4.1", **ORIN)
    options = TensorRtBuildOptions(batch=BatchProfile(1, 1, 1), dla_core=0, verify=False)
    manifest = build_tensorrt(qdq_model(tmp_path / "q.onnx"), tmp_path / "q.plan", options)
    layers = manifest.details["layers"]
    assert layers["on_dla"] == 1
    assert [r["device"] for r in layers["layers"]] == ["gpu", "dla", "gpu"]


# -- one TensorRT logger per process --------------------------------------------------------


def test_a_second_live_runner_reports_tensorrt_s_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch)
    plan = tmp_path / "m.plan"
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), plan, TensorRtBuildOptions(verify=False))
    x = np.zeros((2, 3, 8, 8), np.float32)
    with open_tensorrt(plan) as first, open_tensorrt(plan) as second:
        first.infer({"input": x})
        gpu.execute_error = "[executionContext.cpp::enqueueV3] Error Code 1: Cuda Runtime"
        with pytest.raises(ResnetOptError, match=r"execution failed: \[executionContext.cpp"):
            second.infer({"input": x})
        with pytest.raises(ResnetOptError, match=r"execution failed: \[executionContext.cpp"):
            first.infer({"input": x})
    loggers = {c.args["logger"] for c in gpu.calls if c.name in ("Builder", "Runtime")}
    assert loggers == {"RecordingLogger"}


def test_dla_core_probe_uses_the_process_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_opt.tensorrt.device import probe_dla_cores
    from resnet_opt.tensorrt.logger import process_logger

    fake(monkeypatch, **ORIN)
    logger, _ = process_logger()
    trt = sys.modules["tensorrt"]
    created: list[Any] = []
    monkeypatch.setattr(trt, "Runtime", _spy(trt.Runtime, created))
    assert probe_dla_cores() == (2, None)
    assert created == [logger]


def _spy(cls: type, created: list[Any]) -> Any:
    def make(logger: Any) -> Any:
        created.append(logger)
        return cls(logger)

    return make


# -- version-compatible plans of the same release, engines across CPU platforms ----------------


def test_a_version_compatible_plan_loads_on_another_build_of_its_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch, "10.3.0.30")
    plan = tmp_path / "vc.plan"
    options = TensorRtBuildOptions(version_compatible=True, verify=False)
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), plan, options)
    for build in ("10.3.0.26", "10.3.0.31"):
        fake(monkeypatch, build)
        with open_tensorrt(plan) as engine:
            engine.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})
    fake(monkeypatch, "10.3.0.30")
    plain = tmp_path / "p.plan"
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), plain, TensorRtBuildOptions(verify=False))
    fake(monkeypatch, "10.3.0.31")
    with pytest.raises(ResnetOptError, match="rebuild"):
        open_tensorrt(plain).__enter__()


def _plan_on(tmp_path: Path, arch: str, **details: Any) -> Manifest:
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    base: dict[str, Any] = {
        "backend": "tensorrt",
        "tensorrt_version": "10.3.0.30",
        "host_arch": arch,
        "gpu": {"name": "NVIDIA A10", "compute_capability": "8.6"},
        "build_options": {"hardware_compatible": "ampere-plus"},
    }
    base.update(details)
    return new_manifest(
        stage=Stage.BUILD,
        artifact=plan,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=None,
        details=base,
    )


def test_engines_do_not_move_across_cpu_platforms(tmp_path: Path) -> None:
    orin = DeviceInfo("Orin", (8, 7), True, "12.6", "10.3.0.30", 2, "36.4.3", "6.2")
    x86_plan = _plan_on(tmp_path, "x86_64")
    with pytest.raises(ResnetOptError, match="built on an x86_64 host, this host is aarch64"):
        check_engine_compatible(x86_plan, orin, arch="aarch64")
    a100 = DeviceInfo("NVIDIA A100", (8, 0), False, "12.4", "10.3.0.30", 0, None, None)
    check_engine_compatible(x86_plan, a100, arch="x86_64")
    with pytest.raises(ResnetOptError, match="do not move across CPU platforms"):
        check_engine_compatible(_plan_on(tmp_path, "aarch64"), a100, arch="x86_64")
    check_engine_compatible(_plan_on(tmp_path, "x86_64", host_arch=None), a100, arch="aarch64")
    assert host_arch("AMD64") == "x86_64" and host_arch("arm64") == "aarch64"


def test_the_build_records_its_host_and_the_runner_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake(monkeypatch)
    plan = tmp_path / "m.plan"
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), plan, TensorRtBuildOptions(verify=False))
    manifest = read_manifest(plan)
    assert manifest is not None and manifest.details["host_arch"] == host_arch()
    gpu.calls.clear()
    other = "aarch64" if host_arch() == "x86_64" else "x86_64"
    monkeypatch.setattr("platform.machine", lambda: other)
    with pytest.raises(ResnetOptError, match="do not move across CPU platforms"):
        open_tensorrt(plan).__enter__()
    assert "Runtime.deserialize_cuda_engine" not in gpu.names()


def test_the_double_refuses_a_plan_of_another_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch)
    build_tensorrt(
        fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", TensorRtBuildOptions(verify=False)
    )
    fake(monkeypatch, host_arch="aarch64")
    trt = sys.modules["tensorrt"]
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    assert runtime.deserialize_cuda_engine((tmp_path / "m.plan").read_bytes()) is None
