"""Numerical comparison of two runners' outputs, Polygraphy style.

A comparison carries its own figures (max / mean absolute error, top-1 agreement) and knows
whether it passed its tolerance; the figures go into manifests as they are. It accumulates batch
by batch so that any number of samples can be compared in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from resnet_opt.runners.base import Runner, run_batch


@dataclass(frozen=True)
class Comparison:
    samples: int
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float  # percent of samples whose argmax agrees
    tolerance: float | None

    @property
    def passed(self) -> bool:
        return self.tolerance is None or self.max_abs_error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


class ComparisonAccumulator:
    """Streams reference/candidate logit batches into one Comparison."""

    def __init__(self) -> None:
        self.samples = 0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.count = 0
        self.agree = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if reference.shape != candidate.shape:
            raise ValueError(f"output shapes differ: {reference.shape} vs {candidate.shape}")
        diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
        if not np.isfinite(diff).all():
            self.max_abs = float("inf")
        elif diff.size:
            self.max_abs = max(self.max_abs, float(diff.max()))
        self.sum_abs += float(diff.sum())
        self.count += diff.size
        self.samples += len(reference)
        flat_ref = reference.reshape(len(reference), -1)
        flat_cand = candidate.reshape(len(candidate), -1)
        self.agree += int((flat_ref.argmax(1) == flat_cand.argmax(1)).sum())

    def result(self, tolerance: float | None = None) -> Comparison:
        return Comparison(
            samples=self.samples,
            max_abs_error=self.max_abs,
            mean_abs_error=self.sum_abs / self.count if self.count else 0.0,
            top1_agreement=100.0 * self.agree / self.samples if self.samples else 0.0,
            tolerance=tolerance,
        )


def random_batches(
    shape: tuple[int, ...], samples: int, batch_size: int, seed: int
) -> Iterator[np.ndarray]:
    """Standard-normal inputs: the scale of normalized images, reproducible by seed."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < samples:
        n = min(batch_size, samples - done)
        yield rng.standard_normal((n, *shape), dtype=np.float32)
        done += n


def compare_runners(
    reference: Runner,
    candidate: Runner,
    batches: Iterable[np.ndarray],
    tolerance: float | None = None,
) -> Comparison:
    acc = ComparisonAccumulator()
    for x in batches:
        acc.update(run_batch(reference, x), run_batch(candidate, x))
    return acc.result(tolerance)
