"""The `quantize` stage: FP32 ONNX + calibration data → INT8 (explicit Q/DQ) or FP16 ONNX.

TensorRT 11 takes precision only from the ONNX, so this stage decides what every engine will
compute. INT8 has two layouts (`QdqTarget`): TensorRT's (symmetric int8, Q/DQ on Conv inputs and
residual skip inputs) and ONNX Runtime CPU's (u8 activations, every Conv/Add in int8); the same
calibration statistics serve both. Every artifact is scored on ONNX Runtime CPU against its FP32
source when labelled data is at hand, and the figures go into the manifest; `max_drop` turns
the drop into a gate, `accuracy_budget` keeps the most sensitive layers in higher precision
until the drop fits.

Outputs (atomic, all or nothing): OUT.onnx, OUT.onnx.json, and for the TensorRT target
OUT.trt-calib.cache (TensorRT's text calibration cache from the same ranges, for the implicit
INT8 that DLA on Jetson Orin runs). A calibration cache (`calib_cache`) is written as soon as
the statistics exist: it is valid whatever happens later and saves the next run the pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    check_artifact_hash,
    read_manifest,
    stage_manifest,
    write_manifest,
)
from resnet_opt.errors import QualityGateError, ResnetOptError, UsageError
from resnet_opt.graph import load_onnx, save_onnx
from resnet_opt.quantization.plan import Placement, Plan, QdqTarget
from resnet_opt.quantization.qdq import INT8_WEIGHT_MAX, weight_limit

if TYPE_CHECKING:
    import onnx

    from resnet_opt.calibration.collect import ProgressCallback
    from resnet_opt.calibration.data import DataSource
    from resnet_opt.calibration.histogram import Statistics
    from resnet_opt.calibration.ranges import Method, TensorRange
    from resnet_opt.pipeline.evaluate import Evaluation
    from resnet_opt.quantization.graph_rules import GraphView

log = logging.getLogger(__name__)

DEFAULT_CALIB_SAMPLES = 512  # NVIDIA's recommendation for CNNs; fewer when the data has fewer
DEFAULT_METHOD = "entropy"  # TensorRT's own calibrator (EntropyCalibration2)
DEFAULT_TENSORRT_VERSION = "10.3.0"  # JetPack 6.1/6.2: the TensorRT whose DLA reads the cache
TRT_CACHE_SUFFIX = ".trt-calib.cache"
NO_EVAL = "none"
CALIB_BATCH = 32
SENSITIVITY_SAMPLES = 32  # calibration samples the per-layer output error is measured on


@dataclass(frozen=True)
class QuantizeOptions:
    """What `resnet-opt quantize` takes besides IN and OUT.

    None means "not given": the stage picks the documented default, and refuses options that do
    not apply (e.g. a target for FP16) instead of ignoring them.
    """

    precision: Precision = Precision.INT8
    target: QdqTarget | None = None  # int8 only; default tensorrt
    method: str | None = None  # int8 only; max | percentile | entropy | mse, default entropy
    percentile: float | None = None  # method percentile only; default 99.99
    calib: str | None = None  # DATA; default: the bundled calib split for the bundled model
    calib_samples: int | None = None  # default: 512, or all there are
    seed: int = 0
    calib_cache: Path | None = None
    eval_data: str | None = None  # DATA or "none"; default: bundled test split if it applies
    eval_samples: int | None = None
    max_drop: float | None = None
    accuracy_budget: float | None = None  # int8 only
    exclude: tuple[str, ...] = ()
    keep_io_types: bool = False  # fp16 only
    strict: bool = False
    threads: int | None = None
    preprocessing: PreprocessContract | None = None  # for an input without a manifest
    tensorrt_version: str | None = None  # int8 tensorrt only; default 10.3.0
    # int8 cpu only: 7-bit weights ([-64, 64]) that cannot saturate the u8×s8 kernels of CPUs
    # without VNNI (default True); False keeps full 8 bits, for VNNI/AMX/Arm-dotprod CPUs only
    reduce_range: bool | None = None

    def to_manifest(self) -> dict[str, Any]:
        return {
            "precision": self.precision.value,
            "target": self.target.value if self.target else None,
            "method": self.method,
            "percentile": self.percentile,
            "calib": self.calib,
            "calib_samples": self.calib_samples,
            "seed": self.seed,
            "calib_cache": str(self.calib_cache) if self.calib_cache else None,
            "eval": self.eval_data,
            "eval_samples": self.eval_samples,
            "max_drop": self.max_drop,
            "accuracy_budget": self.accuracy_budget,
            "exclude": list(self.exclude),
            "keep_io_types": self.keep_io_types,
            "strict": self.strict,
            "threads": self.threads,
            "tensorrt_version": self.tensorrt_version,
            "reduce_range": self.reduce_range,
        }


@dataclass(frozen=True)
class QuantizeResult:
    output: Path
    manifest: Manifest
    tensorrt_cache: Path | None


class QuantizeGateError(QualityGateError):
    """The accuracy drop exceeded `max_drop`. The artifact was still written (for inspection,
    its manifest says the gate failed); the result is attached."""

    def __init__(self, message: str, result: QuantizeResult) -> None:
        super().__init__(message)
        self.result = result


def tensorrt_cache_path(output: Path) -> Path:
    """OUT.onnx → OUT.trt-calib.cache (the build stage's DLA path looks for it there)."""
    stem = output.name[: -len(".onnx")] if output.name.endswith(".onnx") else output.name
    return output.with_name(stem + TRT_CACHE_SUFFIX)


# -- options and inputs ----------------------------------------------------------------------


def _check_options(options: QuantizeOptions) -> None:
    from resnet_opt.calibration.ranges import Method
    from resnet_opt.calibration.tensorrt_cache import tensorrt_version_int

    int8 = options.precision is Precision.INT8
    if options.precision not in (Precision.INT8, Precision.FP16):
        raise UsageError(f"precision must be int8 or fp16, not {options.precision.value}")
    not_for = "fp16" if int8 else "int8"
    misplaced = {
        "--target": options.target is not None,
        "--method": options.method is not None,
        "--percentile": options.percentile is not None,
        "--accuracy-budget": options.accuracy_budget is not None,
    }
    if not int8:
        given = [name for name, set_ in misplaced.items() if set_]
        if given:
            raise UsageError(f"{', '.join(given)} apply to int8 only, not to {not_for}")
    elif options.keep_io_types:
        raise UsageError("--keep-io-types applies to fp16 only (int8 models keep fp32 I/O)")
    if options.method is not None:
        try:
            Method(options.method)
        except ValueError:
            choices = ", ".join(m.value for m in Method)
            raise UsageError(f"unknown method {options.method!r} (choose {choices})") from None
    if options.percentile is not None:
        if options.method != Method.PERCENTILE.value:
            raise UsageError("--percentile needs --method percentile")
        if not (0 < options.percentile <= 100):
            raise UsageError(f"--percentile must be in (0, 100], not {options.percentile}")
    for name, value in (
        ("--max-drop", options.max_drop),
        ("--accuracy-budget", options.accuracy_budget),
    ):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise UsageError(f"{name} must be a non-negative number of points, not {value}")
    if options.tensorrt_version is not None:
        if not int8 or options.target is QdqTarget.CPU:
            raise UsageError(
                "--tensorrt-version applies to the int8 tensorrt target only (it is the version "
                "of the TensorRT calibration cache written beside the model)"
            )
        tensorrt_version_int(options.tensorrt_version)  # refused now, not after calibrating
    if options.reduce_range is not None and (not int8 or options.target is not QdqTarget.CPU):
        flag = "--reduce-range" if options.reduce_range else "--no-reduce-range"
        why = (
            "TensorRT's int8 kernels accumulate in int32 and always take full 8-bit weights"
            if int8
            else "fp16 has no int8 weights"
        )
        raise UsageError(
            f"{flag} applies to the int8 cpu target only (it limits the weights to 7 bits so "
            f"that x86 u8×s8 kernels without VNNI cannot saturate); {why}"
        )
    if options.calib_samples is not None and options.calib_samples < 1:
        raise UsageError(f"--calib-samples must be positive, not {options.calib_samples}")


def _check_gates_measurable(options: QuantizeOptions, eval_spec: str | None) -> None:
    """A gate that cannot be measured must not pass silently: --max-drop and --accuracy-budget
    need labelled evaluation data (`eval_spec`, None when there is none)."""
    for flag, value in (
        ("--max-drop", options.max_drop),
        ("--accuracy-budget", options.accuracy_budget),
    ):
        if value is None or eval_spec is not None:
            continue
        if options.eval_data == NO_EVAL:
            raise UsageError(f"{flag} needs evaluation data; it cannot go with --eval none")
        raise ResnetOptError(
            f"{flag} needs evaluation data: pass --eval DATA (the bundled test split applies to "
            "the bundled model only)"
        )


def _contract(
    source: Path, parent: Manifest | None, given: PreprocessContract | None
) -> PreprocessContract:
    if parent is not None and parent.preprocessing is not None:
        if given is not None and given.to_dict() != parent.preprocessing.to_dict():
            raise ResnetOptError(
                f"{source}: its manifest already sets the preprocessing; drop the preprocessing "
                "options (they differ from it)"
            )
        return parent.preprocessing
    if given is None:
        raise ResnetOptError(
            f"{source}: no manifest with a preprocessing contract beside it; give the "
            "preprocessing (--input-size, --mean, --std, and --resize/--crop if used) or "
            "export the model with resnet-opt"
        )
    return given


def is_bundled_default(contract: PreprocessContract) -> bool:
    """Whether `contract` is the bundled default model's (its digits splits then apply)."""
    try:
        from resnet_opt.models.default import default_contract

        reference = default_contract()
    except (ImportError, ResnetOptError):
        return False
    return reference.fingerprint() == contract.fingerprint()


def _calib_spec(options: QuantizeOptions, contract: PreprocessContract) -> str | None:
    if options.calib is not None:
        return options.calib
    return "default:calib" if is_bundled_default(contract) else None


def _eval_spec(options: QuantizeOptions, contract: PreprocessContract) -> str | None:
    if options.eval_data == NO_EVAL:
        return None
    if options.eval_data is not None:
        return options.eval_data
    return "default:test" if is_bundled_default(contract) else None


@dataclass(frozen=True)
class _Source:
    """The FP32 model being quantized, read once: file, graph, sha256, manifest, contract."""

    path: Path
    model: onnx.ModelProto
    sha256: str
    parent: Manifest | None
    contract: PreprocessContract

    def input_ref(self) -> InputRef:
        return InputRef("model", str(self.path), self.sha256)


# -- calibration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    stats: Statistics
    source: DataSource
    indices: Any  # np.ndarray of the selected sample positions
    details: dict[str, Any]


def calibrate(
    source: _Source,
    data: str,
    options: QuantizeOptions,
    progress: ProgressCallback | None = None,
) -> Calibration:
    """Statistics of every calibratable tensor: from `calib_cache` when its key matches, else a
    streamed pass (then saved to `calib_cache` if one was named)."""
    from resnet_opt.calibration.cache import CacheKey, load_cache, save_cache
    from resnet_opt.calibration.collect import calibration_tensors, collect_statistics
    from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices

    started = time.perf_counter()
    ds = open_source(data, default_split=Split.CALIB, strict=options.strict)
    wanted = options.calib_samples or DEFAULT_CALIB_SAMPLES
    indices = select_indices(len(ds), wanted, options.seed)
    key = CacheKey(
        model_sha256=source.sha256,
        data_hash=ds.fingerprint([int(i) for i in indices]),
        preprocessing_hash=source.contract.fingerprint(),
        samples=wanted,
        seed=options.seed,
    )
    cache = options.calib_cache
    reused = cache is not None and cache.exists()
    if cache is not None and reused:
        stats = load_cache(cache, key)
        log.info("calibration statistics from %s", cache)
    else:
        stream = BatchStream(ds, source.contract, indices, CALIB_BATCH, options.strict)
        stats = collect_statistics(
            source.path,
            stream,
            calibration_tensors(source.model),
            progress=progress,
            threads=options.threads,
            requested=options.calib_samples,  # a warning only when the user asked for more
        )
        if cache is not None:
            save_cache(cache, key, stats)
    details = {
        "data": ds.description,
        "data_hash": key.data_hash,
        "preprocessing_hash": key.preprocessing_hash,
        "samples": stats.samples,
        "requested": options.calib_samples,
        "available": len(ds),
        "seed": options.seed,
        "skipped": len(stats.skipped),
        "tensors": len(stats.tensors),
        "cache": {"file": cache.name, "reused": reused} if cache is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Calibration(stats, ds, indices, details)


# -- the stage -------------------------------------------------------------------------------


def quantize(
    source: Path,
    output: Path,
    options: QuantizeOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> QuantizeResult:
    """Quantize `source` into `output` (INT8 or FP16), scored and gated as `options` say.

    `progress(consumed, total)` is called as calibration samples stream through (the long part).

    Raises QuantizeGateError (exit 3) after writing when the drop exceeds `max_drop`: a CI job
    fails, and the artifact and its manifest stay for inspection.
    """
    options = options or QuantizeOptions()
    source, output = Path(source), Path(output)
    _check_options(options)
    if output.resolve() == source.resolve():
        raise ResnetOptError(f"{output}: is the input; write the result to another file")
    from resnet_opt.quantization.graph_rules import quantized_reason

    model = load_onnx(source)
    reason = quantized_reason(model)  # before the manifest: the more useful thing to hear
    if reason:
        raise ResnetOptError(f"{source}: already quantized ({reason}); quantize the FP32 model")
    parent = read_manifest(source, required=False)
    sha256 = sha256_file(source) if parent is None else check_artifact_hash(source, parent)
    contract = _contract(source, parent, options.preprocessing)
    _check_gates_measurable(options, _eval_spec(options, contract))
    src = _Source(source, model, sha256, parent, contract)
    if options.precision is Precision.FP16:
        result = _quantize_fp16(src, output, options, force, progress)
    else:
        result = _quantize_int8(src, output, options, force, progress)
    gate = result.manifest.verification.get("gate")
    if isinstance(gate, Mapping) and gate.get("passed") is False:
        from resnet_opt.quantization.report import gate_advice

        raise QuantizeGateError(
            f"{output.name}: top-1 dropped {gate['drop_points']:.2f} points, over --max-drop "
            f"{gate['max_drop']:g}; try {gate_advice(result.manifest)} ({output} kept for "
            "inspection; its manifest records the failure)",
            result,
        )
    return result


def _exclusions(view: GraphView, patterns: Sequence[str], allowed: Sequence[str]) -> set[str]:
    from resnet_opt.quantization.graph_rules import match_exclusions

    matched, unknown = match_exclusions(view, patterns)
    if unknown:
        raise ResnetOptError(
            f"--exclude {', '.join(unknown)}: no node or op type of that name in the model"
        )
    allowed_set = set(allowed)
    named = [p for p in patterns if p in view.by_name and p not in allowed_set]
    if named:
        raise ResnetOptError(
            f"--exclude {', '.join(named)}: not a layer this target quantizes (it already runs "
            "in higher precision)"
        )
    return matched & allowed_set


def _placement(target: QdqTarget) -> Placement:
    from resnet_opt.quantization import placement_cpu, placement_tensorrt

    if target is QdqTarget.CPU:
        return placement_cpu
    return placement_tensorrt


def _ranges(
    stats: Statistics, method: Method, percentile: float, target: QdqTarget
) -> dict[str, TensorRange]:
    from resnet_opt.calibration.ranges import compute_ranges

    return compute_ranges(
        stats, method, percentile=percentile, uint8_when_nonnegative=target is QdqTarget.CPU
    )


def _evaluate(artifact: Path, data: str, source: _Source, options: QuantizeOptions) -> Evaluation:
    """`artifact` scored on DATA against the FP32 source (ONNX Runtime CPU)."""
    from resnet_opt.pipeline.evaluate import EvalOptions, evaluate

    return evaluate(
        artifact,
        options=EvalOptions(
            data=data,
            reference=source.path,
            contract=source.contract,
            samples=options.eval_samples,
            seed=options.seed,
            threads=options.threads,
            strict=options.strict,
        ),
    )


def _verification(
    evaluation: Evaluation | None,
    eval_spec: str | None,
    options: QuantizeOptions,
    artifact_name: str = "",
) -> dict[str, Any]:
    if evaluation is None:
        why = (
            "--eval none"
            if options.eval_data == NO_EVAL
            else "no evaluation data (give --eval DATA with labelled images)"
        )
        return {"evaluated": False, "reason": why}
    figures: dict[str, Any] = {
        "evaluated": True,
        "runtime": "onnxruntime-cpu",
        **evaluation.to_dict(),
        "artifact": artifact_name,  # not the temporary file it was scored as
        "eval": eval_spec,
    }
    if options.max_drop is not None and evaluation.drop_points is not None:
        figures["gate"] = {
            "max_drop": options.max_drop,
            "drop_points": evaluation.drop_points,
            "passed": evaluation.drop_points <= options.max_drop,
        }
    return figures


def _manifest(
    source: _Source,
    *,
    output: Path,
    content: Path,
    precision: Precision,
    inputs: tuple[InputRef, ...],
    options: QuantizeOptions,
    verification: Mapping[str, Any],
    details: Mapping[str, Any],
) -> Manifest:
    return stage_manifest(
        source.parent,
        stage=Stage.QUANTIZE,
        artifact=output,
        content=content,
        precision=precision,
        inputs=inputs,
        options=options.to_manifest(),
        verification=verification,
        details=details,
        preprocessing=source.contract,  # the options' contract for a parent without one
    )


def _quantize_int8(
    source: _Source,
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
    weight_max = weight_limit(target, options.reduce_range)
    method = Method(options.method or DEFAULT_METHOD)
    percentile = options.percentile if options.percentile is not None else DEFAULT_PERCENTILE
    prepared = prepare(source.model, str(source.path), int8=True)
    view = GraphView(prepared)
    placement = _placement(target)
    place = placement.place
    candidates = placement.candidate_layers(view)
    excluded = _exclusions(view, options.exclude, placement.excludable_layers(view))
    calib_spec = _calib_spec(options, source.contract)
    if calib_spec is None:
        raise ResnetOptError(
            f"{source.path}: int8 needs calibration data: give --calib DATA (an image folder or a "
            ".npy/.npz file preprocessed by the model's contract)"
        )
    eval_spec = _eval_spec(options, source.contract)
    trt_cache = tensorrt_cache_path(output) if target is QdqTarget.TENSORRT else None
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
        quantized, counts = apply_plan(prepared, plan, ranges, weight_max=weight_max)
        save_onnx(quantized, onnx_tmp)
        timings["rewrite"] = time.perf_counter() - started

        evaluation = None
        budget: dict[str, Any] | None = None
        if eval_spec is not None:
            started = time.perf_counter()
            evaluation = _evaluate(onnx_tmp, eval_spec, source, options)
            timings["evaluate"] = time.perf_counter() - started
            drop = evaluation.drop_points or 0.0
            if options.accuracy_budget is not None and drop > options.accuracy_budget:
                started = time.perf_counter()
                plan, budget = _meet_budget(
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
                    weight_max,
                )
                quantized, counts = apply_plan(prepared, plan, ranges, weight_max=weight_max)
                save_onnx(quantized, onnx_tmp)
                evaluation = _evaluate(onnx_tmp, eval_spec, source, options)
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
        details = {
            "calibration": {
                "method": method.value,
                "percentile": percentile if method is Method.PERCENTILE else None,
                **calib.details,
            },
            "quantization": _quantization_details(
                target, plan, counts, excluded, kept_budget, weight_max
            ),
            "accuracy_budget": budget,
            "tensorrt_calibration_cache": trt_cache.name if trt_cache is not None else None,
            "tensorrt_calibration_cache_version": trt_version if trt_cache else None,
            "seconds": {k: round(v, 3) for k, v in timings.items()},
        }
        inputs = [source.input_ref()]
        if options.calib_cache is not None:
            inputs.append(InputRef.of("calibration_cache", options.calib_cache))
        manifest = _manifest(
            source,
            output=output,
            content=onnx_tmp,
            precision=Precision.MIXED if plan.kept else Precision.INT8,
            inputs=tuple(inputs),
            options=options,
            verification=_verification(evaluation, eval_spec, options, output.name),
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return QuantizeResult(output, manifest, trt_cache)


def _quantization_details(
    target: QdqTarget,
    plan: Plan,
    counts: Mapping[str, int],
    excluded: set[str],
    kept_budget: tuple[str, ...],
    weight_max: int,
) -> dict[str, Any]:
    from resnet_opt.quantization.qdq import pair_sum_fits_int16

    cpu = target is QdqTarget.CPU
    return {
        "target": target.value,
        "format": "QDQ",
        "activation_type": "uint8" if cpu else "int8",
        "activation_zero_point": (
            "0 for non-negative tensors ([0, amax] → [0, 255]), 128 for signed ones"
            if cpu
            else "0 (symmetric)"
        ),
        "activation_scales": "per-tensor",
        "weight_type": "int8",
        "weight_range": [-weight_max, weight_max],
        "reduce_range": weight_max < INT8_WEIGHT_MAX,
        # the cpu layout's u8×s8 pair sums fit int16 on CPUs without VNNI (None: not a CPU
        # layout; TensorRT accumulates in int32)
        "saturation_safe": pair_sum_fits_int16(weight_max) if cpu else None,
        "weight_storage": "int8 initializers + DequantizeLinear",
        "per_channel_weights": True,
        "weight_axis": "output channel (Conv axis 0)",
        "bias": "int32 (DequantizeLinear)" if cpu else "float",
        **dict(counts),
        "layers": list(plan.layers),
        "excluded": sorted(excluded),
        "kept_for_budget": list(kept_budget),
        "left_float": [{"node": n, "reason": r} for n, r in plan.left_float],
    }


def _meet_budget(
    source: _Source,
    prepared: onnx.ModelProto,
    view: GraphView,
    place: Callable[..., Plan],
    candidates: Sequence[str],
    excluded: set[str],
    ranges: Mapping[str, TensorRange],
    calib: Calibration,
    eval_spec: str,
    options: QuantizeOptions,
    drop: float,
    weight_max: int,
) -> tuple[Plan, dict[str, Any]]:
    """Keep the most sensitive layers in higher precision until the drop fits the budget."""
    from resnet_opt.calibration.data import (
        BatchStream,
        Split,
        label_map,
        open_source,
        select_indices,
    )
    from resnet_opt.quantization.qdq import apply_plan
    from resnet_opt.quantization.sensitivity import (
        AccuracyProbe,
        OutputErrorProbe,
        layer_macs,
        rank,
        search_kept,
    )

    assert options.accuracy_budget is not None
    contract = source.contract
    layers = [c for c in candidates if c not in excluded]
    probe_indices = calib.indices[:SENSITIVITY_SAMPLES]
    probe_stream = BatchStream(calib.source, contract, probe_indices, CALIB_BATCH, options.strict)
    probe = OutputErrorProbe(source.path, [b.x for b in probe_stream], options.threads)
    ds = open_source(eval_spec, default_split=Split.TEST, strict=options.strict)
    mapping = label_map(ds, contract)
    eval_indices = select_indices(len(ds), options.eval_samples, options.seed)
    accuracy = AccuracyProbe(
        source.path,
        lambda: BatchStream(ds, contract, eval_indices, CALIB_BATCH, options.strict),
        mapping,
        options.threads,
    )
    try:
        everything = set(layers) | excluded

        def error_of(layer: str) -> float:
            model, _ = apply_plan(
                prepared, place(view, everything - {layer}), ranges, weight_max=weight_max
            )
            return probe.error(model)

        macs = layer_macs(prepared)
        ops = {n.name: n.op_type for n in view.nodes}
        ranked = rank(layers, ops, error_of, macs)

        def drop_of(kept: tuple[str, ...]) -> float:
            model, _ = apply_plan(
                prepared, place(view, excluded | set(kept)), ranges, weight_max=weight_max
            )
            return accuracy.drop(model)

        search = search_kept([s.layer for s in ranked], drop_of, options.accuracy_budget, drop)
    finally:
        probe.close()
        accuracy.close()
    total_macs = sum(macs.get(n, 0) for n in candidates)
    kept_macs = sum(macs.get(n, 0) for n in search.kept)
    plan = place(view, excluded | set(search.kept))
    budget = {
        "budget": options.accuracy_budget,
        "drop_before": drop,
        "kept": list(search.kept),
        "kept_macs_share": (kept_macs / total_macs) if total_macs else None,
        "trials": [{"kept": k, "drop_points": d} for k, d in search.trials],
        "sensitivity": {
            "metric": "relative squared logit error vs FP32 with only this layer in int8",
            "samples": len(probe_indices),
            "layers": [s.to_dict() for s in ranked],
        },
    }
    return plan, budget


def _quantize_fp16(
    source: _Source,
    output: Path,
    options: QuantizeOptions,
    force: bool,
    progress: ProgressCallback | None,
) -> QuantizeResult:
    import tempfile

    from resnet_opt.quantization import fp16
    from resnet_opt.quantization.graph_rules import GraphView, prepare

    prepared = prepare(source.model, str(source.path), int8=False)
    view = GraphView(prepared)
    excluded = _exclusions(view, options.exclude, [n.name for n in view.nodes])  # any node
    calib_spec = _calib_spec(options, source.contract)
    eval_spec = _eval_spec(options, source.contract)
    timings: dict[str, float] = {}
    with staged_outputs(force=force) as staged:
        onnx_tmp, manifest_tmp = staged.add_with_manifest(output)
        overflow: dict[str, Any]
        keep = set(excluded)
        if calib_spec is not None:
            calib = calibrate(source, calib_spec, options, progress)
            absmax = {name: t.absmax for name, t in calib.stats.tensors.items()}
            risky = fp16.overflow_nodes(prepared, absmax)
            keep |= set(risky)
            overflow = {
                "checked": True,
                "limit": fp16.FP16_MAX * fp16.OVERFLOW_HEADROOM,
                "largest_abs": max(absmax.values(), default=0.0),
                "kept_fp32": risky,
                "calibration": calib.details,
            }
        else:
            overflow = {
                "checked": False,
                "reason": "no calibration data (give --calib DATA to find tensors that would "
                "overflow fp16)",
            }
        started = time.perf_counter()
        converted = fp16.convert(prepared, keep_io_types=options.keep_io_types, keep_fp32=keep)
        save_onnx(converted, onnx_tmp)
        timings["convert"] = time.perf_counter() - started
        half, total = fp16.fp16_nodes(converted)
        fallback = fp16.cpu_fp32_fallback(onnx_tmp)

        verification: dict[str, Any]
        if eval_spec is not None:
            started = time.perf_counter()
            evaluation = _evaluate(onnx_tmp, eval_spec, source, options)
            with tempfile.TemporaryDirectory(prefix="resnet-opt-fp16-") as folder:
                twin = Path(folder) / "emulated.onnx"
                save_onnx(fp16.emulate(converted), twin)
                emulated = _evaluate(twin, eval_spec, source, options)
            timings["evaluate"] = time.perf_counter() - started
            verification = _verification(evaluation, eval_spec, options, output.name)
            verification["fp16_emulated"] = {
                **emulated.to_dict(),
                "artifact": None,  # a temporary twin, not kept
                "what": "float32 twin of the artifact rounding every fp16 tensor to fp16",
            }
            worst = max(evaluation.drop_points or 0.0, emulated.drop_points or 0.0)
            if options.max_drop is not None:
                verification["gate"] = {
                    "max_drop": options.max_drop,
                    "drop_points": worst,
                    "passed": worst <= options.max_drop,
                    "of": "the larger of the artifact's and the fp16 emulation's drops",
                }
        else:
            verification = _verification(None, None, options)
        verification["cpu_fp32_fallback"] = {
            "ops": fallback,
            "note": (
                "ONNX Runtime's CPU provider has no fp16 kernel for these ops and ran them in "
                "fp32 on the fp16-rounded weights; fp16_emulated rounds activations too"
                if fallback
                else "ONNX Runtime's CPU provider ran every fp16 op in fp16"
            ),
        }
        details = {
            "fp16": {
                "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
                "keep_io_types": options.keep_io_types,
                "fp16_nodes": half,
                "nodes": total,
                "kept_fp32": sorted(keep),
                "excluded": sorted(excluded),
                "overflow_check": overflow,
            },
            "seconds": {k: round(v, 3) for k, v in timings.items()},
        }
        manifest = _manifest(
            source,
            output=output,
            content=onnx_tmp,
            precision=Precision.FP16,
            inputs=(source.input_ref(),),
            options=options,
            verification=verification,
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return QuantizeResult(output, manifest, None)


def contract_from_options(
    model_path: Path,
    *,
    input_size: int | None,
    mean: str | None,
    std: str | None,
    resize: int | None = None,
    crop: int | None = None,
    interpolation: str | None = None,
) -> PreprocessContract | None:
    """The contract of a model without a manifest, from the CLI's preprocessing options.

    None when no option was given (the manifest must then have it); the class count comes from
    the model's output. Partial options are refused: a guessed mean or size would quietly
    calibrate on the wrong inputs.
    """
    from resnet_opt.core.contract import Interpolation, parse_floats

    given = [v for v in (input_size, mean, std, resize, crop, interpolation) if v is not None]
    if not given:
        return None
    if input_size is None or mean is None or std is None:
        raise ResnetOptError(
            "preprocessing options need at least --input-size, --mean and --std "
            "(plus --resize/--crop if the model was trained with them)"
        )
    try:
        filter_ = Interpolation(interpolation or Interpolation.BILINEAR.value)
    except ValueError:
        choices = ", ".join(i.value for i in Interpolation)
        raise UsageError(f"unknown interpolation {interpolation!r} ({choices})") from None
    means = parse_floats(mean, "--mean")
    model = load_onnx(model_path, check=False)
    dims = model.graph.output[0].type.tensor_type.shape.dim if model.graph.output else []
    classes = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else 0
    if classes < 1:
        raise ResnetOptError(f"{model_path}: cannot tell the number of classes from its output")
    return PreprocessContract(
        input_size=input_size,
        channels=len(means),
        mean=means,
        std=parse_floats(std, "--std"),
        resize=resize,
        crop=crop,
        interpolation=filter_,
        num_classes=classes,
    )
