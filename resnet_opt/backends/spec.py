"""What a backend unit declares: one frozen record per backend, read by every generic consumer.

A backend's code lives in the layers it belongs to (its runner and loaders in `runners/`, its
build stage in `pipeline/`, its subcommand in `cli/`); its unit (`backends/<name>.py`) is the one
place that says which those are and what else the rest of the tool must know about it (its bench
targets, plot colour, tool versions, pip extras, how `run` builds with it). The parts above this
layer are named by import path (`"module:name"`) and imported only when used, as Polygraphy's
backends are, so reading the registry never imports a framework and choosing one backend never
imports another (a Jetson with TensorRT but no torch benches an engine).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any


class Natural(str, Enum):
    """Which artifacts that are not a build of its own a target runs without being asked."""

    NONE = "none"  # only its own backend's build artifacts (a TensorRT plan)
    ONNX = "onnx"  # every ONNX artifact (ONNX Runtime, OpenVINO)
    TORCH_SOURCE = "torch-source"  # an FP32 export that records its PyTorch model (the baseline)


@dataclass(frozen=True)
class TargetSpec:
    """One thing bench measures (`measure.targets.Target`): the backend's runner, plus the ONNX
    Runtime execution provider it asks for where that changes what runs."""

    name: str  # the `bench --backend` name, a `Target` value
    colour: str  # matplotlib colour of its points in report.png
    provider: str | None = None  # ONNX Runtime execution provider (None: not ORT, or its CPU)
    natural: Natural = Natural.ONNX
    # (module, why not when it is missing): what must be importable for it to run here
    requires: tuple[tuple[str, str], ...] = ()
    # why it does not run an artifact it is not natural for (None: the generic wording)
    not_applicable: str | None = None


@dataclass(frozen=True)
class BuildSpec:
    """How `build` and `run` make this backend's artifact (absent for a runner-only backend)."""

    options: str  # "module:Class": the frozen options dataclass; its type picks the backend
    build: str  # "module:function": build(source, output, options, *, force) -> Manifest
    command: str  # the module whose import registers `build <backend>` on `build_app`
    output_help: str  # the output suffixes, for `build --output`'s help ('.plan (TensorRT)')
    run_suffix: str  # what `run` names the artifact built from model[.<variant>].onnx
    run_builds: str  # "module:function": builds_for(variant QuantizeOptions | None) -> bool
    listed: int  # where `build <backend>` is listed among the subcommands (lower first)
    # "module:function": why this machine cannot build it (None: it can); None: always can
    unavailable: str | None = None
    run_companions: tuple[str, ...] = ()  # files written beside it (OpenVINO's .bin)
    # "module:function": check_options(output, options), run checks its table with it up front
    check: str | None = None
    # options fields a [build.<backend>] table does not set: field -> why (the refusal says it)
    run_refused: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class BackendUnit:
    """Everything the tool knows about one backend, beside the code of its parts."""

    name: str  # its `Backend` value
    title: str  # how prose names it ("ONNX Runtime")
    runner: str  # "module:opener": opener(artifact, **options) -> a runner, not yet entered
    targets: tuple[TargetSpec, ...]
    # distributions whose versions every manifest records (read from metadata, not imported)
    tools: tuple[str, ...]
    # module -> the pip extra of resnet-opt that installs it (deps.require's advice)
    extras: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    build: BuildSpec | None = None
    # "module:Class": the typed form of a build manifest's details["runner"] (from_dict/to_dict)
    runner_details: str | None = None
    # "module:Class": the typed form of a build manifest's whole details (from_dict/to_dict,
    # `core.build_details.BuildDetails`); None: a runner-only backend
    build_details: str | None = None


def resolve(path: str) -> Any:
    """The object a `"module:name"` path names, imported now (and only now)."""
    module_name, _, name = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, name) if name else module


def module_of(path: str) -> str:
    return path.partition(":")[0]
