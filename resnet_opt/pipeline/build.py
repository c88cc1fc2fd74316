"""`build`: one typed ONNX -> the artifact a device runs, for the chosen backend.

The dispatcher only routes: each backend module does its own work and writes its own manifest
(`build_tensorrt`, `build_onnxruntime`, `build_openvino`), and is imported only when chosen, so
building a TensorRT engine on a Jetson never imports ONNX Runtime's build code or OpenVINO.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Union

from resnet_opt.core.manifest import Manifest
from resnet_opt.errors import UsageError
from resnet_opt.tensorrt.options import TensorRtBuildOptions

if TYPE_CHECKING:
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions

BuildOptions = Union[TensorRtBuildOptions, "OrtBuildOptions", "OpenVinoBuildOptions"]


class BuildBackend(str, Enum):
    TENSORRT = "tensorrt"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


# the CLI options that mean something to one backend only
BACKEND_OPTIONS: dict[str, frozenset[BuildBackend]] = {
    "--workspace": frozenset({BuildBackend.TENSORRT}),
    "--opt-level": frozenset({BuildBackend.TENSORRT}),
    "--timing-cache": frozenset({BuildBackend.TENSORRT}),
    "--dla-core": frozenset({BuildBackend.TENSORRT}),
    "--calib-cache": frozenset({BuildBackend.TENSORRT}),
    "--version-compatible": frozenset({BuildBackend.TENSORRT}),
    "--hardware-compatible": frozenset({BuildBackend.TENSORRT}),
    "--same-compute-capability": frozenset({BuildBackend.TENSORRT}),
    "--no-verify": frozenset({BuildBackend.TENSORRT}),
    "--batch": frozenset({BuildBackend.TENSORRT, BuildBackend.OPENVINO}),
    "--optimization": frozenset({BuildBackend.ONNXRUNTIME}),
    "--provider": frozenset({BuildBackend.ONNXRUNTIME}),
    "--portable": frozenset({BuildBackend.ONNXRUNTIME}),
    "--device": frozenset({BuildBackend.OPENVINO}),
    "--precision-hint": frozenset({BuildBackend.OPENVINO}),
    "--threads": frozenset({BuildBackend.ONNXRUNTIME, BuildBackend.OPENVINO}),
    "--input-shape": frozenset({BuildBackend.ONNXRUNTIME, BuildBackend.OPENVINO}),
    "--samples": frozenset({BuildBackend.ONNXRUNTIME, BuildBackend.OPENVINO}),
    "--tolerance": frozenset({BuildBackend.ONNXRUNTIME, BuildBackend.OPENVINO}),
}


def check_backend_options(backend: BuildBackend, given: Mapping[str, bool]) -> None:
    """Refuse an option the chosen backend would ignore (never drop a user's flag silently)."""
    for option, used in given.items():
        if used and backend not in BACKEND_OPTIONS[option]:
            owners = " or ".join(sorted(b.value for b in BACKEND_OPTIONS[option]))
            raise UsageError(f"{option} applies to --backend {owners}, not {backend.value}")


def build(
    source: Path,
    output: Path,
    backend: BuildBackend,
    options: BuildOptions,
    *,
    force: bool = False,
    verify: bool = True,
) -> Manifest:
    """Build `source` for `backend` at `output`; the options type must match the backend."""
    if backend is BuildBackend.TENSORRT:
        from resnet_opt.pipeline.build_tensorrt import build_tensorrt

        if not isinstance(options, TensorRtBuildOptions):
            raise TypeError(f"tensorrt needs TensorRtBuildOptions, not {type(options).__name__}")
        return build_tensorrt(source, output, options, force=force, verify=verify)
    if backend is BuildBackend.ONNXRUNTIME:
        from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime

        if not isinstance(options, OrtBuildOptions):
            raise TypeError(f"onnxruntime needs OrtBuildOptions, not {type(options).__name__}")
        return build_onnxruntime(source, output, options, force=force)
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, build_openvino

    if not isinstance(options, OpenVinoBuildOptions):
        raise TypeError(f"openvino needs OpenVinoBuildOptions, not {type(options).__name__}")
    return build_openvino(source, output, options, force=force)
