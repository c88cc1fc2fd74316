from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from resnet_opt.calibration import preprocess
from resnet_opt.cli import app
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import (
    InputRef,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    write_manifest,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.evaluate import EvalOptions, evaluate
from resnet_opt.pipeline.verify import ComparisonAccumulator
from resnet_opt.runners.base import Backend, open_runner, run_batch
from tests.conftest import make_tiny_cnn, write_image_folder


def _with_manifest(path: Path, contract: PreprocessContract) -> Path:
    manifest = new_manifest(
        stage=Stage.EXPORT,
        artifact=path,
        precision=Precision.FP32,
        inputs=(InputRef.of("source", path),),
        preprocessing=contract,
    )
    write_manifest(manifest_path(path), manifest)
    return path


def _expected_top1(model: Path, data: Path, contract: PreprocessContract) -> float:
    from PIL import Image

    hits = total = 0
    with open_runner(Backend.ONNXRUNTIME, model) as runner:
        for label, name in enumerate(contract.labels or ()):
            for file in sorted((data / name).glob("*.png")):
                x = preprocess.apply(contract, Image.open(file).convert("RGB"))[None]
                hits += int(run_batch(runner, x).argmax() == label)
                total += 1
    return 100.0 * hits / total


def test_evaluate_matches_a_hand_count(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    model = _with_manifest(make_tiny_cnn(tmp_path / "m.onnx"), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 5, "b": 5, "c": 5, "d": 5})
    result = evaluate(model, options=EvalOptions(data=str(data), batch_size=3))
    assert result.accuracy.count == 20
    assert result.accuracy.top1 == pytest.approx(_expected_top1(model, data, tiny_contract))
    assert result.accuracy.top5 == 100.0  # 4 classes: top-5 always hits


def test_evaluate_reports_progress_per_batch(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    model = _with_manifest(make_tiny_cnn(tmp_path / "m.onnx"), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 2, "d": 2})
    seen: list[tuple[int, int]] = []
    options = EvalOptions(data=str(data), batch_size=3)
    evaluate(model, options=options, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 8), (6, 8), (8, 8)]


def test_reference_agreement_and_drop(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    a = _with_manifest(make_tiny_cnn(tmp_path / "a.onnx", seed=0), tiny_contract)
    b = _with_manifest(make_tiny_cnn(tmp_path / "b.onnx", seed=1), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4, "c": 4, "d": 4})
    same = evaluate(a, options=EvalOptions(data=str(data), reference=a))
    assert same.top1_agreement == 100.0 and same.drop_points == 0.0
    other = evaluate(b, options=EvalOptions(data=str(data), reference=a))
    assert other.drop_points == pytest.approx(
        _expected_top1(a, data, tiny_contract) - _expected_top1(b, data, tiny_contract)
    )


def test_reference_preprocessing_must_match(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    from dataclasses import replace

    model = _with_manifest(make_tiny_cnn(tmp_path / "m.onnx"), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 2, "d": 2})
    other = replace(tiny_contract, mean=(0.4, 0.4, 0.4))
    differs = _with_manifest(make_tiny_cnn(tmp_path / "other.onnx", seed=1), other)
    with pytest.raises(ResnetOptError, match=r"its preprocessing differs from m\.onnx's"):
        evaluate(model, options=EvalOptions(data=str(data), reference=differs))
    bare = make_tiny_cnn(tmp_path / "bare.onnx", seed=1)  # no manifest: taken on m.onnx's
    assert (
        evaluate(model, options=EvalOptions(data=str(data), reference=bare)).top1_agreement
        is not None
    )


def test_labelled_array_file(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    """A .npz's labels are class indices; scored the same as the images they came from."""
    from PIL import Image

    model = _with_manifest(make_tiny_cnn(tmp_path / "m.onnx"), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 3, "b": 3, "c": 3, "d": 3})
    files = sorted(data.glob("*/*.png"))
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    labels = np.asarray([ord(f.parent.name) - ord("a") for f in files])
    np.savez(tmp_path / "d.npz", x=pixels, y=labels)
    result = evaluate(model, options=EvalOptions(data=str(tmp_path / "d.npz")))
    assert result.accuracy.count == 12
    assert result.accuracy.top1 == pytest.approx(_expected_top1(model, data, tiny_contract))


def test_classes_that_do_not_match(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    model = _with_manifest(make_tiny_cnn(tmp_path / "m.onnx"), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 1, "zebra": 1})
    with pytest.raises(ResnetOptError, match="classes not known to the model: zebra"):
        evaluate(model, options=EvalOptions(data=str(data)))


def test_eval_cli_gate_exits_3(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    a = _with_manifest(make_tiny_cnn(tmp_path / "a.onnx", seed=0), tiny_contract)
    b = _with_manifest(make_tiny_cnn(tmp_path / "b.onnx", seed=5), tiny_contract)
    data = write_image_folder(tmp_path / "data", {"a": 6, "b": 6, "c": 6, "d": 6})
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", str(a), "--data", str(data), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["count"] == 24
    # labelled by a's own predictions: a scores 100 %, b loses points (a gate is never negative)
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(size=(24, 3, 8, 8)).astype(np.float32)
    (logits,) = ort.InferenceSession(str(a)).run(None, {"input": x})
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, x=x, y=logits.argmax(axis=1))
    result = evaluate(b, options=EvalOptions(data=str(labelled), reference=a))
    assert result.drop_points is not None and result.drop_points > 0
    gate = result.drop_points / 2
    res = runner.invoke(
        app,
        ["eval", str(b), "--data", str(labelled), "--reference", str(a), "--max-drop", str(gate)],
    )
    assert res.exit_code == 3
    assert "over --max-drop" in res.stderr
    missing = runner.invoke(app, ["eval", str(tmp_path / "nope.onnx")])
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1


def test_comparison_accumulates_like_one_shot() -> None:
    rng = np.random.default_rng(0)
    ref, cand = rng.normal(size=(10, 5)), rng.normal(size=(10, 5))
    acc = ComparisonAccumulator()
    acc.update(ref[:4], cand[:4])
    acc.update(ref[4:], cand[4:])
    result = acc.result(tolerance=10.0)
    assert result.max_abs_error == pytest.approx(np.abs(ref - cand).max())
    assert result.mean_abs_error == pytest.approx(np.abs(ref - cand).mean())
    agree = (ref.argmax(1) == cand.argmax(1)).mean() * 100
    assert result.top1_agreement == pytest.approx(agree)
    assert result.passed
