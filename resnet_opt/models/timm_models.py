"""timm models: `timm:NAME` sources and the preprocessing timm keeps in each `pretrained_cfg`.

timm keeps a model's preprocessing with its weights (input size, interpolation, crop_pct,
crop_mode, mean, std), as resnet-opt's contract does; `timm.data.resolve_data_config` reads it.
A timm ResNet measured with torchvision's recipe (resize 256, bilinear) is measured on the wrong
inputs, so a timm model (from `timm:NAME`, or any factory returning a model that carries a
`pretrained_cfg`, such as `timm.models.resnet:seresnet50`) takes its contract from there:

- crop_mode "center": resize the shorter side to floor(size / crop_pct), centre crop `size`
  (timm's `transforms_factory` eval transform);
- crop_mode "squash": resize straight to size × size (no crop);
- "border" and interpolations Pillow-only timm adds (lanczos, random …) are refused by name
  rather than approximated.

Pretrained weights: `--weights pretrained` lets timm download them (from the Hugging Face hub,
with its progress bar, into its cache) on first use; offline the error says which file to
fetch and that `--weights PATH` takes it. `--weights none` is a seeded random init.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from resnet_opt.core.contract import Interpolation
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.models.contract import ContractTemplate

PREFIX = "timm:"
PRETRAINED = "pretrained"  # --weights pretrained: timm's hub weights


def is_timm_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def has_pretrained_cfg(module: Any) -> bool:
    """A timm model (its factory attached a pretrained_cfg)."""
    return isinstance(getattr(module, "pretrained_cfg", None), Mapping)


def create(name: str, *, pretrained: bool, num_classes: int | None) -> Any:
    """timm.create_model(name), turning timm's refusals and a failed download into one line."""
    timm = require("timm")
    if not name:
        raise ResnetOptError("--model timm:NAME: give a timm model name, e.g. timm:resnet50")
    kwargs: dict[str, Any] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc) or "Invalid pretrained tag" in str(exc):
            import difflib

            close = difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=5)
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise ResnetOptError(f"timm:{name}: {first_line(exc)}{hint}") from exc
        raise ResnetOptError(f"timm:{name}: {first_line(exc)}") from exc
    except Exception as exc:  # a failed download: requests/huggingface_hub/OSError types
        if not pretrained:
            raise ResnetOptError(f"timm:{name}: timm.create_model failed ({exc})") from exc
        raise offline_error(name, exc) from exc


def offline_error(name: str, exc: BaseException) -> ResnetOptError:
    """The pretrained weights could not be fetched: which file, and where to put it."""
    url, hub_id = _sources(name)
    where = (
        [f"the Hugging Face cache (HF_HOME) from https://huggingface.co/{hub_id}"] if hub_id else []
    )
    if url:
        where.append(f"a state dict file from {url}, given as --weights PATH")
    return ResnetOptError(
        f"timm:{name}: the pretrained weights could not be downloaded ({first_line(exc)}); "
        "timm fetches them on first use when the network is there; offline, put "
        + (" or ".join(where) or "a state dict file, given as --weights PATH")
        + ", or pass --weights none"
    )


def _sources(name: str) -> tuple[str | None, str | None]:
    """(release URL of a .pth, Hugging Face hub id) of `name`'s pretrained weights."""
    try:
        timm = require("timm")
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:  # an unknown name: the create call says so
        return None, None
    if cfg is None:
        return None, None
    return getattr(cfg, "url", None) or None, getattr(cfg, "hf_hub_id", None) or None


def template(module: Any, origin: str) -> ContractTemplate:
    """The preprocessing timm resolves for `module` (its pretrained_cfg), as a contract."""
    timm_data = require("timm.data")
    config = timm_data.resolve_data_config(model=module)
    channels, height, width = (int(v) for v in config["input_size"])
    if height != width:
        raise ResnetOptError(
            f"{origin}: timm's input size is {height}×{width}; resnet-opt takes square inputs "
            "(give --input-size to choose one)"
        )
    try:
        interpolation = Interpolation(str(config["interpolation"]))
    except ValueError:
        raise ResnetOptError(
            f"{origin}: timm's interpolation {config['interpolation']!r} is not one resnet-opt "
            "carries out (nearest, bilinear, bicubic); give --interpolation"
        ) from None
    mode = str(config.get("crop_mode", "center"))
    crop_pct = float(config.get("crop_pct", 0.875))
    if mode == "center":
        resize: int | None = math.floor(height / crop_pct)
        crop: int | None = height
    elif mode == "squash":
        resize, crop = None, None
    else:
        raise ResnetOptError(
            f"{origin}: timm's crop_mode {mode!r} is not one resnet-opt carries out "
            "(center, squash); give --resize/--crop"
        )
    labels, ids = _imagenet_labels(module)
    return ContractTemplate(
        input_size=height,
        channels=channels,
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        resize=resize,
        crop=crop,
        interpolation=interpolation,
        labels=labels,
        class_ids=ids,
        origin=f"timm pretrained_cfg of {origin} (crop_pct {crop_pct:g}, crop_mode {mode})",
    )


def _imagenet_labels(module: Any) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """ImageNet class names and WordNet ids when timm knows the model's label set and the
    model still has its classes (not a new head)."""
    try:
        timm_data = require("timm.data")
        subset = timm_data.infer_imagenet_subset(module)
        if not subset:
            return None, None
        info = timm_data.ImageNetInfo(subset)
        ids = tuple(info.label_names())
        names = tuple(info.label_descriptions())
    except Exception:  # older timm, or a label set it cannot tell: no labels, not an error
        return None, None
    if len(ids) != getattr(module, "num_classes", len(ids)) or len(names) != len(ids):
        return None, None
    return names, ids
