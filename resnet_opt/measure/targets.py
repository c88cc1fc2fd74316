"""Which backends measure which artifact.

A target is a backend plus the variant that changes what runs (ONNX Runtime's execution
provider). Each artifact has natural targets: a build artifact runs on the backend it was built
for, with the runner options its manifest records; an ONNX artifact runs on ONNX Runtime (CPU,
and its CUDA / TensorRT providers when this onnxruntime has them), on OpenVINO when installed,
and, for the FP32 export, on PyTorch eager as the baseline.

Without `--backend` (auto), every natural target that can run here is measured, and the torch /
OpenVINO targets that cannot are listed as skipped with the reason (a GPU provider missing from a
CPU build of onnxruntime is not listed: it is not something this machine could have run). With
`--backend`, only the named targets run; a named target that cannot run here is an error, one
that does not apply to an artifact is skipped for that artifact, and an artifact left with no
target at all is an error.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from resnet_opt.core.manifest import Manifest, Precision, Stage
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.runners.base import BUILD_BACKENDS, RUNNERS, Backend

CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"


class Target(str, Enum):
    """What bench measures: a `Backend` (the runner) plus, for ONNX Runtime, the execution
    provider it asks for. Not a second list of backends: `backend` says which one a target runs
    on, and the names `bench --backend` takes are these."""

    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    ONNXRUNTIME_CUDA = "onnxruntime-cuda"
    ONNXRUNTIME_TENSORRT = "onnxruntime-tensorrt"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"

    @property
    def backend(self) -> Backend:
        return {
            Target.TORCH: Backend.TORCH,
            Target.ONNXRUNTIME: Backend.ONNXRUNTIME,
            Target.ONNXRUNTIME_CUDA: Backend.ONNXRUNTIME,
            Target.ONNXRUNTIME_TENSORRT: Backend.ONNXRUNTIME,
            Target.OPENVINO: Backend.OPENVINO,
            Target.TENSORRT: Backend.TENSORRT,
        }[self]

    @property
    def provider(self) -> str | None:
        """The ONNX Runtime execution provider this target asks for (None: not ORT, or CPU)."""
        return {
            Target.ONNXRUNTIME_CUDA: CUDA_PROVIDER,
            Target.ONNXRUNTIME_TENSORRT: TENSORRT_PROVIDER,
        }.get(self)


def parse_targets(text: str) -> tuple[Target, ...] | None:
    """`--backend` as typed: 'auto' → None, else a comma-separated list of target names."""
    names = [part.strip() for part in text.split(",")]
    if names == ["auto"]:
        return None
    if not all(names):  # '' or 'onnxruntime,,openvino': never read as auto
        valid = ", ".join(["auto", *(t.value for t in Target)])
        raise UsageError(f"--backend {text!r}: an empty backend name (choose from {valid})")
    chosen: list[Target] = []
    for name in names:
        try:
            target = Target(name)
        except ValueError:
            valid = ", ".join(["auto", *(t.value for t in Target)])
            raise UsageError(f"unknown backend {name!r} (choose from {valid})") from None
        if target not in chosen:
            chosen.append(target)
    return tuple(chosen)


# -- what can run here ---------------------------------------------------------------------------


def _installed(module: str) -> bool:
    """Whether `module` is importable, found without importing it (torch costs seconds).

    A namespace package is not the module: type stubs (tensorrt-stubs) make one without the
    library, as resnet_opt.deps knows too.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def ort_providers() -> tuple[str, ...]:
    from resnet_opt.deps import require

    return tuple(require("onnxruntime").get_available_providers())


def why_unavailable(target: Target) -> str | None:
    """None when `target` can run on this machine, else why not (one phrase).

    TensorRT engines are checked against their manifest separately (device and version).
    """
    runner_module = RUNNERS[target.backend].partition(":")[0]
    if not _installed(runner_module):
        return f"this resnet-opt has no {target.backend.value} runner ({runner_module})"
    if target is Target.TORCH:
        return (
            None
            if _installed("torch")
            else "torch is not installed: pip install 'resnet-opt[export]'"
        )
    if target is Target.OPENVINO:
        return (
            None
            if _installed("openvino")
            else ("openvino is not installed: pip install 'resnet-opt[openvino]'")
        )
    if target.provider is not None:
        providers = ort_providers()
        if target.provider not in providers:
            return (
                f"this onnxruntime has no {target.provider} (available: {', '.join(providers)}); "
                "install onnxruntime-gpu on a machine with an NVIDIA GPU"
            )
    if target is Target.TENSORRT and not _installed("tensorrt"):
        return "TensorRT is not installed: pip install 'resnet-opt[tensorrt]'"
    return None


