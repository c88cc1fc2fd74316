"""What each TensorRT version can do: the one place that knows.

Every branch on the TensorRT version goes through `capabilities(version)`, so that a Jetson on
TensorRT 10.3 and a workstation on 11.x each take the right path, and a new release means one
new row here. Sources (NVIDIA TensorRT documentation, read 2026):

- 10.0: implicit batch removed; `NetworkDefinitionCreationFlag.EXPLICIT_BATCH` deprecated and
  ignored ("networks are always explicit batch in TensorRT 10.0"); `STRONGLY_TYPED` available.
- 10.1: `IInt8Calibrator` and `CalibrationAlgoType` deprecated ("superseded by explicit
  quantization"); 10.12: `BuilderFlag.FP16/INT8/BF16/FP8` deprecated ("superseded by strong
  typing").
- 10.7: the last 10.x release with DLA ("TensorRT 10.7 was the last release that supported
  DLA"; JetPack 6.1/6.2 on Orin ship 10.3, 6.0 ships 8.6).
- 10.9: `HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY` added (release notes 10.9.0);
  `AMPERE_PLUS`, `BuilderFlag.VERSION_COMPATIBLE` and `builder_optimization_level` since 8.6.
- 11.0: "Strongly typed networks are now the default: createNetworkV2() produces a strongly
  typed network by default ... Weak typing is no longer supported"; `kSTRONGLY_TYPED` is
  "deprecated and ignored"; removed: `BuilderFlag.FP16/INT8/BF16/FP8/INT4/FP4`,
  `OBEY/PREFER_PRECISION_CONSTRAINTS`, `DIRECT_IO`, `IBuilderConfig.int8_calibrator`,
  `set_calibration_profile` (migration guide, "Removed Python APIs and Replacements").
  IEngineInspector JSON: `Bindings` became `I/O Tensors`, `Format/Datatype` was split.
- 11.0-11.3: no DLA; 11.4.0: DLA only on Windows on ARM; 11.4.1: "supports DLA on NVIDIA
  Jetson AGX Orin when using NVIDIA JetPack 7.2.2 or later ... GPU fallback behaves as it did
  in TensorRT 10.x", and "DLA builds ... use strongly typed networks. Precision is determined by
  network tensor types instead of the former per-precision builder flags" (11.4.1 release
  notes, "Strongly Typed Networks for DLA"). So from 11.4.1 a DLA build takes an FP16 or Q/DQ
  INT8 ONNX; the calibration cache (implicit INT8) is a TensorRT 10 path only.
- Version-compatible plans load in later runtimes: "engines built with TensorRT 10 work with
  TensorRT 11 ... engines built with version compatibility enabled using TensorRT 11.0 will be
  compatible with TensorRT 11.1 and later 11.x" (11.1 "Engine Compatibility"); never backwards.
- Hardware compatibility: Ampere or newer GPUs only, not on JetPack (8.6 developer guide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from resnet_opt.errors import ResnetOptError

MIN_SUPPORTED = (10, 0)


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT version as `trt.__version__` prints it ("10.3.0.30", "11.4.1")."""

    major: int
    minor: int
    patch: int = 0
    build: int | None = None

    @classmethod
    def parse(cls, text: str) -> TrtVersion:
        match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[.+-].*)?\s*", text)
        if not match:
            raise ResnetOptError(f"cannot read TensorRT version {text!r} (expected e.g. 10.3.0)")
        major, minor, patch, build = match.groups()
        return cls(int(major), int(minor), int(patch or 0), int(build) if build else None)

    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return self.release() >= (major, minor, patch)

    def same_build(self, other: TrtVersion) -> bool:
        """Same release, and same build number where both know it (plans need an exact match)."""
        if self.release() != other.release():
            return False
        return self.build is None or other.build is None or self.build == other.build

    @property
    def short(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base if self.build is None else f"{base}.{self.build}"


class DlaMode(str, Enum):
    """How a DLA build gets its precision in this TensorRT."""

    NONE = "none"
    IMPLICIT = "implicit"  # weak typing: INT8 from a calibration cache, or the FP16 builder flag
    STRONGLY_TYPED = "strongly-typed"  # precision from the ONNX tensor types (FP16 / Q/DQ INT8)


class HardwareCompat(str, Enum):
    AMPERE_PLUS = "ampere-plus"
    SAME_COMPUTE_CAPABILITY = "same-compute-capability"

    @property
    def min_compute_capability(self) -> tuple[int, int]:
        """The oldest GPU a plan of this level builds and runs on: Ampere+ plans need sm 8.0;
        same-compute-capability plans work from Turing, sm 7.5 (TensorRT developer guide,
        "Hardware Compatibility")."""
        return (8, 0) if self is HardwareCompat.AMPERE_PLUS else (7, 5)

    @property
    def gpus(self) -> str:
        return (
            "an Ampere or newer GPU"
            if self is HardwareCompat.AMPERE_PLUS
            else "a Turing or newer GPU"
        )


@dataclass(frozen=True)
class Capabilities:
    """What one TensorRT version supports, as booleans the build and runner branch on."""

    version: TrtVersion
    strongly_typed_flag: bool  # pass NetworkDefinitionCreationFlag.STRONGLY_TYPED to create_network
    weak_typing: bool  # weakly typed networks exist at all
    precision_flags: bool  # BuilderFlag.FP16 / BuilderFlag.INT8 exist
    implicit_int8: bool  # IInt8Calibrator, config.int8_calibrator, set_calibration_profile
    explicit_batch_flag: bool  # EXPLICIT_BATCH must be passed (never since 10.0: ignored)
    dla: DlaMode
    dla_note: str  # why DLA is unavailable, or what it needs
    version_compatible: bool  # BuilderFlag.VERSION_COMPATIBLE
    hardware_compat: frozenset[HardwareCompat]
    builder_optimization_level: bool
    loads_version_compatible_from: tuple[int, ...]  # majors whose version-compatible plans load
    inspector_io_key: str  # the IEngineInspector JSON key listing the engine's I/O tensors

    def require_dla(self) -> None:
        if self.dla is DlaMode.NONE:
            raise ResnetOptError(f"--dla-core: {self.dla_note}")


def capabilities(version: TrtVersion | str) -> Capabilities:
    """The capability row for `version`; TensorRT older than 10.0 is refused with the reason."""
    v = TrtVersion.parse(version) if isinstance(version, str) else version
    if not v.at_least(*MIN_SUPPORTED):
        raise ResnetOptError(
            f"TensorRT {v} is not supported: resnet-opt builds with TensorRT 10.0 or later "
            "(strongly typed networks, explicit batch); upgrade TensorRT (on a Jetson: JetPack "
            "6.1/6.2 ship 10.3, JetPack 6.0 ships 8.6, so upgrade JetPack)"
        )
    ten = v.major == 10
    if ten and not v.at_least(10, 8):
        dla, note = (
            DlaMode.IMPLICIT,
            (
                f"TensorRT {v.short} runs DLA on Orin in implicit INT8 (from a calibration cache) "
                "or FP16, with GPU fallback"
            ),
        )
    elif ten:
        dla, note = (
            DlaMode.NONE,
            (
                f"TensorRT {v.short} has no DLA support: TensorRT 10.7 was the last 10.x release "
                "with DLA (JetPack 6.1/6.2 ship 10.3), and 11.4.1 brought it back"
            ),
        )
    elif not v.at_least(11, 4, 1):
        dla, note = (
            DlaMode.NONE,
            (
                f"TensorRT {v} has no DLA on Linux: DLA was unavailable in 11.0 through 11.3 and "
                "11.4.0 had it on Windows on ARM only; use TensorRT 11.4.1+ (JetPack 7.2.2+) or "
                "10.7 or older"
            ),
        )
    else:
        dla, note = (
            DlaMode.STRONGLY_TYPED,
            (
                f"TensorRT {v.short} runs DLA (Jetson AGX Orin, JetPack 7.2.2+) with strongly "
                "typed networks: precision comes from the ONNX (fp16 or Q/DQ int8), no calibration "
                "cache"
            ),
        )
    levels = {HardwareCompat.AMPERE_PLUS}
    if v.at_least(10, 9):
        levels.add(HardwareCompat.SAME_COMPUTE_CAPABILITY)
    return Capabilities(
        version=v,
        strongly_typed_flag=ten,
        weak_typing=ten,
        precision_flags=ten,
        implicit_int8=ten,
        explicit_batch_flag=False,
        dla=dla,
        dla_note=note,
        version_compatible=True,
        hardware_compat=frozenset(levels),
        builder_optimization_level=True,
        # 10 -> 11 is documented; a later major's rule is unknown until its docs say so
        loads_version_compatible_from=(10,) if ten else (10, 11) if v.major == 11 else (v.major,),
        inspector_io_key="Bindings" if ten else "I/O Tensors",
    )


# -- activation memory shared by the runner's per-batch execution contexts -----------------------


def shares_activation_memory(version: TrtVersion | str) -> bool:
    """Whether the runner gives its per-batch execution contexts (bench --cuda-graph) one shared
    activation buffer instead of one each: `create_execution_context(ExecutionContextAllocation
    Strategy.USER_MANAGED)` (10.0) with `ICudaEngine.device_memory_size_v2` and
    `IExecutionContext.set_device_memory(memory, size)` (the V2 memory APIs, 10.1). The contexts
    run one at a time on one stream, so one buffer serves them all (what matters on an 8 GB
    Orin Nano). TensorRT 11 moved the allocation strategy to `IRuntimeConfig`; until that path
    has run on a device, 11.x keeps the default (STATIC: each context allocates its own)."""
    v = TrtVersion.parse(version) if isinstance(version, str) else version
    return v.major == 10 and v.at_least(10, 1)
