"""The `fold` stage: BatchNormalization folded into Conv/Gemm weights, proven unchanged.

The pass itself is `bn_fold.fold_batchnorm` (pure, model in, model out; `export` calls it too).
This stage adds what a user needs around it: clear errors for bad files, the numerical proof
(the folded file and its source run side by side in ONNX Runtime on the same random inputs, with
ORT's own graph optimizations off so that the source's BN nodes really run as BN), and a manifest
that keeps the preprocessing contract and says how many BN nodes each step folded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Stage,
    stage_manifest,
    write_manifest,
)
from resnet_opt.core.stage_details import (
    ConstantsFolded,
    FoldBatchNorm,
    FoldDetails,
    KeptBatchNorm,
    batchnorm_folded_by,
    steps_of,
)
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.graph import load_onnx, precision_of, save_onnx
from resnet_opt.pipeline.verify import (
    Comparison,
    Feed,
    check_verify_options,
    compare_on_random_inputs,
)
from resnet_opt.runners.loaders import open_stage_input
from resnet_opt.transforms.bn_fold import FoldResult, LeftBatchNorm, fold_batchnorm
from resnet_opt.transforms.const_fold import fold_constants, list_initializers_as_inputs

if TYPE_CHECKING:
    import onnx

    from resnet_opt.core.progress import ProgressCallback

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SAMPLES",
    "DEFAULT_TOLERANCE",
    "FoldOptions",
    "FoldResult",
    "LeftBatchNorm",
    "fold",
    "fold_batchnorm",
]

# max abs difference of the outputs: float32 rounding in a deep net stays orders of magnitude below
DEFAULT_TOLERANCE = 1e-3
DEFAULT_SAMPLES = 8
DEFAULT_BATCH_SIZE = 4
STEP = "fold"  # this step's key in details.batchnorm.folded_by


@dataclass(frozen=True)
class FoldOptions:
    """`fold`'s options besides IN, OUT and --force."""

    tolerance: float = DEFAULT_TOLERANCE
    samples: int = DEFAULT_SAMPLES
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    input_shape: tuple[int, ...] | None = None
    threads: int | None = None


def fold(
    source: str | Path,
    output: str | Path,
    options: FoldOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Fold `source`'s BatchNormalization nodes into `output`, verified with ONNX Runtime.

    `options.input_shape` (one sample, no batch axis) is needed only when the model's input dims
    are symbolic and `source` has no manifest with a preprocessing contract. Nothing is written
    when the folded outputs differ from the source's by more than `options.tolerance` (max abs).
    `progress` is taken for the shape every stage shares and not called: the fold is one pass
    over the graph and its check a few random batches, with nothing long to report on.
    """
    source, output = Path(source), Path(output)
    options = options or FoldOptions()
    tolerance, samples, batch_size = options.tolerance, options.samples, options.batch_size
    check_verify_options(
        threads=options.threads,
        samples=samples,
        batch_size=batch_size,
        tolerance=tolerance,
    )
    opened = open_stage_input(source, output)
    parent, source_sha = opened.manifest, opened.sha256
    model = load_onnx(source)

    with staged_outputs(force=force) as staged:
        onnx_tmp, manifest_tmp = staged.add_with_manifest(output)
        started = time.perf_counter()
        constants = fold_constants(model)  # BN parameters computed from constants become readable
        result = fold_batchnorm(constants.model)
        list_initializers_as_inputs(result.model)  # IR 3: new biases are graph inputs too
        fold_seconds = time.perf_counter() - started
        save_onnx(result.model, onnx_tmp)  # refuses > 2 GiB before the checker would choke
        _check(result.model, source)

        started = time.perf_counter()
        comparison, feed = _verify(
            source,
            onnx_tmp,
            contract=parent.preprocessing if parent else None,
            options=options,
        )
        verify_seconds = time.perf_counter() - started
        if not comparison.passed:
            raise ResnetOptError(
                f"{source}: the folded model's outputs differ by {comparison.max_abs_error:.3g} "
                f"(max abs), over the tolerance {tolerance:g}; nothing written"
            )

        inputs = (InputRef("model", str(source), source_sha),)
        recorded = {
            "tolerance": tolerance,
            "samples": samples,
            "batch_size": batch_size,
            "seed": options.seed,
            "input_shape": list(options.input_shape) if options.input_shape else None,
        }
        verification = {
            **comparison.to_dict(),
            "reference": source.name,
            "runtime": "onnxruntime",
            "graph_optimization": "disabled",
            "input_shape": [feed.batch, *feed.sample_shape],
        }
        details = FoldDetails(
            batchnorm=FoldBatchNorm(
                folded=result.folded,  # by this run; folded_by holds every step's total
                folded_by=_folded_by(parent, result.folded),
                left=tuple(KeptBatchNorm(b.node, b.reason) for b in result.left),
            ),
            constants=ConstantsFolded(constants.folded, constants.by_op),
            seconds={"fold": round(fold_seconds, 4), "verify": round(verify_seconds, 4)},
        )
        manifest = stage_manifest(  # a foreign ONNX: no contract to carry, and no history
            parent,
            stage=Stage.FOLD,
            artifact=output,
            content=onnx_tmp,
            precision=parent.precision if parent else precision_of(model)[0],
            inputs=inputs,
            options=recorded,
            verification=verification,
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return manifest


def _check(model: onnx.ModelProto, source: Path) -> None:
    """The pass must produce a valid model; if not, that is our bug, said plainly."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError
        raise RuntimeError(
            f"{source}: folding produced an invalid model ({first_line(exc)})"
        ) from exc


def _folded_by(parent: Manifest | None, folded: int) -> dict[str, int]:
    """Earlier steps' BN fold counts (the newest step of the input's history that has them),
    plus ours."""
    history = reversed(steps_of(parent.history())) if parent is not None else ()
    counted = (batchnorm_folded_by(step.details) for step in history)
    previous = next((counts for counts in counted if counts is not None), None)
    counts = dict(previous or {})
    counts[STEP] = counts.get(STEP, 0) + folded
    return counts


def _verify(
    source: Path,
    candidate: Path,
    *,
    contract: PreprocessContract | None,
    options: FoldOptions,
) -> tuple[Comparison, Feed]:
    from resnet_opt.runners.onnxruntime import GraphOptimization, open_onnxruntime

    # ORT's own optimizer fuses Conv+BN too: off, so the reference computes the BN as written
    opts: dict[str, Any] = {"threads": options.threads, "optimization": GraphOptimization.DISABLED}
    with (
        open_onnxruntime(source, **opts) as reference,
        open_onnxruntime(candidate, **opts) as folded,
    ):
        return compare_on_random_inputs(
            reference,
            folded,
            source,
            contract,
            input_shape=options.input_shape,
            samples=options.samples,
            batch_size=options.batch_size,
            seed=options.seed,
            tolerance=options.tolerance,
        )
