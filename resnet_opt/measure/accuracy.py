"""Accuracy of one runner on the evaluation stream, keeping its top-1 predictions.

Scoring goes through `resnet_opt.measure.scoring` (the same code as `resnet-opt eval`). The runner
is wrapped so that each batch's top-1 is kept: agreement with the FP32 source is then computed from
two prediction vectors, without running the source again in lock-step for every artifact ×
backend. The wrapper also pads a short last batch for models with a fixed batch size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from resnet_opt.calibration.data import Batch, BatchStream
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.validation import array_bytes
from resnet_opt.measure.scoring import Accuracy, evaluate_runners
from resnet_opt.runners.base import Backend, Runner, RunnerInfo, TensorSpec, single_input


class _Recording:
    """Delegates to a runner (already entered) and records the top-1 of every batch.

    A batch smaller than the model takes (a fixed batch dimension, or an engine profile's
    minimum) is padded by repeating its last image, and the padding's outputs dropped.
    """

    def __init__(self, runner: Runner, min_batch: int | None = None) -> None:
        self._runner = runner
        self.backend: Backend = runner.backend
        self.top1: list[np.ndarray] = []
        spec = single_input(runner)
        self._name = spec.name
        fixed = spec.shape[0] if spec.shape else None
        self._min_batch = fixed if isinstance(fixed, int) else min_batch

    def __enter__(self) -> _Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._runner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._runner.outputs

    @property
    def info(self) -> RunnerInfo:
        return self._runner.info

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feed[self._name]
        count = len(x)
        if self._min_batch is not None and count < self._min_batch:
            pad = np.repeat(x[-1:], self._min_batch - count, axis=0)
            x = np.concatenate([x, pad])
        out = self._runner.infer({**feed, self._name: x})
        out = {name: value[:count] for name, value in out.items()}
        first = np.asarray(out[self._runner.outputs[0].name])
        self.top1.append(first.reshape(count, -1).argmax(axis=1))
        return out


CACHE_LIMIT_BYTES = 512 * 1024**2


@dataclass
class ReplayStream(BatchStream):
    """A BatchStream that keeps its batches after the first pass and replays them.

    Every artifact × backend is scored on the same images; decoding and preprocessing them once
    instead of once per runner saves most of the scoring time for small models. Used only when
    the preprocessed set fits in CACHE_LIMIT_BYTES (`fits`); larger sets stream each time.
    """

    cached: list[Batch] | None = None
    cached_skipped: list[tuple[str, str]] | None = None

    @staticmethod
    def fits(samples: int, contract: PreprocessContract) -> bool:
        return array_bytes((samples, *contract.input_shape)) <= CACHE_LIMIT_BYTES

    def __iter__(self) -> Iterator[Batch]:
        if self.cached is not None:
            self.skipped[:] = self.cached_skipped or []
            yield from self.cached
            return
        batches: list[Batch] = []
        for batch in super().__iter__():
            batches.append(batch)
            yield batch
        self.cached, self.cached_skipped = batches, list(self.skipped)


@dataclass(frozen=True)
class Scored:
    accuracy: Accuracy
    top1: np.ndarray  # predicted class per evaluated image, in stream order
    skipped: int


def score(
    runner: Runner, stream: BatchStream, mapping: np.ndarray, *, min_batch: int | None = None
) -> Scored:
    """Top-1/top-5 of `runner` on `stream` (fresh, or a ReplayStream), with its per-image top-1
    predictions; `min_batch`: the smallest batch the runner takes (an engine profile's)."""
    recording = _Recording(runner, min_batch)
    accuracy, _, _ = evaluate_runners(recording, stream, mapping)
    predictions = np.concatenate(recording.top1) if recording.top1 else np.empty(0, np.int64)
    return Scored(accuracy, predictions, len(stream.skipped))


def agreement(candidate: np.ndarray, reference: np.ndarray) -> float | None:
    """Percent of images where both predict the same class (None when not the same images)."""
    if candidate.shape != reference.shape or candidate.size == 0:
        return None
    return float(100.0 * np.mean(candidate == reference))
