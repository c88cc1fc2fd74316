"""The preprocessing contract: what the network expects as input, as data.

It travels with the model in every manifest (like timm's pretrained config), so calibration,
evaluation and benchmarking preprocess exactly as training did, without torch. This module holds
the contract itself (fields, checks, JSON form, fingerprint); turning an image into the input it
describes is `resnet_opt.calibration.preprocess`, which needs Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from resnet_opt.core.hashing import sha256_json
from resnet_opt.core.validation import check_fits, positive_count
from resnet_opt.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Interpolation(str, Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


@dataclass(frozen=True)
class PreprocessContract:
    """What the network expects, and how to get there from an image file.

    Steps (carried out by `resnet_opt.calibration.preprocess`), in torchvision's order: convert
    to RGB (3 channels) or L (1 channel); if `resize` is set, scale the shorter side to `resize`;
    if `crop` is set, take the centre `crop`×`crop`; if neither is set, scale straight to
    `input_size`×`input_size`. The result must be `input_size` square (checked here, not
    discovered later). Then scale to [0, 1], subtract `mean`, divide by `std`, and lay out as
    NCHW float32.
    """

    input_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None
    crop: int | None
    interpolation: Interpolation
    num_classes: int
    labels: tuple[str, ...] | None = None
    layout: str = "NCHW"
    # WordNet ids of the classes (ImageNet's n01440764 …), when the labels came with them: data
    # class folders are matched by label or by id
    class_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, not {self.channels}")
        positive_count(self.input_size, "input size")
        # one sample must fit in memory, whether the size came from a flag or a manifest (an
        # input_size of 1000000 grew eval to 23 GB before the kernel stopped it)
        check_fits((1, self.channels, self.input_size, self.input_size), "input size")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != self.channels:
                raise UsageError(
                    f"{name} has {len(values)} values but the input has {self.channels} channel(s)"
                )
            if not all(math.isfinite(v) for v in values):  # nan/inf would make every input NaN
                raise UsageError(f"{name} must be finite numbers, got {list(values)}")
        if any(s <= 0 for s in self.std):
            raise UsageError(f"std must be positive, got {list(self.std)}")
        if self.resize is not None:
            positive_count(self.resize, "resize")
        if self.crop is not None and self.crop != self.input_size:
            raise UsageError(f"crop {self.crop} does not give the input size {self.input_size}")
        if self.resize is not None and self.crop is None and self.resize != self.input_size:
            raise UsageError(
                f"resize {self.resize} without a crop does not give a square "
                f"{self.input_size}×{self.input_size} input: add --crop {self.input_size}"
            )
        if self.resize is not None and self.crop is not None and self.crop > self.resize:
            raise UsageError(f"crop {self.crop} is larger than the resize {self.resize}")
        positive_count(self.num_classes, "number of classes")
        if self.labels is not None and len(self.labels) != self.num_classes:
            raise UsageError(
                f"{len(self.labels)} class labels given for a model with {self.num_classes} classes"
            )
        if self.class_ids is not None and (
            self.labels is None or len(self.class_ids) != len(self.labels)
        ):
            raise UsageError("class ids need a label for each class")
        if self.layout != "NCHW":
            raise UsageError(f"layout {self.layout!r} is not supported (NCHW only)")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        return (self.channels, self.input_size, self.input_size)

    @property
    def color_mode(self) -> str:
        """The Pillow mode images are converted to."""
        return "RGB" if self.channels == 3 else "L"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interpolation"] = self.interpolation.value
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["labels"] = list(self.labels) if self.labels is not None else None
        data["class_ids"] = list(self.class_ids) if self.class_ids is not None else None
        if self.class_ids is None:  # manifests without ids read as before
            data.pop("class_ids")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessContract:
        labels = data.get("labels")
        return cls(
            input_size=int(data["input_size"]),
            channels=int(data["channels"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            resize=None if data.get("resize") is None else int(data["resize"]),
            crop=None if data.get("crop") is None else int(data["crop"]),
            interpolation=Interpolation(data.get("interpolation", "bilinear")),
            num_classes=int(data["num_classes"]),
            labels=tuple(str(x) for x in labels) if labels is not None else None,
            layout=str(data.get("layout", "NCHW")),
            class_ids=tuple(str(x) for x in ids) if (ids := data.get("class_ids")) else None,
        )

    def fingerprint(self) -> str:
        """Hash of everything that changes the network input (labels excluded)."""
        data = self.to_dict()
        data.pop("labels")
        data.pop("class_ids", None)
        return sha256_json(data)


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """'0.485,0.456,0.406' → a tuple, with a clear error for anything else."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise UsageError(f"{what}: expected comma-separated numbers, got {text!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{what}: {text!r} holds a number that is not finite")
    return values
