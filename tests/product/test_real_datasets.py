"""Datasets as users have them (issue 20): mixed image modes, WordNet-id folders and synset
files, a flat folder with a `FILE LABEL` list, a foreign ONNX described by `resnet-opt import`,
and mistakes in the evaluation data refused before any calibration."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from resnet_opt.calibration import images
from resnet_opt.calibration.data import (
    Split,
    label_map,
    open_source,
)
from resnet_opt.calibration.ranges import Method
from resnet_opt.cli import app
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.core.naming import FLAGS, worded
from resnet_opt.errors import ResnetOptError
from resnet_opt.models.labels import parse_class_labels
from resnet_opt.pipeline.evaluate import EvalOptions, evaluate
from resnet_opt.pipeline.import_model import ImportOptions, import_model
from resnet_opt.quantization.plan import QdqTarget
from tests.conftest import make_tiny_cnn

WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361")
SYNSETS = (
    "n01440764 tench, Tinca tinca",
    "n01443537 goldfish, Carassius auratus",
    "n01484850 great white shark, white shark",
    "n01491361 tiger shark, Galeocerdo cuvieri",
)
MIXED = ("RGB", "L", "P", "P+transparency", "RGBA", "CMYK")


def _save(path: Path, mode: str, seed: int) -> None:
    """One image in `mode` (JPEG where the mode allows it, as ImageNet's are; PNG otherwise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (14, 12, 3), dtype=np.uint8))
    if mode == "P+transparency":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        image.save(path.with_suffix(".png"), transparency=0)
    elif mode in ("P", "RGBA"):
        rgb.convert(mode).save(path.with_suffix(".png"))
    else:  # RGB, L and CMYK JPEGs
        rgb.convert(mode).save(path.with_suffix(".JPEG"), quality=95)


def _mixed_folder(root: Path, names: tuple[str, ...]) -> Path:
    """Class folders `names`, each holding one image of every mode in MIXED."""
    seed = 0
    for name in names:
        (root / name).mkdir(parents=True)
        for mode in MIXED:
            seed += 1
            _save(root / name / f"{mode.replace('+', '_')}_{seed}", mode, seed)
    return root


def _foreign_onnx(tmp_path: Path, classes: int = 4) -> Path:
    """A model from 'another toolchain': onnx.helper, no manifest."""
    return make_tiny_cnn(tmp_path / "foreign.onnx", classes=classes)


def _import(model: Path, labels: str | None, **kw: object) -> PreprocessContract:
    classes = parse_class_labels(labels) if labels is not None else None
    options = ImportOptions(
        input_size=8,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        labels=classes.names if classes else None,
        class_ids=classes.ids if classes else None,
        **kw,  # type: ignore[arg-type]
    )
    manifest = import_model(model, None, options)
    assert manifest.preprocessing is not None
    return manifest.preprocessing


# -- image modes ------------------------------------------------------------------------------


def test_every_mode_is_converted_as_torchvision_does(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    # torchvision's pil_loader: convert("RGB"); the same pixels here
    for mode in ("L", "P", "RGBA", "CMYK", "LA", "1", "YCbCr"):
        image = rgb.convert(mode)
        assert np.array_equal(
            np.asarray(images.to_mode(image, "RGB")), np.asarray(image.convert("RGB"))
        )
        assert images.to_mode(image, "L").mode == "L"
    # 16-bit: scaled to 8 bits (65535 → 255, 257 → 1), not clipped at 255
    wide = Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.uint16))
    assert wide.mode.startswith("I")
    assert np.asarray(images.to_mode(wide, "L")).tolist() == [[0, 1, 128, 255]]
    assert np.asarray(images.to_mode(wide, "RGB"))[0, 3].tolist() == [255, 255, 255]
    # float in [0, 1] is scaled, not read as 0 or 1 of 255
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(images.to_mode(unit, "L")).tolist() == [[0, 128, 255]]
    # a palette with transparency: the same colours as convert("RGB"), without Pillow's warning
    palette = rgb.convert("P")
    palette.info["transparency"] = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converted = images.to_mode(palette, "RGB")
    assert np.array_equal(np.asarray(converted), np.asarray(rgb.convert("P").convert("RGB")))


