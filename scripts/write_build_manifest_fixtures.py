"""Write tests/data/build_manifests_v1: build manifests written by the build stages
(TensorRT through
the recording double in tests/fakes), for the byte-identical round trip of the typed build details.

Run from the repository root: `PYTHONPATH=$PWD python scripts/write_build_manifest_fixtures.py
tests/data/build_manifests_v1`. The committed ones were written by main before the build details
were typed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from resnet_opt.core.manifest import manifest_path
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, build_openvino
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.pipeline.engine_cache import build_cached
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import calibration_cache, fp32_model, qdq_model

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
work = Path("/tmp/bd/work")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
src = Path("tests/data/manifests_v1/int8_cpu.onnx.json")


def keep(artifact: Path, name: str) -> None:
    shutil.copyfile(manifest_path(artifact), out / name)


m = fp32_model(work / "m.onnx")
build_onnxruntime(m, work / "m.ort", OrtBuildOptions(portable=True, threads=2))
keep(work / "m.ort", "build_onnxruntime_ort_portable.ort.json")
build_openvino(m, work / "m.xml", OpenVinoBuildOptions())
keep(work / "m.xml", "build_openvino_ir.xml.json")
build_openvino(m, work / "m.blob", OpenVinoBuildOptions(threads=2, batch=4))
keep(work / "m.blob", "build_openvino_blob.blob.json")

mp = pytest.MonkeyPatch()
install(mp, FakeGpu(tensorrt_version="10.3.0.30"))
build_tensorrt(
    m,
    work / "m.plan",
    TensorRtBuildOptions(batch=BatchProfile(1, 4, 8), timing_cache=work / "t.cache"),
)
keep(work / "m.plan", "build_tensorrt.plan.json")
build_cached(m, work / "c.plan", TensorRtBuildOptions(), cache=work / "cache")
build_cached(m, work / "c2.plan", TensorRtBuildOptions(), cache=work / "cache")
keep(work / "c2.plan", "build_tensorrt_cache_hit.plan.json")
mp.undo()
mp = pytest.MonkeyPatch()
install(
    mp,
    FakeGpu(tensorrt_version="10.3.0.30", gpu_name="Orin", compute_capability=(8, 7), dla_cores=2),
)
TENSORS = ["input", "c", "r", "p", "f", "logits"]
calibration_cache(work / "m.int8.calib", TENSORS)
int8 = qdq_model(work / "m.int8.onnx", source=m, cache="m.int8.calib")
build_tensorrt(
    int8,
    work / "m.dla.plan",
    TensorRtBuildOptions(batch=BatchProfile(4, 4, 4), dla_core=1, verify=False),
)
keep(work / "m.dla.plan", "build_tensorrt_dla.plan.json")
mp.undo()
print(sorted(p.name for p in out.iterdir()))
