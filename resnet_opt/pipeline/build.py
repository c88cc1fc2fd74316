"""`build`: one typed ONNX -> the artifact a device runs, for the backend its options are for.

The backend follows from the options' type (`TensorRtBuildOptions`, `OrtBuildOptions`,
`OpenVinoBuildOptions`): the options of one backend mean nothing to another, so naming the
backend apart from them could only disagree with them. The dispatcher only routes: each backend
module does its own work and writes its own manifest (`build_tensorrt`, `build_onnxruntime`,
`build_openvino`), and is imported only when chosen, so building a TensorRT engine on a Jetson
never imports ONNX Runtime's build code or OpenVINO.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from resnet_opt.core.manifest import Manifest
from resnet_opt.tensorrt.options import TensorRtBuildOptions

if TYPE_CHECKING:
    from resnet_opt.core.progress import ProgressCallback
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions

BuildOptions = Union[TensorRtBuildOptions, "OrtBuildOptions", "OpenVinoBuildOptions"]


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