def test_mixed_jpeg_folder_scores_and_reports_conversions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _foreign_onnx(tmp_path)
    _import(model, ",".join(["a", "b", "c", "d"]))
    data = _mixed_folder(tmp_path / "data", ("a", "b", "c", "d"))
    result = evaluate(model, options=EvalOptions(data=str(data), batch_size=5))
    assert result.accuracy.count == 4 * len(MIXED) and result.skipped == 0
    assert result.converted == {"L": 4, "P": 8, "RGBA": 4, "CMYK": 4}
    assert result.to_dict()["converted"] == result.converted
    err = capsys.readouterr().err
    assert "eval: converted 20 images to RGB" in err and "4 from CMYK" in err
    # --strict refuses instead, naming the file, before scoring
    with pytest.raises(ResnetOptError, match=r"the model takes RGB \(strict refuses") as error:
        evaluate(model, options=EvalOptions(data=str(data), strict=True))  # Python: the field
    assert "(--strict refuses converting; leave --strict off" in worded(error.value, FLAGS)


def test_calibration_records_conversions_in_the_manifest(tmp_path: Path) -> None:
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

    model = _foreign_onnx(tmp_path)
    _import(model, "a,b,c,d")
    data = _mixed_folder(tmp_path / "data", ("a", "b", "c", "d"))
    result = quantize(
        model,
        tmp_path / "q.onnx",
        QuantizeOptions(
            calib=str(data), eval_data=str(data), method=Method.MAX, target=QdqTarget.CPU
        ),
    )
    calibration = result.manifest.details["calibration"]
    assert calibration["converted"] == {"L": 4, "P": 8, "RGBA": 4, "CMYK": 4}
    assert result.manifest.verification["converted"] == calibration["converted"]


# -- labels and layouts -----------------------------------------------------------------------


def test_synset_file_and_wnid_folders(tmp_path: Path) -> None:
    synsets = tmp_path / "LOC_synset_mapping.txt"
    synsets.write_text("\n".join(SYNSETS) + "\n")
    labels = parse_class_labels(str(synsets))
    assert labels.ids == WNIDS and labels.names[0] == "tench, Tinca tinca"
    model = _foreign_onnx(tmp_path)
    contract = _import(model, str(synsets))
    assert contract.class_ids == WNIDS
    # a folder of WordNet-id classes, a subset of the model's (2 of 4), in another order
    data = _mixed_folder(tmp_path / "val", (WNIDS[3], WNIDS[1]))
    assert label_map(open_source(data, default_split=Split.TEST), contract).tolist() == [1, 3]
    result = evaluate(model, options=EvalOptions(data=str(data)))
    assert result.accuracy.count == 2 * len(MIXED)
    # folders by name: the first synonym or the whole name
    named = _mixed_folder(tmp_path / "named", ("tench", "tiger shark, Galeocerdo cuvieri"))
    assert label_map(open_source(named, default_split=Split.TEST), contract).tolist() == [0, 3]


def test_duplicate_names_are_fine_with_ids_but_not_without(tmp_path: Path) -> None:
    twice = tmp_path / "synset_words.txt"
    twice.write_text("n02012849 crane\nn03126707 crane\n")
    assert parse_class_labels(str(twice)).names == ("crane", "crane")
    plain = tmp_path / "names.txt"
    plain.write_text("crane\ncrane\n")
    with pytest.raises(ResnetOptError, match="given twice"):
        parse_class_labels(str(plain))


def test_flat_folder_with_a_label_list(tmp_path: Path) -> None:
    from PIL import Image

    model = _foreign_onnx(tmp_path)
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("\n".join(SYNSETS))
    _import(model, str(synsets))
    flat = tmp_path / "val"
    flat.mkdir()
    rng = np.random.default_rng(1)
    lines = []
    for i in range(6):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        pixels = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        Image.fromarray(pixels).convert("L" if i % 3 == 0 else "RGB").save(flat / name)
        lines.append(f"{name} {i % 4}")
    (tmp_path / "val.txt").write_text("\n".join(lines) + "\n")
    result = evaluate(
        model,
        options=EvalOptions(data=str(flat), data_labels=tmp_path / "val.txt", batch_size=4),
    )
    assert result.accuracy.count == 6 and result.converted == {"L": 2}
    # labels by WordNet id match through the model's labels
    (tmp_path / "val_wnid.txt").write_text(
        "\n".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {WNIDS[i % 4]}" for i in range(6))
    )
    by_id = evaluate(
        model, options=EvalOptions(data=str(flat), data_labels=tmp_path / "val_wnid.txt")
    )
    assert by_id.accuracy.top1 == result.accuracy.top1
    # a list naming files that are not there is refused when opened, with the count
    (tmp_path / "bad.txt").write_text("missing.JPEG 1\nILSVRC2012_val_00000001.JPEG 0\n")
    with pytest.raises(ResnetOptError, match="1 of its 2 files are not in"):
        open_source(flat, default_split=Split.TEST, labels=tmp_path / "bad.txt")
    # indices outside the model's classes
    (tmp_path / "wide.txt").write_text("ILSVRC2012_val_00000001.JPEG 7\n")
    with pytest.raises(ResnetOptError, match="classes are 0 to 3"):
        evaluate(model, options=EvalOptions(data=str(flat), data_labels=tmp_path / "wide.txt"))


