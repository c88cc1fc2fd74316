"""Typed build details (core/build_details.py, OrtBuildDetails, OvBuildDetails,
tensorrt/build_details.py): the JSON a build writes stays byte for byte, old and partial
manifests load, a malformed one is one line naming file and key, and the generic readers pick
the class by the backend's unit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resnet_opt.backends.registry import build_backends, unit
from resnet_opt.backends.spec import resolve
from resnet_opt.core.build_details import BuildDetails, CpuFacts, built_backend
from resnet_opt.core.manifest import Manifest, Precision, Stage, dump_json, new_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.loaders import build_details
from resnet_opt.runners.onnxruntime import GraphOptimization, OrtBuildDetails, OrtFormat
from resnet_opt.runners.openvino import OvBuildDetails, OvForm, OvPrecision
from resnet_opt.tensorrt.build_details import TensorRtBuildDetails

DATA = Path(__file__).parents[1] / "data"
# build manifests written by main's build stages before their details were typed (the TensorRT
# ones through the recording double; scripts/write_build_manifest_fixtures.py wrote them)
MANIFESTS = [
    *sorted((DATA / "build_manifests_v1").glob("*.json")),
    DATA / "manifests_v1" / "build_onnxruntime.onnx.json",
]
CLASSES: dict[str, type[Any]] = {
    "onnxruntime": OrtBuildDetails,
    "openvino": OvBuildDetails,
    "tensorrt": TensorRtBuildDetails,
}


def _fixture(name: str) -> dict[str, Any]:
    path = next(p for p in MANIFESTS if p.name == name)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_fixtures_cover_every_build_backend() -> None:
    backends = {_backend(p) for p in MANIFESTS}
    assert backends == set(CLASSES)
    engine = _fixture("build_tensorrt_cache_hit.plan.json")["details"]
    assert "engine_cache" in engine and "timing_cache" in engine
    assert _fixture("build_tensorrt_dla.plan.json")["details"]["dla"]["core"] == 1
    assert "weights" in _fixture("build_openvino_ir.xml.json")["details"]
    assert "weights" not in _fixture("build_openvino_blob.blob.json")["details"]


def _backend(path: Path) -> str:
    return str(json.loads(path.read_text(encoding="utf-8"))["details"]["backend"])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_build_details_round_trip_byte_identical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    typed = CLASSES[data["details"]["backend"]].from_dict(data["details"])
    again = {**data, "details": typed.to_dict()}
    assert dump_json(again) == text  # same keys, order and values
    manifest = Manifest.from_dict(data, source=path.name)
    read = build_details(manifest)
    assert read == typed


def test_every_build_backend_unit_names_its_details_class() -> None:
    for backend in build_backends():
        named = unit(backend).build_details
        assert named is not None, backend
        typed = resolve(named)
        assert typed is CLASSES[backend.value]
        assert typed.from_dict({"backend": backend.value}).backend == backend.value
        assert typed.from_dict({"backend": backend.value}).to_dict() == {"backend": backend.value}


def test_typed_fields_read_what_the_builds_wrote() -> None:
    ort = OrtBuildDetails.from_dict(_fixture("build_onnxruntime_ort_portable.ort.json")["details"])
    assert ort.format is OrtFormat.ORT and ort.optimization is GraphOptimization.ALL
    assert ort.portable is True and ort.hardware_specific is False and ort.threads == 2
    assert isinstance(ort.cpu, CpuFacts) and ort.cpu.flags is not None
    ov = OvBuildDetails.from_dict(_fixture("build_openvino_ir.xml.json")["details"])
    assert ov.form is OvForm.IR and ov.precision_hint is OvPrecision.F32
    assert ov.weights_file is not None and ov.weights_file.file == "m.bin"
    blob = OvBuildDetails.from_dict(_fixture("build_openvino_blob.blob.json")["details"])
    assert blob.form is OvForm.COMPILED and blob.weights_file is None and blob.batch == 4
    dla = TensorRtBuildDetails.from_dict(_fixture("build_tensorrt_dla.plan.json")["details"])
    assert dla.dla_core == 1 and dla.gpu is not None and dla.gpu.name == "Orin"
    assert dla.precision is not None and dla.precision.engine == "int8"
    assert dla.profile is not None and dla.profile.batch == {"min": 4, "opt": 4, "max": 4}
    hit = TensorRtBuildDetails.from_dict(_fixture("build_tensorrt_cache_hit.plan.json")["details"])
    assert hit.engine_cache is not None and hit.engine_cache.hit is True


def test_keys_added_later_stay_absent_and_partial_manifests_load() -> None:
    details = _fixture("build_onnxruntime_ort_portable.ort.json")["details"]
    old = {k: v for k, v in details.items() if k != "jetson_facts"}
    old["cpu"] = {k: v for k, v in old["cpu"].items() if k != "int8_family"}
    typed = OrtBuildDetails.from_dict(old)
    assert typed.jetson_facts is None and typed.cpu is not None and typed.cpu.int8_family is None
    assert json.dumps(typed.to_dict()) == json.dumps(old)
    engine = {"backend": "tensorrt", "profile": {"batch": {"min": 1, "opt": 2, "max": 4}}}
    assert TensorRtBuildDetails.from_dict(engine).to_dict() == engine


def _build(tmp_path: Path, details: dict[str, Any]) -> Manifest:
    artifact = tmp_path / "m.plan"
    artifact.write_bytes(b"plan")
    return new_manifest(
        stage=Stage.BUILD,
        artifact=artifact,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=None,
        details=details,
    )


@pytest.mark.parametrize(
    ("details", "key", "want"),
    [
        ({"backend": "tensorrt", "engine_bytes": "big"}, "details.engine_bytes", "an integer"),
        ({"backend": "tensorrt", "gpu": {"name": 3}}, "details.gpu.name", "a string"),
        ({"backend": "tensorrt", "dla": {"core": None}}, "details.dla.core", "an integer"),
        ({"backend": "openvino", "weights": {"sha256": "x"}}, "details.weights.file", "missing"),
        ({"backend": "openvino", "precision_hint": "f64"}, "details.precision_hint", "one of"),
        ({"backend": "onnxruntime", "cpu": {"flags": [1]}}, "details.cpu.flags[0]", "a string"),
    ],
)
def test_a_malformed_build_details_is_one_line_naming_file_and_key(
    tmp_path: Path, details: dict[str, Any], key: str, want: str
) -> None:
    with pytest.raises(ResnetOptError) as err:
        build_details(_build(tmp_path, details))
    message = str(err.value)
    assert message.startswith("m.plan.json: not a valid resnet-opt manifest (")
    assert key in message and want in message and "\n" not in message


def test_built_backend_and_generic_reader(tmp_path: Path) -> None:
    assert built_backend(_build(tmp_path, {"backend": "openvino"})) == "openvino"
    assert built_backend(_build(tmp_path, {})) is None
    with pytest.raises(ResnetOptError, match=r"m\.plan\.json: .*details\.backend must be"):
        built_backend(_build(tmp_path, {"backend": 7}))
    assert build_details(_build(tmp_path, {"backend": "tvm"})) is None
    read: BuildDetails | None = build_details(_build(tmp_path, {"backend": "openvino"}))
    assert isinstance(read, OvBuildDetails) and read.weights_file is None
