"""The one table of backends: `Backend` and `Target` name them, `unit()` says what each is.

Adding a backend is its unit module `backends/<name>.py` (a `UNIT = BackendUnit(...)` naming its
runner, loaders, build stage, subcommand and the rest, ARCHITECTURE.md "Where a new backend
goes") plus two lines here: its `Backend` member and its `Target` member(s). A member's unit is
found by its value (`Backend.TENSORRT` -> `resnet_opt.backends.tensorrt`), so there is no third
list to keep in step; `tests/backends/test_registry.py` checks that every member has a unit with
every part it declares.

Only the standard library is imported here and the units are plain data, so `resnet-opt --help`,
`core.manifest` (tool versions), `deps` (pip extras) and `report.plot` (colours) read the table
without importing any framework.
"""

from __future__ import annotations

import importlib
from enum import Enum
from functools import cache

from resnet_opt.backends.spec import BackendUnit, BuildSpec, TargetSpec

UNIT_PACKAGE = "resnet_opt.backends"


class Backend(str, Enum):
    """The frameworks that run models: one runner each, and the one name for them everywhere
    (`build --backend`, a build manifest's `details.backend`, run configs, reports).

    What bench measures is a `Target`: a backend plus the ONNX Runtime execution provider it
    asks for. Choices are listed in this order.
    """

    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"


class Target(str, Enum):
    """What bench measures: a `Backend` (the runner) plus, for ONNX Runtime, the execution
    provider it asks for. Not a second list of backends: each member is declared by one unit's
    `targets`, which says its backend and provider; the names `bench --backend` takes are these,
    and an artifact's natural targets are measured in this order (the baseline first)."""

    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    ONNXRUNTIME_CUDA = "onnxruntime-cuda"
    ONNXRUNTIME_TENSORRT = "onnxruntime-tensorrt"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"

    @property
    def backend(self) -> Backend:
        return _targets()[self.value][0]

    @property
    def spec(self) -> TargetSpec:
        return _targets()[self.value][1]

    @property
    def provider(self) -> str | None:
        """The ONNX Runtime execution provider this target asks for (None: not ORT, or CPU)."""
        return self.spec.provider


@cache
def unit(backend: Backend) -> BackendUnit:
    """The unit of `backend` (its module `backends/<value>.py`, plain data, imported now)."""
    module = importlib.import_module(f"{UNIT_PACKAGE}.{Backend(backend).value}")
    declared: BackendUnit = module.UNIT
    if declared.name != backend.value:  # a unit copied from another and not renamed
        raise TypeError(f"{module.__name__}.UNIT is named {declared.name!r}, not {backend.value!r}")
    return declared


def units() -> tuple[BackendUnit, ...]:
    """Every backend's unit, in `Backend` order."""
    return tuple(unit(backend) for backend in Backend)


def build_backends() -> tuple[Backend, ...]:
    """The backends `build` makes an artifact for (PyTorch eager runs the FP32 export as it is),
    in the order their units ask `build`'s subcommands to be listed in."""
    building = [backend for backend in Backend if unit(backend).build is not None]
    return tuple(sorted(building, key=lambda backend: build_part(backend).listed))


def build_part(backend: Backend) -> BuildSpec:
    """`backend`'s build part (a backend of `build_backends()`)."""
    spec = unit(backend).build
    if spec is None:
        raise ValueError(f"{backend.value} builds nothing")
    return spec


def targets_of(backend: Backend) -> tuple[Target, ...]:
    """`backend`'s targets, in its unit's order (the plain one first)."""
    return tuple(Target(spec.name) for spec in unit(backend).targets)


@cache
def _targets() -> dict[str, tuple[Backend, TargetSpec]]:
    """Target name -> (its backend, its spec), from the units."""
    table: dict[str, tuple[Backend, TargetSpec]] = {}
    for backend in Backend:
        for spec in unit(backend).targets:
            if spec.name in table:
                raise TypeError(f"target {spec.name!r} is declared by two backends")
            table[spec.name] = (backend, spec)
    return table
