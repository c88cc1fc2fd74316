"""The hand-off: `bundle` on the workstation → copy → `build` and `bench` on the device with
TensorRT's double and torch blocked; hashes checked on arrival; engines cached on the device."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.bundle import BUNDLE_FILE, bundle, verify_bundle, verify_if_bundled
from resnet_opt.pipeline.engine_cache import build_cached
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import calibration_cache, fp32_model, qdq_model

ROOT = Path(__file__).resolve().parents[2]
TENSORS = ["input", "c", "r", "p", "f", "logits"]


def workstation(folder: Path) -> Path:
    """An FP32 export, the INT8 ONNX quantized from it and its TensorRT calibration cache."""
    folder.mkdir(parents=True, exist_ok=True)
    source = fp32_model(folder / "m.onnx")
    calibration_cache(folder / "m.int8.calib", TENSORS)
    return qdq_model(folder / "m.int8.onnx", source=source, cache="m.int8.calib")


def orin(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    gpu = FakeGpu(
        tensorrt_version="10.3.0.30",
        gpu_name="Orin",
        compute_capability=(8, 7),
        integrated=True,
        dla_cores=2,
    )
    install(monkeypatch, gpu)
    return gpu


def test_bundle_collects_what_the_device_needs(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    made = bundle([int8], tmp_path / "bundle")
    roles = {(f.path, f.role) for f in made.files}
    assert roles == {
        ("m.int8.onnx", "artifact"),
        ("m.int8.onnx.json", "manifest"),
        ("m.int8.calib", "calibration cache"),
        ("m.onnx", "fp32 source"),
        ("m.onnx.json", "fp32 source's manifest"),
        ("labels.txt", "labels"),
    }
    assert (tmp_path / "bundle/labels.txt").read_text() == "a\nb\nc\nd\n"
    listed = json.loads((tmp_path / "bundle" / BUNDLE_FILE).read_text())
    assert listed["kind"] == "resnet-opt-bundle" and listed["artifacts"] == ["m.int8.onnx"]
    _, checked = verify_bundle(tmp_path / "bundle")
    assert checked == 6
    assert not [p.name for p in (tmp_path / "bundle").iterdir() if p.name.endswith(".tmp")]


def test_damaged_file_is_named_on_arrival(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    bundle([int8], tmp_path / "bundle")
    cache = tmp_path / "bundle" / "m.int8.calib"
    good = cache.read_bytes()
    cache.write_bytes(good[:-3])  # a truncated copy
    with pytest.raises(ResnetOptError, match=r"m\.int8\.calib: sha256 differs from bundle\.json"):
        verify_if_bundled(tmp_path / "bundle" / "m.int8.onnx")
    result = CliRunner().invoke(app, ["bundle-verify", str(tmp_path / "bundle")])
    assert result.exit_code == 1
    assert "calibration cache of m.int8.onnx" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    cache.write_bytes(good)
    (tmp_path / "bundle" / "m.onnx").unlink()
    with pytest.raises(ResnetOptError, match=r"m\.onnx: listed in bundle\.json .* but missing"):
        verify_bundle(tmp_path / "bundle")


def test_bundle_refuses_what_it_cannot_complete(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    (tmp_path / "ws" / "m.int8.calib").unlink()
    with pytest.raises(ResnetOptError, match=r"calibration cache m\.int8\.calib is not beside it"):
        bundle([int8], tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()  # nothing half-written
    calibration_cache(tmp_path / "ws" / "m.int8.calib", TENSORS)
    bundle([int8], tmp_path / "bundle")
    with pytest.raises(ResnetOptError, match="already holds a bundle"):
        bundle([int8], tmp_path / "bundle")
    bundle([int8], tmp_path / "bundle", force=True)
    (tmp_path / "ws" / "m.onnx").write_bytes(b"changed")
    with pytest.raises(ResnetOptError, match=r"changed since m\.int8\.onnx was quantized"):
        bundle([int8], tmp_path / "other")


def test_cli_bundle_json(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    out = tmp_path / "b"
    result = CliRunner().invoke(app, ["bundle", str(int8), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert {f["path"] for f in json.loads(result.stdout)["files"]} >= {"m.onnx", "m.int8.calib"}


def test_engine_cache_second_build_is_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = orin(monkeypatch)
    int8 = workstation(tmp_path / "ws")
    cache = tmp_path / "engines"
    options = TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=0, verify=False)
    first = build_cached(int8, tmp_path / "a.plan", options, cache=cache)
    assert not first.hit and first.entry.is_file() and len(gpu.plans) == 1
    second = build_cached(int8, tmp_path / "b.plan", options, cache=cache)
    assert second.hit and len(gpu.plans) == 1  # no second TensorRT build
    assert (tmp_path / "b.plan").read_bytes() == (tmp_path / "a.plan").read_bytes()
    assert second.manifest.artifact == "b.plan"
    assert second.manifest.details["engine_cache"]["hit"] is True
    # another DLA core, another engine
    build_cached(
        int8,
        tmp_path / "c.plan",
        TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=1, verify=False),
        cache=cache,
    )
    assert len(gpu.plans) == 2
    # a damaged entry is rebuilt, not used
    first.entry.write_bytes(b"garbage")
    again = build_cached(int8, tmp_path / "d.plan", options, cache=cache)
    assert not again.hit and again.note is not None and "not used" in again.note
    assert len(gpu.plans) == 3


def test_engine_cache_key_leaves_out_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a fresh build is run against its source changes no engine: the same entry."""
    gpu = orin(monkeypatch)
    int8 = workstation(tmp_path / "ws")
    options = TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=0, verify=False)
    build_cached(int8, tmp_path / "a.plan", options, cache=tmp_path / "engines")
    verified = replace(options, verify=True)
    second = build_cached(int8, tmp_path / "b.plan", verified, cache=tmp_path / "engines")
    assert second.hit and len(gpu.plans) == 1


