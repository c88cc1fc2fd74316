"""Data sources: an image folder, a .npy/.npz array file, or the bundled digits split.

One protocol serves calibration, evaluation, export parity and the bench. Samples load one at a
time and are batched by `BatchStream`, so memory holds one batch, never the whole set. Sample
selection is deterministic (`select_indices`), and `fingerprint` hashes exactly the samples used,
which is what a calibration cache is keyed to.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from resnet_opt.calibration import images, preprocess
from resnet_opt.calibration.images import ModeTally
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.naming import OptionError, Words
from resnet_opt.core.validation import positive_count
from resnet_opt.errors import ResnetOptError, UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp", ".gif"}
)
DEFAULT_SPEC = "default"


class Split(str, Enum):
    """The bundled digits split; calibration defaults to CALIB, evaluation to TEST."""

    TRAIN = "train"
    CALIB = "calib"
    TEST = "test"


_SPLIT_CODE = {Split.TRAIN: 0, Split.CALIB: 1, Split.TEST: 2}


class SampleError(ResnetOptError):
    """One sample could not be used (corrupt file, wrong channel count): skippable."""


class DataSource(Protocol):
    """An ordered, indexable collection of samples."""

    @property
    def description(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Class names in label order, or None for unlabelled data."""
        ...

    @property
    def skipped_on_scan(self) -> tuple[tuple[str, str], ...]:
        """(name, reason) of entries left out when the source was opened (non-image files)."""
        ...

    def __len__(self) -> int: ...

    def sample_name(self, index: int) -> str: ...

    def load(self, index: int, contract: PreprocessContract) -> tuple[np.ndarray, int | None]:
        """float32 C×H×W network input and the label (None when unlabelled)."""
        ...

    def fingerprint(self, indices: Sequence[int]) -> str:
        """sha256 over the identity and content of exactly these samples."""
        ...


