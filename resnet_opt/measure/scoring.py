"""Scoring: top-1 / top-5 of runners over one batch stream, and their top-1 agreement.

Shared by `resnet-opt eval` (resnet_opt.pipeline.evaluate), bench's accuracy column
(resnet_opt.measure.accuracy) and export's check against the source model, so every accuracy figure
the tool prints is counted by the same code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from resnet_opt.calibration.data import BatchStream
from resnet_opt.core.progress import ProgressCallback
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Runner, run_batch


@dataclass(frozen=True)
class Accuracy:
    top1: float  # percent
    top5: float  # percent
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_finite_outputs(logits: np.ndarray) -> None:
    """Refuse NaN or ±inf outputs: argmax of all-NaN logits is class 0 for every sample, which
    scored a broken model "top-1 7.81 %" (one class in thirteen) with exit 0."""
    finite = np.isfinite(logits).reshape(len(logits), -1).all(axis=1)
    if not finite.all():
        bad = int((~finite).sum())
        raise ResnetOptError(
            f"the model's outputs are not finite (NaN or ±inf) for {bad} of {len(logits)} "
            "samples in a batch: its accuracy cannot be scored (a broken export, an fp16 "
            "overflow, or inputs outside the preprocessing contract)"
        )


class Tally:
    """Top-1 / top-5 hits of logit batches against their labels (model class indices)."""

    def __init__(self) -> None:
        self.top1 = 0
        self.top5 = 0
        self.count = 0

    def update(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        check_finite_outputs(logits)
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


def evaluate_runners(
    candidate: Runner,
    stream: BatchStream,
    mapping: np.ndarray,
    reference: Runner | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[Accuracy, Accuracy | None, float | None]:
    """(candidate accuracy, reference accuracy, top-1 agreement %) over one stream;
    `progress(consumed, total)` after each batch (skipped samples count as consumed)."""
    cand, ref = Tally(), Tally()
    agree = 0
    for batch in stream:
        if batch.labels is None:
            raise ResnetOptError(f"{stream.source.description}: unlabelled samples")
        labels = mapping[batch.labels]
        best = cand.update(run_batch(candidate, batch.x), labels)
        if reference is not None:
            agree += int((ref.update(run_batch(reference, batch.x), labels) == best).sum())
        if progress is not None:
            progress(stream.used + len(stream.skipped), len(stream.indices))
    if reference is None:
        return cand.result(), None, None
    return cand.result(), ref.result(), 100.0 * agree / cand.count
