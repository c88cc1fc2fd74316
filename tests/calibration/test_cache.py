"""The calibration cache: round trip, re-quantizing from it, and refusing what does not match."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from resnet_opt.calibration.cache import (
    CacheKey,
    load_cache,
    save_cache,
)
from resnet_opt.calibration.collect import collect_statistics
from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
from resnet_opt.calibration.histogram import Statistics, TensorStats
from resnet_opt.calibration.ranges import Method, compute_ranges
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.naming import FLAGS, OptionError
from resnet_opt.errors import ResnetOptError
from tests.conftest import make_tiny_cnn

DIGITS = PreprocessContract(8, 1, (0.5,), (0.25,), None, None, Interpolation.BILINEAR, 10)
KEY = CacheKey(
    model_sha256="ab" * 32, data_hash="cd" * 32, preprocessing_hash="ef" * 32, samples=64, seed=0
)


def _stats() -> Statistics:
    rng = np.random.default_rng(0)
    tensors = {
        "input": TensorStats.of("input", rng.normal(0, 1, 4000)),
        "relu": TensorStats.of("relu", np.maximum(rng.laplace(0, 1, 4000), 0)),
    }
    skipped = (("x.png", "cannot decode"),)
    return Statistics(tensors, samples=60, requested=64, skipped=skipped, inputs=("input",))


def test_round_trip_keeps_every_statistic(tmp_path: Path) -> None:
    stats = _stats()
    path = tmp_path / "calib.cache"
    save_cache(path, KEY, stats)
    loaded = load_cache(path, KEY)
    assert loaded.equals(stats)
    assert loaded.samples == 60 and loaded.requested == 64
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed into place


def test_requantizing_from_the_cache_with_another_method_needs_no_new_pass(tmp_path: Path) -> None:
    """Real statistics from ORT, saved once, give every method the same ranges as fresh ones."""
    model = make_tiny_cnn(tmp_path / "m.onnx", channels=1, size=8, classes=10)
    source = open_source("default", default_split=Split.CALIB)
    indices = select_indices(len(source), 64, 1)
    stream = BatchStream(source, DIGITS, indices, 16)
    stats = collect_statistics(model, stream, ["input", "c", "r", "logits"])
    data_hash = source.fingerprint([int(i) for i in indices])
    key = CacheKey(sha256_file(model), data_hash, DIGITS.fingerprint(), 64, 1)
    path = tmp_path / "m.calib"
    save_cache(path, key, stats, method=Method.MAX, ranges=compute_ranges(stats, Method.MAX))
    cached = load_cache(path, key)
    for method in Method:
        assert compute_ranges(cached, method) == compute_ranges(stats, method)
    header = json.loads(bytes(np.load(path)["header"]).decode("utf-8"))
    assert header["method"] == "max"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model_sha256", "99" * 32, "made for model sha256 abababababab…, this is 999999999999…"),
        ("data_hash", "11" * 32, "calibration data hash cdcdcdcdcdcd…, this is 111111111111…"),
        ("preprocessing_hash", "22" * 32, "preprocessing hash efefefefefef…"),
        ("samples", 512, "sample count 64, this is 512"),
        ("seed", 7, "seed 0, this is 7"),
    ],
)
def test_a_stale_cache_is_refused_naming_the_key(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = tmp_path / "calib.cache"
    save_cache(path, KEY, _stats())
    with pytest.raises(OptionError) as info:
        load_cache(path, dataclasses.replace(KEY, **{field: value}))  # type: ignore[arg-type]
    text = info.value.worded(FLAGS)  # as the CLI says it; from Python, the field calib_cache
    assert message in text
    assert "delete it or pass another --calib-cache" in text and "\n" not in text
    assert str(info.value).endswith("delete it or pass another calib_cache")


def test_several_stale_keys_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "calib.cache"
    save_cache(path, KEY, _stats())
    with pytest.raises(ResnetOptError, match=r"model sha256.*; seed 0, this is 3"):
        load_cache(path, dataclasses.replace(KEY, model_sha256="00" * 32, seed=3))


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    with path.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def _header(**changes: object) -> np.ndarray:
    header: dict[str, object] = {
        "format": "resnet-opt-calibration-cache",
        "version": 2,
        "key": KEY.to_dict(),
        "samples": 1,
        "requested": 1,
        "bins": 8,
        "tensors": [{"name": "t", "amin": 0.0, "amax": 1.0, "count": 3, "range": 2.0}],
    }
    header.update(changes)
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


def test_files_that_are_not_caches_are_refused(tmp_path: Path) -> None:
    cases = {
        "text.cache": b"TRT-100300-EntropyCalibration2\ninput: 3c010a14\n",
        "empty.cache": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "array.npy", np.zeros(3))
    _npz(tmp_path / "other.npz", x=np.zeros(3))
    _npz(tmp_path / "format.npz", header=_header(format="something-else"), counts=np.zeros((1, 8)))
    _npz(tmp_path / "json.npz", header=np.frombuffer(b"{not json", np.uint8), counts=np.zeros(1))
    counts = np.zeros((1, 8), np.int64)
    counts[0, 1] = 2  # 2 values, the header says 3
    _npz(tmp_path / "inconsistent.npz", header=_header(), counts=counts)
    for name in (*cases, "array.npy", "other.npz", "format.npz", "json.npz", "inconsistent.npz"):
        with pytest.raises(ResnetOptError, match="not a resnet-opt calibration cache") as info:
            load_cache(tmp_path / name, KEY)
        assert "\n" not in str(info.value), name
    with pytest.raises(ResnetOptError, match="no such calibration cache"):
        load_cache(tmp_path / "missing.cache", KEY)


def test_a_cache_from_another_format_version_is_refused(tmp_path: Path) -> None:
    counts = np.zeros((1, 8), np.int64)
    counts[0, 1] = 3
    path = _npz(tmp_path / "v1.npz", header=_header(version=1), counts=counts)
    with pytest.raises(ResnetOptError, match="format version 1, this resnet-opt reads version 2"):
        load_cache(path, KEY)
    ok = _npz(tmp_path / "v2.npz", header=_header(), counts=counts)
    assert load_cache(ok, KEY)["t"].count == 3