# -- image folders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFolderSource:
    """ImageFolder layout (class subfolders, sorted names = class order) or a flat folder."""

    root: Path
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None
    class_names: tuple[str, ...] | None
    skipped_on_scan: tuple[tuple[str, str], ...] = ()
    strict: bool = False  # refuse an image in another mode than the model's (no conversion)
    conversions: ModeTally = field(default_factory=ModeTally, compare=False)

    @classmethod
    def open(cls, root: Path, *, strict: bool = False) -> ImageFolderSource:
        if not root.is_dir():
            raise ResnetOptError(f"{root}: no such folder")
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        skipped: list[tuple[str, str]] = []

        def images_in(folder: Path, recursive: bool) -> list[Path]:
            found = []
            walker = folder.rglob("*") if recursive else folder.iterdir()
            for path in sorted(walker):
                if not path.is_file() or path.name.startswith("."):
                    continue
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(path)
                else:
                    skipped.append((str(path.relative_to(root)), "not an image file"))
            return found

        files: list[Path] = []
        labels: list[int] | None
        names: tuple[str, ...] | None
        if subdirs:
            labels = []
            names = tuple(d.name for d in subdirs)
            for cls_index, folder in enumerate(subdirs):
                found = images_in(folder, recursive=True)
                files.extend(found)
                labels.extend([cls_index] * len(found))
            for path in sorted(root.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    skipped.append((path.name, "file outside the class subfolders"))
        else:
            labels, names = None, None
            files = images_in(root, recursive=False)
        if strict and skipped:
            name, reason = skipped[0]
            raise OptionError(
                "strict", lambda n: f"{root}: {name}: {reason} ({n.option('strict')})"
            )
        if not files:
            raise ResnetOptError(f"{root}: no image files found ({len(skipped)} other files)")
        if skipped:
            log.warning("%s: skipped %d non-image file(s)", root, len(skipped))
        return cls(
            root=root,
            files=tuple(files),
            labels=tuple(labels) if labels is not None else None,
            class_names=names,
            skipped_on_scan=tuple(skipped),
            strict=strict,
        )

    @property
    def description(self) -> str:
        kind = f"{len(self.class_names)} classes" if self.class_names else "unlabelled"
        return f"image folder {self.root} ({len(self.files)} images, {kind})"

    def __len__(self) -> int:
        return len(self.files)

    def sample_name(self, index: int) -> str:
        return str(self.files[index].relative_to(self.root))

    def load(self, index: int, contract: PreprocessContract) -> tuple[np.ndarray, int | None]:
        x = _load_image(self.files[index], self.sample_name(index), contract, self)
        label = self.labels[index] if self.labels is not None else None
        return x, label

    def fingerprint(self, indices: Sequence[int]) -> str:
        digest = hashlib.sha256(b"image-folder\0")
        for i in indices:
            digest.update(self.sample_name(i).encode() + b"\0")
            digest.update(hashlib.sha256(self.files[i].read_bytes()).digest())
            if self.labels is not None:
                digest.update(self.labels[i].to_bytes(4, "little"))
        return digest.hexdigest()


class _ImageFiles(Protocol):
    @property
    def strict(self) -> bool: ...

    @property
    def conversions(self) -> ModeTally: ...


def _load_image(
    path: Path, name: str, contract: PreprocessContract, source: _ImageFiles
) -> np.ndarray:
    """One image file as the network input: decoded into the model's mode by the one rule
    (`calibration.images`), conversions counted in the source; a file that cannot be decoded
    is a SampleError (skipped, or refused under --strict)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = images.decode(
            path, name, contract.color_mode, strict=source.strict, tally=source.conversions
        )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SampleError(
            f"{name}: too many pixels to decode safely "
            f"(Pillow's decompression-bomb limit is {Image.MAX_IMAGE_PIXELS} pixels)"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SampleError(f"{name}: cannot decode image ({exc})") from exc
    with image:
        return preprocess.apply(contract, image)


def converted_modes(source: DataSource) -> dict[str, int]:
    """{original mode: images} that `source` converted to the model's mode so far ({} for
    sources that hold no image files)."""
    tally = getattr(source, "conversions", None)
    return tally.counts() if isinstance(tally, ModeTally) else {}


def check_modes(source: DataSource, contract: PreprocessContract) -> None:
    """--strict, checked up front: every image file of `source` is in the model's mode already
    (read from its header, no pixels decoded); the first that is not is refused by name."""
    files = getattr(source, "files", None)
    if not isinstance(source, ImageFolderSource | LabelListSource) or files is None:
        return
    target = contract.color_mode
    for index, path in enumerate(files):
        mode = images.header_mode(path)
        if mode is not None and mode != target:
            raise images.ImageModeError(source.sample_name(index), mode, target)


def report_conversions(source: DataSource, contract: PreprocessContract, stage: str) -> str | None:
    """Say once, on stderr, how many images `stage` converted from which mode; the same line is
    returned for the stage's result or manifest (None when nothing was converted)."""
    from resnet_opt.console import say

    line = images.describe(converted_modes(source), contract.color_mode)
    if line is not None:
        say(f"{stage}: {line}")
    return line


# -- a flat folder with a label list -------------------------------------------------------------


