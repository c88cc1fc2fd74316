from __future__ import annotations

from pathlib import Path

import pytest

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    InputRef,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    read_manifest,
    write_manifest,
)
from resnet_opt.errors import ResnetOptError


def _write(out: Path, tiny_contract: PreprocessContract, *, force: bool = False) -> None:
    src = out.parent / "src.bin"
    src.write_bytes(b"source")
    with staged_outputs(force=force) as staged:
        tmp, tmp_manifest = staged.add_with_manifest(out)
        tmp.write_bytes(b"artifact")
        manifest = new_manifest(
            stage=Stage.EXPORT,
            artifact=out,
            content=tmp,
            precision=Precision.FP32,
            inputs=(InputRef.of("source", src),),
            preprocessing=tiny_contract,
            details={"bn_folded": {"exporter": 3}},
        )
        write_manifest(tmp_manifest, manifest)


def test_manifest_round_trip(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    out = tmp_path / "m.onnx"
    _write(out, tiny_contract)
    assert out.read_bytes() == b"artifact"
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest.sha256 == sha256_file(out)
    assert manifest.preprocessing == tiny_contract
    assert manifest.details["bn_folded"] == {"exporter": 3}
    assert manifest.inputs[0].sha256 == sha256_file(tmp_path / "src.bin")
    assert "onnx" in manifest.tools and "python" in manifest.tools
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_overwrite_without_force(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    out = tmp_path / "m.onnx"
    _write(out, tiny_contract)
    with pytest.raises(ResnetOptError, match="--force"):
        _write(out, tiny_contract)
    _write(out, tiny_contract, force=True)


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "m.onnx"
    with pytest.raises(RuntimeError), staged_outputs(force=False) as staged:
        staged.add(out).write_bytes(b"half")
        raise RuntimeError("stage failed")
    assert not out.exists()
    assert not (tmp_path / "new").exists()


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        pytest.raises(ResnetOptError, match="cannot create folder"),
        staged_outputs(force=False) as staged,
    ):
        staged.add(blocker / "m.onnx")


def test_missing_manifest_is_clear(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"x")
    with pytest.raises(ResnetOptError, match="no manifest"):
        read_manifest(tmp_path / "x.onnx")
    assert read_manifest(tmp_path / "x.onnx", required=False) is None


def test_a_folder_is_not_an_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in (Path(), tmp_path):  # Path() is ".": no name to put a sidecar beside
        with pytest.raises(ResnetOptError, match="is a folder, not an artifact file"):
            read_manifest(folder, required=False)
    with pytest.raises(ResnetOptError, match="no such file"):
        read_manifest(tmp_path / "gone.onnx", required=False)


def test_corrupt_manifest_is_clear(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"x")
    manifest_path(tmp_path / "x.onnx").write_text("{not json")
    with pytest.raises(ResnetOptError, match="not valid resnet-opt manifest"):
        read_manifest(tmp_path / "x.onnx")
