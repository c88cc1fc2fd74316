"""`resnet-opt build tensorrt`: a TensorRT engine (.plan), for a GPU or a Jetson's DLA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.build import Output, Source, build_app, finish
from resnet_opt.cli.params import ForceOption, JsonOption
from resnet_opt.console import say

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest
    from resnet_opt.tensorrt.options import TensorRtBuildOptions

Batch = Annotated[
    str | None,
    typer.Option(
        help="The profile, N or min:opt:max \\[default: the ONNX's fixed batch, else 1:8:32]."
    ),
]
Workspace = Annotated[
    str | None,
    typer.Option(help="Workspace memory pool limit, e.g. 2G, 512M \\[default: TensorRT's]."),
]
OptLevel = Annotated[
    int | None,
    typer.Option(min=0, max=5, help="Builder optimization level 0-5 \\[default: 3]."),
]
TimingCache = Annotated[
    Path | None,
    typer.Option(help="Timing cache file: read if present, updated after the build."),
]
DlaCore = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Build for this DLA core (Jetson Orin) with GPU fallback: TensorRT <= 10.7 "
        "(implicit INT8 from the calibration cache quantize wrote, or FP16) or >= 11.4.1 "
        "(fp16 / Q/DQ int8 ONNX).",
    ),
]
CalibCache = Annotated[
    Path | None,
    typer.Option(
        help="TensorRT 10 DLA INT8: the calibration cache \\[default: the one the INT8 "
        "ONNX's manifest names]."
    ),
]
VersionCompatible = Annotated[
    bool, typer.Option("--version-compatible", help="A plan later TensorRT versions can load.")
]
HardwareCompatible = Annotated[
    bool,
    typer.Option(
        "--hardware-compatible", help="A plan for any Ampere or newer GPU (not on Jetson)."
    ),
]
SameComputeCapability = Annotated[
    bool,
    typer.Option(
        "--same-compute-capability",
        help="TensorRT >= 10.9: a plan for any GPU of this compute capability.",
    ),
]
NoVerify = Annotated[
    bool, typer.Option("--no-verify", help="Skip running the engine against ONNX Runtime.")
]
EngineCache = Annotated[
    Path | None,
    typer.Option(
        help="A folder of engines keyed by model sha256, precision, options, GPU, L4T and "
        "TensorRT version; an engine built before is copied, not rebuilt."
    ),
]


@command("tensorrt", group=build_app)
def tensorrt_command(
    ctx: typer.Context,
    source: Source,
    output: Output,
    batch: Batch = None,
    workspace: Workspace = None,
    opt_level: OptLevel = None,
    timing_cache: TimingCache = None,
    dla_core: DlaCore = None,
    calib_cache: CalibCache = None,
    version_compatible: VersionCompatible = False,
    hardware_compatible: HardwareCompatible = False,
    same_compute_capability: SameComputeCapability = False,
    no_verify: NoVerify = False,
    engine_cache: EngineCache = None,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """A TensorRT engine, run against ONNX Runtime on the source unless --no-verify."""
    from resnet_opt.pipeline.build_tensorrt import summary_lines
    from resnet_opt.pipeline.bundle import verify_if_bundled

    options = _options(ctx.params)
    verify_if_bundled(source)  # a bundled ONNX: its files against bundle.json first
    if engine_cache is not None:
        manifest = _cached(source, output, options, engine_cache, force=force)
    else:
        from resnet_opt.pipeline.build import build

        manifest = build(source, output, options, force=force)
    finish(manifest, output, json_output, summary_lines(manifest, output))


def _options(params: dict[str, Any]) -> TensorRtBuildOptions:
    from resnet_opt.cli.params import fill
    from resnet_opt.errors import UsageError
    from resnet_opt.tensorrt.options import TensorRtBuildOptions
    from resnet_opt.tensorrt.versions import HardwareCompat

    any_gpu, same_cc = params["hardware_compatible"], params["same_compute_capability"]
    if any_gpu and same_cc:
        raise UsageError(
            "--hardware-compatible and --same-compute-capability are two levels: pick one"
        )
    return fill(
        TensorRtBuildOptions,
        params,
        hardware_compatible=HardwareCompat.AMPERE_PLUS
        if any_gpu
        else HardwareCompat.SAME_COMPUTE_CAPABILITY
        if same_cc
        else None,
        verify=not params["no_verify"],
    )


def _cached(
    source: Path, output: Path, options: TensorRtBuildOptions, cache: Path, *, force: bool
) -> Manifest:
    """The engine from `cache` when one was built for this model, options, GPU and TensorRT."""
    from resnet_opt.pipeline.engine_cache import build_cached

    cached = build_cached(source, output, options, cache=cache, force=force)
    if cached.note:
        say(cached.note)
    if cached.hit:
        say(
            f"engine cache: {cached.entry.name} was built for this model, options, GPU and "
            "TensorRT; copied, not rebuilt"
        )
    return cached.manifest
