"""The PyTorch runner: the exported model rebuilt from its manifest, checked, run eagerly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resnet_opt.calibration import preprocess
from resnet_opt.calibration.data import Split, load_bundled_split
from resnet_opt.errors import ResnetOptError
from resnet_opt.models import default_model
from resnet_opt.pipeline.export import ExportOptions, export
from resnet_opt.runners.base import Backend, Runner, open_runner, run_batch

torch = pytest.importorskip("torch")


def _digits(n: int) -> np.ndarray:
    pixels, _ = load_bundled_split(Split.TEST)
    contract = default_model().contract
    return np.stack([preprocess.apply_pixels(contract, p) for p in pixels[:n]])


def test_torch_runner_rebuilds_the_exported_model(default_onnx: Path) -> None:
    x = _digits(6)
    before = torch.get_num_threads()
    with open_runner(Backend.TORCH, default_onnx, threads=1) as runner:
        assert isinstance(runner, Runner)
        assert torch.get_num_threads() == 1
        (spec,) = runner.inputs
        assert (spec.name, spec.shape) == ("input", ("batch", 1, 32, 32))
        assert spec.dtype == np.dtype(np.float32)
        assert runner.outputs[0].shape == ("batch", 10)
        info = runner.info
        assert info.backend is Backend.TORCH and info.threads == 1
        assert info.details["torch"] == torch.__version__
        torch_logits = run_batch(runner, x)
    assert torch.get_num_threads() == before
    with open_runner(Backend.ONNXRUNTIME, default_onnx) as ort:
        np.testing.assert_allclose(torch_logits, run_batch(ort, x), atol=1e-4)


def test_torch_runner_follows_the_lineage_of_later_artifacts(
    default_onnx: Path, tmp_path: Path
) -> None:
    from resnet_opt.pipeline.fold import fold

    folded = tmp_path / "folded.onnx"
    fold(default_onnx, folded)
    with (
        open_runner(Backend.TORCH, folded) as from_lineage,
        open_runner(Backend.TORCH, default_onnx) as direct,
    ):
        x = _digits(3)
        np.testing.assert_array_equal(run_batch(from_lineage, x), run_batch(direct, x))


def test_torch_runner_refuses_changed_weights(tmp_path: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet

    weights = tmp_path / "w.pt"
    torch.save(cifar_resnet(20, num_classes=4).state_dict(), weights)
    out = tmp_path / "r20.onnx"
    export("resnet20", out, ExportOptions(weights=str(weights)))
    with open_runner(Backend.TORCH, out) as runner:
        x = np.zeros((2, 3, 32, 32), np.float32)
        assert run_batch(runner, x).shape == (2, 4)
    torch.save(cifar_resnet(20, num_classes=4).state_dict(), weights)
    with (
        pytest.raises(ResnetOptError, match="changed since export"),
        open_runner(Backend.TORCH, out),
    ):
        pass


def test_torch_runner_needs_an_export_manifest(tiny_onnx: Path) -> None:
    with pytest.raises(ResnetOptError, match="no manifest"), open_runner(Backend.TORCH, tiny_onnx):
        pass


def test_torch_runner_with_a_module_in_memory(tmp_path: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet
    from resnet_opt.runners.torch import ModuleInMemory, TorchRunner

    module = cifar_resnet(20, num_classes=5).train()
    with TorchRunner(ModuleInMemory(module, tmp_path / "unused.onnx")) as runner:
        assert not module.training  # eval mode, whatever it came in as
        out = runner.infer({"input": np.zeros((3, 3, 32, 32), np.float32)})
        assert out["logits"].shape == (3, 5)
        with pytest.raises(ResnetOptError, match="PyTorch inference failed"):
            runner.infer({"input": np.zeros((1, 1, 32, 32), np.float32)})
        with pytest.raises(ResnetOptError, match="one input 'input'"):
            runner.infer({"x": np.zeros((1, 3, 32, 32), np.float32)})
