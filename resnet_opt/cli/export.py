"""`resnet-opt export`: a trained ResNet → ONNX, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import ForceOption, ForceThreadsOption, JsonOption, check_threads
from resnet_opt.console import emit_json, say
from resnet_opt.core.stage_details import ExportDetails

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest
    from resnet_opt.models.contract import ContractOptions

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Architecture name (resnet18…resnet152, resnext50_32x4d, wide_resnet50_2, "
        "resnet20…resnet110, resnet20-digits), timm:NAME (its pretrained_cfg preprocessing), "
        "FILE.py:FACTORY, PACKAGE.MODULE:FACTORY, or a TorchScript file (default: the "
        "bundled ResNet-20 on digits).",
    ),
]
Weights = Annotated[
    str | None,
    typer.Option(
        help="Checkpoint (state_dict) path, a torchvision weights name (IMAGENET1K_V2, "
        "DEFAULT; downloaded into the torch cache on first use), pretrained (timm's weights), "
        "or none (random init)."
    ),
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="ONNX file to write (default: <model name>.onnx)."),
]
InputSize = Annotated[int | None, typer.Option(min=1, help="Network input, square.")]
Channels = Annotated[int | None, typer.Option(help="Input channels: 1 or 3.")]
Mean = Annotated[str | None, typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406.")]
Std = Annotated[str | None, typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225.")]
Resize = Annotated[str | None, typer.Option(help="Shorter side before the crop, or none.")]
Crop = Annotated[str | None, typer.Option(help="Centre crop, or none.")]
Filter = Annotated[
    str | None,
    typer.Option(
        "--interpolation",
        help="Resize filter: nearest, bilinear, bicubic (default: the model's).",
    ),
]
Labels = Annotated[
    str | None,
    typer.Option(
        help="Class labels: a text file (one per line, or ImageNet's 'n01440764 tench, …' "
        "lines) or a,b,c."
    ),
]
NumClasses = Annotated[
    int | None,
    typer.Option(min=1, help="Classes of a registry architecture (default: from weights)."),
]
Batch = Annotated[
    int | None, typer.Option(min=1, help="Fixed batch size (default: dynamic batch axis).")
]
Opset = Annotated[
    int | None, typer.Option(help="ONNX opset (default: 17; 18 with --exporter dynamo).")
]
ExporterName = Annotated[
    str,
    typer.Option("--exporter", help="torchscript (any source, fast) or dynamo (torch.export)."),
]
Tolerance = Annotated[
    float, typer.Option(help="Largest max-abs error vs PyTorch, relative to the logits' scale.")
]
Data = Annotated[
    str | None,
    typer.Option(
        help="Real images for the parity check: image folder, .npy/.npz or 'default' "
        "(default: the bundled test split for the bundled model, else none)."
    ),
]
DataSamples = Annotated[
    int | None,
    typer.Option(min=1, help="Images compared from --data (default: 256; bundled: all)."),
]
NoFold = Annotated[
    bool, typer.Option("--no-fold", help="Keep BatchNormalization nodes the exporter left.")
]
TrustPickle = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Allow files that need full unpickling (runs their code)."),
]
Seed = Annotated[int, typer.Option(min=0, help="Seed: random init, parity inputs, samples.")]
Threads = Annotated[
    int | None, typer.Option(min=1, help="Threads for the parity check (torch and ORT).")
]


@command("export")
def export_command(
    ctx: typer.Context,
    model: Model = None,
    weights: Weights = None,
    output: Output = None,
    input_size: InputSize = None,
    channels: Channels = None,
    mean: Mean = None,
    std: Std = None,
    resize: Resize = None,
    crop: Crop = None,
    interpolation: Filter = None,
    labels: Labels = None,
    num_classes: NumClasses = None,
    batch: Batch = None,
    opset: Opset = None,
    exporter: ExporterName = "torchscript",
    tolerance: Tolerance = 1e-3,
    data: Data = None,
    data_samples: DataSamples = None,
    no_fold: NoFold = False,
    trust_pickle: TrustPickle = False,
    seed: Seed = 0,
    threads: Threads = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Export a trained ResNet to ONNX (BatchNorm folded), verified against PyTorch."""
    from resnet_opt.cli.params import fill
    from resnet_opt.pipeline.export import ExportOptions, default_output, export

    options = fill(
        ExportOptions,
        ctx.params,
        contract=_contract(input_size, channels, mean, std, resize, crop, interpolation, labels),
        fold=not no_fold,
        threads=check_threads(threads, force_threads),
    )
    target = output if output is not None else default_output(model)
    manifest = export(model, target, options, force=force)
    if json_output:
        emit_json({"output": str(target), **manifest.to_dict()})
    else:
        for line in summary_lines(manifest, target):
            say(line)


