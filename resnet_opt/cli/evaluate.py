"""`resnet-opt eval`: top-1 / top-5 of an artifact, and its drop against a reference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import (
    ForceThreadsOption,
    JsonOption,
    OrtThreadsOption,
    SamplesOption,
    StrictOption,
    check_threads,
    warn,
)
from resnet_opt.console import emit_json, say

if TYPE_CHECKING:
    from resnet_opt.pipeline.evaluate import Evaluation

Model = Annotated[Path, typer.Argument(help="ONNX artifact with its manifest.")]
Data = Annotated[
    str,
    typer.Option(
        help="Image folder (class subfolders), .npy/.npz, or 'default' (bundled test split)."
    ),
]
DataLabels = Annotated[
    Path | None,
    typer.Option(
        help="A label list, one 'FILE LABEL' line per image (ImageNet's val.txt): --data is "
        "then a flat folder of those images. LABEL: class index, name or WordNet id."
    ),
]
Reference = Annotated[
    Path | None,
    typer.Option(help="Reference artifact (e.g. the FP32 source) for agreement and drop."),
]
Seed = Annotated[int, typer.Option(min=0, help="Seed for --samples.")]
BatchSize = Annotated[int, typer.Option(min=1)]
MaxDrop = Annotated[
    float | None,
    typer.Option(
        min=0.0, help="Exit 3 when top-1 drops more than this many points vs --reference."
    ),
]


@command("eval")
def eval_command(
    ctx: typer.Context,
    model: Model,
    data: Data = "default",
    data_labels: DataLabels = None,
    reference: Reference = None,
    samples: SamplesOption = None,
    seed: Seed = 0,
    batch_size: BatchSize = 32,
    threads: OrtThreadsOption = None,
    max_drop: MaxDrop = None,
    strict: StrictOption = False,
    force_threads: ForceThreadsOption = False,
    json_output: JsonOption = False,
) -> None:
    """Top-1 / top-5 of an ONNX artifact, and its drop against a reference."""
    from resnet_opt.cli.params import fill
    from resnet_opt.errors import QualityGateError, UsageError
    from resnet_opt.pipeline.evaluate import EvalOptions, evaluate
    from resnet_opt.quantization.saturation import warning_for

    if max_drop is not None and reference is None:
        raise UsageError("--max-drop needs --reference (the drop is measured against it)")
    warn(warning_for([model]))
    options = fill(EvalOptions, ctx.params, threads=check_threads(threads, force_threads))
    result = evaluate(model, None, options)
    if json_output:
        emit_json(result.to_dict())
    else:
        say(summary_line(model, result))
    if max_drop is not None and result.drop_points is not None and result.drop_points > max_drop:
        raise QualityGateError(
            f"top-1 dropped {result.drop_points:.2f} points, over --max-drop {max_drop}"
        )


def summary_line(model: Path, result: Evaluation) -> str:
    acc = result.accuracy
    line = f"{model.name}: top-1 {acc.top1:.2f}%  top-5 {acc.top5:.2f}%  ({acc.count} images)"
    if result.reference is not None and result.drop_points is not None:
        line += (
            f"; reference top-1 {result.reference.top1:.2f}%, drop "
            f"{result.drop_points:+.2f} points, agreement {result.top1_agreement:.2f}%"
        )
    return line