# -- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetPlan:
    """The targets one artifact will be measured on, and the ones left out (with why)."""

    targets: tuple[Target, ...]
    skipped: tuple[tuple[Target, str], ...] = ()


# the target of each backend's build artifacts before its runner options are read
_BUILD_TARGETS = {
    Backend.TENSORRT: Target.TENSORRT,
    Backend.ONNXRUNTIME: Target.ONNXRUNTIME,
    Backend.OPENVINO: Target.OPENVINO,
}


def build_target(manifest: Manifest, name: str) -> Target:
    """The target a build artifact runs on (its runner loads it with the manifest's options)."""
    named = manifest.details.get("backend")
    backend = next((b for b in BUILD_BACKENDS if b.value == named), None)
    if backend is None:
        raise ResnetOptError(
            f"{name}: its build manifest names backend {named!r}, which bench does not know"
        )
    options = manifest.details.get("runner") or {}
    if not isinstance(options, Mapping):
        raise ResnetOptError(f"{name}: its build manifest's runner options are not a mapping")
    target = _BUILD_TARGETS[backend]
    if target is Target.ONNXRUNTIME:
        providers = list(options.get("providers") or [])
        if TENSORRT_PROVIDER in providers:
            target = Target.ONNXRUNTIME_TENSORRT
        elif CUDA_PROVIDER in providers:
            target = Target.ONNXRUNTIME_CUDA
    return target


def is_torch_source(manifest: Manifest) -> bool:
    """An FP32 export that records the PyTorch model it came from (the eager baseline)."""
    return (
        manifest.stage is Stage.EXPORT
        and manifest.precision is Precision.FP32
        and isinstance(manifest.details.get("source"), Mapping)
    )


def natural_targets(manifest: Manifest) -> tuple[Target, ...]:
    """Every target that applies to a non-build (ONNX) artifact, baseline first."""
    targets = [Target.ONNXRUNTIME, Target.ONNXRUNTIME_CUDA, Target.ONNXRUNTIME_TENSORRT]
    targets.append(Target.OPENVINO)
    if is_torch_source(manifest):
        targets.insert(0, Target.TORCH)
    return tuple(targets)


def _not_applicable(target: Target, manifest: Manifest, built_for: Target | None) -> str:
    if built_for is not None:
        return f"built for {built_for.value}; a build artifact runs on its own backend only"
    if target is Target.TENSORRT:
        return "TensorRT runs engines: build one with resnet-opt build --backend tensorrt"
    if target is Target.TORCH:
        return "PyTorch eager runs an FP32 export made by resnet-opt export (the source) only"
    return f"{target.value} does not run a {manifest.stage.value} artifact"


def plan_targets(
    name: str,
    manifest: Manifest,
    requested: Sequence[Target] | None,
    unavailable: Callable[[Target], str | None] = why_unavailable,
) -> TargetPlan:
    """Choose the targets of one artifact (module docstring: auto vs named backends)."""
    built_for: Target | None = None
    if manifest.stage is Stage.BUILD:
        built_for = build_target(manifest, name)
        natural: tuple[Target, ...] = (built_for,)
    else:
        natural = natural_targets(manifest)
    chosen: list[Target] = []
    skipped: list[tuple[Target, str]] = []
    if requested is None:
        for target in natural:
            reason = unavailable(target)
            if reason is None:
                chosen.append(target)
            elif built_for is not None:
                raise ResnetOptError(
                    f"{name}: built for {target.value}, which cannot run here: {reason}"
                )
            elif target.provider is None:
                skipped.append((target, reason))
    else:
        for target in requested:
            if target not in natural:
                skipped.append((target, _not_applicable(target, manifest, built_for)))
                continue
            reason = unavailable(target)
            if reason is not None:
                raise ResnetOptError(f"{name}: backend {target.value} cannot run here: {reason}")
            chosen.append(target)
        if not chosen:
            why = "; ".join(f"{t.value}: {r}" for t, r in skipped)
            raise ResnetOptError(f"{name}: none of the requested backends runs it ({why})")
    return TargetPlan(tuple(chosen), tuple(skipped))
