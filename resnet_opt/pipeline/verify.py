"""Numerical comparison of two runners' outputs, Polygraphy style.

A comparison carries its own figures (max / mean absolute error, top-1 agreement) and knows
whether it passed its tolerance; the figures go into manifests as they are. It accumulates batch
by batch so that any number of samples can be compared in constant memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.core.validation import count, positive_count, thread_count
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.runners.base import Dim, Runner, TensorSpec, run_batch, single_input

if TYPE_CHECKING:
    from resnet_opt.core.contract import PreprocessContract


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
    from resnet_opt.core.validation import check_fits

    check_fits((min(batch_size, samples), *shape), "random verification inputs")
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


@dataclass(frozen=True)
class Feed:
    """The random inputs a stage verifies with: batch size, one sample's shape, sample count."""

    batch: int
    sample_shape: tuple[int, ...]
    samples: int


def verification_feed(
    spec: TensorSpec,
    source: Path,
    contract: PreprocessContract | None,
    input_shape: tuple[int, ...] | None,
    samples: int,
    batch_size: int,
) -> Feed:
    """The verification input shape: fixed dims from the model, symbolic ones from the user's
    --input-shape or the manifest's contract (a foreign ONNX may have neither: then refuse)."""
    if not spec.shape:
        raise ResnetOptError(f"{source}: input {spec.name!r} is a scalar; it has no batch axis")
    batch_dim, dims = spec.shape[0], spec.shape[1:]
    if input_shape is not None:
        shape = _fit(spec, dims, input_shape, "--input-shape", source)
    elif all(isinstance(d, int) for d in dims):
        shape = tuple(int(d) for d in dims if isinstance(d, int))
    elif contract is not None and len(dims) == 3:
        shape = _fit(spec, dims, contract.input_shape, "its manifest's contract", source)
    else:
        raise ResnetOptError(
            f"{source}: input {spec.name!r} has symbolic dims {_show(spec.shape)} and no "
            "manifest gives the image size; pass --input-shape (one sample, e.g. 3,224,224)"
        )
    if isinstance(batch_dim, int) and batch_dim > 0:  # a fixed batch: whole batches only
        return Feed(batch_dim, shape, batch_dim * math.ceil(samples / batch_dim))
    return Feed(min(batch_size, samples), shape, samples)


def compare_on_random_inputs(
    reference: Runner,
    candidate: Runner,
    source: Path,
    contract: PreprocessContract | None,
    *,
    input_shape: tuple[int, ...] | None,
    samples: int,
    batch_size: int,
    seed: int,
    tolerance: float | None,
) -> tuple[Comparison, Feed]:
    """Both runners on the same seeded random batches shaped by `verification_feed` (from the
    reference's input): the check fold and the ONNX Runtime build prove their output with."""
    feed = verification_feed(
        single_input(reference), source, contract, input_shape, samples, batch_size
    )
    batches = random_batches(feed.sample_shape, feed.samples, feed.batch, seed)
    return compare_runners(reference, candidate, batches, tolerance), feed


def _fit(
    spec: TensorSpec, dims: tuple[Dim, ...], given: tuple[int, ...], origin: str, source: Path
) -> tuple[int, ...]:
    fits = len(given) == len(dims) and all(
        not isinstance(d, int) or d == g for d, g in zip(dims, given, strict=True)
    )
    if not fits:
        raise ResnetOptError(
            f"{source}: the shape {_show(given)} from {origin} does not fit input "
            f"{spec.name!r} of shape {_show(spec.shape)} (one sample, without the batch axis)"
        )
    return given


def _show(shape: tuple[Dim, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_verify_options(
    *, threads: int | None, samples: int, batch_size: int, tolerance: float
) -> None:
    """The options the CPU builds (ONNX Runtime, OpenVINO) share: threads and the check."""
    thread_count(threads)
    positive_count(samples, "samples")
    positive_count(batch_size, "batch size")
    count(samples, "--samples")  # 1e18 random batches would run for ever
    if not math.isfinite(tolerance) or tolerance < 0:
        raise UsageError(f"tolerance must be a non-negative number, not {tolerance}")
