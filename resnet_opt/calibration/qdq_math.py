"""Reference QuantizeLinear / DequantizeLinear in numpy, as ONNX defines them.

The tests use it to simulate int8 without a runtime (property tests of the calibrators, error
estimates); `symmetric_scale` is the one place an activation scale is computed, for the Q/DQ
rewrite and TensorRT's calibration cache alike. Semantics (ONNX QuantizeLinear,
opset 13+): q = saturate(round_half_to_even(x / scale) + zero_point) in the integer type's full
range, computed in float32 as ONNX Runtime's CPU kernels do; dequantize: (q - zero_point) ·
scale. A per-channel scale is a 1-D array applied along `axis`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from resnet_opt.errors import ResnetOptError

INT8_MAX = 127
UINT8_MAX = 255


def qrange(dtype: Any) -> tuple[int, int]:
    """(min, max) of an 8-bit integer type."""
    info = np.iinfo(np.dtype(dtype))
    if info.bits != 8:
        raise ResnetOptError(f"only 8-bit quantization is supported, not {np.dtype(dtype)}")
    return int(info.min), int(info.max)


def symmetric_scale(amax: float | np.ndarray, dtype: Any = np.int8) -> np.ndarray:
    """float32 scale mapping amax to the type's top level (127 for int8, 255 for uint8 with
    zero point 0, i.e. [0, amax] → [0, 255])."""
    levels = INT8_MAX if np.dtype(dtype) == np.int8 else UINT8_MAX
    amax = np.asarray(amax, dtype=np.float64)
    if np.any(~np.isfinite(amax)) or np.any(amax <= 0):
        raise ResnetOptError("amax must be finite and positive to make a scale")
    return (amax / levels).astype(np.float32)


def _broadcast(param: Any, ndim: int, axis: int | None, dtype: Any) -> np.ndarray:
    value = np.asarray(param, dtype=dtype)
    if value.ndim == 0:
        return value
    if axis is None:
        raise ResnetOptError("a per-channel scale or zero point needs an axis")
    if value.ndim != 1:
        raise ResnetOptError(f"a per-channel parameter must be 1-D, not {value.shape}")
    shape = [1] * ndim
    shape[axis % ndim] = value.shape[0]
    return value.reshape(shape)


def quantize(
    x: np.ndarray,
    scale: Any,
    zero_point: Any,
    dtype: Any = np.int8,
    *,
    axis: int | None = None,
) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(rint(x / scale) + zero_point) as `dtype`."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = qrange(dtype)
    s = _broadcast(scale, x.ndim, axis, np.float32)
    if np.any(s <= 0) or np.any(~np.isfinite(s)):
        raise ResnetOptError("quantization scales must be finite and positive")
    zp = _broadcast(zero_point, x.ndim, axis, np.int32)
    if np.any(zp < lo) or np.any(zp > hi):
        raise ResnetOptError(f"zero point outside [{lo}, {hi}]")
    q = np.rint(x / s).astype(np.float64) + zp
    return np.asarray(np.clip(q, lo, hi).astype(np.dtype(dtype)))


def dequantize(
    q: np.ndarray, scale: Any, zero_point: Any, *, axis: int | None = None
) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) · scale in float32."""
    q = np.asarray(q)
    s = _broadcast(scale, q.ndim, axis, np.float32)
    zp = _broadcast(zero_point, q.ndim, axis, np.int32)
    return np.asarray(((q.astype(np.int32) - zp).astype(np.float32) * s).astype(np.float32))
