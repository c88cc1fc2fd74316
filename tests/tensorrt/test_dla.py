"""DLA eligibility: each supported path planned, each unsupported one refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet_opt.core.manifest import Precision, read_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.dla import (
    DlaPlan,
    check_cache_matches,
    implicit_int8_source,
    plan_dla,
    read_calibration_cache,
)
from resnet_opt.tensorrt.network import read_network
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.versions import DlaMode, capabilities
from tests.fakes.tiny_models import calibration_cache, fp16_model, fp32_model, qdq_model

FIXED = BatchProfile(4, 4, 4)
TENSORS = ["input", "c", "r", "p", "f", "logits"]


def _plan(
    version: str,
    onnx: Path,
    *,
    core: int = 0,
    profile: BatchProfile = FIXED,
    calib_cache: Path | None = None,
    available_cores: int | None = 2,
) -> DlaPlan:
    manifest = read_manifest(onnx)
    assert manifest is not None
    return plan_dla(
        capabilities(version),
        core=core,
        onnx=onnx,
        precision=read_network(onnx, manifest.precision).precision,
        profile=profile,
        manifest=manifest,
        calib_cache=calib_cache,
        available_cores=available_cores,
    )


@pytest.fixture
def int8(tmp_path: Path) -> Path:
    source = fp32_model(tmp_path / "m.onnx")
    calibration_cache(tmp_path / "m.int8.calib", TENSORS)
    return qdq_model(tmp_path / "m.int8.onnx", source=source, cache="m.int8.calib")


def test_tensorrt10_int8_onnx_uses_its_fp32_source_and_cache(tmp_path: Path, int8: Path) -> None:
    plan = _plan("10.3.0", int8)
    assert plan.mode is DlaMode.IMPLICIT and not plan.strongly_typed
    assert plan.precision is Precision.INT8
    assert plan.network == tmp_path / "m.onnx"
    assert plan.builder_flags == ("INT8", "FP16", "GPU_FALLBACK")
    assert plan.calibration is not None
    assert plan.calibration.path == tmp_path / "m.int8.calib"
    assert plan.calibration.algorithm.value == "EntropyCalibration2"
    assert set(plan.calibration.scales) == set(TENSORS)


def test_tensorrt10_fp32_onnx_with_calib_cache(tmp_path: Path) -> None:
    onnx = fp32_model(tmp_path / "m.onnx")
    cache = calibration_cache(tmp_path / "c.calib", TENSORS, version="10.7.0")
    plan = _plan("10.7.0", onnx, calib_cache=cache)
    assert plan.network == onnx and plan.precision is Precision.INT8
    assert plan.builder_flags == ("INT8", "FP16", "GPU_FALLBACK")


def test_tensorrt10_fp16_onnx_uses_the_fp16_flag(tmp_path: Path) -> None:
    plan = _plan("10.3.0", fp16_model(tmp_path / "h.onnx"))
    assert plan.precision is Precision.FP16 and plan.calibration is None
    assert plan.builder_flags == ("FP16", "GPU_FALLBACK") and not plan.strongly_typed


def test_tensorrt10_refusals(tmp_path: Path, int8: Path) -> None:
    fp32 = tmp_path / "m.onnx"
    with pytest.raises(ResnetOptError, match=r"FP32, and the DLA computes in INT8 or FP16 only"):
        _plan("10.3.0", fp32)
    with pytest.raises(ResnetOptError, match=r"fixed batch size, not the range 1:8:32"):
        _plan("10.3.0", int8, profile=BatchProfile(1, 8, 32))
    with pytest.raises(ResnetOptError, match=r"this device has no DLA cores"):
        _plan("10.3.0", int8, available_cores=0)
    with pytest.raises(ResnetOptError, match=r"DLA cores 0..1"):
        _plan("10.3.0", int8, core=2)
    with pytest.raises(ResnetOptError, match=r"a calibration cache is for INT8"):
        _plan("10.3.0", fp16_model(tmp_path / "h.onnx"), calib_cache=tmp_path / "m.int8.calib")
    with pytest.raises(ResnetOptError, match=r"TensorRT 10\.3\.0.*would ignore it"):
        _plan(
            "10.3.0",
            fp32,
            calib_cache=calibration_cache(tmp_path / "o.calib", TENSORS, version="10.7.0"),
        )


def test_tensorrt10_int8_without_cache_or_source(tmp_path: Path) -> None:
    no_cache = qdq_model(tmp_path / "a.int8.onnx", source=fp32_model(tmp_path / "a.onnx"))
    with pytest.raises(ResnetOptError, match=r"names none .*pass --calib-cache"):
        _plan("10.3.0", no_cache)
    calibration_cache(tmp_path / "b.calib", TENSORS)
    no_source = qdq_model(tmp_path / "b.int8.onnx", cache="b.calib")
    with pytest.raises(ResnetOptError, match=r"names no FP32 source ONNX"):
        _plan("10.3.0", no_source)
    missing = qdq_model(
        tmp_path / "c.int8.onnx", source=fp32_model(tmp_path / "c.onnx"), cache="gone.calib"
    )
    with pytest.raises(ResnetOptError, match=r"gone.calib is not beside it"):
        _plan("10.3.0", missing)


def test_changed_fp32_source_is_refused(tmp_path: Path, int8: Path) -> None:
    fp32_model(tmp_path / "m.onnx", batch=2)  # rewritten after quantize
    manifest = read_manifest(int8)
    assert manifest is not None
    with pytest.raises(ResnetOptError, match=r"changed since m.int8.onnx was quantized"):
        implicit_int8_source(int8, manifest, None)


@pytest.mark.parametrize("version", ["10.8.0", "10.13.0", "11.0.0", "11.3.0", "11.4.0"])
def test_versions_without_dla_refuse_with_the_reason(int8: Path, version: str) -> None:
    with pytest.raises(
        ResnetOptError, match=r"--dla-core: TensorRT .*(no DLA|DLA was unavailable)"
    ):
        _plan(version, int8)


def test_tensorrt11_4_1_strongly_typed_dla(tmp_path: Path, int8: Path) -> None:
    plan = _plan("11.4.1", int8)
    assert plan.mode is DlaMode.STRONGLY_TYPED and plan.strongly_typed
    assert plan.network == int8 and plan.calibration is None
    assert plan.builder_flags == ("GPU_FALLBACK",) and plan.precision is Precision.INT8
    half = _plan("11.4.1", fp16_model(tmp_path / "h.onnx"))
    assert half.precision is Precision.FP16 and half.builder_flags == ("GPU_FALLBACK",)
    with pytest.raises(ResnetOptError, match=r"FP32, and the DLA computes in FP16 or INT8 only"):
        _plan("11.4.1", tmp_path / "m.onnx")
    with pytest.raises(ResnetOptError, match=r"has no implicit INT8"):
        _plan("11.4.1", int8, calib_cache=tmp_path / "m.int8.calib")


def test_cache_must_belong_to_the_network(tmp_path: Path) -> None:
    net = read_network(fp32_model(tmp_path / "m.onnx"))
    caps = capabilities("10.3.0")
    good = read_calibration_cache(calibration_cache(tmp_path / "g.calib", TENSORS), caps)
    check_cache_matches(good, "input", net.tensor_names)
    other = read_calibration_cache(calibration_cache(tmp_path / "o.calib", ["x", "y"]), caps)
    with pytest.raises(ResnetOptError, match=r"no scale for the network input 'input'"):
        check_cache_matches(other, "input", net.tensor_names)
    foreign = read_calibration_cache(
        calibration_cache(tmp_path / "f.calib", ["input", "conv_out_7", "relu_9"]), caps
    )
    with pytest.raises(ResnetOptError, match=r"2 of its 3 tensors are not in the network"):
        check_cache_matches(foreign, "input", net.tensor_names)


def test_broken_caches(tmp_path: Path) -> None:
    caps = capabilities("10.3.0")
    bad = tmp_path / "bad.calib"
    bad.write_text("hello\n")
    with pytest.raises(ResnetOptError, match=r"not a TensorRT calibration cache header"):
        read_calibration_cache(bad, caps)
    empty = tmp_path / "empty.calib"
    empty.write_text("TRT-100300-EntropyCalibration2\n")
    with pytest.raises(ResnetOptError, match=r"holds no tensor scales"):
        read_calibration_cache(empty, caps)
    odd = tmp_path / "odd.calib"
    odd.write_text("TRT-100300-PercentileCalibration\ninput: 3c010a14\n")
    with pytest.raises(ResnetOptError, match=r"unknown calibration algorithm"):
        read_calibration_cache(odd, caps)
    with pytest.raises(ResnetOptError, match=r"no such calibration cache"):
        read_calibration_cache(tmp_path / "none.calib", caps)