def _contract(
    input_size: int | None,
    channels: int | None,
    mean: str | None,
    std: str | None,
    resize: str | None,
    crop: str | None,
    interpolation: str | None,
    labels: str | None,
) -> ContractOptions:
    """The preprocessing the command line overrides (None: the model's own)."""
    from resnet_opt.cli.params import optional_choice
    from resnet_opt.core.contract import Interpolation, parse_floats
    from resnet_opt.models.contract import ContractOptions, parse_size
    from resnet_opt.models.labels import parse_class_labels

    classes = parse_class_labels(labels) if labels is not None else None
    return ContractOptions(
        input_size=input_size,
        channels=channels,
        mean=parse_floats(mean, "--mean") if mean is not None else None,
        std=parse_floats(std, "--std") if std is not None else None,
        resize=parse_size(resize, "--resize") if resize is not None else None,
        crop=parse_size(crop, "--crop") if crop is not None else None,
        interpolation=optional_choice(Interpolation, interpolation, "--interpolation"),
        labels=classes.names if classes is not None else None,
        class_ids=classes.ids if classes is not None else None,
    )


def summary_lines(manifest: Manifest, target: Path) -> list[str]:
    """What a person reads after `export`: the model, its parity checks, its BatchNorm, input."""
    details, check = manifest.read_details(ExportDetails), manifest.verification
    contract = manifest.preprocessing
    assert contract is not None
    batch_text = "dynamic batch" if details.dynamic_batch else f"batch {details.batch}"
    lines = [
        f"{target}: {details.model} ({details.parameters / 1e6:.2f}M parameters, "
        f"{details.num_classes} classes), opset {details.opset}, {batch_text}, "
        f"{target.stat().st_size / 1e6:.1f} MB",
        f"  parity with PyTorch: max abs error {check['max_abs_error']:.2e} on {check['samples']} "
        f"random inputs (tolerance {check['tolerance']:.2e}), top-1 agreement "
        f"{check['top1_agreement']:.1f}%",
    ]
    if "data" in check:
        real = check["data"]
        lines.append(
            f"  on {real['data']}: max abs error {real['max_abs_error']:.2e} on "
            f"{real['samples']} images, top-1 agreement {real['top1_agreement']:.1f}%"
        )
    accuracy = check.get("accuracy") or {}
    if "pytorch_top1" in accuracy:
        lines.append(
            f"  top-1: PyTorch {accuracy['pytorch_top1']:.2f}%, ONNX Runtime "
            f"{accuracy['onnxruntime_top1']:.2f}% ({accuracy['count']} images)"
        )
    bn = details.batchnorm
    lines.append(
        f"  BatchNorm: {bn.in_model} in the model; folded by the exporter "
        f"{bn.folded_by['exporter']}, by the fold pass {bn.folded_by['fold']}; "
        f"left {len(bn.left)}"
    )
    spatial = (
        f"resize {contract.resize}, crop {contract.crop}"
        if contract.resize or contract.crop
        else "scaled straight"
    )
    lines.append(
        f"  input {contract.channels}×{contract.input_size}×{contract.input_size} "
        f"({spatial}, {contract.interpolation.value}; from {details.contract_origin})"
    )
    return lines
