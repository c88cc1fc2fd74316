"""`resnet-opt fold`: BatchNormalization folded into the Conv/Gemm before it, verified."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import (
    ForceOption,
    ForceThreadsOption,
    JsonOption,
    OrtThreadsOption,
    check_threads,
)
from resnet_opt.console import emit_json, say
from resnet_opt.core.stage_details import FoldDetails

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest

Model = Annotated[Path, typer.Argument(help="ONNX model (any exporter; manifest optional).")]
Output = Annotated[
    Path, typer.Option("--output", "-o", help="Folded ONNX to write (plus its .json manifest).")
]
Tolerance = Annotated[
    float,
    typer.Option(min=0.0, help="Largest max-abs output difference accepted in verification."),
]
InputShape = Annotated[
    str | None,
    typer.Option(
        help="One sample's shape without the batch, e.g. 3,224,224; needed only when the "
        "input dims are symbolic and no manifest gives the image size."
    ),
]
Samples = Annotated[int, typer.Option(min=1, help="Random inputs to verify with.")]
BatchSize = Annotated[int, typer.Option(min=1)]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the random inputs.")]


@command("fold")
def fold_command(
    model: Model,
    output: Output,
    tolerance: Tolerance = 1e-3,
    input_shape: InputShape = None,
    samples: Samples = 8,
    batch_size: BatchSize = 4,
    seed: Seed = 0,
    threads: OrtThreadsOption = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Fold BatchNormalization into the Conv/Gemm before it; verify outputs with ONNX Runtime."""
    from resnet_opt.cli.params import parse_shape
    from resnet_opt.pipeline.fold import FoldOptions, fold

    options = FoldOptions(
        tolerance=tolerance,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        input_shape=parse_shape(input_shape) if input_shape is not None else None,
        threads=check_threads(threads, force_threads),
    )
    manifest = fold(model, output, options, force=force)
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
    else:
        for line in summary_lines(manifest, output):
            say(line)


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """What a person reads after `fold`: how many were folded, what was left and why."""
    details = manifest.read_details(FoldDetails)
    batchnorm, left = details.batchnorm, details.batchnorm.left
    check = manifest.verification
    lines = [
        f"{output}: folded {batchnorm.folded} BatchNormalization, left "
        f"{len(left)}; max abs error {check['max_abs_error']:.2e} over {check['samples']} "
        f"random inputs (tolerance {check['tolerance']:g})"
    ]
    constants = details.constants
    if constants is not None and constants.folded:
        ops = ", ".join(f"{n} {op}" for op, n in constants.by_op.items())
        lines.append(f"  first folded {constants.folded} constant nodes into initializers ({ops})")
    lines += [f"  left {entry.node}: {entry.reason}" for entry in left]
    return lines
