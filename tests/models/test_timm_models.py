"""timm models (issue 20): `timm:NAME` and timm factories take their preprocessing from the
model's pretrained_cfg, checked against timm's own `resolve_data_config`; no network."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from resnet_opt.errors import ResnetOptError
from resnet_opt.models.sources import ModelRequest, SourceKind, WeightsKind, load_model

timm = pytest.importorskip("timm")
timm_data = pytest.importorskip("timm.data")  # as a module object: timm's own typing is partial
pytest.importorskip("torch")


def test_timm_resnet_exports_with_timms_recipe(tmp_path: Path) -> None:
    from resnet_opt.pipeline.export import ExportOptions, export

    manifest = export(
        "timm:resnet18.a1_in1k",
        tmp_path / "r18.onnx",
        ExportOptions(weights="none", threads=1),
    )
    expected = timm_data.resolve_data_config(model=timm.create_model("resnet18.a1_in1k"))
    contract = manifest.preprocessing
    assert contract is not None
    size = expected["input_size"][1]
    assert contract.interpolation.value == expected["interpolation"] == "bicubic"
    assert contract.input_size == contract.crop == size
    assert contract.resize == math.floor(size / expected["crop_pct"]) == 235  # crop_pct 0.95
    assert contract.mean == pytest.approx(expected["mean"])
    assert contract.std == pytest.approx(expected["std"])
    # timm's ImageNet label set: names and WordNet ids
    assert contract.class_ids is not None and contract.class_ids[0] == "n01440764"
    assert contract.labels is not None and contract.labels[0].startswith("tench")
    assert "timm pretrained_cfg" in manifest.details["contract_origin"]
    assert manifest.details["source"]["kind"] == "timm"


def test_timm_factory_takes_the_pretrained_cfg() -> None:
    loaded = load_model(ModelRequest(model="timm.models.resnet:seresnet18"))
    expected = timm_data.resolve_data_config(model=loaded.module)
    assert loaded.template.interpolation.value == expected["interpolation"] == "bicubic"
    assert loaded.template.resize == math.floor(224 / expected["crop_pct"])
    assert loaded.template.crop == 224


def test_timm_options_and_weights() -> None:
    a = load_model(ModelRequest(model="timm:resnet18", weights="none", seed=1, num_classes=7))
    b = load_model(ModelRequest(model="timm:resnet18", weights="none", seed=1, num_classes=7))
    assert a.source.kind is SourceKind.TIMM and a.source.weights is WeightsKind.RANDOM
    assert a.source.state_sha256 == b.source.state_sha256
    assert a.template.labels is None  # a new 7-class head has no ImageNet labels
    assert a.source.request().num_classes == 7
    with pytest.raises(ResnetOptError, match="pass --weights: pretrained"):
        load_model(ModelRequest(model="timm:resnet18"))
    with pytest.raises(ResnetOptError, match="similar: "):
        load_model(ModelRequest(model="timm:resnet18x", weights="none"))


def test_timm_pretrained_offline_says_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import timm.models._builder as builder

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(builder, "load_pretrained", offline)  # timm's fetch, offline
    with pytest.raises(ResnetOptError) as info:
        load_model(ModelRequest(model="timm:resnet18.a1_in1k", weights="pretrained"))
    message = str(info.value)
    assert "could not be downloaded (network is unreachable)" in message
    assert "huggingface.co/timm/resnet18.a1_in1k" in message
    assert "resnet18_a1_0-d63eafa0.pth, given as --weights PATH" in message
