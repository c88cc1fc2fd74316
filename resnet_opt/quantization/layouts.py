"""Every int8 layout, declared once: its placement module, number formats and manifest words.

A layout (`QdqTarget`) is whose int8 kernels the Q/DQ graph is written for. What differs per
layout beyond where Q/DQ goes (its placement module and its column in `ops.OPS`):

- `activations`: how an activation's range becomes a scale and zero point (`qdq.activation_params`);
  calibration keeps u8 [0, amax] ranges for non-negative tensors unless it is symmetric s8;
- `cpu_kernels`: u8×s8 CPU kernels, whose int16 pair sums can saturate without VNNI, so weights
  are kept saturation-safe by default (`qdq.default_policy`) and the manifest says whether they
  are; `reduce_range`: `--reduce-range` gives 7-bit weights, `--no-reduce-range` plain 8 bits
  (`quantize_options` allows them for the cpu layout only);
- `weight_zero_point`: int8 weights behind a DequantizeLinear with a zero point (else scale only);
- `tensorrt_cache`: whether quantize also writes TensorRT's calibration cache (DLA);
- `words`: how the manifest describes the layout's number formats.

Adding a layout: a `QdqTarget` member, `placement_<layout>.py`, one `LAYOUTS` entry here and its
column in `ops.OPS` (ARCHITECTURE.md, "Where a new quantizable op or int8 layout goes").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import cast

from resnet_opt.quantization.plan import Placement, QdqTarget


class Activations(str, Enum):
    """How an activation's calibrated range becomes int8 codes."""

    SYMMETRIC_S8 = "symmetric s8"  # TensorRT: s8, zero point 0, scale amax / 127
    U8_OR_SYMMETRIC_S8 = "u8 or symmetric s8"  # u8 [0, amax] when non-negative, else s8 (NNCF)
    U8_OR_SHIFTED_U8 = "u8 or shifted u8"  # u8 [0, amax] when non-negative, else zero point 128


@dataclass(frozen=True)
class LayoutWords:
    """The manifest's description of a layout's number formats (details.quantization)."""

    activation_type: str
    activation_zero_point: str
    weight_storage: str
    bias: str


@dataclass(frozen=True)
class Layout:
    target: QdqTarget
    placement: str  # import path of the placement module (`plan.Placement`)
    activations: Activations
    cpu_kernels: bool
    reduce_range: bool
    weight_zero_point: bool
    tensorrt_cache: bool
    words: LayoutWords

    @property
    def unsigned_activations(self) -> bool:
        """Non-negative tensors quantized to u8 [0, amax] (calibration keeps their minimum)."""
        return self.activations is not Activations.SYMMETRIC_S8


_STORED = "int8 initializers + DequantizeLinear"

LAYOUTS: dict[QdqTarget, Layout] = {
    layout.target: layout
    for layout in (
        Layout(
            QdqTarget.TENSORRT,
            "resnet_opt.quantization.placement_tensorrt",
            Activations.SYMMETRIC_S8,
            cpu_kernels=False,  # GPUs accumulate in int32
            reduce_range=False,
            weight_zero_point=True,
            tensorrt_cache=True,
            words=LayoutWords("int8", "0 (symmetric)", _STORED, "float"),
        ),
        Layout(
            QdqTarget.CPU,
            "resnet_opt.quantization.placement_cpu",
            Activations.U8_OR_SHIFTED_U8,
            cpu_kernels=True,
            reduce_range=True,
            weight_zero_point=True,
            tensorrt_cache=False,
            words=LayoutWords(
                "uint8",
                "0 for non-negative tensors ([0, amax] → [0, 255]), 128 for signed ones",
                _STORED,
                "int32 (DequantizeLinear)",
            ),
        ),
        Layout(
            QdqTarget.OPENVINO,
            "resnet_opt.quantization.placement_openvino",
            Activations.U8_OR_SYMMETRIC_S8,
            cpu_kernels=True,  # OpenVINO's AVX2 kernels also add u8×s8 pairs in int16
            reduce_range=False,
            weight_zero_point=False,  # scale only: no Subtract for OpenVINO to fold
            tensorrt_cache=False,
            words=LayoutWords(
                "uint8 or int8",
                "0 (u8 [0, amax] for non-negative tensors, symmetric s8 for signed ones)",
                f"{_STORED} (scale only, no zero point)",
                "float",
            ),
        ),
    )
}


def layout(target: QdqTarget) -> Layout:
    return LAYOUTS[target]


def placement(target: QdqTarget) -> Placement:
    """The placement module of `target`."""
    return cast(Placement, importlib.import_module(LAYOUTS[target].placement))
