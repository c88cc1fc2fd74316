"""Which layers cost the most accuracy in int8, and the fewest to keep in higher precision.

Two measurements, both with ONNX Runtime on the CPU:

- sensitivity of a layer: the model with only that layer in int8 (everything else float) run on
  a few calibration samples; its relative output error against FP32,
  Σ‖y_q − y‖² / Σ‖y‖². No labels needed, and it isolates the layer (the error of a
  fully quantized model hides which layer caused it);
- the accuracy drop of a candidate model: top-1 on the labelled evaluation data against the FP32
  model's top-1 on the same samples (the reference runs once; its predictions are kept).

`search_kept` keeps the k most sensitive layers in higher precision for the smallest k (found by
doubling, then bisection) whose drop is within the budget. Every k it returns was measured;
the drop is not assumed monotonic in k, only searched as if it were.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.core.progress import ProgressCallback
from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    import onnx

    from resnet_opt.calibration.data import BatchStream


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    op_type: str
    error: float  # relative squared output error with only this layer in int8
    macs: int | None  # multiply-accumulates per sample (Conv/Gemm), None when unknown

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "op": self.op_type, "error": self.error, "macs": self.macs}


@dataclass(frozen=True)
class BudgetSearch:
    """The result of `search_kept`: layers kept, the drop measured with them, the trials."""

    kept: tuple[str, ...]
    drop: float
    trials: tuple[tuple[int, float], ...]  # (layers kept, measured drop) in the order tried


class _ModelRunner:
    """Runs candidate models (ONNX protos) through the ONNX Runtime runner from a temp folder."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self._folder = tempfile.TemporaryDirectory(prefix="resnet-opt-sensitivity-")
        self._count = 0

    def path_for(self, model: onnx.ModelProto) -> Path:
        from resnet_opt.graph import save_onnx

        self._count += 1
        path = Path(self._folder.name) / f"candidate{self._count}.onnx"
        save_onnx(model, path)
        return path

    def outputs(self, model: onnx.ModelProto | Path, batches: Iterable[np.ndarray]) -> list[Any]:
        from resnet_opt.runners.base import Backend, open_runner, run_batch

        path = model if isinstance(model, Path) else self.path_for(model)
        try:
            with open_runner(Backend.ONNXRUNTIME, path, threads=self.threads) as runner:
                return [run_batch(runner, x) for x in batches]
        finally:
            if path.parent == Path(self._folder.name):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        self._folder.cleanup()


class OutputErrorProbe:
    """Relative output error of candidate models against the FP32 model on fixed inputs."""

    def __init__(self, reference: Path, batches: Sequence[np.ndarray], threads: int | None):
        self._runner = _ModelRunner(threads)
        self.batches = list(batches)
        self.reference = self._runner.outputs(reference, self.batches)
        self._energy = sum(float(np.square(y.astype(np.float64)).sum()) for y in self.reference)

    def error(self, model: onnx.ModelProto) -> float:
        outputs = self._runner.outputs(model, self.batches)
        diff = sum(
            float(np.square(y.astype(np.float64) - r).sum())
            for y, r in zip(outputs, self.reference, strict=True)
        )
        return diff / self._energy if self._energy > 0 else diff

    def close(self) -> None:
        self._runner.close()


class AccuracyProbe:
    """Top-1 drop of candidate models against the FP32 reference on labelled data.

    The reference runs once; each candidate then runs alone over the same stream.
    """

    def __init__(
        self,
        reference: Path,
        make_stream: Callable[[], BatchStream],
        mapping: np.ndarray,
        threads: int | None,
    ) -> None:
        self._runner = _ModelRunner(threads)
        self._make_stream = make_stream
        self._mapping = mapping
        predictions, labels = self._predict(reference)
        self.labels = labels
        self.reference_top1 = 100.0 * float((predictions == labels).mean())

    def _predict(self, model: onnx.ModelProto | Path) -> tuple[np.ndarray, np.ndarray]:
        preds: list[np.ndarray] = []
        labels: list[np.ndarray] = []

        def batches() -> Iterable[np.ndarray]:
            for batch in self._make_stream():
                if batch.labels is None:
                    raise ResnetOptError("evaluation data has no labels")
                labels.append(self._mapping[batch.labels])
                yield batch.x

        for logits in self._runner.outputs(model, batches()):
            preds.append(logits.argmax(axis=1))
        return np.concatenate(preds), np.concatenate(labels)

    def drop(self, model: onnx.ModelProto) -> float:
        predictions, labels = self._predict(model)
        if labels.shape != self.labels.shape or not np.array_equal(labels, self.labels):
            raise ResnetOptError("evaluation data changed between runs")
        return self.reference_top1 - 100.0 * float((predictions == labels).mean())

    def close(self) -> None:
        self._runner.close()


def layer_macs(model: onnx.ModelProto) -> dict[str, int]:
    """Multiply-accumulates per sample of each layer whose op kind counts them (Conv, Gemm:
    `ops.Sensitivity.macs_per_output`) and whose shapes inference can tell."""
    from resnet_opt.graph import tensor_types_and_shapes
    from resnet_opt.quantization.ops import macs_rule

    _, shapes = tensor_types_and_shapes(model)  # best effort: MACs are a report figure
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    macs: dict[str, int] = {}
    for node in model.graph.node:
        per_output_of = macs_rule(node.op_type)
        if per_output_of is None or len(node.input) < 2:
            continue
        w = weights.get(node.input[1])
        out = shapes.get(node.output[0])
        if w is None or not out or any(d is None for d in out[1:]):
            continue
        per_output = per_output_of(w, node)
        macs[node.name] = int(np.prod([d for d in out[1:] if d is not None])) * per_output
    return macs


def rank(
    candidates: Sequence[str],
    op_types: dict[str, str],
    error_of: Callable[[str], float],
    macs: dict[str, int],
    progress: ProgressCallback | None = None,
) -> tuple[LayerSensitivity, ...]:
    """Every candidate's sensitivity, most sensitive first (ties: graph order)."""
    found = []
    for i, layer in enumerate(candidates):
        found.append(LayerSensitivity(layer, op_types[layer], error_of(layer), macs.get(layer)))
        if progress is not None:
            progress(i + 1, len(candidates))
    order = sorted(range(len(found)), key=lambda i: (-found[i].error, i))
    return tuple(found[i] for i in order)


def search_kept(
    ranked: Sequence[str],
    drop_of: Callable[[tuple[str, ...]], float],
    budget: float,
    initial_drop: float,
) -> BudgetSearch:
    """The fewest most-sensitive layers to keep so that the measured drop is ≤ budget."""
    trials: list[tuple[int, float]] = [(0, initial_drop)]
    if initial_drop <= budget:
        return BudgetSearch((), initial_drop, tuple(trials))
    measured: dict[int, float] = {0: initial_drop}

    def measure(k: int) -> float:
        if k not in measured:
            measured[k] = drop_of(tuple(ranked[:k]))
            trials.append((k, measured[k]))
        return measured[k]

    n = len(ranked)
    bad, k = 0, 1
    while k < n and measure(k) > budget:
        bad, k = k, min(2 * k, n)
    good = k
    if measure(good) > budget:  # everything kept and still over: cannot meet the budget
        return BudgetSearch(tuple(ranked[:good]), measured[good], tuple(trials))
    while good - bad > 1:
        mid = (bad + good) // 2
        if measure(mid) <= budget:
            good = mid
        else:
            bad = mid
    return BudgetSearch(tuple(ranked[:good]), measured[good], tuple(trials))
