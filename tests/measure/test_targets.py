"""Which backends bench measures for which artifact (auto vs named, build artifacts, skips)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from resnet_opt.core.manifest import Manifest, Precision, Stage, new_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.measure.targets import (
    Target,
    parse_targets,
    plan_targets,
    target_of_artifact,
    why_unavailable,
    with_built_targets,
)
from tests.benchkit import CONTRACT


def _manifest(
    tmp_path: Path,
    stage: Stage = Stage.EXPORT,
    precision: Precision = Precision.FP32,
    details: dict[str, Any] | None = None,
) -> Manifest:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x")
    return new_manifest(
        stage=stage,
        artifact=path,
        precision=precision,
        inputs=(),
        preprocessing=CONTRACT,
        details=details or {},
    )


TORCH_SOURCE = {"source": {"kind": "registry", "model": "resnet18"}}


def everything(target: Target) -> str | None:
    return None


def cpu_only(target: Target) -> str | None:
    if target in (Target.ONNXRUNTIME_CUDA, Target.ONNXRUNTIME_TENSORRT):
        return "no GPU provider"
    if target is Target.OPENVINO:
        return "openvino is not installed"
    if target is Target.TORCH:
        return "torch is not installed"
    return None


def test_auto_on_a_full_machine(tmp_path: Path) -> None:
    plan = plan_targets("m.onnx", _manifest(tmp_path, details=TORCH_SOURCE), None, everything)
    assert plan.targets == (
        Target.TORCH,
        Target.ONNXRUNTIME,
        Target.ONNXRUNTIME_CUDA,
        Target.ONNXRUNTIME_TENSORRT,
        Target.OPENVINO,
    )
    assert plan.skipped == ()


def test_auto_skips_what_is_not_installed_but_not_gpu_providers(tmp_path: Path) -> None:
    plan = plan_targets("m.onnx", _manifest(tmp_path, details=TORCH_SOURCE), None, cpu_only)
    assert plan.targets == (Target.ONNXRUNTIME,)
    assert plan.skipped == (
        (Target.TORCH, "torch is not installed"),
        (Target.OPENVINO, "openvino is not installed"),
    )


def test_torch_only_for_an_fp32_export_with_its_source(tmp_path: Path) -> None:
    plain = plan_targets("m.onnx", _manifest(tmp_path), None, everything)
    assert Target.TORCH not in plain.targets
    quantized = _manifest(tmp_path, Stage.QUANTIZE, Precision.INT8, TORCH_SOURCE)
    plan = plan_targets("m.int8.onnx", quantized, (Target.TORCH, Target.ONNXRUNTIME), everything)
    assert plan.targets == (Target.ONNXRUNTIME,)
    assert plan.skipped[0][0] is Target.TORCH
    assert "FP32 export" in plan.skipped[0][1]


def test_named_backend_that_cannot_run_here_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResnetOptError, match="backend openvino cannot run here: openvino is not"):
        plan_targets("m.onnx", _manifest(tmp_path), (Target.OPENVINO,), cpu_only)


def test_no_named_backend_fits_is_an_error(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, Stage.QUANTIZE, Precision.INT8)
    with pytest.raises(ResnetOptError, match="none of the requested backends runs it"):
        plan_targets("q.onnx", manifest, (Target.TENSORRT,), everything)


def test_build_artifacts_run_on_their_own_backend(tmp_path: Path) -> None:
    built = _manifest(
        tmp_path,
        Stage.BUILD,
        Precision.INT8,
        {"backend": "onnxruntime", "runner": {"providers": ["CPUExecutionProvider"]}},
    )
    assert plan_targets("b.onnx", built, None, everything).targets == (Target.ONNXRUNTIME,)
    plan = plan_targets("b.onnx", built, (Target.OPENVINO, Target.ONNXRUNTIME), everything)
    assert plan.targets == (Target.ONNXRUNTIME,)
    assert "built for onnxruntime" in plan.skipped[0][1]
    cuda = _manifest(
        tmp_path,
        Stage.BUILD,
        Precision.FP16,
        {"backend": "onnxruntime", "runner": {"providers": ["CUDAExecutionProvider"]}},
    )
    assert plan_targets("c.onnx", cuda, None, everything).targets == (Target.ONNXRUNTIME_CUDA,)
    with pytest.raises(ResnetOptError, match="built for onnxruntime-cuda, which cannot run here"):
        plan_targets("c.onnx", cuda, None, cpu_only)
    unknown = _manifest(tmp_path, Stage.BUILD, Precision.FP32, {"backend": "tvm"})
    with pytest.raises(ResnetOptError, match="backend 'tvm'"):
        plan_targets("u.onnx", unknown, None, everything)


@pytest.mark.parametrize(
    ("details", "target"),
    [
        ({"backend": "tensorrt", "runner": {"backend": "tensorrt"}}, Target.TENSORRT),
        ({"backend": "openvino", "runner": {"device": "CPU"}}, Target.OPENVINO),
        ({"backend": "onnxruntime", "runner": {}}, Target.ONNXRUNTIME),
        (
            {
                "backend": "onnxruntime",
                "runner": {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]},
            },
            Target.ONNXRUNTIME_TENSORRT,
        ),
    ],
)
def test_one_rule_gives_a_build_artifact_its_target(
    tmp_path: Path, details: dict[str, Any], target: Target
) -> None:
    """bench (plan_targets) and run (with_built_targets) read a build's target the same way:
    from its manifest, never from its file name."""
    built = _manifest(tmp_path, Stage.BUILD, Precision.FP32, details)
    assert target_of_artifact(built, "b") is target
    assert plan_targets("b", built, None, everything).targets == (target,)
    assert with_built_targets((Target.TORCH,), [("b", built)]) == (Target.TORCH, target)
    assert with_built_targets((target,), [("b", built)]) == (target,)


def test_an_onnx_artifact_has_no_single_target(tmp_path: Path) -> None:
    assert target_of_artifact(_manifest(tmp_path), "m.onnx") is None
    assert target_of_artifact(None, "foreign.onnx") is None
    assert with_built_targets((Target.OPENVINO,), [("m.onnx", _manifest(tmp_path))]) == (
        Target.OPENVINO,
    )


def test_parse_targets() -> None:
    assert parse_targets("auto") is None
    assert parse_targets("onnxruntime, openvino,onnxruntime") == (
        Target.ONNXRUNTIME,
        Target.OPENVINO,
    )
    with pytest.raises(ResnetOptError, match="unknown backend 'ort'"):
        parse_targets("ort")


def test_this_machine_has_no_gpu_provider_or_tensorrt() -> None:
    """The real probe: this CPU machine has ONNX Runtime but no CUDA provider or TensorRT."""
    assert why_unavailable(Target.ONNXRUNTIME) is None
    reason = why_unavailable(Target.ONNXRUNTIME_CUDA)
    if reason is None:
        pytest.skip("this onnxruntime has the CUDA provider")
    assert "CUDAExecutionProvider" in reason


def test_type_stubs_are_not_tensorrt() -> None:
    """tensorrt-stubs makes `tensorrt` findable without the library: not a backend."""
    from resnet_opt.deps import probe

    if probe("tensorrt")[0] is not None:
        pytest.skip("TensorRT is installed here")
    reason = why_unavailable(Target.TENSORRT)
    assert reason is not None and "not installed" in reason
