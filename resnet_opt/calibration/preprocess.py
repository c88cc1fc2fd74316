"""Preprocessing: an image becomes the network input its contract describes.

The contract itself (`resnet_opt.core.contract.PreprocessContract`) is plain data that travels in
every manifest; this module carries it out with Pillow and numpy, in one place, without torch, so
calibration, evaluation and benchmarking preprocess exactly as training did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    from PIL import Image


def resample(interpolation: Interpolation) -> int:
    """Pillow's resampling filter for `interpolation`."""
    from PIL import Image

    return {
        Interpolation.NEAREST: Image.Resampling.NEAREST,
        Interpolation.BILINEAR: Image.Resampling.BILINEAR,
        Interpolation.BICUBIC: Image.Resampling.BICUBIC,
    }[interpolation]


def spatial(contract: PreprocessContract, image: Image.Image) -> Image.Image:
    """Resize / crop a Pillow image to input_size × input_size (no colour conversion)."""
    c = contract
    method = resample(c.interpolation)
    if c.resize is None and c.crop is None:
        return image.resize((c.input_size, c.input_size), method)
    if c.resize is not None:
        w, h = image.size
        if w <= h:
            size = (c.resize, max(1, int(c.resize * h / w)))
        else:
            size = (max(1, int(c.resize * w / h)), c.resize)
        image = image.resize(size, method)
    if c.crop is not None:
        w, h = image.size
        # torchvision's center_crop rounding
        left = round((w - c.crop) / 2.0)
        top = round((h - c.crop) / 2.0)
        image = image.crop((left, top, left + c.crop, top + c.crop))
    return image


def normalize(contract: PreprocessContract, pixels: np.ndarray) -> np.ndarray:
    """uint8 H×W×C (or H×W for one channel) at input size → float32 C×H×W."""
    c = contract
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape != (c.input_size, c.input_size, c.channels):
        raise ResnetOptError(
            f"image of shape {pixels.shape} does not match the contract "
            f"{c.input_size}×{c.input_size}×{c.channels}"
        )
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    x = (scaled - np.asarray(c.mean, np.float32)) / np.asarray(c.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def apply(contract: PreprocessContract, image: Image.Image) -> np.ndarray:
    """A Pillow image already in the contract's `color_mode` → float32 C×H×W network input."""
    if image.mode != contract.color_mode:
        raise ResnetOptError(f"image mode {image.mode} is not the contract's {contract.color_mode}")
    return normalize(contract, np.asarray(spatial(contract, image)))


def apply_pixels(contract: PreprocessContract, pixels: np.ndarray) -> np.ndarray:
    """uint8 H×W or H×W×C pixels at any size → float32 C×H×W network input."""
    from PIL import Image

    if pixels.dtype != np.uint8:
        raise ResnetOptError(f"raw pixels must be uint8, not {pixels.dtype}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels != contract.channels:
        raise ResnetOptError(
            f"image has {channels} channel(s), the model takes {contract.channels}"
        )
    image = Image.fromarray(pixels if channels == 3 else pixels.reshape(pixels.shape[:2]))
    return apply(contract, image)
