"""`resnet-opt quantize`: FP32 ONNX → INT8 (explicit Q/DQ) or FP16, scored against FP32.

Each flag fills one field of the stage's schema, `QuantizeOptions` (which `run`'s TOML
`[[quantize]]` tables fill too): a new quantize option is a field there, a flag here, and the code
that uses it.
"""

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
    StrictOption,
    check_threads,
)
from resnet_opt.console import counting_bar, emit_json, say

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest

Model = Annotated[Path, typer.Argument(help="FP32 ONNX (BatchNorm folded) with its manifest.")]
Output = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="ONNX to write (plus .json manifest; int8 tensorrt: .trt-calib.cache too).",
    ),
]
PrecisionFlag = Annotated[str, typer.Option("--precision", help="int8 (explicit Q/DQ) or fp16.")]
TargetFlag = Annotated[
    str | None,
    typer.Option(
        help="int8 layout: tensorrt (symmetric s8, TensorRT's Conv+Add fusion), cpu "
        "(u8/s8, ONNX Runtime's fastest) or openvino (NNCF's layout, which OpenVINO's "
        "low-precision transformations fold fully) (default: tensorrt)."
    ),
]
MethodFlag = Annotated[
    str | None,
    typer.Option(help="Range calibration: max, percentile, entropy, mse (default: entropy)."),
]
Percentile = Annotated[
    float | None, typer.Option(help="With --method percentile (default: 99.99).")
]
Calib = Annotated[
    str | None,
    typer.Option(
        help="Calibration data: image folder, .npy/.npz, or default (bundled split) "
        "(default: the bundled calib split for the bundled model)."
    ),
]
CalibSamples = Annotated[
    int | None,
    typer.Option(min=1, help="Calibration samples, seeded draw (default: 512, or all there are)."),
]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the calibration/evaluation draws.")]
CalibCache = Annotated[
    Path | None,
    typer.Option(help="Statistics cache: reused when its keys match, written when absent."),
]
Eval = Annotated[
    str | None,
    typer.Option(
        "--eval",
        help="Labelled data to score the result against the FP32 input, or none "
        "(default: the bundled test split for the bundled model).",
    ),
]
EvalLabels = Annotated[
    Path | None,
    typer.Option(
        help="A label list, one 'FILE LABEL' line per image (ImageNet's val.txt): --eval is "
        "then a flat folder of those images. LABEL: class index, name or WordNet id."
    ),
]
EvalSamples = Annotated[
    int | None, typer.Option(min=1, help="Score a seeded subset of this many images.")
]
MaxDrop = Annotated[
    float | None,
    typer.Option(help="Exit 3 when top-1 drops more than this many points (file kept)."),
]
AccuracyBudget = Annotated[
    float | None,
    typer.Option(
        help="int8: keep the most sensitive layers in higher precision until the "
        "drop is at most this many points."
    ),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option(help="Node name or op type kept in higher precision (repeat, or a,b)."),
]
KeepIoTypes = Annotated[
    bool, typer.Option("--keep-io-types", help="fp16: keep fp32 inputs and outputs.")
]
InputSize = Annotated[
    int | None, typer.Option(min=1, help="Without a manifest: network input size.")
]
Mean = Annotated[str | None, typer.Option(help="Without a manifest: per-channel mean.")]
Std = Annotated[str | None, typer.Option(help="Without a manifest: per-channel std.")]
Resize = Annotated[
    int | None, typer.Option(min=1, help="Without a manifest: shorter side before the crop.")
]
Crop = Annotated[int | None, typer.Option(min=1, help="Without a manifest: centre crop.")]
TensorRtVersion = Annotated[
    str | None,
    typer.Option(
        help="int8 tensorrt target: the TensorRT that reads the calibration cache "
        "(default: 10.3.0, JetPack 6.1/6.2's)."
    ),
]
ReduceRange = Annotated[
    bool | None,
    typer.Option(
        "--reduce-range/--no-reduce-range",
        help="int8 cpu target: --reduce-range: 7-bit weights everywhere ([-64, 64], ONNX "
        "Runtime's reduce_range); --no-reduce-range: full 8 bits as rounded, for "
        "VNNI/AMX/Arm-dotprod CPUs only (on x86 without VNNI their u8×s8 sums saturate). "
        "Default: 8 bits with the few weight pairs that could saturate moved to the "
        "largest safe sum (and 7 bits in the first layer): safe on every CPU.",
        show_default=False,
    ),
]
BiasCorrection = Annotated[
    bool | None,
    typer.Option(
        "--bias-correction/--no-bias-correction",
        help="int8: fold the mean output shift that rounding each layer's weights causes "
        "(measured on the calibration data) into its bias (default: on).",
        show_default=False,
    ),
]


@command("quantize")
def quantize_command(
    ctx: typer.Context,
    model: Model,
    output: Output,
    precision: PrecisionFlag = "int8",
    target: TargetFlag = None,
    method: MethodFlag = None,
    percentile: Percentile = None,
    calib: Calib = None,
    calib_samples: CalibSamples = None,
    seed: Seed = 0,
    calib_cache: CalibCache = None,
    eval_data: Eval = None,
    eval_labels: EvalLabels = None,
    eval_samples: EvalSamples = None,
    max_drop: MaxDrop = None,
    accuracy_budget: AccuracyBudget = None,
    exclude: Exclude = None,
    keep_io_types: KeepIoTypes = False,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    resize: Resize = None,
    crop: Crop = None,
    tensorrt_version: TensorRtVersion = None,
    reduce_range: ReduceRange = None,
    bias_correction: BiasCorrection = None,
    strict: StrictOption = False,
    threads: OrtThreadsOption = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """INT8 (explicit Q/DQ for TensorRT or the CPU) or FP16, scored against the FP32 input."""
    from resnet_opt.cli.params import fill
    from resnet_opt.pipeline.quantize import QuantizeGateError, quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions, contract_from_options

    options = fill(
        QuantizeOptions,
        ctx.params,
        exclude=tuple(p.strip() for e in exclude or () for p in e.split(",") if p.strip()),
        threads=check_threads(threads, force_threads),
        preprocessing=contract_from_options(
            model, input_size=input_size, mean=mean, std=std, resize=resize, crop=crop
        ),
    )
    try:
        with counting_bar("calibrating") as progress:
            result = quantize(model, output, options, force=force, progress=progress)
    except QuantizeGateError as gate:
        _report(gate.result.manifest, output, json_output)
        raise
    _report(result.manifest, output, json_output)


def _report(manifest: Manifest, output: Path, json_output: bool) -> None:
    from resnet_opt.quantization.report import summary_lines

    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
    else:
        for line in summary_lines(manifest, output):
            say(line)