@dataclass(frozen=True)
class LabelListSource:
    """A flat image folder and a label list file, as ImageNet's validation set comes: one
    `FILE LABEL` line per image (`ILSVRC2012_val_00000001.JPEG 65`, Caffe's val.txt), FILE
    relative to the folder. LABEL is the model's class index (all lines), or a class name or
    WordNet id matched through the model's labels as class folders are. Images of the folder
    that the list does not name are not used; a name with no file is refused when opened."""

    root: Path
    list_file: Path
    files: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...] | None  # None: LABEL is the model's class index
    skipped_on_scan: tuple[tuple[str, str], ...] = ()
    strict: bool = False
    conversions: ModeTally = field(default_factory=ModeTally, compare=False)

    @classmethod
    def open(cls, root: Path, list_file: Path, *, strict: bool = False) -> LabelListSource:
        if not root.is_dir():
            raise ResnetOptError(f"{root}: no such folder (the images of {list_file})")
        if not list_file.is_file():
            raise ResnetOptError(f"{list_file}: no such label list file")
        try:
            lines = list_file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ResnetOptError(f"{list_file}: cannot read ({exc})") from exc
        entries: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ResnetOptError(
                    f"{list_file}:{number}: expected 'FILE LABEL' (e.g. "
                    f"'ILSVRC2012_val_00000001.JPEG 65'), got {line.strip()!r}"
                )
            entries.append((parts[0], parts[1]))
        if not entries:
            raise ResnetOptError(f"{list_file}: no 'FILE LABEL' lines")
        names = [name for name, _ in entries]
        repeated = [n for n, count in Counter(names).items() if count > 1]
        if repeated:
            raise ResnetOptError(f"{list_file}: {repeated[0]} is listed twice")
        files = tuple(root / name for name in names)
        missing = [name for name, path in zip(names, files, strict=True) if not path.is_file()]
        if missing:
            shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
            raise ResnetOptError(
                f"{list_file}: {len(missing)} of its {len(names)} files are not in {root}: {shown}"
            )
        texts = [label for _, label in entries]
        class_names: tuple[str, ...] | None
        if all(t.isdigit() for t in texts):
            class_names, indices = None, tuple(int(t) for t in texts)
        else:
            class_names = tuple(sorted(set(texts)))
            position = {n: i for i, n in enumerate(class_names)}
            indices = tuple(position[t] for t in texts)
        listed = {path.resolve() for path in files}
        unlisted = [
            (p.name, "not in the label list")
            for p in sorted(root.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in listed
        ]
        if unlisted:
            log.warning("%s: %d image(s) not in %s, not used", root, len(unlisted), list_file)
        return cls(root, list_file, files, indices, class_names, tuple(unlisted), strict)

    @property
    def description(self) -> str:
        return (
            f"image folder {self.root} with labels {self.list_file.name} ({len(self.files)} images)"
        )

    def __len__(self) -> int:
        return len(self.files)

    def sample_name(self, index: int) -> str:
        return self.files[index].name

    def load(self, index: int, contract: PreprocessContract) -> tuple[np.ndarray, int | None]:
        x = _load_image(self.files[index], self.sample_name(index), contract, self)
        return x, self.labels[index]

    def fingerprint(self, indices: Sequence[int]) -> str:
        digest = hashlib.sha256(b"label-list\0")
        for i in indices:
            digest.update(self.sample_name(i).encode() + b"\0")
            digest.update(hashlib.sha256(self.files[i].read_bytes()).digest())
            digest.update(self.labels[i].to_bytes(4, "little"))
            if self.class_names is not None:
                digest.update(self.class_names[self.labels[i]].encode() + b"\0")
        return digest.hexdigest()


# -- arrays ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArraySource:
    """A .npy or .npz file.

    uint8 arrays N×H×W or N×H×W×C are raw pixels and go through the contract; float arrays must
    be N×C×H×W already preprocessed to the contract's input shape. A .npz holds the samples under
    `x`, `images` or `data` and optional labels under `y` or `labels`: the model's class indices
    (an array has no class names to match by).
    """

    path: Path
    samples: np.ndarray | NpzMember
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None = None
    skipped_on_scan: tuple[tuple[str, str], ...] = ()
    file_sha256: str = ""

    @classmethod
    def open(cls, path: Path) -> ArraySource:
        from resnet_opt.core.hashing import sha256_file

        if not path.is_file():
            raise ResnetOptError(f"{path}: no such file")
        samples, labels = _read_arrays(path)
        if samples.ndim not in (3, 4) or len(samples) == 0 or 0 in samples.shape:
            raise ResnetOptError(
                f"{path}: expected N×H×W(×C) uint8 pixels or N×C×H×W floats with no empty "
                f"axis, got shape {samples.shape}"
            )
        if samples.dtype != np.uint8 and not np.issubdtype(samples.dtype, np.floating):
            raise ResnetOptError(f"{path}: dtype {samples.dtype} is neither uint8 nor float")
        if np.issubdtype(samples.dtype, np.floating):
            for chunk in _chunks(samples, 256):
                if not np.isfinite(chunk).all():
                    raise ResnetOptError(f"{path}: contains NaN or inf values")
        if labels is not None and (
            labels.shape != (len(samples),) or not np.issubdtype(labels.dtype, np.integer)
        ):
            raise ResnetOptError(
                f"{path}: labels must be {len(samples)} integers, got {labels.dtype} {labels.shape}"
            )
        return cls(path=path, samples=samples, labels=labels, file_sha256=sha256_file(path))

    @property
    def description(self) -> str:
        return f"array file {self.path} ({len(self.samples)} samples, {self.samples.dtype})"

    def __len__(self) -> int:
        return len(self.samples)

    def sample_name(self, index: int) -> str:
        return f"{self.path.name}[{index}]"

    def load(self, index: int, contract: PreprocessContract) -> tuple[np.ndarray, int | None]:
        raw = np.asarray(self.samples[index])
        label = int(self.labels[index]) if self.labels is not None else None
        if raw.dtype == np.uint8:
            try:
                return preprocess.apply_pixels(contract, raw), label
            except ResnetOptError as exc:
                raise ResnetOptError(f"{self.sample_name(index)}: {exc}") from exc
        if raw.shape != contract.input_shape:
            raise ResnetOptError(
                f"{self.path}: float samples have shape {raw.shape}, the model takes "
                f"{contract.input_shape} (C×H×W, already preprocessed)"
            )
        return raw.astype(np.float32), label

    def fingerprint(self, indices: Sequence[int]) -> str:
        digest = hashlib.sha256(b"array\0" + self.file_sha256.encode())
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        return digest.hexdigest()


# -- array files: .npy memory-mapped, .npz members read sample by sample ------------------------


class NpzMember:
    """One array of an .npz, read sample by sample from its zip member, never inflated whole.

    Why: an .npz is a zip, and a 1.4 MB file can inflate to gigabytes; `np.load` inflates a
    member whole on first access even when `--calib-samples 4` uses four samples. The member's
    .npy header gives shape and dtype; sample i starts at header + i × sample bytes in the
    inflated stream (zip members seek forward by inflating and discarding, in constant memory).
    """

    def __init__(self, path: Path, member: str) -> None:
        import zipfile

        self.path, self.member = path, member
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            self.offset = stream.tell()
        if fortran or dtype.hasobject or not shape:
            raise ValueError(f"{member}: a C-ordered numeric array with a sample axis is needed")
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._archive: Any = None
        self._stream: Any = None

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Samples start..stop-1. The member stays open between calls: samples are read in
        order (`select_indices` sorts), so each read inflates only the bytes since the last;
        a read behind the stream's position starts a new pass."""
        import zipfile

        count = max(0, min(stop, len(self)) - start)
        where = self.offset + start * self.row_bytes
        if self._stream is None or self._stream.tell() > where:
            self.close()
            self._archive = zipfile.ZipFile(self.path)
            self._stream = self._archive.open(self.member)
        self._stream.seek(where)
        raw = self._stream.read(count * self.row_bytes)
        if len(raw) != count * self.row_bytes:
            raise ResnetOptError(f"{self.path}: {self.member} is shorter than its header says")
        return np.frombuffer(raw, dtype=self.dtype).reshape(count, *self.shape[1:])

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._archive is not None:
            self._archive.close()
        self._stream = self._archive = None

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        row: np.ndarray = self.rows(index, index + 1)[0]
        return row

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Every sample in order, `rows` at a time, in one pass over the stream."""
        import zipfile

        with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as stream:
            stream.seek(self.offset)
            for start in range(0, len(self), rows):
                count = min(rows, len(self) - start)
                raw = stream.read(count * self.row_bytes)
                if len(raw) != count * self.row_bytes:
                    raise ResnetOptError(
                        f"{self.path}: {self.member} is shorter than its header says"
                    )
                yield np.frombuffer(raw, dtype=self.dtype).reshape(count, *self.shape[1:])


def _chunks(samples: np.ndarray | NpzMember, rows: int) -> Iterator[np.ndarray]:
    if isinstance(samples, NpzMember):
        yield from samples.chunks(rows)
    else:
        for start in range(0, len(samples), rows):
            yield np.asarray(samples[start : start + rows])


def _read_arrays(path: Path) -> tuple[np.ndarray | NpzMember, np.ndarray | None]:
    """(samples, labels) of a .npy (memory-mapped) or .npz (samples read lazily; labels, small,
    read after their declared size is checked against memory)."""
    import zipfile

    from resnet_opt.core.validation import check_fits

    try:
        if not zipfile.is_zipfile(path):
            return np.load(path, mmap_mode="r", allow_pickle=False), None
        with zipfile.ZipFile(path) as archive:
            keys = {n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")}
        x_key = next((k for k in ("x", "images", "data") if k in keys), None)
        if x_key is None:
            raise ResnetOptError(
                f"{path}: no array named x, images or data (found: {sorted(keys)})"
            )
        samples = NpzMember(path, f"{x_key}.npy")
        y_key = next((k for k in ("y", "labels") if k in keys), None)
        if y_key is None:
            return samples, None
        declared = NpzMember(path, f"{y_key}.npy")
        check_fits(declared.shape, f"{path}: {y_key}", declared.dtype, error=ResnetOptError)
        labels = declared.rows(0, len(declared))
        declared.close()
        return samples, labels
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
        raise ResnetOptError(f"{path}: not a readable .npy/.npz file ({exc})") from None


# -- the bundled digits ------------------------------------------------------------------------


@dataclass(frozen=True)
class BundledDigitsSource:
    """scikit-learn's 8×8 handwritten digits, shipped in the package with a fixed split."""

    split: Split
    pixels: np.ndarray
    labels_array: np.ndarray
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))
    skipped_on_scan: tuple[tuple[str, str], ...] = ()
    file_sha256: str = ""

    @classmethod
    def open(cls, split: Split) -> BundledDigitsSource:
        data = resources.files("resnet_opt.models").joinpath("data/digits.npz")
        raw = data.read_bytes()
        import io

        with np.load(io.BytesIO(raw)) as npz:
            mask = npz["split"] == _SPLIT_CODE[split]
            pixels = npz["images"][mask]
            labels = npz["labels"][mask]
        return cls(
            split=split,
            pixels=pixels,
            labels_array=labels,
            file_sha256=hashlib.sha256(raw).hexdigest(),
        )

    @property
    def description(self) -> str:
        return f"bundled digits, {self.split.value} split ({len(self.pixels)} images)"

    def __len__(self) -> int:
        return len(self.pixels)

    def sample_name(self, index: int) -> str:
        return f"digits-{self.split.value}[{index}]"

    def load(self, index: int, contract: PreprocessContract) -> tuple[np.ndarray, int | None]:
        return preprocess.apply_pixels(contract, self.pixels[index]), int(self.labels_array[index])

    def fingerprint(self, indices: Sequence[int]) -> str:
        digest = hashlib.sha256(f"digits\0{self.split.value}\0{self.file_sha256}".encode())
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        return digest.hexdigest()


