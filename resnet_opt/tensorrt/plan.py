"""The whole TensorRT build decided before TensorRT is called: a `BuildSpec`.

`plan_build` takes the version table row, the device, the ONNX facts and the user's options
and returns every flag, shape and limit the builder will set, or refuses with the reason.
`builder.build_engine` then only executes the spec, so every decision is a CPU-tested function
and the TensorRT layer stays thin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.device import DeviceInfo
from resnet_opt.tensorrt.dla import CalibrationCache, DlaPlan
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import Shape
from resnet_opt.tensorrt.versions import Capabilities, HardwareCompat


@dataclass(frozen=True)
class BuildSpec:
    """Exactly what `builder.build_engine` sets on TensorRT, in names the stubs know."""

    network: Path
    input_name: str
    shapes: tuple[Shape, Shape, Shape]
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag members
    builder_flags: tuple[str, ...]  # BuilderFlag members
    workspace_bytes: int | None
    opt_level: int | None
    hardware_compat: HardwareCompat | None
    dla_core: int | None
    calibration: CalibrationCache | None
    timing_cache: bytes | None  # None: no timing cache file; b"": start a new one
    strongly_typed: bool

    @property
    def version_compatible(self) -> bool:
        return "VERSION_COMPATIBLE" in self.builder_flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "network_flags": list(self.network_flags),
            "builder_flags": list(self.builder_flags),
            "strongly_typed": self.strongly_typed,
            "workspace_bytes": self.workspace_bytes,
            "opt_level": self.opt_level,
            "hardware_compatible": None
            if self.hardware_compat is None
            else self.hardware_compat.value,
            "version_compatible": self.version_compatible,
            "dla_core": self.dla_core,
            "profiling_verbosity": "DETAILED",
        }


def check_hardware_compat(
    caps: Capabilities, level: HardwareCompat, device: DeviceInfo, dla: bool
) -> None:
    """Hardware-compatible plans: a level this TensorRT has, on a discrete GPU at or above the
    level's floor (Ampere+: sm 8.0; same compute capability: sm 7.5), no DLA."""
    if level not in caps.hardware_compat:
        raise ResnetOptError(
            f"--hardware-compatible {level.value}: TensorRT {caps.version.short} does not have "
            "it (same-compute-capability came with TensorRT 10.9)"
        )
    if dla:
        raise ResnetOptError(
            "--hardware-compatible with --dla-core: a DLA engine runs on that DLA only"
        )
    if device.is_jetson or device.integrated:
        raise ResnetOptError(
            "--hardware-compatible: TensorRT supports hardware compatibility on discrete GPUs, "
            "not on Jetson (JetPack)"
        )
    floor = level.min_compute_capability
    if device.compute_capability is None or device.compute_capability < floor:
        raise ResnetOptError(
            f"--hardware-compatible {level.value}: needs {level.gpus} "
            f"(sm >= {floor[0]}.{floor[1]}) to build on; this is {device.describe()}"
        )


def plan_build(
    caps: Capabilities,
    *,
    device: DeviceInfo,
    network: Path,
    input_name: str,
    shapes: tuple[Shape, Shape, Shape],
    options: TensorRtBuildOptions,
    dla: DlaPlan | None,
    timing_cache: bytes | None,
) -> BuildSpec:
    """Every TensorRT setting of this build, or a ResnetOptError saying why not."""
    if options.version_compatible:
        if not caps.version_compatible:
            raise ResnetOptError(
                f"--version-compatible: TensorRT {caps.version.short} cannot build it"
            )
        if dla is not None:
            raise ResnetOptError(
                "--version-compatible with --dla-core: not combined here; build a DLA engine "
                "for each TensorRT version"
            )
    if options.hardware_compatible is not None:
        check_hardware_compat(caps, options.hardware_compatible, device, dla is not None)
    if options.opt_level is not None and not caps.builder_optimization_level:
        raise ResnetOptError(f"--opt-level: TensorRT {caps.version.short} has no builder levels")
    if dla is None:
        strongly_typed = True
        flags: tuple[str, ...] = ()
    else:
        strongly_typed = dla.strongly_typed
        flags = dla.builder_flags
        if flags and not caps.precision_flags and {"FP16", "INT8"} & set(flags):
            raise AssertionError("precision flags planned for a TensorRT without them")
    network_flags = ("STRONGLY_TYPED",) if strongly_typed and caps.strongly_typed_flag else ()
    if options.version_compatible:
        flags = (*flags, "VERSION_COMPATIBLE")
    return BuildSpec(
        network=network,
        input_name=input_name,
        shapes=shapes,
        network_flags=network_flags,
        builder_flags=flags,
        workspace_bytes=options.workspace_bytes,
        opt_level=options.opt_level,
        hardware_compat=options.hardware_compatible,
        dla_core=None if dla is None else dla.core,
        calibration=None if dla is None else dla.calibration,
        timing_cache=timing_cache,
        strongly_typed=strongly_typed,
    )
