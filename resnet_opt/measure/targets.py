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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from resnet_opt.backends.onnxruntime import CUDA_PROVIDER, TENSORRT_PROVIDER
from resnet_opt.backends.registry import Target, build_backends, targets_of, unit
from resnet_opt.backends.spec import Natural, module_of
from resnet_opt.core.build_details import built_backend
from resnet_opt.core.manifest import Manifest, Precision, Stage
from resnet_opt.core.stage_details import records_model_source
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.runners.loaders import backend_of, runner_details

__all__ = [
    "CUDA_PROVIDER",
    "TENSORRT_PROVIDER",
    "Target",
    "TargetPlan",
    "build_target",
    "natural_targets",
    "parse_targets",
    "plan_targets",
    "target_of_artifact",
    "why_unavailable",
    "with_built_targets",
]


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
    """None when `target` can run on this machine, else why not (one phrase): its runner, the
    modules its unit says it needs, and the execution provider it asks for.

    TensorRT engines are checked against their manifest separately (device and version).
    """
    runner_module = module_of(unit(target.backend).runner)
    if not _installed(runner_module):
        return f"this resnet-opt has no {target.backend.value} runner ({runner_module})"
    for module, why in target.spec.requires:
        if not _installed(module):
            return why
    if target.provider is not None:
        providers = ort_providers()
        if target.provider not in providers:
            return (
                f"this onnxruntime has no {target.provider} (available: {', '.join(providers)}); "
                "install onnxruntime-gpu on a machine with an NVIDIA GPU"
            )
    return None


# -- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetPlan:
    """The targets one artifact will be measured on, and the ones left out (with why)."""

    targets: tuple[Target, ...]
    skipped: tuple[tuple[Target, str], ...] = ()


def build_target(manifest: Manifest, name: str) -> Target:
    """The target a build artifact runs on (its runner loads it with the manifest's options):
    its backend's, or the one of its targets whose execution provider the build recorded (the
    later declared wins: ONNX Runtime's TensorRT provider over its CUDA one)."""
    backend = backend_of(manifest)
    if backend is None or backend not in build_backends():
        raise ResnetOptError(
            f"{name}: its build manifest names backend {built_backend(manifest)!r}, which bench "
            "does not know"
        )
    details = runner_details(manifest, name)
    providers = details.providers if details is not None else ()
    targets = targets_of(backend)
    chosen = targets[0]
    for target in targets:
        if target.provider is not None and target.provider in providers:
            chosen = target
    return chosen


def target_of_artifact(manifest: Manifest | None, name: str) -> Target | None:
    """The one target a build artifact runs on; None for any other artifact (its targets are
    chosen by `natural_targets`). The rule bench and `run` both use."""
    if manifest is None or manifest.stage is not Stage.BUILD:
        return None
    return build_target(manifest, name)


def with_built_targets(
    requested: Sequence[Target], artifacts: Sequence[tuple[str, Manifest | None]]
) -> tuple[Target, ...]:
    """`requested` and, after them, the target of each build artifact among `artifacts` (name,
    manifest) that is not requested: `run` benches what it built on its own backend whatever
    `bench.backends` names, by the same rule as `plan_targets`."""
    wanted = list(requested)
    for name, manifest in artifacts:
        target = target_of_artifact(manifest, name)
        if target is not None and target not in wanted:
            wanted.append(target)
    return tuple(wanted)


def is_torch_source(manifest: Manifest) -> bool:
    """An FP32 export that records the PyTorch model it came from (the eager baseline)."""
    return (
        manifest.stage is Stage.EXPORT
        and manifest.precision is Precision.FP32
        and records_model_source(manifest)
    )


def natural_targets(manifest: Manifest) -> tuple[Target, ...]:
    """Every target that applies to a non-build (ONNX) artifact, in `Target` order (the
    PyTorch baseline first): each target's unit says which artifacts it runs (`Natural`)."""
    torch_source = is_torch_source(manifest)
    return tuple(
        target
        for target in Target
        if target.spec.natural is Natural.ONNX
        or (target.spec.natural is Natural.TORCH_SOURCE and torch_source)
    )


def _not_applicable(target: Target, manifest: Manifest, built_for: Target | None) -> str:
    if built_for is not None:
        return f"built for {built_for.value}; a build artifact runs on its own backend only"
    if target.spec.not_applicable is not None:
        return target.spec.not_applicable
    return f"{target.value} does not run a {manifest.stage.value} artifact"


def plan_targets(
    name: str,
    manifest: Manifest,
    requested: Sequence[Target] | None,
    unavailable: Callable[[Target], str | None] = why_unavailable,
) -> TargetPlan:
    """Choose the targets of one artifact (module docstring: auto vs named backends)."""
    built_for = target_of_artifact(manifest, name)
    natural = (built_for,) if built_for is not None else natural_targets(manifest)
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
