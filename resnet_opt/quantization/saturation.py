"""Which artifacts lose accuracy on which CPUs: the one warning `eval`, `bench` and `run` give.

A `--target cpu` INT8 artifact with full 8-bit weights (`--no-reduce-range`, or made before
7-bit weights were the default) keeps its accuracy on VNNI/AMX/Arm-dotprod CPUs only: where the
u8×s8 kernels add product pairs into int16 (AVX2, AVX-512 without VNNI) its sums saturate and its
top-1 drops (the bundled model: 3.15 points measured on an AVX2-only CPU). Read from the
manifests alone, so a built artifact (an ORT-optimized copy) inherits its source's verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from resnet_opt.core.cpu_int8 import Int8Family
from resnet_opt.core.manifest import Manifest, Stage, read_manifest
from resnet_opt.core.quantization_details import QuantizationDetails, quantization_of
from resnet_opt.core.stage_details import steps_of
from resnet_opt.environment import cpu_int8_family
from resnet_opt.errors import ResnetOptError
from resnet_opt.quantization.qdq import INT8_WEIGHT_MAX, pair_sum_fits_int16

# files ONNX Runtime runs (an OpenVINO IR or a TensorRT engine is not: OpenVINO's int8 kernels
# capped at AVX2 here kept the full 8-bit file's accuracy, and GPUs accumulate in int32)
ONNX_RUNTIME_SUFFIXES = (".onnx", ".ort")


def _cpu_quantization(manifest: Manifest) -> QuantizationDetails | None:
    """The quantization details of the `--target cpu` quantize step that made this artifact
    (or its source), None when no such step is in its history."""
    for step in reversed(steps_of(manifest.history())):
        if step.stage != Stage.QUANTIZE.value:
            continue
        quant = quantization_of(step.details, step.artifact or manifest.artifact)
        if quant is None or quant.target != "cpu":
            return None
        return quant
    return None


def cpu_weight_max(manifest: Manifest) -> int | None:
    """The int8 weight limit of the `--target cpu` quantize step that made this artifact (or its
    source), None when no such step is in its history. Before the limit was recorded every
    weight used the full ±127."""
    quant = _cpu_quantization(manifest)
    if quant is None:
        return None
    return quant.weight_max if quant.weight_max is not None else INT8_WEIGHT_MAX


def saturates_on(manifest: Manifest, family: Int8Family) -> bool:
    """Whether the artifact's int8 sums saturate on a CPU of `family`: full 8-bit weights,
    unless their same-sign pairs were kept within the int16 limit (`safe_pairs`)."""
    quant = _cpu_quantization(manifest)
    if quant is None or quant.safe_pairs is True or not family.saturates_u8s8:
        return False
    weight_max = cpu_weight_max(manifest)
    return weight_max is not None and not pair_sum_fits_int16(weight_max)


def warning_for(artifacts: Sequence[Path], family: Int8Family | None = None) -> str | None:
    """One line naming the artifacts that lose accuracy on this CPU (None: none does).

    Artifacts without a readable manifest are left to the command's own checks.
    """
    family = family or cpu_int8_family()
    if not family.saturates_u8s8:
        return None
    at_risk = []
    for path in artifacts:
        path = Path(path)
        if path.suffix.lower() not in ONNX_RUNTIME_SUFFIXES:
            continue
        try:
            manifest = read_manifest(path, required=False)
            if manifest is not None and saturates_on(manifest, family):
                at_risk.append(path.name)
        except ResnetOptError:  # an invalid manifest is the command's error to report, not ours
            continue
    if not at_risk:
        return None
    return (
        f"{', '.join(at_risk)}: full 8-bit int8 weights (--no-reduce-range, or made before 7-bit "
        f"weights were the default) on a CPU whose int8 instructions ({family.label}) add u8×s8 "
        "products into int16 with saturation: ONNX Runtime's accuracy here is lower than on "
        "VNNI/AMX CPUs; re-quantize with --target cpu (7-bit weights by default)"
    )
