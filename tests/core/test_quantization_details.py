"""`details["quantization"]` typed (`core/quantization_details.py`): the JSON stays byte for byte,
old manifests load, a malformed one is one line naming the file and the key.

tests/data/quantization_details_v1/ holds the `details.quantization` sections of manifests that
main's `quantize` wrote before the dataclass (the bundled model, --target cpu and tensorrt).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_opt.core.cpu_int8 import Int8Family
from resnet_opt.core.quantization_details import (
    QdqCounts,
    QuantizationDetails,
    quantization_of,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.quantization.saturation import cpu_weight_max, warning_for

DATA = Path(__file__).parents[1] / "data" / "quantization_details_v1"


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
def test_what_main_wrote_reads_back_to_the_same_json(target: str) -> None:
    text = (DATA / f"{target}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    details = QuantizationDetails.from_dict(data)
    assert details.target == target
    assert details.counts.int8_layers == len(details.layers or ())
    # same keys in the same order, same values and JSON types
    assert json.dumps(details.to_dict(), indent=2, ensure_ascii=False) + "\n" == text


@pytest.mark.parametrize(
    "data",
    [
        {"target": "cpu"},  # before anything else was recorded (tests/core/test_cpu_int8.py too)
        {"target": "cpu", "weight_range": [-64, 64]},
        {"target": "tensorrt", "format": "QDQ", "quantized_tensors": 3, "int8_layers": 4},
    ],
)
def test_old_manifests_load_and_write_back_unchanged(data: dict[str, object]) -> None:
    details = QuantizationDetails.from_dict(data)
    assert details.to_dict() == data


def test_the_weight_limit_of_an_old_record() -> None:
    assert QuantizationDetails("cpu").weight_max is None
    assert QuantizationDetails("cpu", weight_range=(-64, 64)).weight_max == 64
    assert QdqCounts().to_dict() == {}


@pytest.mark.parametrize(
    ("quant", "key", "want"),
    [
        ({"format": "QDQ"}, "details.quantization.target is missing", None),
        ({"target": 3}, "details.quantization.target", "a string, not an integer"),
        ({"target": "cpu", "weight_range": "full"}, "weight_range", "a list, not a string"),
        ({"target": "cpu", "weight_range": [1]}, "weight_range", "a list of two integers"),
        ({"target": "cpu", "safe_pairs": 1}, "safe_pairs", "true or false, not an integer"),
        ({"target": "cpu", "int8_layers": True}, "int8_layers", "an integer, not true or false"),
        ({"target": "cpu", "layers": ["a", 2]}, "layers[1]", "a string, not an integer"),
        ({"target": "cpu", "left_float": [{"node": "a"}]}, "left_float[0].reason", None),
        (
            {"target": "cpu", "bias_correction": {"enabled": True}},
            "details.quantization.bias_correction.layers is missing",
            None,
        ),
        ("cpu", "details.quantization must be an object", None),
    ],
)
def test_a_malformed_record_is_one_line_naming_the_file_and_key(
    quant: object, key: str, want: str | None
) -> None:
    with pytest.raises(ResnetOptError) as info:
        quantization_of({"quantization": quant}, "model.int8.onnx")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("model.int8.onnx: not a valid resnet-opt manifest (")
    assert key in message and (want is None or want in message)


def test_fp16_and_other_stages_have_none() -> None:
    assert quantization_of({"fp16": {"nodes": 3}}, "m") is None


def _quantized(folder: Path, quant: object) -> Path:
    """A tiny model standing in for an int8 artifact whose manifest records `quant`."""
    from tests.benchkit import write_derived, write_export

    source = folder / "model.onnx"
    if not source.exists():
        write_export(source)
    return write_derived(
        folder / "model.int8.onnx", source, seed=1, details={"quantization": quant}
    )


def test_readers_go_through_the_dataclass(tmp_path: Path) -> None:
    from resnet_opt.core.manifest import read_manifest

    good = _quantized(tmp_path, {"target": "cpu", "weight_range": [-127, 127]})
    manifest = read_manifest(good)
    assert manifest is not None and cpu_weight_max(manifest) == 127
    bad = _quantized(tmp_path, {"target": "cpu", "weight_range": "x"})
    manifest = read_manifest(bad)
    assert manifest is not None
    with pytest.raises(ResnetOptError, match=r"^model\.int8\.onnx: .*weight_range"):
        cpu_weight_max(manifest)
    # the warning leaves a bad manifest to the command's own checks, as before
    assert warning_for([bad], Int8Family.AVX2) is None
