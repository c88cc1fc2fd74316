"""Top-1 / top-5 of an artifact on labelled data, and its drop against a reference artifact.

Quantize writes these figures into its manifest and bench reports them; both call `evaluate`.
Candidate and reference run on the very same batches (one stream, lock-step), so agreement and
drop are measured on identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.calibration.data import (
    BatchStream,
    DataSource,
    Split,
    check_modes,
    converted_modes,
    label_map,
    open_source,
    report_conversions,
    select_indices,
)
from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.fields import take_choices
from resnet_opt.core.manifest import Manifest, check_artifact_hash, dump_json, read_manifest
from resnet_opt.environment import cpu_int8_family
from resnet_opt.errors import ResnetOptError
from resnet_opt.measure.scoring import Accuracy, evaluate_runners
from resnet_opt.runners.base import Backend, open_runner

if TYPE_CHECKING:
    from resnet_opt.core.progress import ProgressCallback

DEFAULT_EVAL_BATCH = 32


@dataclass(frozen=True)
class EvalOptions:
    """`eval`'s options besides the artifact: DATA (an image folder, .npy/.npz, or 'default',
    the bundled test split) and how to read and run it."""

    data: str = "default"
    data_labels: Path | None = None  # a FILE LABEL list: `data` is a flat folder of its images
    reference: Path | None = None
    contract: PreprocessContract | None = None
    samples: int | None = None
    seed: int = 0
    batch_size: int = DEFAULT_EVAL_BATCH
    threads: int | None = None
    strict: bool = False
    backend: Backend = Backend.ONNXRUNTIME

    def __post_init__(self) -> None:
        take_choices(self)


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of one artifact, with the reference's accuracy and the difference when given."""

    artifact: str
    data: str
    accuracy: Accuracy
    skipped: int
    reference: Accuracy | None = None
    top1_agreement: float | None = None  # percent of samples with the reference's top-1
    drop_points: float | None = None  # reference top-1 minus this top-1, in points
    # the int8 instructions of the CPU that measured it (an int8 figure holds for that family)
    cpu_int8_family: str | None = None
    # {original mode: images} converted to the model's mode (grayscale, CMYK … to RGB)
    converted: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "data": self.data,
            **self.accuracy.to_dict(),
            "skipped": self.skipped,
            "reference": self.reference.to_dict() if self.reference else None,
            "top1_agreement": self.top1_agreement,
            "drop_points": self.drop_points,
            "cpu_int8_family": self.cpu_int8_family,
            "converted": self.converted or {},
        }


def contract_of(artifact: Path, given: PreprocessContract | None = None) -> PreprocessContract:
    """The preprocessing contract from `artifact`'s manifest (the artifact checked against its
    hash), or the one given explicitly."""
    if given is not None:
        return given
    manifest = read_manifest(artifact)
    assert manifest is not None
    check_artifact_hash(artifact, manifest)
    return manifest_contract(artifact, manifest)


def manifest_contract(artifact: Path, manifest: Manifest) -> PreprocessContract:
    """The contract `artifact`'s manifest carries, refused when it carries none."""
    if manifest.preprocessing is None:
        raise ResnetOptError(
            f"{artifact}: its manifest has no preprocessing contract; export the model with "
            "resnet-opt export, or describe it with resnet-opt import MODEL.onnx --input-size "
            "N --mean R,G,B --std R,G,B [--labels FILE], which write one"
        )
    return manifest.preprocessing


def evaluate(
    source: str | Path,
    output: str | Path | None = None,
    options: EvalOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Evaluation:
    """Top-1 / top-5 of the artifact `source` (through `options.backend`'s runner) on
    `options.data`, and its drop against `options.reference` when given.

    With `output`, the result is also written there, as the JSON object `eval --json` prints; it
    is checked before anything is evaluated. `progress(consumed, total)` is called as the
    samples stream through.
    """
    options = options or EvalOptions()
    with staged_outputs(force=force) as staged:
        target = None if output is None else staged.add(Path(output))
        result = _evaluate(Path(source), options, progress)
        if target is not None:
            target.write_text(dump_json(result.to_dict()), encoding="utf-8")
    return result


def _evaluate(
    artifact: Path, options: EvalOptions, progress: ProgressCallback | None
) -> Evaluation:
    """The evaluation itself, apart from `evaluate`'s output file (checked before it runs)."""
    reference, threads = options.reference, options.threads
    contract = contract_of(artifact, options.contract)
    if reference is not None:
        ref_manifest = read_manifest(reference, required=False)
        if ref_manifest is not None:  # a reference that is not what its manifest says is refused
            check_artifact_hash(reference, ref_manifest)
        # a reference without a manifest is taken to share the candidate's preprocessing
        ref_contract = (
            contract if ref_manifest is None else manifest_contract(reference, ref_manifest)
        )
        if ref_contract.fingerprint() != contract.fingerprint():
            raise ResnetOptError(
                f"{reference}: its preprocessing differs from {artifact.name}'s; they cannot "
                "be compared on the same inputs"
            )
    source = open_evaluation_data(options, contract)
    mapping = label_map(source, contract)
    indices = select_indices(len(source), options.samples, options.seed)
    stream = BatchStream(source, contract, indices, options.batch_size, options.strict)
    with open_runner(options.backend, artifact, threads=threads) as cand_runner:
        if reference is None:
            acc, ref_acc, agreement = evaluate_runners(
                cand_runner, stream, mapping, progress=progress
            )
        else:
            with open_runner(Backend.ONNXRUNTIME, reference, threads=threads) as ref_runner:
                acc, ref_acc, agreement = evaluate_runners(
                    cand_runner, stream, mapping, ref_runner, progress=progress
                )
    report_conversions(source, contract, "eval")
    return Evaluation(
        artifact=str(artifact),
        data=source.description,
        accuracy=acc,
        skipped=len(stream.skipped),
        reference=ref_acc,
        top1_agreement=agreement,
        drop_points=None if ref_acc is None else ref_acc.top1 - acc.top1,
        cpu_int8_family=cpu_int8_family().value,
        converted=converted_modes(source),
    )


def open_evaluation_data(options: EvalOptions, contract: PreprocessContract) -> DataSource:
    """The evaluation data `options` name, checked against `contract` without running anything:
    its classes must be the model's (by name or WordNet id), a label list's files must exist,
    and under `strict` every image must be in the model's mode already (its header is read).
    Quantize runs this before calibrating, so that a mistake costs no calibration pass."""
    source = open_source(
        options.data, default_split=Split.TEST, strict=options.strict, labels=options.data_labels
    )
    label_map(source, contract)
    if options.strict:
        check_modes(source, contract)
    return source
