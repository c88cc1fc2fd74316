from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Backend, Runner, open_runner, run_batch


def test_ort_runner_runs_any_batch(tiny_onnx: Path) -> None:
    with open_runner(Backend.ONNXRUNTIME, tiny_onnx, threads=1) as runner:
        assert isinstance(runner, Runner)
        (spec,) = runner.inputs
        assert spec.name == "input" and spec.shape == ("N", 3, 8, 8)
        assert spec.dtype == np.float32
        for batch in (1, 5):
            x = np.random.default_rng(0).normal(size=(batch, 3, 8, 8)).astype(np.float32)
            assert run_batch(runner, x).shape == (batch, 4)
        info = runner.info
        assert info.details["provider"] == "CPUExecutionProvider"
        assert info.threads == 1


def test_ort_runner_errors_are_domain_errors(tmp_path: Path, tiny_onnx: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ResnetOptError, match="cannot load"), open_runner(Backend.ONNXRUNTIME, bad):
        pass
    with (
        open_runner(Backend.ONNXRUNTIME, tiny_onnx) as runner,
        pytest.raises(ResnetOptError, match="inference failed"),
    ):
        runner.infer({"input": np.zeros((1, 3, 9, 9), np.float32)})


def test_unknown_provider_is_refused(tiny_onnx: Path) -> None:
    with pytest.raises(ResnetOptError, match="not available"):
        open_runner(Backend.ONNXRUNTIME, tiny_onnx, providers=["NoSuchExecutionProvider"])
