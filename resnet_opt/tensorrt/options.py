"""The options of `resnet-opt build --backend tensorrt`, parsed and checked without TensorRT."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet_opt.core.fields import CONFIG_KEY, TEXT, take_choices
from resnet_opt.core.naming import OptionError, OptionUsageError
from resnet_opt.tensorrt.profiles import BatchProfile, parse_batch
from resnet_opt.tensorrt.versions import HardwareCompat

WORKSPACE = "workspace_bytes"  # the field `--workspace` / `workspace = "2G"` fills
MAX_OPT_LEVEL = 5  # TensorRT's builder optimization levels are 0..5 (default 3)
_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: str) -> int:
    """`--workspace`: bytes from '2G', '512M', '1.5GiB', '4096K' or a bare number of MiB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not match:
        raise OptionUsageError(WORKSPACE, f" {text!r}: give a size such as 2G, 512M or 1024 (MiB)")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise OptionUsageError(WORKSPACE, f" {text!r}: must be more than 0 bytes")
    return int(value)


@dataclass(frozen=True)
class TensorRtBuildOptions:
    """What the user asked of the engine; `plan.plan_build` turns it into TensorRT settings.

    `batch` and `workspace_bytes` are given as text (`--batch 1:8:32`, `--workspace 2G`, the
    same in a `run` config's [build.tensorrt]); their metadata says how (`core.fields`).
    """

    batch: BatchProfile | None = field(default=None, metadata={TEXT: parse_batch})
    workspace_bytes: int | None = field(
        default=None, metadata={CONFIG_KEY: "workspace", TEXT: parse_bytes}
    )
    opt_level: int | None = None
    timing_cache: Path | None = None
    dla_core: int | None = None
    calib_cache: Path | None = None
    version_compatible: bool = False
    hardware_compatible: HardwareCompat | None = None
    # run the engine against ONNX Runtime on the source after the build (--no-verify: off).
    # How the build is checked, not what it builds: `to_dict` (the manifest's options, the
    # engine cache key) leaves it out, and the manifest's verification says what was done.
    verify: bool = True

    def __post_init__(self) -> None:
        take_choices(self)
        if self.opt_level is not None and not 0 <= self.opt_level <= MAX_OPT_LEVEL:
            raise OptionError(
                "opt_level",
                f" {self.opt_level}: TensorRT's builder levels are 0..{MAX_OPT_LEVEL}",
            )
        if self.workspace_bytes is not None and self.workspace_bytes < 1:
            raise OptionUsageError(WORKSPACE, " must be more than 0 bytes")
        if self.dla_core is not None and self.dla_core < 0:
            raise OptionError("dla_core", f" {self.dla_core}: DLA cores are numbered from 0")
        if self.calib_cache is not None and self.dla_core is None:
            raise OptionError(
                "calib_cache",
                " is for DLA builds on TensorRT 10 (implicit INT8); a GPU engine takes INT8 "
                "from the Q/DQ ONNX: build the int8 ONNX from resnet-opt quantize",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": None if self.batch is None else str(self.batch),
            "workspace_bytes": self.workspace_bytes,
            "opt_level": self.opt_level,
            "timing_cache": None if self.timing_cache is None else str(self.timing_cache),
            "dla_core": self.dla_core,
            "calib_cache": None if self.calib_cache is None else str(self.calib_cache),
            "version_compatible": self.version_compatible,
            "hardware_compatible": None
            if self.hardware_compatible is None
            else self.hardware_compatible.value,
        }