def test_flat_folder_list_through_the_cli(tmp_path: Path) -> None:
    model = _foreign_onnx(tmp_path)
    _import(model, "a,b,c,d")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        _save(flat / f"img{i}", MIXED[i], i)
    names = sorted(p.name for p in flat.iterdir())
    (tmp_path / "val.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "eval",
            str(model),
            "--data",
            str(flat),
            "--data-labels",
            str(tmp_path / "val.txt"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["count"] == 4 and payload["converted"] == {"L": 1, "P": 2}


# -- a foreign ONNX ---------------------------------------------------------------------------


def test_foreign_onnx_without_a_manifest_names_import(tmp_path: Path) -> None:
    model = _foreign_onnx(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(model)])
    assert result.exit_code == 1
    assert "resnet-opt import foreign.onnx --input-size" in result.stderr


def test_import_cli_then_eval_bench_fold(tmp_path: Path) -> None:
    model = _foreign_onnx(tmp_path, classes=4)
    synsets = tmp_path / "synset_words.txt"
    synsets.write_text("\n".join(SYNSETS))
    runner = CliRunner()
    common = ["--input-size", "8", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"]
    result = runner.invoke(app, ["import", str(model), *common, "--labels", str(synsets)])
    assert result.exit_code == 0, result.output
    assert "4 labels with WordNet ids" in result.stderr
    manifest = json.loads((tmp_path / "foreign.onnx.json").read_text())
    assert manifest["stage"] == "import"
    assert manifest["preprocessing"]["class_ids"] == list(WNIDS)
    # once imported, every command reads the manifest
    data = _mixed_folder(tmp_path / "val", WNIDS[:3])  # 3 of the 4 classes
    result = runner.invoke(app, ["eval", str(model), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 3 * len(MIXED)
    assert "converted 15 images to RGB" in result.stderr
    result = runner.invoke(app, ["fold", str(model), "-o", str(tmp_path / "folded.onnx")])
    assert result.exit_code == 0, result.output
    folded = json.loads((tmp_path / "folded.onnx.json").read_text())
    assert folded["preprocessing"]["class_ids"] == list(WNIDS)
    result = runner.invoke(
        app,
        [
            "bench",
            str(tmp_path / "folded.onnx"),
            "--backend",
            "onnxruntime",
            "--batch",
            "1",
            "--iterations",
            "2",
            "--data",
            str(data),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"][0]["count"] == 3 * len(MIXED)
    assert any("converted 15 images" in note for note in report["notes"])
    # a second import is refused without --force; wrong sizes and label counts are refused
    again = runner.invoke(app, ["import", str(model), *common])
    assert again.exit_code == 1 and "has a manifest already" in again.stderr
    other = make_tiny_cnn(tmp_path / "other.onnx")
    wrong = runner.invoke(
        app, ["import", str(other), "--input-size", "9", "--mean", "0,0,0", "--std", "1,1,1"]
    )
    assert wrong.exit_code == 1 and "height 8, the preprocessing gives 9" in wrong.stderr
    missing = runner.invoke(app, ["import", str(other), "--input-size", "8"])
    assert missing.exit_code == 2 and "--mean, --std" in missing.stderr
    labels = runner.invoke(app, ["import", str(other), *common, "--labels", "a,b"])
    assert labels.exit_code == 1 and "2 labels given" in labels.stderr


# -- mistakes found up front ------------------------------------------------------------------


def test_class_mismatch_is_refused_before_any_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_opt.calibration import collect
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

    calls: list[object] = []

    def never(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("calibration ran")

    monkeypatch.setattr(collect, "collect_statistics", never)
    model = _foreign_onnx(tmp_path)
    _import(model, "a,b,c,d")
    calib = _mixed_folder(tmp_path / "calib", ("a",))
    wrong = _mixed_folder(tmp_path / "val", ("a", "zebra"))
    with pytest.raises(ResnetOptError, match="classes not known to the model: zebra"):
        quantize(
            model, tmp_path / "q.onnx", QuantizeOptions(calib=str(calib), eval_data=str(wrong))
        )
    # a label list naming a missing file, and modes under --strict: refused before too
    (tmp_path / "val.txt").write_text("nothere.JPEG 0\n")
    with pytest.raises(ResnetOptError, match="not in"):
        quantize(
            model,
            tmp_path / "q.onnx",
            QuantizeOptions(
                calib=str(calib), eval_data=str(tmp_path / "val"), eval_labels=tmp_path / "val.txt"
            ),
        )
    right = _mixed_folder(tmp_path / "right", ("a", "b"))
    with pytest.raises(ResnetOptError, match=r"\(strict refuses converting"):
        quantize(
            model,
            tmp_path / "q.onnx",
            QuantizeOptions(calib=str(calib), eval_data=str(right), strict=True),
        )
    assert calls == [] and not (tmp_path / "q.onnx").exists()


def test_without_labels_a_subset_is_refused_with_the_way_out(tmp_path: Path) -> None:
    model = _foreign_onnx(tmp_path)
    _import(model, None)
    data = _mixed_folder(tmp_path / "val", ("x", "y"))
    with pytest.raises(ResnetOptError, match="no labels to match them by; give the model"):
        evaluate(model, options=EvalOptions(data=str(data)))


# -- run with an ONNX source ------------------------------------------------------------------


def test_run_takes_an_onnx_source(tmp_path: Path) -> None:
    from resnet_opt.pipeline.run import run
    from resnet_opt.pipeline.run_config import load_config

    model = _foreign_onnx(tmp_path)
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("\n".join(SYNSETS))
    data = _mixed_folder(tmp_path / "val", WNIDS)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        _save(flat / f"v{i}", MIXED[i], 10 + i)
    names = sorted(p.name for p in flat.iterdir())
    (tmp_path / "val.txt").write_text("".join(f"{n} {WNIDS[i]}\n" for i, n in enumerate(names)))
    config = tmp_path / "run.toml"
    config.write_text(
        f"""
[model]
source = "{model}"
input_size = 8
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]
interpolation = "bicubic"
labels = "{synsets}"

[data]
calibration = "{data}"
evaluation = "{flat}"
evaluation_labels = "{tmp_path / "val.txt"}"

[[quantize]]
name = "int8-cpu"
target = "cpu"
method = "max"

[build]
backends = []

[bench]
batches = [1]
iterations = 2
"""
    )
    result = run(load_config(config), tmp_path / "out")
    stages = [s.name for s in result.stages]
    assert stages[:2] == ["import", "fold"] and "export" not in stages
    fp32 = json.loads((tmp_path / "out" / "model.onnx.json").read_text())
    assert fp32["stage"] == "fold" and fp32["preprocessing"]["interpolation"] == "bicubic"
    assert fp32["preprocessing"]["class_ids"] == list(WNIDS)
    int8 = json.loads((tmp_path / "out" / "model.int8-cpu.onnx.json").read_text())
    assert int8["verification"]["count"] == 4
    assert int8["details"]["calibration"]["converted"] == {"L": 4, "P": 8, "RGBA": 4, "CMYK": 4}
    assert (tmp_path / "out" / "report" / "report.json").is_file()
    # export-only keys are refused with an ONNX source
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[model]\nsource = "{model}"\nweights = "x.pth"\n')
    with pytest.raises(ResnetOptError, match=r"model\.weights applies to export"):
        run(load_config(bad), tmp_path / "out2")
    short = tmp_path / "short.toml"
    short.write_text(f'[model]\nsource = "{model}"\ninput_size = 8\n')
    with pytest.raises(ResnetOptError, match=r"set model\.mean, model\.std"):
        run(load_config(short), tmp_path / "out3")


def test_contract_round_trip_keeps_class_ids() -> None:
    contract = PreprocessContract(
        input_size=8,
        channels=3,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        resize=None,
        crop=None,
        interpolation=Interpolation.BICUBIC,
        num_classes=4,
        labels=("a", "b", "c", "d"),
        class_ids=WNIDS,
    )
    assert PreprocessContract.from_dict(contract.to_dict()) == contract
    plain = PreprocessContract.from_dict({**contract.to_dict(), "class_ids": None})
    assert "class_ids" not in plain.to_dict() and plain.fingerprint() == contract.fingerprint()
