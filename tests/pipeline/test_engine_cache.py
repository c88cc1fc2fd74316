"""Engines keyed to the device they were timed on: every Orin reports "Orin", sm 8.7, so the
SM count, the Jetson module (part number) and the nvpmodel power mode are what tell an AGX Orin
at MAXN from an Orin Nano at 15 W. The engine cache key and the compatibility check include
them; a plan from another module or power mode is refused with the reason. Also: every
TensorRtBuildOptions field is in the cache key (or listed with why not), and the key hashes the
calibration cache the DLA build reads."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from resnet_opt.core.manifest import read_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson import facts as jetson_facts
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.pipeline.engine_cache import NOT_IN_KEY, build_cached, key_facts
from resnet_opt.tensorrt.compat import check_engine_compatible
from resnet_opt.tensorrt.device import probe_device
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.versions import HardwareCompat
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import calibration_cache, fp32_model, qdq_model

TREES = Path(__file__).parents[1] / "data" / "jetson"
TENSORS = ["input", "c", "r", "p", "f", "logits"]
GPU_OPTIONS = TensorRtBuildOptions(batch=BatchProfile(1, 4, 4), verify=False)


def orin(monkeypatch: pytest.MonkeyPatch, tree: Path, sm_count: int) -> FakeGpu:
    """An Orin (the driver says "Orin", sm 8.7 on every module) with the board files of `tree`."""
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", tree)
    gpu = FakeGpu(
        gpu_name="Orin",
        compute_capability=(8, 7),
        integrated=True,
        dla_cores=2,
        sm_count=sm_count,
    )
    install(monkeypatch, gpu)
    return gpu


def at_power_mode(tmp_path: Path, mode_id: int) -> Path:
    """The AGX Orin's board files with nvpmodel switched to mode `mode_id`."""
    root = tmp_path / f"agx-mode{mode_id}"
    shutil.copytree(TREES / "agx_orin", root)
    (root / "var/lib/nvpmodel/status").write_text(f"pmode:{mode_id:04d} fmode:quiet\n")
    return root


