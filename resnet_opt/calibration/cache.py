"""The calibration cache: statistics of one calibration pass, reusable only by the same pass.

A cache holds the full streamed statistics (min, max, count and |x| histogram per tensor), so
quantizing again with another range method needs no new pass. It is keyed to everything that
changes the statistics: the ONNX being calibrated (sha256), the exact samples (the data
source's fingerprint of the selected indices), the preprocessing (contract fingerprint), the
sample count and the seed. Loading with any other key is an error naming the key: a cache is
never reused because a file of that name exists.

Format: a .npz (numpy, loaded with allow_pickle=False) with a JSON `header` and the int64
`counts` matrix (tensors × bins). Nothing executable is stored.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.calibration.histogram import (
    AbsHistogram,
    Statistics,
    TensorStats,
    check_bins,
    range_for,
)
from resnet_opt.core.atomic import write_bytes_atomic
from resnet_opt.core.naming import OptionError
from resnet_opt.core.readers import parse_json
from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    from resnet_opt.calibration.ranges import Method, TensorRange

CACHE_FORMAT = "resnet-opt-calibration-cache"
CACHE_VERSION = 2  # 2: graph inputs recorded (their range is never clipped)

_KEY_LABELS = {
    "model_sha256": "model sha256",
    "data_hash": "calibration data hash",
    "preprocessing_hash": "preprocessing hash",
    "samples": "sample count",
    "seed": "seed",
}


@dataclass(frozen=True)
class CacheKey:
    """What a cache is valid for. `samples` is the sample count asked for (--calib-samples)."""

    model_sha256: str
    data_hash: str
    preprocessing_hash: str
    samples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheKey:
        return cls(
            model_sha256=str(data["model_sha256"]),
            data_hash=str(data["data_hash"]),
            preprocessing_hash=str(data["preprocessing_hash"]),
            samples=int(data["samples"]),
            seed=int(data["seed"]),
        )

    def differences(self, other: CacheKey) -> list[tuple[str, Any, Any]]:
        """(field, self's value, other's value) for every field that differs."""
        return [
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "…" if len(text) > 16 else text


def save_cache(
    path: Path,
    key: CacheKey,
    stats: Statistics,
    *,
    method: Method | None = None,
    ranges: Mapping[str, TensorRange] | None = None,
) -> None:
    """Write the cache atomically (temp file + rename in the same folder).

    `method` and `ranges` are optional and informational (the amax each tensor got when the
    cache was made); loading always recomputes ranges from the histograms.
    """
    path = Path(path)
    names = list(stats.tensors)
    header: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "key": key.to_dict(),
        "samples": stats.samples,
        "requested": stats.requested,
        "skipped": [list(item) for item in stats.skipped],
        "inputs": list(stats.inputs),
        "bins": stats.bins,
        "tensors": [
            {
                "name": t.name,
                "amin": t.amin,
                "amax": t.amax,
                "count": t.count,
                "range": t.histogram.range,
                # exact in JSON (repr of a float64 round-trips); absent in older caches
                "channel_mean": (
                    None if t.channel_mean is None else [float(m) for m in t.channel_mean]
                ),
            }
            for t in stats.tensors.values()
        ],
    }
    if method is not None:
        header["method"] = str(getattr(method, "value", method))
    if ranges is not None:
        header["ranges"] = {name: r.amax for name, r in ranges.items()}
    counts = (
        np.stack([stats.tensors[n].histogram.counts for n in names])
        if names
        else np.zeros((0, stats.bins), dtype=np.int64)
    )
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        counts=counts.astype(np.int64),
    )
    if path.is_dir():
        raise ResnetOptError(f"{path}: is a folder; give a calibration cache file path")
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise ResnetOptError(f"{path}: cannot write the calibration cache ({exc})") from exc


def _not_a_cache(path: Path, why: str) -> ResnetOptError:
    return ResnetOptError(f"{path}: not a resnet-opt calibration cache ({why})")


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    if not path.is_file():
        raise ResnetOptError(f"{path}: no such calibration cache")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_a_cache(path, type(exc).__name__) from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _not_a_cache(path, "a single array, not a cache archive")
    try:
        with loaded as npz:
            if not {"header", "counts"} <= set(npz.files):
                raise _not_a_cache(path, "missing header or histograms")
            header_bytes = npz["header"].tobytes()
            counts = np.asarray(npz["counts"])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_a_cache(path, type(exc).__name__) from exc
    try:  # the bounded reader: a deep or huge header is one line, not a RecursionError
        header = parse_json(header_bytes.decode("utf-8"), str(path), what="cache header")
    except (UnicodeDecodeError, ResnetOptError) as exc:
        raise _not_a_cache(path, "unreadable header") from exc
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        raise _not_a_cache(path, "unknown format")
    return header, counts


def load_cache(path: Path, expected: CacheKey) -> Statistics:
    """The statistics in a cache made for exactly `expected`; anything else is an error."""
    path = Path(path)
    header, counts = _read(path)
    version = header.get("version")
    if version != CACHE_VERSION:
        raise OptionError(
            "calib_cache",
            lambda n: (
                f"calibration cache {path} has format version {version}, this resnet-opt "
                f"reads version {CACHE_VERSION}: delete it or pass another "
                f"{n.option('calib_cache')}"
            ),
        )
    try:
        key = CacheKey.from_dict(header["key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _not_a_cache(path, "no valid key") from exc
    differences = key.differences(expected)
    if differences:
        said = "; ".join(
            f"{_KEY_LABELS[name]} {_short(made)}, this is {_short(now)}"
            for name, made, now in differences
        )
        raise OptionError(
            "calib_cache",
            lambda n: (
                f"calibration cache {path} was made for {said}: delete it or pass another "
                f"{n.option('calib_cache')}"
            ),
        )
    try:
        return _statistics(header, counts)
    except (KeyError, TypeError, ValueError) as exc:
        raise _not_a_cache(path, f"inconsistent content: {exc}") from exc


def _statistics(header: Mapping[str, Any], counts: np.ndarray) -> Statistics:
    entries = header["tensors"]
    bins = check_bins(int(header["bins"]))
    if counts.dtype != np.int64 or counts.shape != (len(entries), bins):
        raise ValueError(f"histograms of shape {counts.shape}, expected {(len(entries), bins)}")
    tensors: dict[str, TensorStats] = {}
    for row, entry in zip(counts, entries, strict=True):
        name = str(entry["name"])
        amin, amax, count = float(entry["amin"]), float(entry["amax"]), int(entry["count"])
        hist_range = float(entry["range"])
        if hist_range != range_for(max(abs(amin), abs(amax))) or int(row.sum()) != count:
            raise ValueError(f"tensor {name!r}: histogram does not match its min/max/count")
        if name in tensors:
            raise ValueError(f"tensor {name!r} twice")
        means = entry.get("channel_mean")
        channel_mean = None if means is None else np.asarray(means, dtype=np.float64)
        tensors[name] = TensorStats(
            name, amin, amax, count, AbsHistogram(row.copy(), hist_range), channel_mean
        )
    inputs = tuple(str(name) for name in header.get("inputs", []))
    if any(name not in tensors for name in inputs):
        raise ValueError("graph inputs that are not among the tensors")
    return Statistics(
        tensors=tensors,
        samples=int(header["samples"]),
        requested=int(header["requested"]),
        skipped=tuple((str(a), str(b)) for a, b in header.get("skipped", [])),
        inputs=inputs,
    )
