"""Loaders apart from runners: what opening an artifact does, and what every runner shares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import Stage, manifest_path
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime
from resnet_opt.runners.base import Backend, RunnerBase, open_runner
from resnet_opt.runners.loaders import open_artifact, open_stage_input
from resnet_opt.runners.onnxruntime import (
    GraphOptimization,
    OnnxRuntimeRunner,
    OrtSettings,
    SessionFromOnnx,
    open_onnxruntime,
)


def test_open_artifact_reads_the_build_details_of_its_own_backend(
    tmp_path: Path, tiny_onnx: Path
) -> None:
    artifact = tmp_path / "tiny.opt.onnx"
    build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions(threads=1))
    opened = open_artifact(artifact, Backend.ONNXRUNTIME)
    assert opened.manifest is not None and opened.recorded["threads"] == 1
    # the same file seen by another backend: not its build, nothing recorded for it
    assert open_artifact(artifact, Backend.OPENVINO).recorded == {}
    # a plain export has a manifest or not, but no build details
    assert open_artifact(tiny_onnx, Backend.ONNXRUNTIME).built is None


def test_open_artifact_refuses_what_it_cannot_trust(tmp_path: Path, tiny_onnx: Path) -> None:
    with pytest.raises(ResnetOptError, match="no such file"):
        open_artifact(tmp_path / "absent.onnx", Backend.ONNXRUNTIME)
    with pytest.raises(ResnetOptError, match="is a folder"):
        open_artifact(tmp_path, Backend.ONNXRUNTIME)
    with pytest.raises(ResnetOptError, match="no manifest"):
        open_artifact(tiny_onnx, Backend.ONNXRUNTIME, verify_hash=True)
    artifact = tmp_path / "tiny.opt.onnx"
    build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions())
    open_artifact(artifact, Backend.ONNXRUNTIME, verify_hash=True)
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ResnetOptError, match="does not match its manifest"):
        open_artifact(artifact, Backend.ONNXRUNTIME, verify_hash=True)
    data = json.loads(manifest_path(artifact).read_text())
    data["details"]["runner"] = ["not", "an", "object"]
    manifest_path(artifact).write_text(json.dumps(data))
    with pytest.raises(ResnetOptError, match=r"details\.runner must be an object"):
        open_artifact(artifact, Backend.ONNXRUNTIME)


def test_session_from_onnx_loads_as_told_not_as_recorded(tmp_path: Path, tiny_onnx: Path) -> None:
    """A build checks its own files with exactly its own settings, whatever a manifest says."""
    artifact = tmp_path / "tiny.opt.onnx"
    build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions(threads=1))
    with open_onnxruntime(artifact) as recorded:
        assert recorded.info.threads == 1 and recorded.info.details["built"]
    settings = OrtSettings(threads=2, optimization=GraphOptimization.BASIC)
    with OnnxRuntimeRunner(SessionFromOnnx(artifact, settings)) as told:
        info = told.info
    assert info.threads == 2 and info.details["optimization"] == "basic"
    assert not info.details["built"]


@pytest.mark.parametrize("backend", [Backend.ONNXRUNTIME, Backend.OPENVINO])
def test_every_runner_guards_its_with_block_and_checks_feeds(
    tiny_onnx: Path, backend: Backend
) -> None:
    runner = open_runner(backend, tiny_onnx, threads=1)
    assert isinstance(runner, RunnerBase)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        _ = runner.inputs
    with runner:
        with pytest.raises(ResnetOptError, match=r"feed has \['x'\], the model takes one input"):
            runner.infer({"x": np.zeros((1, 3, 8, 8), np.float32)})
        assert runner.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})


def test_a_failed_open_is_closed() -> None:
    class Failing(RunnerBase):
        backend = Backend.ONNXRUNTIME
        closed = False

        def _open(self) -> None:
            raise ResnetOptError("cannot load")

        def _close(self) -> None:
            self.closed = True

    runner = Failing(Path("x.onnx"))
    with pytest.raises(ResnetOptError, match="cannot load"), runner:
        pass
    assert runner.closed
    with pytest.raises(RuntimeError, match="outside"):
        runner._require_open()


# -- a stage's input preamble ------------------------------------------------------------------


def _stages() -> dict[str, Any]:
    """Every stage that reads one ONNX and writes another, called on (source, output)."""
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, build_openvino
    from resnet_opt.pipeline.build_tensorrt import build_tensorrt
    from resnet_opt.pipeline.fold import fold
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions
    from resnet_opt.tensorrt.options import TensorRtBuildOptions

    return {
        "build onnxruntime": lambda s, o: build_onnxruntime(s, o, OrtBuildOptions(), force=True),
        "build openvino": lambda s, o: build_openvino(s, o, OpenVinoBuildOptions(), force=True),
        "build tensorrt": lambda s, o: build_tensorrt(s, o, TensorRtBuildOptions(), force=True),
        "fold": lambda s, o: fold(s, o, force=True),
        "quantize": lambda s, o: quantize(s, o, QuantizeOptions(), force=True),
    }


# an output name each stage accepts (the builds tell their formats by the suffix)
SUFFIX = {
    "build onnxruntime": ".onnx",
    "build openvino": ".xml",
    "build tensorrt": ".plan",
    "fold": ".onnx",
    "quantize": ".onnx",
}


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_stage_refuses_its_source_as_output_in_one_wording(
    tmp_path: Path, tiny_onnx: Path, stage: str
) -> None:
    before = tiny_onnx.read_bytes()
    source = tiny_onnx.with_suffix(SUFFIX[stage])  # a source named as the stage's output is
    tiny_onnx.rename(source)
    with pytest.raises(ResnetOptError, match=r"tiny\.\w+: is the source model; write the output"):
        _stages()[stage](source, source)
    assert source.read_bytes() == before


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_stage_refuses_a_source_changed_after_its_manifest(
    tmp_path: Path, tiny_onnx: Path, tiny_contract: PreprocessContract, stage: str
) -> None:
    from resnet_opt.core.manifest import Precision, new_manifest, write_manifest

    manifest = new_manifest(
        stage=Stage.EXPORT,
        artifact=tiny_onnx,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=tiny_contract,
    )
    write_manifest(manifest_path(tiny_onnx), manifest)
    tiny_onnx.write_bytes(tiny_onnx.read_bytes() + b"\0")
    with pytest.raises(ResnetOptError, match="content does not match its manifest"):
        _stages()[stage](tiny_onnx, tmp_path / "out" / f"m{SUFFIX[stage]}")
    assert not (tmp_path / "out").exists()


def test_the_preamble_reads_the_manifest_and_hashes_once(tmp_path: Path, tiny_onnx: Path) -> None:
    from resnet_opt.core.hashing import sha256_file

    opened = open_stage_input(tiny_onnx, tmp_path / "out.onnx")
    assert opened.manifest is None and opened.sha256 == sha256_file(tiny_onnx)
    with pytest.raises(ResnetOptError, match="is a folder, not an ONNX file"):
        open_stage_input(tmp_path, tmp_path / "out.onnx")
    with pytest.raises(ResnetOptError, match="no such file"):
        open_stage_input(tmp_path / "absent.onnx", tmp_path / "out.onnx")
    with pytest.raises(ResnetOptError, match="manifest"):
        open_stage_input(tiny_onnx, tmp_path / "out.plan", require_manifest=True)
