"""CIFAR-style ResNets from He et al. 2015 ("Deep Residual Learning", section 4.2).

A 3×3 stem conv with 16 filters, then 3 stages of n basic blocks at 16/32/64 channels (the
second and third stage halve the resolution with a stride-2 first conv), global average pool,
one fully connected layer: depth = 6n + 2 (ResNet-20/32/44/56/110 for n = 3/5/7/9/18).
Every conv is followed by BatchNorm (and ReLU, after the residual add in the block's second half).

Shortcuts where the shape changes:
- option B (the default here): a 1×1 stride-2 projection conv + BatchNorm, the same pattern as
  torchvision's `downsample`. The exported graph is then Conv/BatchNorm/Relu/Add only, exactly
  the op set of the torchvision ResNets, so fold, Q/DQ placement and TensorRT's conv+add fusion
  treat the bundled default model as they treat a real deployment model.
- option A (the paper's CIFAR choice, parameter free): subsample by 2 and zero-pad the channels.
  It exports as Slice + Pad on the residual path, which quantizers and TensorRT fuse less well;
  it is kept for checkpoints trained that way.

torch is imported lazily (ARCHITECTURE.md, "Imports and extras"): the classes are defined on first
use and reachable as module attributes (`resnet_opt.models.cifar.CifarResNet`), so pickled modules
still resolve.
"""

from __future__ import annotations

import functools
from enum import Enum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from resnet_opt.core.validation import positive_count
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    from torch import nn

STAGE_CHANNELS = (16, 32, 64)
DEPTHS = (20, 32, 44, 56, 110)
TOTAL_STRIDE = 4  # two stride-2 stages


class Shortcut(str, Enum):
    A = "A"  # subsample + zero-pad channels, no parameters
    B = "B"  # 1×1 projection conv + BatchNorm


def blocks_per_stage(depth: int) -> int:
    """n of a 6n+2 network, refusing depths the paper's scheme cannot make."""
    if depth < 8 or (depth - 2) % 6:
        raise ResnetOptError(f"a CIFAR ResNet has depth 6n+2 (20, 32, 44, 56, 110), not {depth}")
    return (depth - 2) // 6


@functools.cache
def _classes() -> SimpleNamespace:
    torch = require("torch")
    tnn = torch.nn
    functional = torch.nn.functional
    module_base: Any = tnn.Module

    def conv3x3(cin: int, cout: int, stride: int = 1) -> Any:
        return tnn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)

    class ZeroPadShortcut(module_base):  # type: ignore[misc]
        """Option A: take every other pixel, pad the new channels with zeros."""

        def __init__(self, stride: int, extra_channels: int) -> None:
            super().__init__()
            self.stride = stride
            self.extra_channels = extra_channels

        def forward(self, x: Any) -> Any:
            x = x[:, :, :: self.stride, :: self.stride]
            half = self.extra_channels // 2
            return functional.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))

    class BasicBlock(module_base):  # type: ignore[misc]
        def __init__(self, cin: int, cout: int, stride: int, shortcut: Shortcut) -> None:
            super().__init__()
            self.conv1 = conv3x3(cin, cout, stride)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = conv3x3(cout, cout)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample: Any = None
            if stride != 1 or cin != cout:
                if shortcut is Shortcut.B:
                    self.downsample = tnn.Sequential(
                        tnn.Conv2d(cin, cout, 1, stride=stride, bias=False), tnn.BatchNorm2d(cout)
                    )
                else:
                    self.downsample = ZeroPadShortcut(stride, cout - cin)

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class CifarResNet(module_base):  # type: ignore[misc]
        def __init__(
            self,
            depth: int = 20,
            *,
            in_channels: int = 3,
            num_classes: int = 10,
            shortcut: Shortcut = Shortcut.B,
        ) -> None:
            super().__init__()
            n = blocks_per_stage(depth)
            positive_count(in_channels, "in_channels", error=ResnetOptError)
            positive_count(num_classes, "num_classes", error=ResnetOptError)
            self.depth = depth
            self.shortcut = Shortcut(shortcut)
            self.conv1 = conv3x3(in_channels, STAGE_CHANNELS[0])
            self.bn1 = tnn.BatchNorm2d(STAGE_CHANNELS[0])
            self.relu = tnn.ReLU(inplace=True)
            cin = STAGE_CHANNELS[0]
            for index, (cout, stride) in enumerate(zip(STAGE_CHANNELS, (1, 2, 2), strict=True)):
                blocks = []
                for b in range(n):
                    blocks.append(BasicBlock(cin, cout, stride if b == 0 else 1, self.shortcut))
                    cin = cout
                self.add_module(f"layer{index + 1}", tnn.Sequential(*blocks))
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(STAGE_CHANNELS[-1], num_classes)
            for module in self.modules():
                if isinstance(module, tnn.Conv2d):
                    tnn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, tnn.BatchNorm2d):
                    tnn.init.ones_(module.weight)
                    tnn.init.zeros_(module.bias)

        def forward(self, x: Any) -> Any:
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    # module-level names so that pickle (and repr) find the classes where they are documented
    for cls in (ZeroPadShortcut, BasicBlock, CifarResNet):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return SimpleNamespace(
        ZeroPadShortcut=ZeroPadShortcut, BasicBlock=BasicBlock, CifarResNet=CifarResNet
    )


def cifar_resnet(
    depth: int,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    shortcut: Shortcut = Shortcut.B,
) -> nn.Module:
    """A randomly initialized CIFAR ResNet of `depth` layers (kaiming init, BN γ=1, β=0)."""
    model: nn.Module = _classes().CifarResNet(
        depth, in_channels=in_channels, num_classes=num_classes, shortcut=shortcut
    )
    return model


def __getattr__(name: str) -> Any:
    """`CifarResNet`, `BasicBlock`, `ZeroPadShortcut`, defined (and torch imported) on access."""
    if name in ("CifarResNet", "BasicBlock", "ZeroPadShortcut"):
        return getattr(_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
