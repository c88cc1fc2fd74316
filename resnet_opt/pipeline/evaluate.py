"""Top-1 / top-5 of an artifact on labelled data, and its drop against a reference artifact.

Quantize writes these figures into its manifest and bench reports them; both call `evaluate`.
Candidate and reference run on the very same batches (one stream, lock-step), so agreement and
drop are measured on identical inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.calibration.data import BatchStream, Split, label_map, open_source, select_indices
from resnet_opt.calibration.preprocess import PreprocessContract
from resnet_opt.cpu_int8 import cpu_int8_family
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.artifacts import Manifest, check_artifact_hash, read_manifest
from resnet_opt.runners.base import Backend, Runner, open_runner, run_batch

DEFAULT_EVAL_BATCH = 32


@dataclass(frozen=True)
class Accuracy:
    top1: float  # percent
    top5: float  # percent
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        }


class Tally:
    """Top-1 / top-5 hits of logit batches against their labels (model class indices)."""

    def __init__(self) -> None:
        self.top1 = 0
        self.top5 = 0
        self.count = 0

    def update(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        k = min(5, logits.shape[1])
        topk = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        best: np.ndarray = logits.argmax(axis=1)
        self.top1 += int((best == labels).sum())
        self.top5 += int((topk == labels[:, None]).any(axis=1).sum())
        self.count += len(labels)
        return best

    def result(self) -> Accuracy:
        if self.count == 0:
            raise ResnetOptError("no labelled samples were evaluated")
        return Accuracy(100.0 * self.top1 / self.count, 100.0 * self.top5 / self.count, self.count)


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
            "resnet-opt export, or quantize it with --input-size/--mean/--std, which write one"
        )
    return manifest.preprocessing


def evaluate_runners(
    candidate: Runner,
    stream: BatchStream,
    mapping: np.ndarray,
    reference: Runner | None = None,
) -> tuple[Accuracy, Accuracy | None, float | None]:
    """(candidate accuracy, reference accuracy, top-1 agreement %) over one stream."""
    cand, ref = Tally(), Tally()
    agree = 0
    for batch in stream:
        if batch.labels is None:
            raise ResnetOptError(f"{stream.source.description}: unlabelled samples")
        labels = mapping[batch.labels]
        best = cand.update(run_batch(candidate, batch.x), labels)
        if reference is not None:
            agree += int((ref.update(run_batch(reference, batch.x), labels) == best).sum())
    if reference is None:
        return cand.result(), None, None
    return cand.result(), ref.result(), 100.0 * agree / cand.count


def evaluate(
    artifact: Path,
    data: str = "default",
    *,
    reference: Path | None = None,
    contract: PreprocessContract | None = None,
    samples: int | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_EVAL_BATCH,
    threads: int | None = None,
    strict: bool = False,
    backend: Backend = Backend.ONNXRUNTIME,
) -> Evaluation:
    """Accuracy of `artifact` (through `backend`'s runner) on DATA (default: bundled test split)."""
    contract = contract_of(artifact, contract)
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
    source = open_source(data, default_split=Split.TEST, strict=strict)
    mapping = label_map(source, contract)
    stream = BatchStream(
        source, contract, select_indices(len(source), samples, seed), batch_size, strict
    )
    with open_runner(backend, artifact, threads=threads) as cand_runner:
        if reference is None:
            acc, ref_acc, agreement = evaluate_runners(cand_runner, stream, mapping)
        else:
            with open_runner(Backend.ONNXRUNTIME, reference, threads=threads) as ref_runner:
                acc, ref_acc, agreement = evaluate_runners(cand_runner, stream, mapping, ref_runner)
    return Evaluation(
        artifact=str(artifact),
        data=source.description,
        accuracy=acc,
        skipped=len(stream.skipped),
        reference=ref_acc,
        top1_agreement=agreement,
        drop_points=None if ref_acc is None else ref_acc.top1 - acc.top1,
        cpu_int8_family=cpu_int8_family().value,
    )
