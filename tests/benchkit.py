"""Artifacts with manifests, and a real small bench report, for the bench/report/compare tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    stage_manifest,
    write_manifest,
)
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import BenchOptions, bench
from resnet_opt.report.schema import Report
from tests.conftest import TINY_CONTRACT, make_tiny_cnn, write_image_folder

CONTRACT = TINY_CONTRACT


def write_export(
    path: Path, *, seed: int = 0, batch: int | str = "N", contract: PreprocessContract = CONTRACT
) -> Path:
    """A tiny FP32 model with an export manifest (no PyTorch source: ONNX Runtime only)."""
    make_tiny_cnn(path, seed=seed, batch=batch)
    manifest = new_manifest(
        stage=Stage.EXPORT,
        artifact=path,
        precision=Precision.FP32,
        inputs=(InputRef.of("source", path),),
        preprocessing=contract,
    )
    write_manifest(manifest_path(path), manifest)
    return path


def _manifest(path: Path) -> Manifest:
    from resnet_opt.core.manifest import read_manifest

    manifest = read_manifest(path)
    assert manifest is not None
    return manifest


def write_derived(
    path: Path,
    parent: Path,
    *,
    seed: int,
    stage: Stage = Stage.QUANTIZE,
    precision: Precision = Precision.INT8,
    details: dict[str, Any] | None = None,
) -> Path:
    """A model 'made from' `parent` (another tiny CNN standing in for its quantized form),
    its manifest holding `details` (none by default)."""
    make_tiny_cnn(path, seed=seed)
    manifest = stage_manifest(
        _manifest(parent),
        stage=stage,
        artifact=path,
        content=path,
        precision=precision,
        inputs=(InputRef.of("model", parent),),
        options={},
        verification={},
        details=details or {},
    )
    write_manifest(manifest_path(path), manifest)
    return path


def write_engine(
    path: Path,
    parent: Path,
    *,
    batch: tuple[int, int, int] = (1, 8, 8),
    gpu: str = "Orin",
    compute_capability: str = "8.7",
    tensorrt: str = "10.3.0.30",
) -> Path:
    """A .plan file with the manifest `build --backend tensorrt` writes (bench reads only the
    manifest before it would open the engine, and these tests never get that far)."""
    path.write_bytes(b"not a real plan: refused from its manifest before it is opened")
    lo, opt, hi = batch
    details: dict[str, Any] = {
        "backend": "tensorrt",
        "tensorrt_version": tensorrt,
        "gpu": {"name": gpu, "compute_capability": compute_capability},
        "profile": {"batch": {"min": lo, "opt": opt, "max": hi}},
        "build_options": {},
        "runner": {},
    }
    parent_manifest = _manifest(parent)
    manifest = stage_manifest(
        parent_manifest,
        stage=Stage.BUILD,
        artifact=path,
        content=path,
        precision=parent_manifest.precision,
        inputs=(InputRef.of("model", parent),),
        options={},
        verification={},
        details=details,
    )
    write_manifest(manifest_path(path), manifest)
    return path


def tiny_set(folder: Path) -> tuple[Path, Path, Path]:
    """(fp32 export, int8 'quantized' child, labelled image folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = write_export(folder / "model.onnx", seed=0)
    child = write_derived(folder / "model.int8.onnx", source, seed=3)
    data = write_image_folder(folder / "data", {"a": 4, "b": 4, "c": 4, "d": 4})
    return source, child, data


def small_report(folder: Path) -> Report:
    """A real bench report (ONNX Runtime, tiny models, a few iterations) for report tests."""
    source, child, data = tiny_set(folder)
    options = BenchOptions(
        backends=(Target.ONNXRUNTIME,),
        batches=(1, 4),
        budget=Budget(iterations=20, warmup_s=0.0),
        threads=1,
        data=str(data),
    )
    return bench([source, child], options=options)
