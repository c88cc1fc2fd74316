"""`resnet-opt export` on the command line: the happy paths and every bad input of issue 2.

Each bad input must give one line on stderr, exit 1, no traceback, and leave no file behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.models import default_model

torch = pytest.importorskip("torch")

runner = CliRunner()

FACTORIES = '''
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )


def fixed_size():
    """Takes 3×32×32 only."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def not_a_module():
    return "resnet"
'''


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the inputs; the test's cwd, so default outputs land here too."""
    (tmp_path / "nets.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


def _fails_cleanly(work: Path, args: list[str], *fragments: str, code: int = 1) -> str:
    """One error line, exit `code` (2: a usage error), nothing written."""
    before = _files(work)
    result = runner.invoke(app, ["export", *args])
    stderr = result.stderr
    assert result.exit_code == code, (result.exit_code, stderr, result.exception)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert _files(work) == before  # no output, no temp file, no manifest
    return lines[0]


def _save_resnet20(path: Path) -> Path:
    from resnet_opt.models.cifar import cifar_resnet

    torch.save(cifar_resnet(20).state_dict(), path)
    return path


# -- happy paths ----------------------------------------------------------------------------------


def test_export_with_no_model_exports_the_bundled_default(work: Path) -> None:
    result = runner.invoke(app, ["export"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the human summary goes to stderr
    assert "top-1: PyTorch" in result.stderr and "BatchNorm: 21 in the model" in result.stderr
    assert (work / "resnet20-digits.onnx").is_file()
    manifest = json.loads((work / "resnet20-digits.onnx.json").read_text())
    accuracy = manifest["verification"]["accuracy"]
    assert accuracy["pytorch_top1"] == accuracy["onnxruntime_top1"]
    assert accuracy["onnxruntime_top1"] == pytest.approx(default_model().test_top1, abs=0.01)


def test_export_trusted_pickle_and_factory(work: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet

    torch.save(cifar_resnet(20, num_classes=4), work / "whole.pt")
    result = runner.invoke(
        app, ["export", "--model", "whole.pt", "--trust-pickle", "--input-size", "32"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((work / "whole.onnx.json").read_text())
    assert manifest["details"]["source"]["kind"] == "pickle"
    result = runner.invoke(
        app, ["-q", "export", "-m", "nets.py:build", "--input-size", "16", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["output"] == "build.onnx" and (work / "build.onnx").is_file()
    assert data["details"]["source"]["kind"] == "factory"
    assert data["preprocessing"]["input_size"] == 16


@pytest.mark.slow  # resnet50 export + parity: ~5 s here, more on a busy machine
def test_export_resnet50_random_init(work: Path) -> None:
    import numpy as np

    from resnet_opt.runners.base import Backend, open_runner, run_batch

    result = runner.invoke(app, ["export", "--model", "resnet50", "--weights", "none"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((work / "resnet50.onnx.json").read_text())
    check = manifest["verification"]
    assert check["passed"] and check["max_abs_error"] <= check["tolerance"]
    assert manifest["details"]["batchnorm"]["folded_by"] == {"exporter": 53, "fold": 0}
    assert manifest["details"]["source"]["weights"] == "random"
    with open_runner(Backend.ONNXRUNTIME, work / "resnet50.onnx") as ort:
        x = np.zeros((3, 3, 224, 224), np.float32)
        assert run_batch(ort, x).shape == (3, 1000)


# -- bad input: one line, exit 1, nothing left behind ---------------------------------------------


def test_missing_files(work: Path) -> None:
    _fails_cleanly(work, ["--model", "missing.pt"], "missing.pt: no such file")
    _fails_cleanly(work, ["--model", "resnet20", "--weights", "gone.pt"], "gone.pt: no such file")
    _fails_cleanly(work, ["--model", "nowhere/nets.py:build"], "no such file")


def test_not_a_checkpoint_or_model(work: Path) -> None:
    (work / "garbage.pt").write_bytes(b"\x00\x01 definitely not torch" * 20)
    (work / "model.ts").write_text("not torchscript")
    (work / "other.onnx").write_bytes(b"onnx?")
    _fails_cleanly(
        work, ["--model", "resnet20", "--weights", "garbage.pt"], "not a PyTorch checkpoint"
    )
    _fails_cleanly(work, ["--model", "model.ts"], "model.ts: not a PyTorch checkpoint")
    _fails_cleanly(work, ["--model", "other.onnx"], "is already ONNX")
    _save_resnet20(work / "weights.pt")
    _fails_cleanly(work, ["--model", "weights.pt"], "holds weights only", "--model NAME")


def test_unknown_architecture(work: Path) -> None:
    _fails_cleanly(work, ["--model", "resnet51", "--weights", "none"], "unknown model 'resnet51'")


def test_factory_problems(work: Path) -> None:
    _fails_cleanly(work, ["--model", "nets.py:missing"], "no 'missing' in", "build")
    _fails_cleanly(work, ["--model", "nets.py:not_a_module"], "returned a str, not a torch.nn")
    _fails_cleanly(work, ["--model", "no_such_pkg.mod:build"], "cannot import no_such_pkg.mod")


def test_checkpoint_with_mismatched_keys(work: Path) -> None:
    state = torch.load(_save_resnet20(work / "ckpt.pt"))
    state["classifier.weight"] = state.pop("fc.weight")
    del state["layer1.0.bn1.running_var"]
    torch.save({"state_dict": state}, work / "ckpt.pt")
    _fails_cleanly(
        work,
        ["--model", "resnet20", "--weights", "ckpt.pt"],
        "2 missing keys: layer1.0.bn1.running_var, fc.weight",
        "1 unexpected keys: classifier.weight",
    )


def test_pickle_without_trust(work: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet

    torch.save(cifar_resnet(20), work / "whole.pt")
    _fails_cleanly(work, ["--model", "whole.pt"], "--trust-pickle")


def test_input_size_too_small(work: Path) -> None:
    _fails_cleanly(
        work, ["--model", "resnet20", "--weights", "none", "--input-size", "2"], "too small"
    )
    _fails_cleanly(
        work,
        ["--model", "nets.py:fixed_size", "--input-size", "16"],
        "the model fails on a 1×3×16×16 input",
    )


def test_output_exists_without_force(work: Path) -> None:
    (work / "taken.onnx").write_bytes(b"precious")
    _fails_cleanly(work, ["-o", "taken.onnx"], "taken.onnx: exists; pass --force")
    assert (work / "taken.onnx").read_bytes() == b"precious"


def test_unwritable_output_folder(work: Path) -> None:
    (work / "afile").write_text("a file, not a folder")
    _fails_cleanly(work, ["-o", "afile/sub/out.onnx"], "cannot create folder")
    readonly = work / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        probe = readonly / "probe"
        try:
            probe.touch()
        except OSError:
            _fails_cleanly(work, ["-o", "readonly/out.onnx"], "cannot write there")
        else:  # root ignores the mode bits; the case above covers the folder error
            probe.unlink()
    finally:
        readonly.chmod(0o755)


def test_bad_option_values(work: Path) -> None:
    _fails_cleanly(work, ["--resize", "big"], "--resize: expected a size in pixels", code=2)
    _fails_cleanly(work, ["--mean", "a,b"], "--mean: expected comma-separated numbers", code=2)
    _fails_cleanly(work, ["--std", "inf"], "--std: 'inf' holds a number that is not finite", code=2)
    _fails_cleanly(
        work, ["--interpolation", "lanczos"], "choose nearest, bilinear, bicubic", code=2
    )
    _fails_cleanly(work, ["--channels", "3"], "resnet20-digits takes 1 input channels", code=2)
    _fails_cleanly(
        work, ["--model", "resnet18", "--weights", "IMAGENET1K_V3"], "no such torchvision weights"
    )
