"""`quantize --precision int8`: calibrated ranges written as explicit Q/DQ into the ONNX.

Two layouts (`QdqTarget`) from the same statistics: TensorRT's (symmetric int8, Q/DQ on Conv
inputs and residual skip inputs) and ONNX Runtime CPU's (u8 activations, every Conv/Add in
int8). The artifact is scored against its FP32 source when labelled data is at hand; with
`accuracy_budget` the most sensitive layers stay in higher precision until the drop fits
(`accuracy_budget.py`).

Outputs (atomic, all or nothing): OUT.onnx, OUT.onnx.json, and for the TensorRT target
OUT.trt-calib.cache (TensorRT's text calibration cache from the same ranges, for the implicit
INT8 that DLA on Jetson Orin runs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.manifest import InputRef, Precision, write_manifest
from resnet_opt.core.naming import OptionError
from resnet_opt.core.quantization_details import (
    BiasCorrection,
    QdqCounts,
    QuantizationDetails,
)
from resnet_opt.core.stage_details import Int8Calibration, Int8QuantizeDetails
from resnet_opt.graph import save_onnx
from resnet_opt.pipeline.accuracy_budget import meet_budget
from resnet_opt.pipeline.calibrate import calibrate
from resnet_opt.pipeline.quantize_artifact import (
    QuantizeResult,
    artifact_manifest,
    evaluate_artifact,
    exclusions,
    verification_of,
)
from resnet_opt.pipeline.quantize_options import (
    QuantizeOptions,
    calibration_spec,
    evaluation_spec,
)
from resnet_opt.pipeline.quantize_source import QuantizeSource
from resnet_opt.quantization import layouts
from resnet_opt.quantization.plan import Plan, QdqTarget
from resnet_opt.quantization.qdq import INT8_WEIGHT_MAX, default_policy

if TYPE_CHECKING:
    import numpy as np

    from resnet_opt.calibration.histogram import Statistics
    from resnet_opt.calibration.ranges import Method, TensorRange
    from resnet_opt.core.progress import ProgressCallback
    from resnet_opt.quantization.weights import WeightPolicy

DEFAULT_TENSORRT_VERSION = "10.3.0"  # JetPack 6.1/6.2: the TensorRT whose DLA reads the cache
TRT_CACHE_SUFFIX = ".trt-calib.cache"


def tensorrt_cache_path(output: Path) -> Path:
    """OUT.onnx → OUT.trt-calib.cache (the build stage's DLA path looks for it there)."""
    stem = output.name[: -len(".onnx")] if output.name.endswith(".onnx") else output.name
    return output.with_name(stem + TRT_CACHE_SUFFIX)


def quantize_int8(
    source: QuantizeSource,
    output: Path,
    options: QuantizeOptions,
    force: bool,
    progress: ProgressCallback | None,
) -> QuantizeResult:
    from resnet_opt.calibration.ranges import DEFAULT_PERCENTILE, Method
    from resnet_opt.calibration.tensorrt_cache import format_tensorrt_cache
    from resnet_opt.quantization.graph_rules import GraphView, prepare
    from resnet_opt.quantization.qdq import apply_plan

    target = options.target or QdqTarget.TENSORRT
    policy = default_policy(target, options.reduce_range, options.bias_correction is not False)
    method = options.method or Method.ENTROPY  # TensorRT's own calibrator (EntropyCalibration2)
    percentile = options.percentile if options.percentile is not None else DEFAULT_PERCENTILE
    prepared = prepare(source.model, str(source.path), int8=True)
    view = GraphView(prepared)
    placement = layouts.placement(target)
    place = placement.place
    candidates = placement.candidate_layers(view)
    excluded = exclusions(view, options.exclude, placement.excludable_layers(view))
    calib_spec = calibration_spec(options, source.contract)
    if calib_spec is None:
        raise OptionError(
            "calib",
            lambda n: (
                f"{source.path}: int8 needs calibration data: give {n.option('calib')} "
                "DATA (an image folder or a .npy/.npz file preprocessed by the model's contract)"
            ),
        )
    eval_spec = evaluation_spec(options, source.contract)
    trt_cache = tensorrt_cache_path(output) if layouts.layout(target).tensorrt_cache else None
    trt_version = options.tensorrt_version or DEFAULT_TENSORRT_VERSION

    timings: dict[str, float] = {}
    with staged_outputs(force=force) as staged:
        onnx_tmp, manifest_tmp = staged.add_with_manifest(output)
        cache_tmp = staged.add(trt_cache) if trt_cache is not None else None

        calib = calibrate(source, calib_spec, options, progress)
        ranges = _ranges(calib.stats, method, percentile, target)
        started = time.perf_counter()
        plan = place(view, excluded)
        calib.stats.require(plan.range_tensors())
        means = _channel_means(calib.stats)
        quantized, counts = apply_plan(prepared, plan, ranges, policy=policy, channel_means=means)
        save_onnx(quantized, onnx_tmp)
        timings["rewrite"] = time.perf_counter() - started

        evaluation = None
        budget: dict[str, Any] | None = None
        if eval_spec is not None:
            started = time.perf_counter()
            evaluation = evaluate_artifact(onnx_tmp, eval_spec, source, options)
            timings["evaluate"] = time.perf_counter() - started
            drop = evaluation.drop_points or 0.0
            if options.accuracy_budget is not None and drop > options.accuracy_budget:
                started = time.perf_counter()
                plan, budget = meet_budget(
                    source,
                    prepared,
                    view,
                    place,
                    candidates,
                    excluded,
                    ranges,
                    calib,
                    eval_spec,
                    options,
                    drop,
                    policy,
                    means,
                )
                quantized, counts = apply_plan(
                    prepared, plan, ranges, policy=policy, channel_means=means
                )
                save_onnx(quantized, onnx_tmp)
                evaluation = evaluate_artifact(onnx_tmp, eval_spec, source, options)
                budget["met"] = (evaluation.drop_points or 0.0) <= options.accuracy_budget
                timings["accuracy_budget"] = time.perf_counter() - started
            elif options.accuracy_budget is not None:
                budget = {
                    "budget": options.accuracy_budget,
                    "met": True,
                    "kept": [],
                    "drop_before": drop,
                    "note": "full int8 already within the budget",
                }

        if cache_tmp is not None:  # the tensorrt target: its ranges are TensorRT's (s8)
            text = format_tensorrt_cache(ranges, tensorrt_version=trt_version)
            cache_tmp.write_bytes(text.encode("utf-8"))

        kept_budget = tuple(budget["kept"]) if budget and budget.get("kept") else ()
        details = Int8QuantizeDetails(
            calibration=Int8Calibration(
                method=method.value,
                percentile=percentile if method is Method.PERCENTILE else None,
                run=calib.details,
            ),
            quantization=_quantization_details(target, plan, counts, excluded, kept_budget, policy),
            accuracy_budget=budget,
            tensorrt_calibration_cache=trt_cache.name if trt_cache is not None else None,
            tensorrt_calibration_cache_version=trt_version if trt_cache else None,
            seconds={k: round(v, 3) for k, v in timings.items()},
        )
        inputs = [source.input_ref()]
        if options.calib_cache is not None:
            inputs.append(InputRef.of("calibration_cache", options.calib_cache))
        manifest = artifact_manifest(
            source,
            output=output,
            content=onnx_tmp,
            precision=Precision.MIXED if plan.kept else Precision.INT8,
            inputs=tuple(inputs),
            options=options,
            verification=verification_of(evaluation, eval_spec, options, output.name),
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return QuantizeResult(output, manifest, trt_cache)


def _channel_means(stats: Statistics) -> dict[str, np.ndarray]:
    """tensor → its per-channel mean on the calibration data (bias correction's input means;
    a calibration cache made before means were kept has none)."""
    return {name: t.channel_mean for name, t in stats.tensors.items() if t.channel_mean is not None}


def _ranges(
    stats: Statistics, method: Method, percentile: float, target: QdqTarget
) -> dict[str, TensorRange]:
    from resnet_opt.calibration.ranges import compute_ranges

    return compute_ranges(
        stats,
        method,
        percentile=percentile,
        uint8_when_nonnegative=layouts.layout(target).unsigned_activations,
    )


def _quantization_details(
    target: QdqTarget,
    plan: Plan,
    counts: Mapping[str, Any],
    excluded: set[str],
    kept_budget: tuple[str, ...],
    policy: WeightPolicy,
) -> QuantizationDetails:
    layout = layouts.layout(target)
    words = layout.words
    weights = dict(counts.get("weights", {}))
    written = QdqCounts.from_dict({k: v for k, v in counts.items() if k != "weights"})
    correction = weights.get("bias_correction")
    return QuantizationDetails(
        target=target.value,
        format="QDQ",
        activation_type=words.activation_type,
        activation_zero_point=words.activation_zero_point,
        activation_scales="per-tensor",
        weight_type="int8",
        weight_range=(-policy.weight_max, policy.weight_max),
        reduce_range=policy.weight_max < INT8_WEIGHT_MAX,
        # pairs of same-sign weights over |a| + |b| = 128 moved onto it (7 bits where the
        # kernels' pairing depends on their layout): no u8×s8 pair sum can leave int16
        safe_pairs=policy.safe_pairs,
        # the u8×s8 pair sums fit int16 on CPUs without VNNI (None: tensorrt, which
        # accumulates in int32)
        saturation_safe=policy.saturation_safe if layout.cpu_kernels else None,
        seven_bit_layers=tuple(weights.get("seven_bit_layers", [])),
        pairs_moved=int(weights.get("pairs_moved", 0)),
        bias_correction=None if correction is None else BiasCorrection.from_dict(correction),
        weight_storage=words.weight_storage,
        per_channel_weights=True,
        weight_axis="output channel (Conv axis 0)",
        bias=words.bias,
        counts=written,
        layers=plan.layers,
        excluded=tuple(sorted(excluded)),
        kept_for_budget=kept_budget,
        left_float=plan.left_float,
    )
