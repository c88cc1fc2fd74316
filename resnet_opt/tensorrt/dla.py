"""`--dla-core N`: whether this TensorRT, this device and this ONNX can run on a DLA, and how.

Orin's DLA computes in INT8 or FP16 only, with layers it cannot run falling back to the GPU.
TensorRT 10.0-10.7 reaches DLA INT8 only through implicit quantization: a weakly typed
network of the FP32 model plus a calibration cache (the one `quantize` writes beside its
INT8 ONNX), and FP16 through the FP16 builder flag. TensorRT 11.4.1+ builds DLA networks
strongly typed, from an fp16 or Q/DQ INT8 ONNX. Every other combination is refused with the
reason (see `versions.capabilities`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resnet_opt.calibration.tensorrt_cache import (
    CalibrationAlgorithm,
    TensorRTCache,
    read_tensorrt_cache,
)
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import Manifest, Precision
from resnet_opt.core.stage_details import CALIBRATION_CACHE_KEY, calibration_cache_named
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.versions import Capabilities, DlaMode

CACHE_DETAIL = CALIBRATION_CACHE_KEY  # key the quantize manifest names its cache under


@dataclass(frozen=True)
class CalibrationCache:
    """A TensorRT calibration cache to replay: its parsed form and its exact bytes."""

    path: Path
    parsed: TensorRTCache = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def algorithm(self) -> CalibrationAlgorithm:
        return CalibrationAlgorithm(self.parsed.algorithm)

    @property
    def scales(self) -> Mapping[str, float]:
        return self.parsed.scales


def read_calibration_cache(path: Path, caps: Capabilities) -> CalibrationCache:
    """Read the cache (the quantize stage's format) and refuse one this TensorRT would ignore:
    TensorRT drops a cache whose header names another version or algorithm, then fails the
    build for want of calibration data, so the mismatch is reported here instead."""
    parsed = read_tensorrt_cache(path)
    if not parsed.scales:
        raise ResnetOptError(f"{path}: calibration cache holds no tensor scales")
    try:
        algorithm = CalibrationAlgorithm(parsed.algorithm)
    except ValueError:
        raise ResnetOptError(
            f"{path}: unknown calibration algorithm {parsed.algorithm!r} in its header"
        ) from None
    try:
        parsed.check_compatible(str(caps.version), algorithm)
    except ResnetOptError as exc:
        raise ResnetOptError(f"{path}: {exc}") from None
    zero = sorted(name for name, scale in parsed.scales.items() if scale <= 0)
    if zero:
        raise ResnetOptError(f"{path}: tensor {zero[0]!r} has scale 0; TensorRT needs a range")
    return CalibrationCache(path, parsed, path.read_bytes())


def check_cache_matches(cache: CalibrationCache, input_name: str, tensors: frozenset[str]) -> None:
    """Refuse a cache made for another model: TensorRT would apply its scales silently to
    whatever names match (never reuse a cache because a file of that name exists)."""
    if input_name not in cache.scales:
        raise ResnetOptError(
            f"{cache.path}: has no scale for the network input {input_name!r}: it was made for "
            "another model"
        )
    foreign = sorted(n for n in cache.scales if n not in tensors and "(Unnamed Layer" not in n)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise ResnetOptError(
            f"{cache.path}: {len(foreign)} of its {len(cache.scales)} tensors are not in the "
            f"network ({shown}): it was made for another model"
        )


@dataclass(frozen=True)
class Int8Source:
    """The FP32 network and calibration cache behind an INT8 ONNX (TensorRT 10 DLA path)."""

    network: Path
    cache: Path


def _resolve_recorded(path_text: str, beside: Path) -> Path | None:
    """A path a manifest recorded: as written, else by name beside the artifact."""
    recorded = Path(path_text)
    for candidate in (recorded, beside / recorded, beside / recorded.name):
        if candidate.is_file():
            return candidate
    return None


def calibration_cache_path(
    int8_onnx: Path, manifest: Manifest, calib_cache: Path | None
) -> Path | None:
    """The calibration cache a TensorRT 10 DLA INT8 build of `int8_onnx` replays: `--calib-cache`
    when given, else the one its manifest recorded (as written, else beside the ONNX); None when
    there is none to be found. The one resolution the build and the engine cache key share, so
    the key hashes the very file the build reads."""
    if calib_cache is not None:
        return calib_cache if calib_cache.is_file() else None
    named = calibration_cache_named(manifest)
    return _resolve_recorded(str(named), int8_onnx.parent) if named else None


def implicit_int8_source(
    int8_onnx: Path, manifest: Manifest, calib_cache: Path | None
) -> Int8Source:
    """For TensorRT 10 on DLA: the FP32 ONNX and the cache that `quantize` recorded.

    The INT8 artifact's manifest names the cache (`details["tensorrt_calibration_cache"]`,
    written beside it) and its FP32 source (an `.onnx` among its inputs). `--calib-cache` may
    name another cache; the FP32 source must still be the one the manifest recorded, with the
    same sha256.
    """
    beside = int8_onnx.parent
    named = calibration_cache_named(manifest)
    if calib_cache is None and not named:
        raise ResnetOptError(
            f"{int8_onnx}: TensorRT 10 runs INT8 on DLA only implicitly, from a calibration "
            f"cache, and this INT8 ONNX's manifest names none (details.{CACHE_DETAIL}): "
            "re-run quantize with --target tensorrt, or pass --calib-cache FILE"
        )
    found = calibration_cache_path(int8_onnx, manifest, calib_cache)
    if found is None and calib_cache is not None:
        found = calib_cache  # reading it says what is wrong with it (missing, unreadable)
    if found is None:
        raise ResnetOptError(
            f"{int8_onnx}: its calibration cache {named} is not beside it; pass --calib-cache"
        )
    cache = found
    onnx_inputs = [
        ref
        for ref in manifest.inputs
        if ref.path.endswith(".onnx") and Path(ref.path).name != int8_onnx.name
    ]
    # quantize records its FP32 input under the role "model"; prefer it over any other ONNX
    sources = sorted(onnx_inputs, key=lambda ref: ref.role not in ("model", "source"))
    if not sources:
        raise ResnetOptError(
            f"{int8_onnx}: its manifest names no FP32 source ONNX among its inputs; implicit "
            "INT8 needs the FP32 network: build that ONNX with --calib-cache instead"
        )
    ref = sources[0]
    network = _resolve_recorded(ref.path, beside)
    if network is None:
        raise ResnetOptError(
            f"{int8_onnx}: its FP32 source {ref.path} is not found (as recorded, nor beside it)"
        )
    if sha256_file(network) != ref.sha256:
        raise ResnetOptError(
            f"{network}: changed since {int8_onnx.name} was quantized from it (sha256 differs): "
            "re-run quantize"
        )
    return Int8Source(network=network, cache=cache)


@dataclass(frozen=True)
class DlaPlan:
    """How a DLA build runs: which ONNX is parsed, with which typing and builder flags."""

    core: int
    mode: DlaMode
    precision: Precision  # what the DLA computes in
    strongly_typed: bool
    builder_flags: tuple[str, ...]  # names in trt.BuilderFlag
    network: Path  # the ONNX TensorRT parses (the FP32 source for implicit INT8)
    calibration: CalibrationCache | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "core": self.core,
            "mode": self.mode.value,
            "precision": self.precision.value,
            "strongly_typed": self.strongly_typed,
            "gpu_fallback": "GPU_FALLBACK" in self.builder_flags,
            "network": str(self.network),
            "calibration_cache": None if self.calibration is None else str(self.calibration.path),
            "calibration_algorithm": None
            if self.calibration is None
            else self.calibration.algorithm.value,
        }


def check_dla_calibrator(cache: CalibrationCache) -> None:
    """DLA INT8 calibration takes IInt8EntropyCalibrator2 only (TensorRT developer guide, "DLA
    supported layers and restrictions"), and TensorRT reads a cache only through a calibrator
    of the algorithm its header names: a cache of any other algorithm cannot feed a DLA."""
    if cache.algorithm is not CalibrationAlgorithm.ENTROPY_2:
        raise ResnetOptError(
            f"{cache.path}: a {cache.algorithm.value} cache; DLA INT8 needs an "
            f"{CalibrationAlgorithm.ENTROPY_2.value} cache (IInt8EntropyCalibrator2): re-run "
            "quantize with --target tensorrt, which writes one"
        )


def check_dla_core(core: int, available: int | None) -> None:
    if core < 0:
        raise ResnetOptError(f"--dla-core {core}: DLA cores are numbered from 0")
    if available is not None and core >= available:
        have = "no DLA cores" if available == 0 else f"DLA cores 0..{available - 1}"
        raise ResnetOptError(f"--dla-core {core}: this device has {have}")


def plan_dla(
    caps: Capabilities,
    *,
    core: int,
    onnx: Path,
    precision: Precision,
    profile: BatchProfile,
    manifest: Manifest,
    calib_cache: Path | None,
    available_cores: int | None,
) -> DlaPlan:
    """Decide the DLA build for this TensorRT and ONNX, or refuse with the reason."""
    caps.require_dla()
    check_dla_core(core, available_cores)
    if not profile.fixed:
        raise ResnetOptError(
            f"--dla-core: DLA engines take one fixed batch size, not the range {profile}: "
            "pass --batch N"
        )
    int8 = precision in (Precision.INT8, Precision.MIXED)
    if caps.dla is DlaMode.STRONGLY_TYPED:
        if calib_cache is not None:
            raise ResnetOptError(
                f"--calib-cache: TensorRT {caps.version.short} has no implicit INT8; its DLA "
                "builds take precision from the ONNX: build the Q/DQ INT8 ONNX without a cache"
            )
        if precision is Precision.FP32:
            raise ResnetOptError(
                f"--dla-core: {onnx.name} is FP32, and the DLA computes in FP16 or INT8 only; "
                f"TensorRT {caps.version.short} takes precision from the ONNX: build the fp16 or "
                "int8 ONNX from resnet-opt quantize"
            )
        return DlaPlan(
            core=core,
            mode=caps.dla,
            precision=Precision.INT8 if int8 else Precision.FP16,
            strongly_typed=True,
            builder_flags=("GPU_FALLBACK",),
            network=onnx,
        )
    # TensorRT 10.0-10.7: weakly typed network, precision from builder flags
    if precision is Precision.FP16:
        if calib_cache is not None:
            raise ResnetOptError(
                f"--calib-cache: {onnx.name} is an fp16 ONNX; a calibration cache is for INT8 "
                "(give the FP32 or the INT8 ONNX)"
            )
        return DlaPlan(
            core=core,
            mode=caps.dla,
            precision=Precision.FP16,
            strongly_typed=False,
            builder_flags=("FP16", "GPU_FALLBACK"),
            network=onnx,
        )
    if int8:
        source = implicit_int8_source(onnx, manifest, calib_cache)
        network, cache_path = source.network, source.cache
    elif calib_cache is not None:
        network, cache_path = onnx, calib_cache
    else:
        raise ResnetOptError(
            f"--dla-core: {onnx.name} is FP32, and the DLA computes in INT8 or FP16 only: pass "
            "--calib-cache FILE for INT8, or build the fp16 ONNX (resnet-opt quantize "
            "--precision fp16) for FP16"
        )
    cache = read_calibration_cache(cache_path, caps)
    check_dla_calibrator(cache)
    return DlaPlan(
        core=core,
        mode=caps.dla,
        precision=Precision.INT8,
        strongly_typed=False,
        # FP16 too: a layer the cache has no scale for runs in FP16 on the DLA, not FP32 on
        # the GPU (trtexec's --int8 --fp16 --useDLACore)
        builder_flags=("INT8", "FP16", "GPU_FALLBACK"),
        network=network,
        calibration=cache,
    )
