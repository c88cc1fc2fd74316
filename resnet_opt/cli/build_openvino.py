"""`resnet-opt build openvino`: OpenVINO IR or a compiled blob."""

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


@command("openvino", group=build_app)
def openvino_command(
    ctx: typer.Context,
    source: Source,
    output: Output,
    device: Annotated[str | None, typer.Option(help="OpenVINO device \\[default: CPU].")] = None,
    precision_hint: Annotated[
        str | None,
        typer.Option(help="Inference precision: f32, bf16, f16, default \\[default: f32]."),
    ] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Fix a dynamic batch to N.")] = None,
    threads: CpuThreads = None,
    input_shape: InputShape = None,
    samples: Samples = None,
    tolerance: Tolerance = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=100,
            help="Top-1 agreement (percent) with ONNX Runtime on the random inputs required of "
            "a quantized (or non-f32) model \\[default: 90]. On random inputs a network's logits "
            "can be near-tied, and the two runtimes' rounding then flips a few.",
        ),
    ] = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """OpenVINO IR (.xml + .bin) or a compiled blob, checked against ONNX Runtime."""
    from resnet_opt.cli.params import fill, given, optional_choice
    from resnet_opt.pipeline.build import build
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, summary_lines
    from resnet_opt.pipeline.bundle import verify_if_bundled
    from resnet_opt.runners.openvino import OvPrecision

    options = fill(
        OpenVinoBuildOptions,
        ctx.params,
        **given(precision=optional_choice(OvPrecision, precision_hint, "--precision-hint")),
        **cpu_common(ctx.params),
    )
    verify_if_bundled(source)
    manifest = build(source, output, options, force=force)
    finish(manifest, output, json_output, summary_lines(manifest, output))
