"""Default preprocessing per model, and the user's options layered on top (timm's pretrained cfg).

A registry entry (or torchvision's weights enum) gives a ContractTemplate: everything of the
PreprocessContract except the class count, which is read from the model itself. The export
options override single fields; `--input-size` alone scales the entry's resize with it (224 →
resize 256 becomes 160 → resize 183, torchvision's crop ratio), because a user who asks for a
different input size expects the recipe to follow, not an error about a 224 crop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

from resnet_opt.core.contract import IMAGENET_MEAN, IMAGENET_STD, Interpolation, PreprocessContract
from resnet_opt.core.validation import positive_count
from resnet_opt.errors import UsageError

NONE: Final = "none"
SizeOption = int | Literal["none"] | None  # a size, explicitly none, or not given


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ContractTemplate:
    """A preprocessing contract without its class count; `origin` says where it came from."""

    input_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None
    crop: int | None
    interpolation: Interpolation
    labels: tuple[str, ...] | None = None
    origin: str = ""
    class_ids: tuple[str, ...] | None = None  # WordNet ids of the labels, when known

    @classmethod
    def of(cls, contract: PreprocessContract, origin: str) -> ContractTemplate:
        return cls(
            input_size=contract.input_size,
            channels=contract.channels,
            mean=contract.mean,
            std=contract.std,
            resize=contract.resize,
            crop=contract.crop,
            interpolation=contract.interpolation,
            labels=contract.labels,
            origin=origin,
            class_ids=contract.class_ids,
        )


def imagenet_template(
    *,
    input_size: int = 224,
    resize: int = 256,
    interpolation: Interpolation = Interpolation.BILINEAR,
    labels: tuple[str, ...] | None = None,
    origin: str = "torchvision ImageNet recipe",
) -> ContractTemplate:
    return ContractTemplate(
        input_size=input_size,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        resize=resize,
        crop=input_size,
        interpolation=interpolation,
        labels=labels,
        origin=origin,
    )


def cifar_template(channels: int) -> ContractTemplate:
    """32×32, scaled straight to size; CIFAR-10 statistics for RGB, [-1, 1] scaling otherwise."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    if channels == 3:
        mean, std, stats = CIFAR10_MEAN, CIFAR10_STD, "CIFAR-10 statistics"
    else:
        mean, std, stats = (0.5,) * channels, (0.5,) * channels, "mean 0.5, std 0.5"
    return ContractTemplate(
        input_size=32,
        channels=channels,
        mean=mean,
        std=std,
        resize=None,
        crop=None,
        interpolation=Interpolation.BILINEAR,
        origin=f"CIFAR recipe (32×32, {stats})",
    )


@dataclass(frozen=True)
class ContractOptions:
    """The preprocessing options a user gave (None: not given, keep the model's default)."""

    input_size: int | None = None
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: SizeOption = None
    crop: SizeOption = None
    interpolation: Interpolation | None = None
    labels: tuple[str, ...] | None = None
    class_ids: tuple[str, ...] | None = None  # the WordNet ids of `labels`' file, if it had them

    def given(self) -> dict[str, object]:
        """The options the user set, for the manifest."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _size(value: SizeOption) -> int | None:
    return None if value in (None, NONE) else int(value)


def resolve_contract(
    template: ContractTemplate, options: ContractOptions, num_classes: int
) -> PreprocessContract:
    """The contract: the template, the user's options on top, the model's class count."""
    t = template
    if options.input_size is not None and options.input_size != t.input_size:
        size = options.input_size
        crop: int | None = size if t.crop is not None else None
        resize: int | None = None
        if t.resize is not None and t.crop is not None:
            resize = round(size * t.resize / t.crop)
        elif t.resize is not None:
            resize = size
        t = replace(t, input_size=size, crop=crop, resize=resize)
    if options.channels is not None and options.channels != t.channels:
        t = replace(t, channels=options.channels)
    input_size = t.input_size
    if options.crop is not None:
        # an explicit crop is the network input unless --input-size says otherwise
        t = replace(t, crop=_size(options.crop))
        if options.input_size is None and t.crop is not None:
            input_size = t.crop
    if options.resize is not None:
        t = replace(t, resize=_size(options.resize))
        if options.input_size is None and t.crop is None and t.resize is not None:
            input_size = t.resize
    return PreprocessContract(
        input_size=input_size,
        channels=t.channels,
        mean=options.mean if options.mean is not None else t.mean,
        std=options.std if options.std is not None else t.std,
        resize=t.resize,
        crop=t.crop,
        interpolation=options.interpolation or t.interpolation,
        num_classes=num_classes,
        labels=options.labels if options.labels is not None else t.labels,
        class_ids=(
            options.class_ids
            if options.labels is not None
            else (t.class_ids if t.labels is not None else None)
        ),
    )


def parse_size(text: str, what: str) -> SizeOption:
    """`N` or `none` (the CLI's --resize / --crop)."""
    if text.strip().lower() == NONE:
        return NONE
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{what}: expected a size in pixels or 'none', got {text!r}") from None
    return positive_count(value, what, colon=True)


def parse_labels(text: str) -> tuple[str, ...]:
    """--labels: class names from a text file (one name per line, or ImageNet's
    `n01440764 tench, …` lines, see `models.labels`) or a comma-separated list; a name given
    twice in a plain list is refused (data classes are matched by name)."""
    from resnet_opt.models.labels import parse_class_labels

    return parse_class_labels(text).names


def parse_class_ids(text: str) -> tuple[str, ...] | None:
    """--labels' WordNet ids when the file gives them (None for a plain list of names)."""
    from resnet_opt.models.labels import parse_class_labels

    return parse_class_labels(text).ids
