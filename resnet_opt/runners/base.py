"""The runner protocol (after Polygraphy's runners) and the backend registry.

A runner is a context manager: it loads on enter, frees on exit, exposes its input/output names,
shapes and dtypes, and runs `infer(feed) -> {output name: array}`. Bench, evaluation and parity
checks all go through runners, so that every backend is measured and scored the same way.

The registry maps backend names to import paths, so choosing one backend never imports another
(a Jetson with TensorRT but no torch must be able to bench an engine).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from resnet_opt.errors import ResnetOptError

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


class Backend(str, Enum):
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"


# backend -> "module:class"; imported only when that backend is chosen
RUNNERS: dict[Backend, str] = {
    Backend.TORCH: "resnet_opt.runners.torch:TorchRunner",
    Backend.ONNXRUNTIME: "resnet_opt.runners.onnxruntime:OnnxRuntimeRunner",
    Backend.OPENVINO: "resnet_opt.runners.openvino:OpenVinoRunner",
    Backend.TENSORRT: "resnet_opt.runners.tensorrt:TensorRtRunner",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class RunnerInfo:
    """What actually ran, for reports: e.g. the ORT provider chosen, OpenVINO's precision."""

    backend: Backend
    device: str
    precision: str | None = None
    threads: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Runner(Protocol):
    backend: Backend

    def __enter__(self) -> Runner: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def info(self) -> RunnerInfo: ...

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def runner_class(backend: Backend) -> type[Any]:
    """The runner class of `backend`, imported now (and only now)."""
    module_name, _, class_name = RUNNERS[backend].partition(":")
    module = importlib.import_module(module_name)
    cls: type[Any] = getattr(module, class_name)
    return cls


def open_runner(backend: Backend, artifact: Path, **options: Any) -> Runner:
    """A runner for `artifact` on `backend` (not yet entered)."""
    runner: Runner = runner_class(backend)(artifact, **options)
    return runner


def built_details(artifact: Path, backend: Backend) -> Mapping[str, Any]:
    """The details of a `build --backend <backend>` manifest beside `artifact`, else {}.

    Its "runner" entry holds that runner's keyword arguments (bench passes them as they are), so
    a built artifact loads as it was built; the rest says what it is tied to (a CPU family, an
    OpenVINO version).
    """
    from resnet_opt.pipeline.artifacts import Stage, read_manifest

    manifest = read_manifest(artifact, required=False)
    if manifest is None or manifest.stage != Stage.BUILD:
        return {}
    if manifest.details.get("backend") != backend.value:
        return {}
    if not isinstance(manifest.details.get("runner", {}), Mapping):
        raise ResnetOptError(f"{artifact}: its manifest's runner options are not an object")
    return manifest.details


def single_input(runner: Runner) -> TensorSpec:
    """The one image input every ResNet artifact has; anything else is refused."""
    if len(runner.inputs) != 1:
        names = ", ".join(spec.name for spec in runner.inputs)
        raise ResnetOptError(
            f"expected a model with one image input, found {len(runner.inputs)}"
            + (f" ({names})" if names else "")
        )
    return runner.inputs[0]


def run_batch(runner: Runner, x: np.ndarray) -> np.ndarray:
    """Logits of one image batch: the single input fed, the first output returned as float32."""
    spec = single_input(runner)
    outputs = runner.infer({spec.name: x.astype(spec.dtype, copy=False)})
    return np.asarray(outputs[runner.outputs[0].name], dtype=np.float32)
