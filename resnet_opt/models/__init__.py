"""Model sources: the registry (torchvision and CIFAR ResNets, the bundled default), checkpoints,
user factories and TorchScript files. Importing this package does not import torch.

`default_model()` gives the bundled model's contract and metadata without torch; `load_model`
(in `resnet_opt.models.sources`) builds any source as an nn.Module.
"""

from resnet_opt.models.default import (
    DEFAULT_ALIAS,
    DEFAULT_MODEL,
    DefaultModel,
    default_contract,
    default_model,
)
from resnet_opt.models.registry import REGISTRY, Family, ModelEntry, get_entry, list_models

__all__ = [
    "DEFAULT_ALIAS",
    "DEFAULT_MODEL",
    "REGISTRY",
    "DefaultModel",
    "Family",
    "ModelEntry",
    "default_contract",
    "default_model",
    "get_entry",
    "list_models",
]
