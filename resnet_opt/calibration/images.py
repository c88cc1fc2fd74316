"""Decoding an image file into the model's colour mode: the one rule for every stage.

Real datasets mix modes: ImageNet has grayscale (L) and CMYK JPEGs among its RGB ones, PNGs come
as palettes (P, with or without transparency), RGBA or 16-bit grayscale. Every pipeline users
know (torchvision's `ImageFolder`/`pil_loader`, timm, ONNX Runtime's and NNCF's samples) decodes
with `Image.convert("RGB")`, or "L" for a one-channel model, and so does this module, with two
corrections where a plain `convert` would be wrong rather than just different:

- a palette with transparency goes through RGBA (Pillow warns on P → RGB with a transparency
  key; the colours come out the same, alpha is dropped as `convert("RGB")` drops it);
- 16-bit and 32-bit integer images (I;16*, I) are scaled to 8 bits (value / 257, so 65535 →
  255) instead of clipped at 255 (which turns most of a 16-bit image white), and float images
  (F) are read as [0, 1] when all values lie there, else as 0–255, clipped.

A conversion is counted per file and from which mode (`ModeTally`), and each stage says once how
many images it converted (`describe`); `strict` refuses an image whose mode is not the model's
instead. Calibration, `eval`, `bench`, `export`'s parity check and `run` all decode here.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnet_opt.core.naming import OptionError, OptionNames

if TYPE_CHECKING:
    from PIL import Image

# 16-bit and 32-bit integer greyscale: scaled from 16 bits to 8, not clipped
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_FLOAT_MODES = frozenset({"F"})


class ImageModeError(OptionError):
    """An image is not in the model's mode and `--strict` forbids converting it (the option
    named by its field, `strict`: each face words it, `core/naming.py`)."""

    def __init__(self, name: str, mode: str, target: str) -> None:
        def words(names: OptionNames) -> str:
            strict = names.option("strict")
            return (
                f"{name}: {mode} image, the model takes {target} ({strict} refuses converting; "
                f"leave {strict} off to convert as torchvision does)"
            )

        super().__init__("strict", words)


@dataclass
class ModeTally:
    """Which files were converted from which mode (one entry per file, however often it is
    read: bench reads the same images for every artifact)."""

    by_file: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, mode: str) -> None:
        with self._lock:
            self.by_file[name] = mode

    def counts(self) -> dict[str, int]:
        """{original mode: number of images}, most frequent first."""
        return dict(Counter(self.by_file.values()).most_common())


def describe(counts: dict[str, int], target: str) -> str | None:
    """'converted 3 images to RGB (2 from L, 1 from CMYK)', or None when none was converted."""
    total = sum(counts.values())
    if not total:
        return None
    modes = ", ".join(f"{n} from {mode}" for mode, n in counts.items())
    return f"converted {total} image{'s' if total != 1 else ''} to {target} ({modes})"


def to_mode(image: Image.Image, target: str) -> Image.Image:
    """`image` in Pillow mode `target` ("RGB" or "L"), as torchvision's loader converts it, with
    wide integer and float images scaled to 8 bits first (see the module docstring)."""
    from PIL import Image

    mode = image.mode
    if mode == target:
        return image
    if mode in _WIDE_INT_MODES or mode in _FLOAT_MODES:
        image = Image.fromarray(_to_8bit(np.asarray(image), mode), mode="L")
    elif (mode == "P" and "transparency" in image.info) or mode == "PA":
        image = image.convert("RGBA")
    if image.mode == target:
        return image
    try:
        return image.convert(target)
    except ValueError:  # modes Pillow converts to RGB only (HSV, LAB): RGB first
        return image.convert("RGB").convert(target)


def _to_8bit(pixels: np.ndarray, mode: str) -> np.ndarray:
    """uint8 greyscale from a 16/32-bit integer or a float image."""
    values = pixels.astype(np.float64)
    if mode in _FLOAT_MODES:
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            values = values * 255.0
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        values = np.clip(values, 0, 65535) / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def decode(
    path: Path,
    name: str,
    target: str,
    *,
    strict: bool = False,
    tally: ModeTally | None = None,
) -> Image.Image:
    """The image file `path` decoded, in mode `target`; conversions are counted in `tally`,
    refused under `strict`. `name` is how messages call the file.

    Raises ImageModeError (strict), or lets Pillow's errors through for the caller to turn into
    a skipped sample (corrupt file, decompression bomb).
    """
    from PIL import Image

    with warnings.catch_warnings():
        # Pillow warns between its pixel limit and twice it, and raises above: both are the
        # same refusal, which the caller words
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode != target and strict:
                raise ImageModeError(name, mode, target)
            converted = to_mode(image, target)
            if converted is image:
                converted = image.copy()
    if mode != target and tally is not None:
        tally.add(name, mode)
    return converted


def header_mode(path: Path) -> str | None:
    """The Pillow mode in `path`'s header (no pixels decoded), None when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return str(image.mode)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None  # decoding it refuses it, by name
