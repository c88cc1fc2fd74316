"""`build`: one typed ONNX -> the artifact a device runs, for the backend its options are for.

The backend follows from the options' type (`TensorRtBuildOptions`, `OrtBuildOptions`,
`OpenVinoBuildOptions`): the options of one backend mean nothing to another, so naming the
backend apart from them could only disagree with them. The dispatcher only routes: each backend
module does its own work and writes its own manifest (`build_tensorrt`, `build_onnxruntime`,
`build_openvino`), and is imported only when chosen, so building a TensorRT engine on a Jetson
never imports ONNX Runtime's build code or OpenVINO.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

from resnet_opt.core.manifest import Manifest
from resnet_opt.errors import UsageError
from resnet_opt.runners.base import BUILD_BACKENDS, Backend
from resnet_opt.tensorrt.options import TensorRtBuildOptions

if TYPE_CHECKING:
    from resnet_opt.calibration.collect import ProgressCallback
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions

BuildOptions = Union[TensorRtBuildOptions, "OrtBuildOptions", "OpenVinoBuildOptions"]


# the CLI options that mean something to one backend only
BACKEND_OPTIONS: dict[str, frozenset[Backend]] = {
    "--workspace": frozenset({Backend.TENSORRT}),
    "--opt-level": frozenset({Backend.TENSORRT}),
    "--timing-cache": frozenset({Backend.TENSORRT}),
    "--dla-core": frozenset({Backend.TENSORRT}),
    "--calib-cache": frozenset({Backend.TENSORRT}),
    "--version-compatible": frozenset({Backend.TENSORRT}),
    "--hardware-compatible": frozenset({Backend.TENSORRT}),
    "--same-compute-capability": frozenset({Backend.TENSORRT}),
    "--no-verify": frozenset({Backend.TENSORRT}),
    "--engine-cache": frozenset({Backend.TENSORRT}),
    "--batch": frozenset({Backend.TENSORRT, Backend.OPENVINO}),
    "--optimization": frozenset({Backend.ONNXRUNTIME}),
    "--provider": frozenset({Backend.ONNXRUNTIME}),
    "--portable": frozenset({Backend.ONNXRUNTIME}),
    "--device": frozenset({Backend.OPENVINO}),
    "--precision-hint": frozenset({Backend.OPENVINO}),
    "--threads": frozenset({Backend.ONNXRUNTIME, Backend.OPENVINO}),
    "--input-shape": frozenset({Backend.ONNXRUNTIME, Backend.OPENVINO}),
    "--samples": frozenset({Backend.ONNXRUNTIME, Backend.OPENVINO}),
    "--tolerance": frozenset({Backend.ONNXRUNTIME, Backend.OPENVINO}),
}


def check_build_backend(backend: Backend, where: str = "--backend") -> None:
    """Refuse a backend `build` makes nothing for (torch runs the FP32 export as it is)."""
    if backend not in BUILD_BACKENDS:
        choices = ", ".join(b.value for b in BUILD_BACKENDS)
        raise UsageError(
            f"{where} {backend.value}: build makes no artifact for it (choose {choices})"
        )


def check_backend_options(backend: Backend, given: Mapping[str, bool]) -> None:
    """Refuse an option the chosen backend would ignore (never drop a user's flag silently)."""
    check_build_backend(backend)
    for option, used in given.items():
        if used and backend not in BACKEND_OPTIONS[option]:
            owners = " or ".join(sorted(b.value for b in BACKEND_OPTIONS[option]))
            raise UsageError(f"{option} applies to --backend {owners}, not {backend.value}")


def build(
    source: str | Path,
    output: str | Path,
    options: BuildOptions,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Build `source` at `output` for the backend of `options`: TensorRtBuildOptions (a TensorRT
    plan), OrtBuildOptions (an ONNX Runtime artifact) or OpenVinoBuildOptions (OpenVINO IR or a
    compiled blob).

    `progress` is taken for the shape every stage shares and not called: a build is one call
    into the backend's compiler, with no loop of its own to report on.
    """
    source, output = Path(source), Path(output)
    if isinstance(options, TensorRtBuildOptions):
        from resnet_opt.pipeline.build_tensorrt import build_tensorrt

        return build_tensorrt(source, output, options, force=force)
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime

    if isinstance(options, OrtBuildOptions):
        return build_onnxruntime(source, output, options, force=force)
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, build_openvino

    if isinstance(options, OpenVinoBuildOptions):
        return build_openvino(source, output, options, force=force)
    raise TypeError(
        "build options must be TensorRtBuildOptions, OrtBuildOptions or OpenVinoBuildOptions, "
        f"not {type(options).__name__}"
    )
