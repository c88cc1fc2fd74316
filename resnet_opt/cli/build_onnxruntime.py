"""`resnet-opt build onnxruntime`: an ONNX Runtime artifact for the CPU (or its GPU providers)."""

from __future__ import annotations

from typing import Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.build import (
    CpuThreads,
    InputShape,
    Output,
    Samples,
    Source,
    Tolerance,
    build_app,
    cpu_common,
    finish,
)
from resnet_opt.cli.params import ForceOption, ForceThreadsOption, JsonOption


@command("onnxruntime", group=build_app)
def onnxruntime_command(
    ctx: typer.Context,
    source: Source,
    output: Output,
    optimization: Annotated[
        str | None,
        typer.Option(help="Graph optimization: disabled, basic, extended, all \\[default: all]."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Execution provider: cpu, cuda, tensorrt \\[default: cpu].")
    ] = None,
    portable: Annotated[
        bool, typer.Option("--portable", help="No CPU-family-specific (NCHWc) layout.")
    ] = False,
    threads: CpuThreads = None,
    input_shape: InputShape = None,
    samples: Samples = None,
    tolerance: Tolerance = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """An ONNX Runtime artifact (.onnx optimized, or .ort), checked against its source."""
    from resnet_opt.cli.params import fill
    from resnet_opt.pipeline.build import build
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, summary_lines
    from resnet_opt.pipeline.bundle import verify_if_bundled

    options = fill(
        OrtBuildOptions,
        ctx.params,
        **cpu_common(ctx.params),
    )
    verify_if_bundled(source)  # a bundled ONNX: its files against bundle.json first
    manifest = build(source, output, options, force=force)
    finish(manifest, output, json_output, summary_lines(manifest, output))
