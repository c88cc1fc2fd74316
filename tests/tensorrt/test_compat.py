"""Whether a plan may be loaded on a device: GPU, compute capability, TensorRT version."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from resnet_opt.core.manifest import Manifest, Precision, Stage, new_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.compat import check_engine_compatible
from resnet_opt.tensorrt.device import DeviceInfo

ORIN = DeviceInfo(
    gpu_name="Orin",
    compute_capability=(8, 7),
    integrated=True,
    cuda_driver="12.6",
    tensorrt="10.3.0.30",
    dla_cores=2,
    l4t="36.4.3",
    jetpack="6.2",
)


def engine(tmp_path: Path, **details: Any) -> Manifest:
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    base: dict[str, Any] = {
        "backend": "tensorrt",
        "tensorrt_version": "10.3.0.30",
        "gpu": {"name": "Orin", "compute_capability": "8.7"},
        "build_options": {"version_compatible": False, "hardware_compatible": None},
        "dla": None,
    }
    base.update(details)
    return new_manifest(
        stage=Stage.BUILD,
        artifact=plan,
        precision=Precision.INT8,
        inputs=(),
        preprocessing=None,
        details=base,
    )


def test_same_device_and_build_passes(tmp_path: Path) -> None:
    check_engine_compatible(engine(tmp_path), ORIN)


def test_no_gpu_no_tensorrt_names_the_target(tmp_path: Path) -> None:
    here = DeviceInfo(
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        gpu_problem="no NVIDIA driver",
        tensorrt_problem="not installed",
    )
    with pytest.raises(ResnetOptError) as err:
        check_engine_compatible(engine(tmp_path), here)
    message = str(err.value)
    assert "built for Orin (sm 8.7) with TensorRT 10.3.0.30" in message
    assert (
        "this machine has no CUDA GPU (no NVIDIA driver) and no TensorRT (not installed)" in message
    )
    assert message.endswith("rebuild with resnet-opt build on the target")
    gpu_only = dataclasses.replace(
        ORIN, tensorrt=None, tensorrt_problem="No module named 'tensorrt'"
    )
    with pytest.raises(ResnetOptError, match=r"this machine has no TensorRT"):
        check_engine_compatible(engine(tmp_path), gpu_only)


@pytest.mark.parametrize(
    "change",
    [
        {"gpu_name": "NVIDIA A100", "compute_capability": (8, 0)},
        {"compute_capability": (8, 6)},
        {"gpu_name": "Orin NX"},
        {"tensorrt": "10.3.0.26"},
        {"tensorrt": "10.7.0"},
        {"tensorrt": "10.2.0"},
    ],
)
def test_other_gpu_or_tensorrt_must_rebuild(tmp_path: Path, change: dict[str, Any]) -> None:
    with pytest.raises(
        ResnetOptError, match=r"built for Orin .*, this is .*: rebuild with `resnet-opt build`"
    ):
        check_engine_compatible(engine(tmp_path), dataclasses.replace(ORIN, **change))


def test_version_compatible_runs_forward_only(tmp_path: Path) -> None:
    vc = engine(tmp_path, build_options={"version_compatible": True})
    check_engine_compatible(vc, dataclasses.replace(ORIN, tensorrt="10.7.0"))
    check_engine_compatible(
        vc, dataclasses.replace(ORIN, tensorrt="11.1.0")
    )  # 10 -> 11: documented
    with pytest.raises(ResnetOptError, match=r"same or a later TensorRT only"):
        check_engine_compatible(vc, dataclasses.replace(ORIN, tensorrt="10.2.0"))
    eleven = engine(tmp_path, tensorrt_version="11.0.0", build_options={"version_compatible": True})
    check_engine_compatible(eleven, dataclasses.replace(ORIN, tensorrt="11.4.1"))
    with pytest.raises(ResnetOptError, match=r"same or a later"):
        check_engine_compatible(eleven, dataclasses.replace(ORIN, tensorrt="10.13.0"))
    with pytest.raises(ResnetOptError, match=r"does not load version-compatible plans from 11.x"):
        check_engine_compatible(eleven, dataclasses.replace(ORIN, tensorrt="12.0.0"))


def test_hardware_compatible_levels(tmp_path: Path) -> None:
    a100 = DeviceInfo("NVIDIA A100", (8, 0), False, "12.4", "10.13.0", 0, None, None)
    built = {
        "tensorrt_version": "10.13.0",
        "gpu": {"name": "NVIDIA A10", "compute_capability": "8.6"},
    }
    ampere = engine(tmp_path, **built, build_options={"hardware_compatible": "ampere-plus"})
    check_engine_compatible(ampere, a100)
    check_engine_compatible(
        ampere, dataclasses.replace(a100, gpu_name="H100", compute_capability=(9, 0))
    )
    with pytest.raises(ResnetOptError, match=r"needs an Ampere or newer GPU"):
        check_engine_compatible(
            ampere, dataclasses.replace(a100, gpu_name="T4", compute_capability=(7, 5))
        )
    same = engine(
        tmp_path, **built, build_options={"hardware_compatible": "same-compute-capability"}
    )
    check_engine_compatible(
        same, dataclasses.replace(a100, gpu_name="RTX 3090", compute_capability=(8, 6))
    )
    with pytest.raises(ResnetOptError, match=r"rebuild"):
        check_engine_compatible(same, a100)


def test_dla_engine_needs_that_core(tmp_path: Path) -> None:
    dla = engine(tmp_path, dla={"core": 1})
    check_engine_compatible(dla, ORIN)
    with pytest.raises(ResnetOptError, match=r"built for DLA core 1, this device has 1 DLA cores"):
        check_engine_compatible(dla, dataclasses.replace(ORIN, dla_cores=1))
    with pytest.raises(ResnetOptError, match=r"has 0 DLA cores"):
        check_engine_compatible(dla, dataclasses.replace(ORIN, dla_cores=None))


def test_non_tensorrt_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResnetOptError, match=r"not a TensorRT engine manifest"):
        check_engine_compatible(engine(tmp_path, backend="onnxruntime"), ORIN)
