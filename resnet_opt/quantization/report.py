"""The human summary of a quantize manifest: what the CLI prints on stderr.

Read from the manifest alone, so the summary says exactly what the sidecar records (and a
failed --max-drop gate still gets its summary printed before the error line).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """The human summary of a quantize manifest (the CLI prints it on stderr)."""
    details, check = manifest.details, manifest.verification
    lines: list[str] = []
    quant = details.get("quantization")
    calib = details.get("calibration") or (details.get("fp16") or {}).get("overflow_check", {}).get(
        "calibration"
    )
    if isinstance(quant, Mapping):
        lines.append(
            f"{output}: {manifest.precision.value}, {quant['target']} layout — "
            f"{quant['int8_layers']} layers in int8, {quant['quantized_tensors']} activation "
            f"Q/DQ pairs, {quant['int8_weights']} int8 weights (per channel), bias "
            f"{quant['bias']}"
        )
    else:
        fp16 = details.get("fp16", {})
        lines.append(
            f"{output}: fp16, {fp16.get('fp16_nodes')} of {fp16.get('nodes')} nodes in fp16"
            f"{', I/O kept fp32' if fp16.get('keep_io_types') else ''}; kept fp32: "
            f"{', '.join(fp16.get('kept_fp32', [])) or 'none'}"
        )
    if isinstance(calib, Mapping):
        method = calib.get("method")
        extra = f" {calib['percentile']}" if calib.get("percentile") else ""
        cache = calib.get("cache")
        reused = f", statistics from {cache['file']}" if cache and cache.get("reused") else ""
        lines.append(
            f"  calibration{' ' + method + extra if method else ''}: {calib['samples']} samples "
            f"of {calib['data']}{reused}"
        )
    if check.get("evaluated"):
        ref = check.get("reference") or {}
        lines.append(
            f"  accuracy ({check['count']} images, ONNX Runtime CPU): top-1 {check['top1']:.2f}% "
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
    budget = details.get("accuracy_budget")
    if isinstance(budget, Mapping) and budget.get("kept"):
        share = budget.get("kept_macs_share")
        cost = f", {100 * share:.1f}% of the MACs" if share is not None else ""
        state = "met" if budget.get("met") else "NOT met"
        lines.append(
            f"  accuracy budget {budget['budget']:g} points {state}: kept "
            f"{len(budget['kept'])} layer(s) in higher precision{cost}: "
            f"{', '.join(budget['kept'])}"
        )
    if isinstance(quant, Mapping) and quant.get("excluded"):
        lines.append(f"  excluded: {', '.join(quant['excluded'])}")
    gate = check.get("gate")
    if isinstance(gate, Mapping):
        lines.append(
            f"  gate --max-drop {gate['max_drop']:g}: {'passed' if gate['passed'] else 'FAILED'}"
        )
    if details.get("tensorrt_calibration_cache"):
        lines.append(f"  TensorRT calibration cache: {details['tensorrt_calibration_cache']}")
    return lines
