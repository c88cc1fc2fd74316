"""The one optimization profile of an engine: which batch sizes it accepts.

A TensorRT engine runs only the shapes inside the profile it was built with, so the profile is
decided here from the ONNX and the user's `--batch`, recorded in the manifest, and checked
(`check_batch_in_profile`) before a runner is opened, so that bench says "batch 64 is outside
1..32" instead of TensorRT failing mid-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resnet_opt.core.manifest import Manifest
from resnet_opt.core.naming import OptionError, OptionUsageError
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.tensorrt.network import TensorInfo

Shape = tuple[int, ...]


@dataclass(frozen=True)
class BatchProfile:
    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if self.min < 1:
            raise UsageError(f"batch sizes must be at least 1, not {self.min}")
        if not self.min <= self.opt <= self.max:
            raise UsageError(f"batch profile {self}: needs min <= opt <= max (e.g. 1:8:32)")

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def contains(self, batch: int) -> bool:
        return self.min <= batch <= self.max

    def check(self, batch: int, artifact: str) -> None:
        """Refuse a batch size `artifact`, an engine built with this profile, cannot run."""
        if not self.contains(batch):
            span = str(self.min) if self.fixed else f"{self.min}..{self.max}"
            raise ResnetOptError(
                f"{artifact}: batch {batch} is outside the engine's profile ({span}, built "
                f"with --batch {self}): rebuild with `resnet-opt build --batch` covering {batch}"
            )

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchProfile:
        return cls(int(data["min"]), int(data["opt"]), int(data["max"]))

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


DEFAULT_DYNAMIC = BatchProfile(1, 8, 32)


def parse_batch(text: str) -> BatchProfile:
    """`--batch`: "8" (fixed) or "min:opt:max" ("1:8:32")."""
    parts = text.strip().split(":")
    if len(parts) not in (1, 3):
        raise OptionUsageError("batch", f" {text!r}: give N or min:opt:max (e.g. 1:8:32)")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise OptionUsageError("batch", f" {text!r}: batch sizes must be whole numbers") from None
    if len(values) == 1:
        values *= 3
    return BatchProfile(*values)


def derive_profile(image: TensorInfo, requested: BatchProfile | None) -> BatchProfile:
    """The profile for `image` (the ONNX's image input) given the user's `--batch`, if any.

    A fixed batch in the ONNX is the only batch the engine can have; a dynamic batch takes
    `--batch` or 1:8:32. Every other dimension must be fixed in the ONNX: a ResNet's channels
    and size are part of its preprocessing contract, not something to guess here.
    """
    if len(image.shape) < 2:
        raise ResnetOptError(
            f"input {image.name!r} has shape {list(image.shape)}: expected a batch of images"
        )
    loose = [i for i, d in enumerate(image.shape[1:], 1) if not isinstance(d, int) or d < 1]
    if loose:
        raise ResnetOptError(
            f"input {image.name!r} has shape {list(image.shape)}: dimension(s) "
            f"{', '.join(map(str, loose))} are not fixed; only the batch may vary in a TensorRT "
            "profile here: re-export with a fixed input size"
        )
    batch = image.shape[0]
    if isinstance(batch, int) and batch >= 1:
        if requested is not None and requested != BatchProfile(batch, batch, batch):
            raise OptionError(
                "batch",
                f" {requested}: the ONNX input {image.name!r} has a fixed batch of {batch}, so "
                f"the engine can only run batch {batch}: re-export with a dynamic batch for a "
                "range",
            )
        return BatchProfile(batch, batch, batch)
    return requested if requested is not None else DEFAULT_DYNAMIC


def profile_shapes(image: TensorInfo, profile: BatchProfile) -> tuple[Shape, Shape, Shape]:
    """(min, opt, max) input shapes for `IOptimizationProfile.set_shape`."""
    rest = tuple(int(d) for d in image.shape[1:] if isinstance(d, int))
    return (profile.min, *rest), (profile.opt, *rest), (profile.max, *rest)


def profile_of(manifest: Manifest) -> BatchProfile:
    """The batch profile a TensorRT engine's manifest records."""
    from resnet_opt.tensorrt.build_details import engine_details

    details = engine_details(manifest)
    if details is None:
        raise ResnetOptError(f"{manifest.artifact}: not a TensorRT engine (no tensorrt manifest)")
    if details.profile is None or details.profile.batch is None:
        raise ResnetOptError(f"{manifest.artifact}: its manifest records no batch profile")
    try:
        return BatchProfile.from_dict(details.profile.batch)
    except (KeyError, ValueError) as exc:
        raise ResnetOptError(
            f"{manifest.artifact}: its manifest records no valid batch profile ({exc})"
        ) from exc


def check_batch_in_profile(manifest: Manifest, batch: int) -> None:
    """Refuse a batch size the engine was not built for (callable before opening a runner)."""
    profile_of(manifest).check(batch, manifest.artifact)
