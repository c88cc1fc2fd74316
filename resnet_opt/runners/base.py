"""The runner protocol (after Polygraphy's runners), the runner base class and the registry.

A runner is a context manager: it loads on enter, frees on exit, exposes its input/output names,
shapes and dtypes, and runs `infer(feed) -> {output name: array}`. Bench, evaluation and parity
checks all go through runners, so that every backend is measured and scored the same way.

Loading is not the runner's job (Polygraphy keeps `SessionFromOnnx` apart from `OnnxrtRunner`):
a runner takes a loader, a callable it calls on enter that returns the built object (an ONNX
Runtime session, an OpenVINO model, a PyTorch module). Opening an artifact file (its manifest,
the options recorded when it was built, the checks that it fits this machine) happens in
`resnet_opt.runners.loaders` and each backend's `open_*` function, which `open_runner` calls.

Which function opens an artifact as a backend's runner is its unit's `runner` import path
(`resnet_opt.backends`), so choosing one backend never imports another (a Jetson with TensorRT
but no torch must be able to bench an engine).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from resnet_opt.backends.registry import Backend, build_backends, unit
from resnet_opt.backends.spec import resolve
from resnet_opt.errors import ResnetOptError

__all__ = [
    "BUILD_BACKENDS",
    "Backend",  # the registry's, named here too: every runner module says which it is
    "Dim",
    "Runner",
    "RunnerBase",
    "RunnerInfo",
    "TensorSpec",
    "open_runner",
    "run_batch",
    "runner_opener",
    "single_input",
]

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


# the backends `build` makes an artifact for (the units with a build part), in `Backend` order
BUILD_BACKENDS: tuple[Backend, ...] = build_backends()


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


_R = TypeVar("_R", bound="RunnerBase")


class RunnerBase(abc.ABC):
    """What every runner shares: the `with` lifecycle, its guard, and the check of a feed.

    Subclasses set `backend`, implement `_open` (build or receive what runs, on enter) and
    `_close` (free it; also called when `_open` fails half-way), and call `_require_open()` in
    everything that needs the loaded object, so a runner used outside its `with` block says so
    instead of failing somewhere inside a framework.
    """

    backend: Backend

    def __init__(self, artifact: Path) -> None:
        self.artifact = Path(artifact)
        self._active = False

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def __enter__(self: _R) -> _R:
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        self._close()

    def _require_open(self) -> None:
        if not self._active:
            raise RuntimeError("runner used outside its `with` block")

    def check_feed(self, feed: Mapping[str, np.ndarray], input_names: Collection[str]) -> None:
        """Refuse a feed that does not name exactly the model's inputs (before running it)."""
        if len(feed) != len(input_names) or any(name not in feed for name in input_names):
            names = sorted(input_names)
            takes = f"one input {names[0]!r}" if len(names) == 1 else f"inputs {names}"
            raise ResnetOptError(
                f"{self.artifact}: inference failed (feed has {sorted(feed)}, the model "
                f"takes {takes})"
            )


def runner_opener(backend: Backend) -> Callable[..., Any]:
    """The function that opens an artifact as `backend`'s runner, imported now (and only now)."""
    opener: Callable[..., Any] = resolve(unit(backend).runner)
    return opener


def open_runner(backend: Backend, artifact: Path, **options: Any) -> Runner:
    """A runner for the artifact file `artifact` on `backend` (not yet entered).

    The artifact is opened on enter: its manifest's recorded runner options fill the options
    not given here, and it is refused when it does not fit this machine.
    """
    runner: Runner = runner_opener(backend)(artifact, **options)
    return runner


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
