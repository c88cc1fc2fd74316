"""The `import` stage: an ONNX from another toolchain gets the manifest every later stage reads.

A foreign ONNX (a model zoo's, another exporter's) has no manifest, so nothing knows how its
inputs are preprocessed or what its classes are called. `import` attaches both once: the
preprocessing contract (input size, mean, std, resize, crop, interpolation) and the labels (one
name per line, or ImageNet's `n01440764 tench, …` lines, matched by name or WordNet id), checked
against the graph (the class count from its output, the input's static dims). After that the
file is first-class: `fold`, `quantize`, `eval`, `bench`, `build` and `run` read the contract
from the manifest as they do for an exported model, instead of each command taking the
preprocessing flags again (and a mistake in one of them scoring on the wrong inputs).

Without an output the manifest is written beside the model (MODEL.onnx.json, the model file
untouched); with one, the model is copied there with its manifest.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Stage,
    manifest_path,
    new_manifest,
    read_manifest,
    write_manifest,
)
from resnet_opt.core.naming import OptionUsageError
from resnet_opt.core.stage_details import ImportDetails
from resnet_opt.errors import ResnetOptError
from resnet_opt.models.contract import NONE, SizeOption

if TYPE_CHECKING:
    import onnx

    from resnet_opt.core.progress import ProgressCallback

IMPORT_HINT = (
    "resnet-opt import MODEL.onnx --input-size N --mean R,G,B --std R,G,B [--resize N --crop N] "
    "[--labels FILE]"
)


@dataclass(frozen=True)
class ImportOptions:
    """The model's preprocessing and labels. input_size, mean and std are required (a guessed
    one would quietly score on the wrong inputs); resize/crop as the model was trained
    (None: straight resize to input_size); labels as `models.labels` reads them."""

    input_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: SizeOption = None
    crop: SizeOption = None
    interpolation: Interpolation = Interpolation.BILINEAR
    labels: tuple[str, ...] | None = None
    class_ids: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "mean": list(self.mean) if self.mean else None,
            "std": list(self.std) if self.std else None,
            "resize": self.resize,
            "crop": self.crop,
            "interpolation": self.interpolation.value,
            "labels": len(self.labels) if self.labels is not None else None,
        }


def import_model(
    source: str | Path,
    output: str | Path | None = None,
    options: ImportOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Write the manifest of the foreign ONNX `source` (beside it, or with a copy at `output`).

    `progress` is taken for the shape every stage shares and not called (nothing here is long).
    """
    from resnet_opt.graph import load_onnx

    options = options or ImportOptions()
    source = Path(source)
    target = Path(output) if output is not None else source
    if output is not None and target.resolve() == source.resolve():
        target = source
    model = load_onnx(source)
    existing = read_manifest(source, required=False)
    if existing is not None and target == source and not force:
        raise ResnetOptError(
            f"{source}: has a manifest already ({manifest_path(source).name}, stage "
            f"{existing.stage.value}); pass --force to replace it"
        )
    contract = contract_for(model, source, options)
    sha = sha256_file(source)
    with staged_outputs(force=force) as staged:
        if target == source:
            content, manifest_tmp = source, staged.add(manifest_path(source))
        else:
            content, manifest_tmp = staged.add_with_manifest(target)
            shutil.copyfile(source, content)
        graph = model.graph
        manifest = new_manifest(
            stage=Stage.IMPORT,
            artifact=target,
            content=content,
            precision=_precision(model),
            inputs=(InputRef("model", str(source), sha),),
            preprocessing=contract,
            options={**options.to_dict(), "force": force},
            verification={},
            details=ImportDetails(
                source=str(source.resolve()),
                producer=f"{model.producer_name} {model.producer_version}".strip(),
                opset=_opset(model),
                input=graph.input[0].name if graph.input else None,
                output=graph.output[0].name if graph.output else None,
                num_classes=contract.num_classes,
            ),
        )
        write_manifest(manifest_tmp, manifest)
    return manifest


def _precision(model: onnx.ModelProto) -> Any:
    from resnet_opt.graph import precision_of

    return precision_of(model)[0]


def contract_for(model: onnx.ModelProto, path: Path, options: ImportOptions) -> PreprocessContract:
    """The contract `options` describe, with the class count from the model's output, checked
    against the input's static dims (channels, height, width)."""
    required = (("input_size", options.input_size), ("mean", options.mean), ("std", options.std))
    missing = [name for name, value in required if value is None]
    if missing:
        raise OptionUsageError(
            missing[0],
            lambda n: (
                f"{path}: import needs {', '.join(map(n.option, missing))} (the "
                "preprocessing the model was trained with; a guessed one would score on the wrong "
                "inputs)"
            ),
        )
    assert options.input_size is not None and options.mean is not None
    assert options.std is not None
    classes = output_classes(model, path)
    labels = options.labels
    if labels is not None and len(labels) != classes:
        raise ResnetOptError(
            f"{path}: {len(labels)} labels given, the model's output has {classes} classes"
        )
    contract = PreprocessContract(
        input_size=options.input_size,
        channels=len(options.mean),
        mean=options.mean,
        std=options.std,
        resize=_size(options.resize),
        crop=_size(options.crop),
        interpolation=options.interpolation,
        num_classes=classes,
        labels=labels,
        class_ids=options.class_ids if labels is not None else None,
    )
    dims = _input_dims(model)
    if dims is not None and len(dims) == 4:
        expected = (contract.channels, contract.input_size, contract.input_size)
        axes = ("channels", "height", "width")
        for got, want, what in zip(dims[1:], expected, axes, strict=True):
            if got is not None and got != want:
                raise ResnetOptError(
                    f"{path}: its input takes {what} {got}, the preprocessing gives {want} "
                    f"(input shape {list(dims)}, contract {list(expected)})"
                )
    return contract


def _opset(model: onnx.ModelProto) -> int | None:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else None


def _size(value: SizeOption) -> int | None:
    return None if value in (None, NONE) else int(value)


def output_classes(model: onnx.ModelProto, path: Path) -> int:
    """The class count: the last dim of the model's first output."""
    dims = model.graph.output[0].type.tensor_type.shape.dim if model.graph.output else []
    classes = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else 0
    if classes < 1:
        raise ResnetOptError(f"{path}: cannot tell the number of classes from its output")
    return int(classes)


def _input_dims(model: onnx.ModelProto) -> tuple[int | None, ...] | None:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