def load_bundled_split(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 pixels and labels of one bundled split (for the training script)."""
    source = BundledDigitsSource.open(split)
    return source.pixels, source.labels_array


# -- opening and streaming ---------------------------------------------------------------------


def open_source(
    spec: str | Path,
    *,
    default_split: Split,
    strict: bool = False,
    labels: str | Path | None = None,
) -> DataSource:
    """DATA as the CLI takes it: `default[:split]`, a folder, or a .npy/.npz file; with
    `labels` (a `FILE LABEL` list, `--data-labels`), a flat folder of the images it names."""
    text = str(spec)
    if labels is not None:
        if not Path(text).is_dir():
            raise ResnetOptError(
                f"{text}: a label list ({labels}) goes with a folder of the images it names"
            )
        return LabelListSource.open(Path(text), Path(labels), strict=strict)
    if text == DEFAULT_SPEC or text.startswith(DEFAULT_SPEC + ":"):
        name = text.partition(":")[2] or default_split.value
        try:
            split = Split(name)
        except ValueError:
            choices = ", ".join(s.value for s in Split)
            raise UsageError(f"unknown bundled split {name!r} (choose {choices})") from None
        return BundledDigitsSource.open(split)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource.open(path, strict=strict)
    if path.suffix.lower() in (".npy", ".npz"):
        return ArraySource.open(path)
    if not path.exists():
        raise ResnetOptError(f"{path}: no such file or folder")
    raise ResnetOptError(f"{path}: data must be an image folder, a .npy/.npz file or 'default'")


def select_indices(available: int, requested: int | None, seed: int) -> np.ndarray:
    """A deterministic subset: all samples (in order) when `requested` covers them, else a
    seeded draw without replacement, sorted so that files are read in order."""
    if requested is not None:
        positive_count(requested, "the number of samples")
    if requested is None or requested >= available:
        return np.arange(available, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(available, size=requested, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class Batch:
    x: np.ndarray  # float32 N×C×H×W
    labels: np.ndarray | None  # int64 N, or None for unlabelled data
    indices: np.ndarray  # positions in the source


@dataclass
class BatchStream:
    """Iterates batches; samples that fail to load are skipped and counted (or raise if strict)."""

    source: DataSource
    contract: PreprocessContract
    indices: np.ndarray
    batch_size: int
    strict: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    used: int = 0

    def __iter__(self) -> Iterator[Batch]:
        positive_count(self.batch_size, "batch size")
        from resnet_opt.core.validation import check_fits

        rows = min(self.batch_size, len(self.indices))  # the contract may come from a manifest
        check_fits((rows, *self.contract.input_shape), "a batch of preprocessed samples")
        xs: list[np.ndarray] = []
        ys: list[int | None] = []
        kept: list[int] = []
        for index in self.indices:
            try:
                x, y = self.source.load(int(index), self.contract)
            except SampleError as exc:
                if self.strict:
                    raise OptionError("strict", _strict(str(exc))) from exc
                self.skipped.append((self.source.sample_name(int(index)), str(exc)))
                log.warning("skipped %s", exc)
                continue
            xs.append(x)
            ys.append(y)
            kept.append(int(index))
            if len(xs) == self.batch_size:
                yield self._batch(xs, ys, kept)
                xs, ys, kept = [], [], []
        if xs:
            yield self._batch(xs, ys, kept)
        if self.used == 0:
            raise ResnetOptError(
                f"{self.source.description}: none of the {len(self.indices)} samples could be "
                f"used ({self.skipped[0][1] if self.skipped else 'empty selection'})"
            )

    def _batch(self, xs: list[np.ndarray], ys: list[int | None], kept: list[int]) -> Batch:
        self.used += len(xs)
        labels = None if any(y is None for y in ys) else np.asarray(ys, dtype=np.int64)
        return Batch(np.stack(xs), labels, np.asarray(kept, dtype=np.int64))


def _warn_ambiguous(source: DataSource, keys: dict[str, list[int]], names: Sequence[str]) -> None:
    """Say when a data class name matches several model classes: its images are scored against
    one of them only, and accuracy reads low for no visible reason."""
    shared = [n for n in names if len(keys.get(n, ())) > 1]
    if shared:
        shown = ", ".join(
            f"{n!r} (classes {', '.join(str(i) for i in keys[n])})" for n in shared[:3]
        )
        log.warning(
            "%s: class names do not map one-to-one onto the model's labels: %s; images of such "
            "a class count as right only for the last of those classes",
            source.description,
            shown,
        )


NO_LABELS_HINT = (
    "give the model its labels (resnet-opt import MODEL.onnx --labels FILE …, or export "
    "--labels FILE) to match classes by name or WordNet id"
)


def _class_indices(source: DataSource) -> np.ndarray | None:
    """The labels of a source whose labels are the model's class indices already (an array
    file, a label list of numbers), else None."""
    if isinstance(source, ArraySource):
        return source.labels
    if isinstance(source, LabelListSource) and source.class_names is None:
        return np.asarray(source.labels, dtype=np.int64)
    return None


def label_map(source: DataSource, contract: PreprocessContract) -> np.ndarray:
    """Source label index → model class index, refusing classes the model does not have.

    With class labels in the contract, data classes (folders, or a label list's names) are
    matched by name or WordNet id (`models.labels.match_keys`), so a folder may hold any subset
    of the model's classes; without, the source must have exactly the model's number of classes,
    matched in sorted order. Labels that are class indices already (an array file, a numeric
    label list) are refused when out of the model's range.
    """
    from resnet_opt.models.labels import match_keys

    names = source.class_names
    if names is None:
        indices = _class_indices(source)
        if indices is None:
            raise ResnetOptError(
                f"{source.description}: has no labels; accuracy needs labelled data"
            )
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= contract.num_classes:
            raise ResnetOptError(
                f"{source.description}: labels run from {low} to {high}, but the model's "
                f"classes are 0 to {contract.num_classes - 1}"
            )
        return np.arange(contract.num_classes, dtype=np.int64)
    if contract.labels is not None:
        keys = match_keys(contract.labels, contract.class_ids)
        _warn_ambiguous(source, keys, names)
        unknown = [n for n in names if n not in keys]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            by = "name or WordNet id" if contract.class_ids is not None else "name"
            raise ResnetOptError(
                f"{source.description}: classes not known to the model: {shown} "
                f"({len(unknown)} of {len(names)}, matched by {by}; the model's labels begin "
                f"{', '.join(contract.labels[:3])})"
            )
        return np.asarray([keys[n][-1] for n in names], dtype=np.int64)
    if len(names) != contract.num_classes:
        raise ResnetOptError(
            f"{source.description}: {len(names)} classes, the model has {contract.num_classes} "
            f"and no labels to match them by; {NO_LABELS_HINT}"
        )
    return np.arange(len(names), dtype=np.int64)


def _strict(text: str) -> Words:
    """`text (--strict)`: a refusal that --strict (`strict`, `quantize[0].strict`) made."""
    return lambda names: f"{text} ({names.option('strict')})"
