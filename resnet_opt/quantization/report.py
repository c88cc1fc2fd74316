"""The human summary of a quantize manifest: what the CLI prints on stderr.

Read from the manifest alone, so the summary says exactly what the sidecar records (and a
failed --max-drop gate still gets its summary printed before the error line).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_opt.core.manifest import Precision
from resnet_opt.core.quantization_details import QuantizationDetails, quantization_in
from resnet_opt.core.stage_details import Fp16QuantizeDetails, Int8QuantizeDetails

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest


def _bits(quant: QuantizationDetails) -> str:
    """', 7-bit [-64, 64]' for reduced-range weights (the cpu default), else nothing."""
    limits = quant.weight_range
    if quant.reduce_range and limits is not None:
        return f", 7-bit [{limits[0]}, {limits[1]}]"
    return ""


def _family(check: Mapping[str, object]) -> str:
    """', int8 on AMX': the CPU int8 family the figure holds for (recorded since it mattered)."""
    from resnet_opt.core.cpu_int8 import recorded_label

    value = check.get("cpu_int8_family")
    return f", int8 on {recorded_label(value)}" if isinstance(value, str) else ""


def gate_advice(manifest: Manifest) -> str:
    """What to try when the artifact failed its accuracy gate (no parentheses: `run` cuts the
    error message at the first one)."""
    from resnet_opt.environment import cpu_int8_family
    from resnet_opt.quantization.saturation import saturates_on

    quant = quantization_in(manifest)
    if quant is None:  # fp16
        return "--exclude NODE to keep the nodes that lose the most in fp32"
    family = cpu_int8_family()
    tips = []
    if saturates_on(manifest, family):
        tips.append(
            f"dropping --no-reduce-range, since this CPU's int8 sums saturate with 8-bit "
            f"weights on {family.label}"
        )
    tips += [
        "another --method: mse, percentile or max",
        "--accuracy-budget P, which keeps the most sensitive layers in higher precision",
        "--exclude NODE",
    ]
    if quant.target == "cpu":
        tips.append("on OpenVINO, the --target tensorrt file")
    return "; ".join(tips[:-1]) + "; or " + tips[-1]


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """The human summary of a quantize manifest (the CLI prints it on stderr)."""
    check = manifest.verification
    lines: list[str] = []
    int8 = fp16 = None
    if manifest.precision is Precision.FP16:
        fp16 = manifest.read_details(Fp16QuantizeDetails)
        calib, method = fp16.fp16.overflow_check.calibration, ""
    else:
        int8 = manifest.read_details(Int8QuantizeDetails)
        calib = int8.calibration.run
        extra = f" {int8.calibration.percentile}" if int8.calibration.percentile else ""
        method = f" {int8.calibration.method}{extra}"
    quant = int8.quantization if int8 is not None else None
    if quant is not None:
        lines.append(
            f"{output}: {manifest.precision.value}, {quant.target} layout — "
            f"{quant.counts.int8_layers} layers in int8, {quant.counts.quantized_tensors} "
            f"activation Q/DQ pairs, {quant.counts.int8_weights} int8 weights (per channel"
            f"{_bits(quant)}), bias {quant.bias}"
        )
    elif fp16 is not None:
        half = fp16.fp16
        lines.append(
            f"{output}: fp16, {half.fp16_nodes} of {half.nodes} nodes in fp16"
            f"{', I/O kept fp32' if half.keep_io_types else ''}; kept fp32: "
            f"{', '.join(half.kept_fp32) or 'none'}"
        )
    if calib is not None:
        cache = calib.cache
        reused = f", statistics from {cache.file}" if cache and cache.reused else ""
        lines.append(f"  calibration{method}: {calib.samples} samples of {calib.data}{reused}")
    if check.get("evaluated"):
        ref = check.get("reference") or {}
        lines.append(
            f"  accuracy ({check['count']} images, ONNX Runtime CPU{_family(check)}): top-1 "
            f"{check['top1']:.2f}% "
            f"vs FP32 {ref.get('top1', float('nan')):.2f}% (drop {check['drop_points']:+.2f} "
            f"points), top-5 {check['top5']:.2f}%, agreement {check['top1_agreement']:.2f}%"
        )
        emulated = check.get("fp16_emulated")
        if isinstance(emulated, Mapping):
            lines.append(
                f"  fp16 emulated (activations rounded to fp16): top-1 {emulated['top1']:.2f}% "
                f"(drop {emulated['drop_points']:+.2f} points)"
            )
    else:
        lines.append(f"  not evaluated: {check.get('reason')}")
    fallback = check.get("cpu_fp32_fallback")
    if isinstance(fallback, Mapping) and fallback.get("ops"):
        ops = ", ".join(f"{k}×{v}" for k, v in fallback["ops"].items())
        lines.append(f"  ONNX Runtime CPU ran these fp16 ops in fp32 (no fp16 kernel): {ops}")
    budget = int8.accuracy_budget if int8 is not None else None
    if budget is not None and budget.get("kept"):
        share = budget.get("kept_macs_share")
        cost = f", {100 * share:.1f}% of the MACs" if share is not None else ""
        state = "met" if budget.get("met") else "NOT met"
        lines.append(
            f"  accuracy budget {budget['budget']:g} points {state}: kept "
            f"{len(budget['kept'])} layer(s) in higher precision{cost}: "
            f"{', '.join(budget['kept'])}"
        )
    if quant is not None and quant.excluded:
        lines.append(f"  excluded: {', '.join(quant.excluded)}")
    gate = check.get("gate")
    if isinstance(gate, Mapping):
        lines.append(
            f"  gate --max-drop {gate['max_drop']:g}: {'passed' if gate['passed'] else 'FAILED'}"
        )
    if int8 is not None and int8.tensorrt_calibration_cache:
        lines.append(f"  TensorRT calibration cache: {int8.tensorrt_calibration_cache}")
    return lines
