"""Collecting activation statistics with ONNX Runtime over streamed calibration batches.

The model is copied with the tensors to calibrate added as graph outputs, run in one ONNX
Runtime session (fixed threads, spinning off) on the batches of a `BatchStream`, and each
output is folded into its streaming statistics and dropped at once. Memory is bounded by
one run's exposed activations: every exposed tensor of a run is alive when the run returns,
so runs are cut to a sample count whose activations fit a budget (ResNet-50 at 224 exposes
about 100 MB per sample), whatever batch size the data stream uses.

The session uses ONNX Runtime's basic graph optimizations only: with every activation a graph
output, the extended/layout optimizations cannot fuse anything and their NCHWc layout adds a
reordered copy of each exposed tensor (measured on ResNet-50: about 300 MB of peak memory per
sample in a run with them, about 110 MB without). Histograms of a run's outputs are folded in
on a thread pool (numpy releases the GIL in most of that work), one task per tensor.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.calibration.histogram import (
    DEFAULT_BINS,
    Statistics,
    TensorAccumulator,
    check_bins,
)
from resnet_opt.core.progress import ProgressCallback
from resnet_opt.core.validation import positive_count
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.graph import tensor_types_and_shapes
from resnet_opt.quantization.ops import calibrated_ops, float_data_ops

if TYPE_CHECKING:
    import onnx

    from resnet_opt.calibration.data import BatchStream

log = logging.getLogger(__name__)

# Ops whose float inputs and outputs a quantize target may put Q/DQ on (declared per op kind in
# quantization/ops.py, `OpKind.calibrated`).
CALIBRATED_OPS = calibrated_ops()
FLOAT_DATA_OPS = float_data_ops()  # ops whose data tensors are float (Conv, Gemm)
# Exposed activation bytes one ONNX Runtime run may hold (outputs are alive together).
DEFAULT_ACTIVATION_BUDGET = 512 * 2**20
MAX_RUN_BATCH = 64
FALLBACK_RUN_BATCH = 8


def constant_tensors(graph: onnx.GraphProto) -> set[str]:
    """Initializers and everything computed only from them (Constant, Identity of a weight …):
    these are weights, not activations, even when they are not initializers."""
    constant = {t.name for t in graph.initializer}
    for node in graph.node:  # nodes are topologically sorted in a valid ONNX graph
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" or (inputs and all(n in constant for n in inputs)):
            constant.update(out for out in node.output if out)
    return constant


def calibration_tensors(model: onnx.ModelProto) -> list[str]:
    """Every float activation that is an input or output of a calibrated op, plus the graph
    input, in graph order: the union of what the tensorrt and cpu quantize targets may need."""
    import onnx

    graph = model.graph
    constant = constant_tensors(graph)
    types, _ = tensor_types_and_shapes(model)
    float_type = onnx.TensorProto.FLOAT

    def wanted(name: str, node: onnx.NodeProto | None) -> bool:
        if not name or name in constant:
            return False
        elem = types.get(name)
        if elem is not None:
            return elem == float_type
        # type unknown: only where a float-only op produces or consumes it as data
        return node is not None and node.op_type in FLOAT_DATA_OPS

    order: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            order.append(name)

    for value in graph.input:  # the image input (float, or of a type shape inference missed)
        if value.name not in constant and types.get(value.name, float_type) == float_type:
            add(value.name)
    for node in graph.node:
        if node.op_type not in CALIBRATED_OPS:
            continue
        for name in (*node.input, *node.output):
            if wanted(name, node):
                add(name)
    return order


def activation_bytes_per_sample(model: onnx.ModelProto, tensors: Sequence[str]) -> int | None:
    """float32 bytes one sample adds to a run that exposes `tensors` (None if a shape is not
    known after shape inference beyond the batch axis)."""
    _, shapes = tensor_types_and_shapes(model)
    total = 0
    for name in tensors:
        shape = shapes.get(name)
        if not shape or any(d is None for d in shape[1:]):
            return None
        total += 4 * math.prod(d for d in shape[1:] if d is not None)
    return total


def run_batch_size(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    budget_bytes: int = DEFAULT_ACTIVATION_BUDGET,
) -> int:
    """How many samples one run may take so that its exposed activations fit the budget."""
    per_sample = activation_bytes_per_sample(model, tensors)
    if per_sample is None or per_sample == 0:
        return FALLBACK_RUN_BATCH
    return max(1, min(MAX_RUN_BATCH, budget_bytes // per_sample))


def _single_input(model: onnx.ModelProto) -> tuple[str, int | None]:
    """The one image input and its fixed batch size (None when the batch axis is dynamic)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ResnetOptError(
            f"calibration needs a model with exactly one input (the image); this one has "
            f"{len(inputs)}: {names}"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
    return inputs[0].name, (fixed if fixed and fixed > 0 else None)


def _check_input_shape(model: onnx.ModelProto, name: str, sample_shape: tuple[int, ...]) -> None:
    for value in model.graph.input:
        if value.name != name:
            continue
        dims = value.type.tensor_type.shape.dim
        expected = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if len(expected) != len(sample_shape) or any(
            e is not None and e != s for e, s in zip(expected, sample_shape, strict=False)
        ):
            shown = "×".join("?" if e is None else str(e) for e in expected) or "[] (batch only)"
            raise ResnetOptError(
                f"the model input {name!r} takes samples of shape {shown}, the calibration "
                f"data gives {'×'.join(map(str, sample_shape))}: check the preprocessing contract"
            )


def _exposed_model_bytes(model: onnx.ModelProto, outputs: Sequence[str]) -> bytes:
    """Serialized copy of `model` with `outputs` added as graph outputs (float, no shape when
    the model does not already describe them: ONNX Runtime infers the rest)."""
    from onnx import TensorProto, helper

    existing = {o.name for o in model.graph.output}
    infos = {v.name: v for v in model.graph.value_info}
    for name in outputs:
        if name in existing:
            continue
        info = infos.get(name)
        if info is not None and info.type.tensor_type.elem_type:
            model.graph.output.append(info)
        else:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        existing.add(name)
    return bytes(model.SerializeToString())


def collect_statistics(
    model_path: Path,
    stream: BatchStream,
    tensors: Sequence[str],
    *,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    bins: int = DEFAULT_BINS,
    run_batch: int | None = None,
    activation_budget: int = DEFAULT_ACTIVATION_BUDGET,
    requested: int | None = None,
) -> Statistics:
    """Run the model on every calibration batch and keep streaming statistics of `tensors`.

    `run_batch` caps the samples per ONNX Runtime run (default: what fits
    `activation_budget`); a model with a fixed batch axis runs exactly that many per run.
    `requested` is the sample count the user asked for (default: the stream's selection);
    fewer usable samples is a logged warning and the real count is in the result.
    """
    from resnet_opt.deps import require
    from resnet_opt.graph import all_names, load_onnx
    from resnet_opt.runners.onnxruntime import CPU, GraphOptimization, session_options

    ort = require("onnxruntime")
    check_bins(bins)
    if not tensors:
        raise ResnetOptError("no tensors to calibrate")
    if run_batch is not None:  # the caller's setting, not the user's: exit 1
        positive_count(run_batch, "calibration run batch", error=ResnetOptError)
    model = load_onnx(Path(model_path), check=False)  # ORT refuses an invalid graph itself
    input_name, fixed_batch = _single_input(model)
    _check_input_shape(model, input_name, stream.contract.input_shape)
    known = all_names(model.graph)
    unknown = [t for t in tensors if t not in known]
    if unknown:
        raise ResnetOptError(f"{model_path}: no tensor named {unknown[0]!r} in the model")
    if len(set(tensors)) != len(tensors):
        raise ResnetOptError("the tensors to calibrate contain duplicates")
    constant = constant_tensors(model.graph)
    weights = [t for t in tensors if t in constant]
    if weights:
        raise ResnetOptError(f"{weights[0]!r} is a weight (constant), not an activation")

    exposed = [t for t in tensors if t != input_name]
    if fixed_batch is not None:
        per_run = fixed_batch
    elif run_batch is not None:
        per_run = run_batch
    else:
        per_run = run_batch_size(model, exposed, activation_budget)
    serialized = _exposed_model_bytes(model, exposed)
    del model
    opts = session_options(threads=threads, spinning=False, optimization=GraphOptimization.BASIC)
    try:
        session = ort.InferenceSession(serialized, sess_options=opts, providers=[CPU])
    except Exception as exc:  # ORT's own exception types
        raise ResnetOptError(
            f"{model_path}: ONNX Runtime cannot load it ({first_line(exc)})"
        ) from exc
    del serialized

    accumulators = {name: TensorAccumulator(name, bins) for name in tensors}
    total = len(stream.indices)
    log.info("calibrating %d tensors on %d samples, %d per run", len(tensors), total, per_run)

    def fold(outputs: list[Any], k: int, name: str, keep: int) -> None:
        value = outputs[k]
        outputs[k] = None  # drop the run's reference as soon as the tensor is folded in
        if fixed_batch is not None and keep < fixed_batch:  # a padded last run
            if value.ndim == 0 or value.shape[0] != fixed_batch:
                raise ResnetOptError(
                    f"{model_path}: fixed batch {fixed_batch} and tensor {name!r} has no "
                    f"batch axis, so {keep} leftover samples cannot be calibrated: use a "
                    f"multiple of {fixed_batch} samples or export with a dynamic batch"
                )
            value = value[:keep]
        accumulators[name].update(value)

    def run(x: np.ndarray, pool: ThreadPoolExecutor | None) -> None:
        keep = x.shape[0]
        if fixed_batch is not None and keep < fixed_batch:
            reps = -(-fixed_batch // keep)
            x = np.concatenate([x] * reps)[:fixed_batch]
        try:
            outputs: list[Any] = session.run(exposed, {input_name: x})
        except Exception as exc:  # shape or type mismatches surface as ORT exceptions
            raise ResnetOptError(
                f"{model_path}: inference failed on calibration data ({first_line(exc)})"
            ) from exc
        if input_name in accumulators:
            outputs.append(x)
        names = [*exposed, input_name] if input_name in accumulators else exposed
        # largest first, so that the workers finish together; each tensor's accumulator is
        # touched by one task per run and runs complete in order, so results are deterministic
        order = sorted(range(len(names)), key=lambda k: -int(outputs[k].size))
        if pool is None:
            for k in order:
                fold(outputs, k, names[k], keep)
            return
        for future in [pool.submit(fold, outputs, k, names[k], keep) for k in order]:
            future.result()

    workers = threads if threads is not None else (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for batch in stream:
            for start in range(0, batch.x.shape[0], per_run):
                run(batch.x[start : start + per_run], pool)
            if progress is not None:
                progress(stream.used + len(stream.skipped), total)  # samples consumed

    asked = total if requested is None else requested
    if stream.used < asked:
        why = f", {len(stream.skipped)} skipped" if stream.skipped else ""
        log.warning(
            "calibration used %d samples, fewer than the %d asked for%s", stream.used, asked, why
        )
    return Statistics(
        tensors={name: acc.result() for name, acc in accumulators.items()},
        samples=stream.used,
        requested=asked,
        skipped=tuple(stream.skipped),
        inputs=(input_name,) if input_name in accumulators else (),
    )
