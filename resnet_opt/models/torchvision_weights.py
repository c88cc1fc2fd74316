"""torchvision weights enums (IMAGENET1K_V2, DEFAULT …), from torch.hub's cache or downloaded.

As torchvision does itself: the cache file is looked up first (torch.hub's folder, which follows
TORCH_HOME); when absent it is downloaded on first use with torch.hub's own download (a
progress bar on stderr, the published sha256 prefix in the file name checked, the file moved
into place only when complete). Offline (or when the download fails), the error names the exact
file, its URL and where to put it. A present file is checked against the hash prefix in its name
too, so a truncated copy is caught here rather than as a strange unpickling error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from resnet_opt.core.contract import Interpolation
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.models.contract import ContractTemplate

_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")
_ENUM_LIKE = re.compile(r"^([A-Za-z0-9]+_Weights\.)?[A-Z][A-Z0-9_]*$")


def looks_like_enum(text: str) -> bool:
    """IMAGENET1K_V2, DEFAULT or ResNet50_Weights.IMAGENET1K_V2 (not a file path)."""
    return bool(_ENUM_LIKE.match(text))


def resolve(arch: str, name: str) -> Any:
    """The weights enum member `name` of torchvision architecture `arch`."""
    torchvision = require("torchvision")
    enum_cls = torchvision.models.get_model_weights(arch)
    prefix, _, member = name.rpartition(".")
    if prefix and prefix != enum_cls.__name__:
        raise ResnetOptError(f"--weights {name}: {arch}'s weights are {enum_cls.__name__}.*")
    try:
        return enum_cls[member]
    except KeyError:
        known = ", ".join(enum_cls.__members__)
        raise ResnetOptError(
            f"--weights {name}: {arch} has no such torchvision weights (known: {known}); "
            "or give a checkpoint path, or none"
        ) from None


def cache_dir() -> Path:
    """torch.hub's checkpoint folder ($TORCH_HOME/hub/checkpoints, ~/.cache/torch/…)."""
    torch = require("torch")
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_file(weights: Any) -> Path:
    """Where torch.hub keeps (or would keep) this weights file."""
    return cache_dir() / Path(urlparse(weights.url).path).name


def require_cached(arch: str, weights: Any) -> Path:
    """The cached file of `weights`, downloaded there first when absent (torch.hub's download,
    hash-checked), or an error saying exactly what to put where."""
    path = cached_file(weights)
    if path.is_file():
        return path
    try:
        fetch(weights.url, path)
    except DownloadError as exc:
        raise ResnetOptError(
            f"{arch} {weights.name} weights are not in the local torch cache and could not be "
            f"downloaded ({exc}): put {path.name} (from {weights.url}) at {path} "
            "(the folder follows TORCH_HOME), or pass a checkpoint path or --weights none"
        ) from exc
    return path


class DownloadError(ResnetOptError):
    """A download failed (no network, refused, or the file is not the published one)."""


def fetch(url: str, path: Path) -> None:
    """`url` downloaded to `path` with torch.hub's download: a progress bar on stderr (not
    under -q), the sha256 prefix in the file name (torch.hub's convention) checked, and the
    file moved into place only when complete."""
    from resnet_opt.console import is_quiet

    torch = require("torch")
    match = _HASH_IN_NAME.search(Path(urlparse(url).path).name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            url, str(path), hash_prefix=match.group(1) if match else None, progress=not is_quiet()
        )
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        path.unlink(missing_ok=True)
        raise DownloadError(first_line(exc) or type(exc).__name__) from exc


def check_hash_prefix(path: Path, sha256: str) -> None:
    """torch.hub's rule: the hex digits after the last '-' of the file name start its sha256."""
    match = _HASH_IN_NAME.search(path.name)
    if match and not sha256.startswith(match.group(1)):
        raise ResnetOptError(
            f"{path}: content does not match the hash in its name (sha256 {sha256[:12]}…, "
            f"expected {match.group(1)}…); the file is incomplete or not the published weights"
        )


def template(weights: Any) -> ContractTemplate:
    """The preprocessing of the weights' own transforms (e.g. resize 232 for IMAGENET1K_V2)."""
    transforms = weights.transforms()
    crop = int(transforms.crop_size[0])
    resize = int(transforms.resize_size[0])
    categories = weights.meta.get("categories")
    return ContractTemplate(
        input_size=crop,
        channels=3,
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        resize=resize,
        crop=crop,
        interpolation=Interpolation(str(transforms.interpolation.value)),
        labels=tuple(categories) if categories else None,
        origin=f"torchvision {weights.__class__.__name__}.{weights.name} transforms",
    )
