"""The bundled default model: CIFAR ResNet-20 trained on the bundled 8×8 digits.

Its weights (a state_dict) and a metadata file (preprocessing contract, training settings, the
test-split top-1 measured by scripts/train_default.py) ship in resnet_opt/models/data/, so the
whole pipeline runs offline on a fresh machine. Reading the metadata needs no torch: `run`,
quantize and bench ask for the contract of "default" without loading the network.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.errors import ResnetOptError

DEFAULT_MODEL = "resnet20-digits"
DEFAULT_ALIAS = "default"
WEIGHTS_FILE = "resnet20_digits.pt"
METADATA_FILE = "resnet20_digits.json"


@dataclass(frozen=True)
class DefaultModel:
    """What the bundled model is and how it was made, from its committed metadata."""

    name: str
    architecture: str  # registry name of the architecture (resnet20)
    in_channels: int
    num_classes: int
    shortcut: str
    weights: Path
    weights_sha256: str
    contract: PreprocessContract
    test_top1: float  # percent, bundled test split, measured by the training script
    test_count: int
    metadata: Mapping[str, Any]


def data_dir() -> Path:
    """The package's data folder (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files("resnet_opt.models").joinpath("data")))


@functools.cache
def default_model() -> DefaultModel:
    """The bundled default model's contract and metadata (no torch needed)."""
    folder = data_dir()
    path = folder / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ResnetOptError(
            f"{path}: bundled default model metadata unreadable ({exc}); "
            "re-install resnet-opt or run scripts/train_default.py"
        ) from exc
    try:
        return DefaultModel(
            name=str(meta["name"]),
            architecture=str(meta["architecture"]),
            in_channels=int(meta["in_channels"]),
            num_classes=int(meta["num_classes"]),
            shortcut=str(meta["shortcut"]),
            weights=folder / str(meta["weights"]),
            weights_sha256=str(meta["weights_sha256"]),
            contract=PreprocessContract.from_dict(meta["preprocessing"]),
            test_top1=float(meta["test_top1"]),
            test_count=int(meta["test_count"]),
            metadata=meta,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResnetOptError(f"{path}: bundled default model metadata incomplete ({exc})") from exc


def default_contract() -> PreprocessContract:
    """The preprocessing contract of the bundled default model."""
    return default_model().contract