def workstation(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = fp32_model(folder / "m.onnx")
    calibration_cache(folder / "m.int8.calib", TENSORS)
    return qdq_model(folder / "m.int8.onnx", source=source, cache="m.int8.calib")


def test_the_manifest_records_sm_count_module_and_power_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orin(monkeypatch, TREES / "agx_orin", 16)
    plan = build_tensorrt(fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", GPU_OPTIONS)
    gpu = plan.details["gpu"]
    assert (gpu["sm_count"], gpu["module"], gpu["power_mode"]) == (16, "p3701-0005", "MAXN")


def test_a_plan_from_another_module_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built on an AGX Orin (16 SMs), asked to run on an Orin Nano (8 SMs): refused."""
    orin(monkeypatch, TREES / "agx_orin", 16)
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", GPU_OPTIONS)
    manifest = read_manifest(tmp_path / "m.plan")
    assert manifest is not None
    orin(monkeypatch, TREES / "orin_nano", 8)
    with pytest.raises(ResnetOptError, match="built on a GPU with 16 SMs, this one has 8"):
        check_engine_compatible(manifest, probe_device())
    orin(monkeypatch, TREES / "orin_nano", 16)  # the module alone differs
    with pytest.raises(ResnetOptError, match="built on Jetson module p3701-0005, this is p3767"):
        check_engine_compatible(manifest, probe_device())


def test_a_plan_from_another_power_mode_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orin(monkeypatch, TREES / "agx_orin", 16)
    build_tensorrt(fp32_model(tmp_path / "m.onnx"), tmp_path / "m.plan", GPU_OPTIONS)
    manifest = read_manifest(tmp_path / "m.plan")
    assert manifest is not None
    check_engine_compatible(manifest, probe_device())  # the same module and mode: fine
    orin(monkeypatch, at_power_mode(tmp_path, 1), 16)
    with pytest.raises(ResnetOptError) as caught:
        check_engine_compatible(manifest, probe_device())
    message = str(caught.value)
    assert "built at power mode MAXN, this module runs MODE_15W" in message
    assert "nvpmodel" in message and "\n" not in message


def test_a_discrete_gpu_with_another_sm_count_is_refused_unless_hardware_compatible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same name and compute capability, another SM count (a cut-down part): the tactics were
    timed for the other; a hardware-compatible plan is made to move and is not refused."""
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "x86")
    install(monkeypatch, FakeGpu(sm_count=84))
    source = fp32_model(tmp_path / "m.onnx")
    build_tensorrt(source, tmp_path / "m.plan", GPU_OPTIONS)
    ampere = dataclasses.replace(GPU_OPTIONS, hardware_compatible=HardwareCompat.AMPERE_PLUS)
    build_tensorrt(source, tmp_path / "hc.plan", ampere)
    plain, portable = read_manifest(tmp_path / "m.plan"), read_manifest(tmp_path / "hc.plan")
    assert plain is not None and portable is not None
    install(monkeypatch, FakeGpu(sm_count=68))
    with pytest.raises(ResnetOptError, match="84 SMs, this one has 68"):
        check_engine_compatible(plain, probe_device())
    check_engine_compatible(portable, probe_device())


def test_the_engine_cache_misses_on_another_module_or_power_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = fp32_model(tmp_path / "m.onnx")
    cache = tmp_path / "engines"
    gpu = orin(monkeypatch, TREES / "agx_orin", 16)
    build_cached(source, tmp_path / "a.plan", GPU_OPTIONS, cache=cache)
    assert build_cached(source, tmp_path / "b.plan", GPU_OPTIONS, cache=cache, force=True).hit
    assert len(gpu.plans) == 1
    for tree, sms in ((at_power_mode(tmp_path, 1), 16), (TREES / "orin_nano", 8)):
        gpu = orin(monkeypatch, tree, sms)
        again = build_cached(source, tmp_path / "c.plan", GPU_OPTIONS, cache=cache, force=True)
        assert not again.hit and len(gpu.plans) == 1, tree.name
    facts = key_facts(source, read_manifest(source), GPU_OPTIONS, probe_device())  # type: ignore[arg-type]
    assert facts["gpu"]["sm_count"] == 8 and facts["gpu"]["module"] == "p3767-0005"
    assert facts["gpu"]["power_mode"] == "15W"


def test_every_build_option_is_in_the_cache_key_or_listed_with_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new TensorRtBuildOptions field fails here until it is keyed or listed in NOT_IN_KEY."""
    orin(monkeypatch, TREES / "agx_orin", 16)
    source = fp32_model(tmp_path / "m.onnx")
    manifest = read_manifest(source)
    assert manifest is not None
    keyed = key_facts(source, manifest, TensorRtBuildOptions(), probe_device())["options"]
    names = {f.name for f in dataclasses.fields(TensorRtBuildOptions)}
    assert names - set(NOT_IN_KEY) == set(keyed), (names, set(keyed))
    assert set(NOT_IN_KEY) <= names  # no stale exclusion
    assert all(why for why in NOT_IN_KEY.values())


def test_the_key_hashes_the_calibration_cache_the_dla_build_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The INT8 ONNX's manifest recorded its cache at a path that is not beside it: the build
    reads that path, and so does the key (before, the key looked only beside the ONNX and hashed
    nothing, so a changed cache hit a stale engine)."""
    from resnet_opt.core.manifest import manifest_path, write_manifest
    from resnet_opt.tensorrt.dla import CACHE_DETAIL, calibration_cache_path

    orin(monkeypatch, TREES / "agx_orin", 16)
    int8 = workstation(tmp_path / "ws")
    elsewhere = tmp_path / "caches" / "recorded.calib"
    elsewhere.parent.mkdir()
    shutil.move(tmp_path / "ws" / "m.int8.calib", elsewhere)
    manifest = read_manifest(int8)
    assert manifest is not None
    details = {**manifest.details, CACHE_DETAIL: str(elsewhere)}
    manifest = dataclasses.replace(manifest, details=details)
    write_manifest(manifest_path(int8), manifest)
    assert calibration_cache_path(int8, manifest, None) == elsewhere
    options = TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=0, verify=False)
    first = key_facts(int8, manifest, options, probe_device())["calibration_cache_sha256"]
    assert first is not None
    cache = tmp_path / "engines"
    build_cached(int8, tmp_path / "a.plan", options, cache=cache)
    from resnet_opt.calibration.tensorrt_cache import format_tensorrt_cache

    other = format_tensorrt_cache(dict.fromkeys(TENSORS, 4.0), tensorrt_version="10.3.0")
    elsewhere.write_bytes(other.encode("utf-8"))
    changed = key_facts(int8, manifest, options, probe_device())["calibration_cache_sha256"]
    assert changed != first
    assert not build_cached(int8, tmp_path / "b.plan", options, cache=cache).hit
