"""TensorRT's text calibration cache, written from our own calibration ranges.

TensorRT 10's implicit INT8 (the only INT8 the DLA cores on Jetson Orin run) takes its scales
from an IInt8Calibrator; when the calibrator's `read_calibration_cache` returns a cache,
TensorRT uses the scales in it and runs no calibration batches. The format, as TensorRT writes
it and as NVIDIA's own tools produce it (qdq-translator in NVIDIA/Deep-Learning-Accelerator-SW,
TAO's calibration export):

    TRT-100300-EntropyCalibration2
    input: 3c010a14
    /layer1/layer1.0/relu/Relu_output_0: 3d8e5c2b

- line 1: ``TRT-<version>-<algorithm>``; <version> is NV_TENSORRT_VERSION of the TensorRT
  that reads it (TensorRT ≥ 10: major·10000 + minor·100 + patch, e.g. 10.3.0 → 100300;
  TensorRT 7/8: major·1000 + minor·100 + patch, e.g. 8.6.1 → 8601). TensorRT ignores a cache
  whose version or algorithm does not match the running library and calibrator ("Calibration
  table does not match calibrator algorithm type"), then fails for want of calibration data,
  so the version must be that of the TensorRT on the target (JetPack 6: 10.3.0).
- then one line per tensor: ``<tensor name>: <scale>``, the scale (= amax / 127) as the
  8 hex digits of its IEEE-754 float32 bit pattern (the big-endian bytes of the float).

Tensor names are the network's tensor names, which TensorRT's ONNX parser takes from the ONNX
tensor names, so our calibration (keyed by ONNX names) maps one to one.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from resnet_opt.calibration.qdq_math import symmetric_scale
from resnet_opt.calibration.ranges import INT8_LEVELS, TensorRange
from resnet_opt.errors import ResnetOptError, UsageError

_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,8}$")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*$")


class CalibrationAlgorithm(str, Enum):
    """TensorRT's CalibrationAlgoType names as they appear in the cache header.

    The calibrator that reads the cache must report the same algorithm; trtexec's is
    EntropyCalibration2, and so is ours by default.
    """

    ENTROPY_2 = "EntropyCalibration2"
    ENTROPY = "EntropyCalibration"
    MINMAX = "MinMaxCalibration"
    LEGACY = "LegacyCalibration"


def tensorrt_version_int(version: str | int) -> int:
    """NV_TENSORRT_VERSION for a version string ("10.3.0", "10.3.0.30", "8.6.1") or pass an
    already encoded integer through."""
    if isinstance(version, int):
        if version < 1000:  # 7.0.0 is 7000: anything smaller is not an encoded version
            raise ResnetOptError(f"not a TensorRT version number: {version} (e.g. 100300)")
        return version
    text = str(version).strip()
    if text.isdigit():
        return tensorrt_version_int(int(text))
    match = _VERSION.match(text)
    if not match:
        raise UsageError(f"not a TensorRT version: {version!r} (expected e.g. 10.3.0)")
    major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
    if minor > 99 or patch > 99:
        raise ResnetOptError(f"not a TensorRT version: {version!r}")
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def version_text(version: int) -> str:
    """100300 → '10.3.0', 8601 → '8.6.1' (inverse of tensorrt_version_int)."""
    if version >= 100000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def scale_hex(scale: float) -> str:
    """A float32 scale as TensorRT writes it: 8 hex digits of the big-endian float bits."""
    return struct.pack(">f", scale).hex()


def hex_scale(text: str) -> float:
    return float(struct.unpack(">f", bytes.fromhex(text.rjust(8, "0")))[0])


def _check_name(name: str) -> None:
    if not name or name != name.strip() or any(c in name for c in "\r\n"):
        raise ResnetOptError(f"tensor name {name!r} cannot be written to a TensorRT cache")


def format_tensorrt_cache(
    ranges: Mapping[str, TensorRange] | Mapping[str, float],
    *,
    tensorrt_version: str | int,
    algorithm: CalibrationAlgorithm = CalibrationAlgorithm.ENTROPY_2,
) -> str:
    """The cache text for `ranges` (TensorRange or plain amax per tensor), in their order."""
    version = tensorrt_version_int(tensorrt_version)
    lines = [f"TRT-{version}-{CalibrationAlgorithm(algorithm).value}"]
    for name, value in ranges.items():
        _check_name(name)
        amax = value.amax if isinstance(value, TensorRange) else float(value)
        # the scale the Q/DQ rewrite writes for the same range (float32, so bit-identical)
        scale = float(symmetric_scale(amax)) if math.isfinite(amax) and amax > 0 else 0.0
        if not 0 < scale < math.inf:
            raise ResnetOptError(f"tensor {name!r}: amax {amax} gives no positive int8 scale")
        lines.append(f"{name}: {scale_hex(scale)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TensorRTCache:
    """A parsed TensorRT calibration cache."""

    version: int
    algorithm: str
    scales: dict[str, float]  # tensor name → float32 scale, in file order

    @property
    def version_text(self) -> str:
        return version_text(self.version)

    def amax(self, name: str) -> float:
        return self.scales[name] * INT8_LEVELS

    def ranges(self) -> dict[str, float]:
        """tensor name → amax (scale · 127)."""
        return {name: scale * INT8_LEVELS for name, scale in self.scales.items()}

    def check_compatible(
        self,
        tensorrt_version: str | int,
        algorithm: CalibrationAlgorithm | str | None = None,
    ) -> None:
        """Refuse a cache the running TensorRT would silently ignore."""
        running = tensorrt_version_int(tensorrt_version)
        if running != self.version:
            raise ResnetOptError(
                f"the calibration cache is for TensorRT {self.version_text} (TRT-{self.version}), "
                f"this is TensorRT {version_text(running)}, which would ignore it: write it "
                f"again for this version"
            )
        if algorithm is not None and CalibrationAlgorithm(algorithm).value != self.algorithm:
            raise ResnetOptError(
                f"the calibration cache was written for {self.algorithm}, the calibrator is "
                f"{CalibrationAlgorithm(algorithm).value}"
            )


def parse_tensorrt_cache(text: str, *, source: str = "calibration cache") -> TensorRTCache:
    lines = text.splitlines()
    if not lines:
        raise ResnetOptError(f"{source}: empty, not a TensorRT calibration cache")
    header = _HEADER.match(lines[0].strip())
    if not header:
        raise ResnetOptError(
            f"{source}: first line {lines[0][:60]!r} is not a TensorRT calibration cache header "
            "(TRT-<version>-<algorithm>)"
        )
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not _HEX.match(value):
            raise ResnetOptError(f"{source}:{number}: expected 'tensor: <hex scale>', got {line!r}")
        if name in scales:
            raise ResnetOptError(f"{source}:{number}: tensor {name!r} appears twice")
        scale = hex_scale(value)
        if not (math.isfinite(scale) and scale >= 0):
            raise ResnetOptError(f"{source}:{number}: scale {value} of {name!r} is not valid")
        scales[name] = scale
    return TensorRTCache(version=int(header[1]), algorithm=header[2], scales=scales)


def read_tensorrt_cache(path: Path) -> TensorRTCache:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ResnetOptError(f"{path}: no such calibration cache") from None
    except OSError as exc:
        raise ResnetOptError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResnetOptError(f"{path}: not a text TensorRT calibration cache") from exc
    return parse_tensorrt_cache(text, source=str(path))
