"""Typed manifest details (core/details.py, core/stage_details.py): the JSON written stays the
same, old manifests load, and a malformed details section is one line naming file and key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resnet_opt.core.details import TypedDetails
from resnet_opt.core.manifest import (
    Manifest,
    Precision,
    Stage,
    details_type,
    dump_json,
)
from resnet_opt.core.stage_details import (
    ExportDetails,
    FoldDetails,
    Fp16QuantizeDetails,
    ImportDetails,
    Int8QuantizeDetails,
    exports_in,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.torch import export_details

# manifests written by main's stages before the details were typed (export of the bundled model,
# fold, import of a foreign ONNX, fp16 with and without calibration, int8 cpu and tensorrt, an
# ONNX Runtime build carrying them all in its lineage)
FIXTURES = Path(__file__).parents[1] / "data" / "manifests_v1"
MANIFESTS = sorted(FIXTURES.glob("*.json"))
FIXTURES_EXPORT = json.loads((FIXTURES / "export.onnx.json").read_text(encoding="utf-8"))


def test_fixtures_cover_every_typed_stage() -> None:
    seen = set()
    for path in MANIFESTS:
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in [*data["lineage"], data]:
            typed = details_type(Stage(entry["stage"]), Precision(entry["precision"]))
            if typed is not None:
                seen.add(typed)
    assert seen == {
        ExportDetails,
        ImportDetails,
        FoldDetails,
        Fp16QuantizeDetails,
        Int8QuantizeDetails,
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_written_before_round_trips_byte_identical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    manifest = Manifest.from_dict(json.loads(text), source=str(path))
    assert dump_json(manifest.to_dict()) == text


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_details_section_round_trips_through_its_dataclass(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for entry in [*data["lineage"], data]:
        typed = details_type(Stage(entry["stage"]), Precision(entry["precision"]))
        if typed is None:  # a build's details: typed by its backend
            continue
        again = typed.from_dict(entry["details"]).to_dict()
        assert json.dumps(again) == json.dumps(entry["details"])  # same keys, order, values


def test_typed_details_read_their_fields() -> None:
    data = json.loads((FIXTURES / "fold.onnx.json").read_text(encoding="utf-8"))
    fold = FoldDetails.from_dict(data["details"])
    assert fold.batchnorm.folded_by == {"exporter": 21, "fold": 0}
    assert fold.constants is not None and fold.constants.folded == 0
    export = ExportDetails.from_dict(data["lineage"][0]["details"])
    assert (export.model, export.num_classes, export.batch) == ("resnet20-digits", 10, None)
    assert export.input.shape == ("batch", 1, 32, 32)


def test_manifests_from_before_optional_keys_still_load() -> None:
    """`constants` (fold) and `converted` (calibration) came later: absent, they stay absent."""
    fold = json.loads((FIXTURES / "fold.onnx.json").read_text(encoding="utf-8"))["details"]
    del fold["constants"]
    assert FoldDetails.from_dict(fold).to_dict() == fold
    int8 = json.loads((FIXTURES / "int8_cpu.onnx.json").read_text(encoding="utf-8"))["details"]
    del int8["calibration"]["converted"]
    assert Int8QuantizeDetails.from_dict(int8).to_dict() == int8


def _spoiled(fixture: str, spoil: Callable[[dict[str, Any]], object]) -> Manifest:
    data = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    spoil(data["details"])
    return Manifest.from_dict(data, source=fixture)


@pytest.mark.parametrize(
    ("fixture", "typed", "spoil", "key"),
    [
        (
            "export.onnx.json",
            ExportDetails,
            lambda d: d["batchnorm"]["folded_by"].update(fold="x"),
            "details.batchnorm.folded_by.fold must be an integer, not a string",
        ),
        ("export.onnx.json", ExportDetails, lambda d: d.pop("source"), "details.source is missing"),
        (
            "import.onnx.json",
            ImportDetails,
            lambda d: d.update(num_classes=True),
            "details.num_classes must be an integer, not true or false",
        ),
        (
            "fold.onnx.json",
            FoldDetails,
            lambda d: d["batchnorm"]["left"].append({"node": 3}),
            "details.batchnorm.left[0].node must be a string",
        ),
        (
            "fp16_checked.onnx.json",
            Fp16QuantizeDetails,
            lambda d: d["fp16"]["overflow_check"].update(kept_fp32=[1]),
            "details.fp16.overflow_check.kept_fp32[0] must be a string",
        ),
        (
            "int8_cpu.onnx.json",
            Int8QuantizeDetails,
            lambda d: d["calibration"].update(samples="32"),
            "details.calibration.samples must be an integer",
        ),
    ],
)
def test_malformed_details_is_one_line_naming_file_and_key(
    fixture: str,
    typed: type[TypedDetails],
    spoil: Callable[[dict[str, Any]], object],
    key: str,
) -> None:
    manifest = _spoiled(fixture, spoil)
    with pytest.raises(ResnetOptError) as caught:
        manifest.read_details(typed)
    message = str(caught.value)
    assert message.startswith(f"{manifest.artifact}.json: not a valid resnet-opt manifest (")
    assert key in message and "\n" not in message
    assert caught.value.exit_code == 1


def test_a_malformed_export_in_the_lineage_is_refused_where_read() -> None:
    data = json.loads((FIXTURES / "fold.onnx.json").read_text(encoding="utf-8"))
    del data["lineage"][0]["details"]["opset"]
    manifest = Manifest.from_dict(data)
    with pytest.raises(ResnetOptError, match=r"details\.opset is missing") as caught:
        export_details(manifest)
    assert str(caught.value).startswith(f"{manifest.artifact}.json: not a valid")


def test_a_stand_in_export_without_a_source_is_passed_over(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "export.onnx.json").read_text(encoding="utf-8"))
    data["details"] = {"note": "a test's stand-in"}
    assert list(exports_in([data])) == []
    assert [e.model for e in exports_in([*data["lineage"], FIXTURES_EXPORT])] == ["resnet20-digits"]
