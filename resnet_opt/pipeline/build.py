"""`build`: one typed ONNX -> the artifact a device runs, for the backend its options are for.

The backend follows from the options' type (`TensorRtBuildOptions`, `OrtBuildOptions`,
`OpenVinoBuildOptions`, each named by its backend unit's `build.options`): the options of one
backend mean nothing to another, so naming the backend apart from them could only disagree with
them. The dispatcher only routes: each backend's build function does its own work and writes its
own manifest (`build_tensorrt`, `build_onnxruntime`, `build_openvino`), and is imported only when
chosen (the options' type is matched by its import path first), so building a TensorRT engine on
a Jetson never imports ONNX Runtime's build code or OpenVINO.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from resnet_opt.backends.registry import build_backends, unit
from resnet_opt.backends.spec import BuildSpec, resolve
from resnet_opt.core.manifest import Manifest
from resnet_opt.tensorrt.options import TensorRtBuildOptions

if TYPE_CHECKING:
    from resnet_opt.core.progress import ProgressCallback
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions

# the options types of the registered build backends (a new backend's joins by its unit)
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
    plan), OrtBuildOptions (an ONNX Runtime artifact), OpenVinoBuildOptions (OpenVINO IR or a
    compiled blob), or another registered backend's options.

    `progress` is taken for the shape every stage shares and not called: a build is one call
    into the backend's compiler, with no loop of its own to report on.
    """
    spec = build_spec_of(options)
    function: Callable[..., Manifest] = resolve(spec.build)
    return function(Path(source), Path(output), options, force=force)


def build_spec_of(options: Any) -> BuildSpec:
    """The build part of the backend whose options `options` are: by the type's import path
    (importing no other backend), else by `isinstance` (a subclass)."""
    specs = [spec for b in build_backends() if (spec := unit(b).build) is not None]
    kind = type(options)
    named = f"{kind.__module__}:{kind.__qualname__}"
    for spec in specs:
        if spec.options == named:
            return spec
    for spec in specs:
        if isinstance(options, resolve(spec.options)):
            return spec
    names = [spec.options.rpartition(":")[2] for spec in specs]
    listed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    raise TypeError(f"build options must be {listed}, not {kind.__name__}")
