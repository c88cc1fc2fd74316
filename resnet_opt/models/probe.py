"""What a loaded model is, found by looking at it: class count (a dry forward pass), BatchNorm
layers, parameter count.

The class count comes from the model, not from an option, so a checkpoint fine-tuned to 5
classes exports with 5; the dry pass also catches an input size or channel count that the model
cannot take before the exporter produces a confusing trace error.
"""

from __future__ import annotations

from typing import Any

from resnet_opt.core.validation import check_fits
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line

_BATCHNORM_NAMES = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"})


def check_input_size(name: str, input_size: int, min_input_size: int | None) -> None:
    """Refuse inputs smaller than the network's total stride: its last stage would see less
    than one pixel of the image (torchvision ResNets still run there, on padding alone)."""
    if min_input_size is not None and input_size < min_input_size:
        raise ResnetOptError(
            f"{name}: input size {input_size} is too small for the model: its total stride is "
            f"{min_input_size}, so the last stage would see less than one pixel "
            f"(use --input-size {min_input_size} or more)"
        )


def dry_run(module: Any, input_shape: tuple[int, int, int], name: str) -> int:
    """Number of classes, from one forward pass on a zero input of the contract's shape."""
    torch = require("torch")
    shape = (1, *input_shape)
    check_fits(shape, f"{name}: --input-size {input_shape[-1]}")
    try:
        with torch.inference_mode():
            out = module(torch.zeros(shape))
    except Exception as exc:  # any failure of user/model code: one line, with the likely cause
        raise ResnetOptError(
            f"{name}: the model fails on a {'×'.join(map(str, shape))} input ({first_line(exc)}); "
            "is the input size or channel count right for it? (--input-size, --channels)"
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ResnetOptError(
            f"{name}: the model returns a {type(out).__name__}; export needs one N×classes "
            "logits tensor"
        )
    if out.ndim != 2 or out.shape[0] != 1 or not out.is_floating_point():
        raise ResnetOptError(
            f"{name}: the model returns a {out.dtype} tensor of shape {tuple(out.shape)}; "
            "export needs N×classes logits"
        )
    return int(out.shape[1])


def count_batchnorm(module: Any) -> int:
    """BatchNorm layers in an nn.Module or a TorchScript module (by its original class name)."""
    torch = require("torch")
    count = 0
    for sub in module.modules():
        scripted_bn = getattr(sub, "original_name", None) in _BATCHNORM_NAMES  # TorchScript
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) or scripted_bn:
            count += 1
    return count


def count_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))
