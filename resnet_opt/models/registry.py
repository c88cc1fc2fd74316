"""The model registry: architecture names → how to build them and how to feed them (timm style).

Each entry knows its family (torchvision ImageNet ResNets, or the CIFAR ResNets of the 2015
paper), its defaults (classes, input channels), the smallest input it makes sense on (its total
stride: below it the last stage sees less than one pixel of the image), and its default
preprocessing. The bundled default model is an entry with committed weights. Nothing here
imports torch: listing models and reading contracts must work on a machine without it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum

from resnet_opt.errors import ResnetOptError
from resnet_opt.models.cifar import DEPTHS, TOTAL_STRIDE
from resnet_opt.models.contract import ContractTemplate, cifar_template, imagenet_template
from resnet_opt.models.default import DEFAULT_ALIAS, DEFAULT_MODEL, default_model


class Family(str, Enum):
    TORCHVISION = "torchvision"
    CIFAR = "cifar"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: Family
    description: str
    num_classes: int  # default when neither --num-classes nor a checkpoint says otherwise
    in_channels: int
    min_input_size: int
    depth: int | None = None  # CIFAR family
    bundled: bool = False  # weights ship with the package (the default model)

    # state_dict keys that reveal a checkpoint's class count and input channels
    classifier_key: str = "fc.weight"
    stem_key: str = "conv1.weight"

    @property
    def channels_configurable(self) -> bool:
        """CIFAR architectures are built for any channel count; trained ones are not."""
        return self.family is Family.CIFAR and not self.bundled

    def template(self, channels: int | None = None) -> ContractTemplate:
        """Default preprocessing (for torchvision weights enums see torchvision_weights)."""
        if self.bundled:
            return ContractTemplate.of(default_model().contract, "bundled default model")
        if self.family is Family.CIFAR:
            return cifar_template(channels or self.in_channels)
        return imagenet_template()


TORCHVISION_RESNETS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
TORCHVISION_TOTAL_STRIDE = 32


def _entries() -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for name in TORCHVISION_RESNETS:
        entries[name] = ModelEntry(
            name=name,
            family=Family.TORCHVISION,
            description=f"torchvision {name} (ImageNet layout, 3×224×224)",
            num_classes=1000,
            in_channels=3,
            min_input_size=TORCHVISION_TOTAL_STRIDE,
        )
    for depth in DEPTHS:
        entries[f"resnet{depth}"] = ModelEntry(
            name=f"resnet{depth}",
            family=Family.CIFAR,
            description=f"CIFAR ResNet-{depth} (He et al. 2015, §4.2; 16/32/64 channels)",
            num_classes=10,
            in_channels=3,
            min_input_size=TOTAL_STRIDE,
            depth=depth,
        )
    entries[DEFAULT_MODEL] = ModelEntry(
        name=DEFAULT_MODEL,
        family=Family.CIFAR,
        description="bundled default: CIFAR ResNet-20 trained on the bundled digits (1×32×32)",
        num_classes=10,
        in_channels=1,
        min_input_size=TOTAL_STRIDE,
        depth=20,
        bundled=True,
    )
    return entries


REGISTRY: dict[str, ModelEntry] = _entries()


def list_models() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry of `name` ('default' is the bundled model), or a helpful error."""
    key = DEFAULT_MODEL if name == DEFAULT_ALIAS else name
    try:
        return REGISTRY[key]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ResnetOptError(
            f"unknown model {name!r}: {hint}known architectures: {', '.join(REGISTRY)}; "
            "or give FILE.py:FACTORY, PACKAGE.MODULE:FACTORY, or a TorchScript file"
        ) from None


def is_registered(name: str) -> bool:
    return name == DEFAULT_ALIAS or name in REGISTRY
