"""`resnet-opt import`: an ONNX from elsewhere gets its preprocessing contract and labels.

Why one command instead of preprocessing flags on every command: the contract lives in the
manifest, and every stage reads it from there (DESIGN §4). Attached once, it serves `fold`,
`quantize`, `eval`, `bench`, `build` and `run` alike, and two commands cannot be given two
different means for the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import ForceOption, JsonOption
from resnet_opt.console import emit_json, say

Model = Annotated[Path, typer.Argument(help="ONNX model from another toolchain.")]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Copy the model here with its manifest (default: write MODEL.onnx.json beside it).",
    ),
]
InputSize = Annotated[int | None, typer.Option(min=1, help="Network input, square (required).")]
Mean = Annotated[
    str | None, typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406 (required).")
]
Std = Annotated[
    str | None, typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225 (required).")
]
Resize = Annotated[str | None, typer.Option(help="Shorter side before the crop, or none.")]
Crop = Annotated[str | None, typer.Option(help="Centre crop, or none.")]
Filter = Annotated[
    str, typer.Option("--interpolation", help="Resize filter: nearest, bilinear, bicubic.")
]
Labels = Annotated[
    str | None,
    typer.Option(
        help="Class labels: a text file, one name per line or ImageNet's 'n01440764 tench, …' "
        "lines (LOC_synset_mapping.txt, synset_words.txt), or a,b,c."
    ),
]


@command("import")
def import_command(
    model: Model,
    output: Output = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    resize: Resize = None,
    crop: Crop = None,
    interpolation: Filter = "bilinear",
    labels: Labels = None,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Give an ONNX from elsewhere its preprocessing and labels (writes its manifest)."""
    from resnet_opt.cli.params import choice
    from resnet_opt.core.contract import Interpolation, parse_floats
    from resnet_opt.models.contract import parse_size
    from resnet_opt.models.labels import parse_class_labels
    from resnet_opt.pipeline.import_model import ImportOptions, import_model

    classes = parse_class_labels(labels) if labels is not None else None
    options = ImportOptions(
        input_size=input_size,
        mean=parse_floats(mean, "--mean") if mean is not None else None,
        std=parse_floats(std, "--std") if std is not None else None,
        resize=parse_size(resize, "--resize") if resize is not None else None,
        crop=parse_size(crop, "--crop") if crop is not None else None,
        interpolation=choice(Interpolation, interpolation, "--interpolation"),
        labels=classes.names if classes is not None else None,
        class_ids=classes.ids if classes is not None else None,
    )
    manifest = import_model(model, output, options, force=force)
    target = output or model
    if json_output:
        emit_json({"output": str(target), **manifest.to_dict()})
        return
    contract = manifest.preprocessing
    assert contract is not None
    named = "no labels" if contract.labels is None else f"{len(contract.labels)} labels"
    ids = " with WordNet ids" if contract.class_ids is not None else ""
    say(
        f"{target}: manifest written ({contract.num_classes} classes, {named}{ids}; input "
        f"{contract.channels}×{contract.input_size}×{contract.input_size}, resize "
        f"{contract.resize}, crop {contract.crop}, {contract.interpolation.value})"
    )