def test_engine_cache_keys_on_tensorrt_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    int8 = workstation(tmp_path / "ws")
    options = TensorRtBuildOptions(batch=BatchProfile(4, 4, 4))  # GPU: Q/DQ INT8, any 10.x
    orin(monkeypatch)
    unverified = replace(options, verify=False)
    build_cached(int8, tmp_path / "a.plan", unverified, cache=tmp_path / "engines")
    gpu = FakeGpu(
        tensorrt_version="10.7.0.23", gpu_name="Orin", compute_capability=(8, 7), dla_cores=2
    )
    install(monkeypatch, gpu)
    later = build_cached(int8, tmp_path / "b.plan", options, cache=tmp_path / "engines")
    assert not later.hit and len(gpu.plans) == 1


DEVICE_SCRIPT = """
import importlib.abc, json, sys
from pathlib import Path

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is not installed on this device")
        return None

sys.meta_path.insert(0, BlockTorch())
import pytest
from typer.testing import CliRunner
from tests.fakes.fake_gpu import FakeGpu, install
from resnet_opt.cli import app

bundle, cache = Path(sys.argv[1]), Path(sys.argv[2])
gpu = FakeGpu(tensorrt_version="10.3.0.30", gpu_name="Orin", compute_capability=(8, 7),
              integrated=True, dla_cores=2)
install(pytest.MonkeyPatch(), gpu)
# bench asks importlib whether tensorrt is installed: the double is, as an origin-ful module
import importlib.machinery
sys.modules["tensorrt"].__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin="double")
runner = CliRunner()
build = ["build", str(bundle / "m.int8.onnx"), "--backend", "tensorrt", "--batch", "4",
         "--dla-core", "0", "--engine-cache", str(cache)]
out = {"builds": []}
for name in ("first.plan", "second.plan"):
    r = runner.invoke(app, [*build, "-o", str(bundle / name)])
    out["builds"].append({"code": r.exit_code, "stderr": r.stderr, "plans": len(gpu.plans)})
r = runner.invoke(app, ["bench", str(bundle / "second.plan"), "--backend", "tensorrt",
                        "--batch", "4", "--iterations", "3", "--warmup", "0", "--no-accuracy",
                        "--json"])
out["bench"] = {"code": r.exit_code, "stderr": r.stderr[-2000:],
                "report": json.loads(r.stdout) if r.exit_code == 0 else None}
out["torch_imported"] = [m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision")]
print(json.dumps(out))
"""


def test_bundle_copy_build_bench_on_a_device_without_torch(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    bundle([int8], tmp_path / "bundle")
    device = tmp_path / "device" / "bundle"
    shutil.copytree(tmp_path / "bundle", device)  # the scp to the Jetson
    shutil.rmtree(tmp_path / "ws")  # nothing of the workstation is left to fall back on
    done = subprocess.run(
        [sys.executable, "-c", DEVICE_SCRIPT, str(device), str(tmp_path / "device" / "engines")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    first, second = out["builds"]
    assert first["code"] == 0, first["stderr"]
    assert second["code"] == 0 and "copied, not rebuilt" in second["stderr"]
    assert (first["plans"], second["plans"]) == (1, 1)  # the second build is the cached engine
    assert out["bench"]["code"] == 0, out["bench"]["stderr"]
    (point,) = out["bench"]["report"]["measurements"]
    assert (point["backend"], point["batch"]) == ("tensorrt", 4)
    assert out["torch_imported"] == []


def test_a_changed_bundled_file_stops_build_and_bench(tmp_path: Path) -> None:
    int8 = workstation(tmp_path / "ws")
    bundle([int8], tmp_path / "bundle")
    calib = tmp_path / "bundle" / "m.int8.calib"
    calib.write_text(calib.read_text() + "extra: 3c000000\n")
    runner = CliRunner()
    for args in (
        ["build", str(tmp_path / "bundle/m.int8.onnx"), "--backend", "tensorrt", "-o", "x.plan"],
        ["bench", str(tmp_path / "bundle/m.int8.onnx"), "--no-accuracy", "--iterations", "1"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "m.int8.calib: sha256 differs from bundle.json" in result.stderr
