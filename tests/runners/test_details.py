"""A build manifest's details["runner"], typed per backend: the JSON of schema v1 both ways,
older manifests (keys missing) still load, and a value of the wrong type is one line naming the
manifest and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resnet_opt.backends.registry import build_backends, unit
from resnet_opt.backends.spec import resolve
from resnet_opt.core.manifest import manifest_path
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime
from resnet_opt.runners.base import Backend, open_runner
from resnet_opt.runners.onnxruntime import GraphOptimization, OrtFormat, OrtRunnerDetails
from resnet_opt.runners.openvino import OvPrecision, OvRunnerDetails
from resnet_opt.runners.tensorrt import TensorRtRunnerDetails

# what each build writes today (tests/pipeline/test_build_*.py pin the same JSON from real builds)
WRITTEN: dict[str, dict[str, object]] = {
    "onnxruntime": {
        "optimization": "disabled",
        "providers": ["CPUExecutionProvider"],
        "threads": 1,
        "model_format": "onnx",
    },
    "openvino": {"device": "CPU", "precision": "bf16", "threads": None},
    "tensorrt": {
        "backend": "tensorrt",
        "input": "input",
        "outputs": ["logits"],
        "batch": {"min": 1, "opt": 8, "max": 32},
        "version_compatible": False,
        "dla_core": None,
    },
}


@pytest.mark.parametrize("backend", [b.value for b in build_backends()])
def test_the_json_goes_both_ways_unchanged(backend: str) -> None:
    cls = resolve(str(unit(Backend(backend)).runner_details))
    details = cls.from_dict(WRITTEN[backend])
    assert details.to_dict() == WRITTEN[backend]
    assert json.loads(json.dumps(details.to_dict())) == WRITTEN[backend]


def test_the_fields_are_typed() -> None:
    ort = OrtRunnerDetails.from_dict(WRITTEN["onnxruntime"])
    assert ort.optimization is GraphOptimization.DISABLED and ort.model_format is OrtFormat.ONNX
    assert ort.providers == ("CPUExecutionProvider",) and ort.threads == 1
    assert OvRunnerDetails.from_dict(WRITTEN["openvino"]).precision is OvPrecision.BF16
    trt = TensorRtRunnerDetails.from_dict(WRITTEN["tensorrt"])
    assert trt.outputs == ("logits",) and trt.batch == {"min": 1, "opt": 8, "max": 32}
    assert trt.providers == () and OvRunnerDetails().providers == ()


@pytest.mark.parametrize("cls", [OrtRunnerDetails, OvRunnerDetails, TensorRtRunnerDetails])
def test_an_older_manifest_without_the_keys_loads(cls: Any) -> None:
    assert cls.from_dict({}) == cls()


@pytest.mark.parametrize(
    ("cls", "data", "key"),
    [
        (OrtRunnerDetails, {"threads": "2"}, "details.runner.threads must be an integer"),
        (OrtRunnerDetails, {"threads": True}, "details.runner.threads must be an integer"),
        (OrtRunnerDetails, {"providers": "CPU"}, "details.runner.providers must be a list"),
        (OrtRunnerDetails, {"providers": [1]}, "details.runner.providers must be a list of str"),
        (OrtRunnerDetails, {"optimization": "max"}, "details.runner.optimization = 'max'"),
        (OvRunnerDetails, {"precision": 16}, "details.runner.precision must be a string"),
        (TensorRtRunnerDetails, {"batch": {"min": "1"}}, "details.runner.batch must map"),
        (
            TensorRtRunnerDetails,
            {"version_compatible": 1},
            "details.runner.version_compatible must be true or",
        ),
    ],
)
def test_a_wrong_type_names_the_manifest_and_the_key(cls: Any, data: Any, key: str) -> None:
    with pytest.raises(ResnetOptError, match=rf"^m\.onnx\.json: {key}"):
        cls.from_dict(data, source="m.onnx.json")


def test_a_loader_refuses_a_manifest_with_a_bad_runner_value(
    tmp_path: Path, tiny_onnx: Path
) -> None:
    artifact = tmp_path / "tiny.opt.onnx"
    build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions(threads=1))
    path = manifest_path(artifact)
    data = json.loads(path.read_text())
    data["details"]["runner"]["threads"] = "many"
    path.write_text(json.dumps(data))
    runner = open_runner(Backend.ONNXRUNTIME, artifact)
    with pytest.raises(ResnetOptError, match=r"tiny\.opt\.onnx\.json: details\.runner\.threads"):
        runner.__enter__()
