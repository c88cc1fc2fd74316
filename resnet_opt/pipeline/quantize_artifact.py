"""What every artifact of `quantize` gets, int8 or fp16: its score against the FP32 source, the
gate figures, its manifest, and the layers `exclude` keeps in higher precision.

Every artifact is scored on ONNX Runtime CPU against its FP32 source when labelled data is at
hand, and the figures go into the manifest's verification; `max_drop` turns the drop into a
gate there (the stage raises after writing when it failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.details import StageDetails
from resnet_opt.core.manifest import InputRef, Manifest, Precision, Stage, stage_manifest
from resnet_opt.core.naming import OptionError
from resnet_opt.pipeline.quantize_options import NO_EVAL, QuantizeOptions
from resnet_opt.pipeline.quantize_source import QuantizeSource

if TYPE_CHECKING:
    from resnet_opt.pipeline.evaluate import Evaluation
    from resnet_opt.quantization.graph_rules import GraphView


@dataclass(frozen=True)
class QuantizeResult:
    output: Path
    manifest: Manifest
    tensorrt_cache: Path | None


def evaluate_artifact(
    artifact: Path, data: str, source: QuantizeSource, options: QuantizeOptions
) -> Evaluation:
    """`artifact` scored on DATA against the FP32 source (ONNX Runtime CPU)."""
    from resnet_opt.pipeline.evaluate import EvalOptions, evaluate

    return evaluate(
        artifact,
        options=EvalOptions(
            data=data,
            data_labels=options.eval_labels,
            reference=source.path,
            contract=source.contract,
            samples=options.eval_samples,
            seed=options.seed,
            threads=options.threads,
            strict=options.strict,
        ),
    )


def verification_of(
    evaluation: Evaluation | None,
    eval_spec: str | None,
    options: QuantizeOptions,
    artifact_name: str = "",
) -> dict[str, Any]:
    """The manifest's verification: the scores and, with `max_drop`, the gate."""
    if evaluation is None:
        why = (
            "--eval none"
            if options.eval_data == NO_EVAL
            else "no evaluation data (give --eval DATA with labelled images)"
        )
        return {"evaluated": False, "reason": why}
    figures: dict[str, Any] = {
        "evaluated": True,
        "runtime": "onnxruntime-cpu",
        **evaluation.to_dict(),
        "artifact": artifact_name,  # not the temporary file it was scored as
        "eval": eval_spec,
    }
    if options.max_drop is not None and evaluation.drop_points is not None:
        figures["gate"] = {
            "max_drop": options.max_drop,
            "drop_points": evaluation.drop_points,
            "passed": evaluation.drop_points <= options.max_drop,
        }
    return figures


def artifact_manifest(
    source: QuantizeSource,
    *,
    output: Path,
    content: Path,
    precision: Precision,
    inputs: tuple[InputRef, ...],
    options: QuantizeOptions,
    verification: Mapping[str, Any],
    details: StageDetails,
) -> Manifest:
    return stage_manifest(
        source.parent,
        stage=Stage.QUANTIZE,
        artifact=output,
        content=content,
        precision=precision,
        inputs=inputs,
        options=options.to_manifest(),
        verification=verification,
        details=details,
        preprocessing=source.contract,  # the options' contract for a parent without one
    )


def exclusions(view: GraphView, patterns: Sequence[str], allowed: Sequence[str]) -> set[str]:
    """The layers `exclude` names (node names or op types), among those the precision would
    change (`allowed`); a pattern that matches nothing, or names a layer outside `allowed`, is
    refused rather than ignored."""
    from resnet_opt.quantization.graph_rules import match_exclusions

    matched, unknown = match_exclusions(view, patterns)
    if unknown:
        raise OptionError(
            "exclude", f" {', '.join(unknown)}: no node or op type of that name in the model"
        )
    allowed_set = set(allowed)
    named = [p for p in patterns if p in view.by_name and p not in allowed_set]
    if named:
        raise OptionError(
            "exclude",
            f" {', '.join(named)}: not a layer this target quantizes (it already runs in "
            "higher precision)",
        )
    return matched & allowed_set
