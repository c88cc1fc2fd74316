from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resnet_opt.calibration.data import (
    BatchStream,
    Split,
    converted_modes,
    label_map,
    open_source,
    select_indices,
)
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.naming import FLAGS, OptionError
from resnet_opt.errors import ResnetOptError
from tests.conftest import write_image_folder


def test_image_folder_labels_and_batches(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    root = write_image_folder(tmp_path / "data", {"a": 3, "c": 2})
    source = open_source(root, default_split=Split.CALIB)
    assert source.class_names == ("a", "c")
    assert len(source) == 5
    stream = BatchStream(source, tiny_contract, select_indices(len(source), None, 0), 2)
    batches = list(stream)
    assert [len(b.x) for b in batches] == [2, 2, 1]
    assert batches[0].x.shape == (2, 3, 8, 8)
    mapping = label_map(source, tiny_contract)
    assert mapping.tolist() == [0, 2]


def test_corrupt_and_non_image_files_are_skipped_and_counted(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    root = write_image_folder(tmp_path / "data", {"a": 2})
    (root / "a" / "broken.png").write_bytes(b"not a png")
    (root / "a" / "notes.txt").write_text("hello")
    source = open_source(root, default_split=Split.CALIB)
    assert [name for name, _ in source.skipped_on_scan] == ["a/notes.txt"]
    stream = BatchStream(source, tiny_contract, select_indices(len(source), None, 0), 8)
    (batch,) = list(stream)
    assert len(batch.x) == 2 and stream.used == 2
    assert stream.skipped[0][0] == "a/broken.png"
    strict = BatchStream(source, tiny_contract, select_indices(len(source), None, 0), 8, True)
    with pytest.raises(OptionError, match=r"\(strict\)$") as refused:  # the field, from Python
        list(strict)
    assert refused.value.worded(FLAGS).endswith("(--strict)")  # the flag, on the command line


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResnetOptError, match="no image files"):
        open_source(tmp_path / "empty", default_split=Split.CALIB)


def test_grayscale_is_converted_or_refused_under_strict(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    root = write_image_folder(tmp_path / "data", {"a": 1}, mode="L")
    source = open_source(root, default_split=Split.CALIB)
    (batch,) = list(BatchStream(source, tiny_contract, np.arange(1), 1))
    assert batch.x.shape == (1, 3, 8, 8)
    assert converted_modes(source) == {"L": 1}
    strict = open_source(root, default_split=Split.CALIB, strict=True)
    with pytest.raises(ResnetOptError, match="L image, the model takes RGB"):
        list(BatchStream(strict, tiny_contract, np.arange(1), 1, strict=True))


def test_npy_with_nan(tmp_path: Path) -> None:
    data = np.zeros((2, 3, 8, 8), np.float32)
    data[1, 0, 0, 0] = np.nan
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ResnetOptError, match="NaN or inf"):
        open_source(tmp_path / "x.npy", default_split=Split.CALIB)


def test_npz_pixels_and_labels(tmp_path: Path, tiny_contract: PreprocessContract) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 10, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=pixels, labels=np.arange(5) % 4)
    source = open_source(tmp_path / "d.npz", default_split=Split.CALIB)
    (batch,) = list(BatchStream(source, tiny_contract, np.arange(5), 8))
    assert batch.x.shape == (5, 3, 8, 8)
    assert batch.labels is not None and batch.labels.tolist() == [0, 1, 2, 3, 0]
    # an array's labels are the model's class indices: scored as they are, within its range
    assert label_map(source, tiny_contract).tolist() == [0, 1, 2, 3]
    np.savez(tmp_path / "wide.npz", images=pixels, labels=np.arange(5))
    with pytest.raises(ResnetOptError, match="labels run from 0 to 4, but the model's classes"):
        label_map(open_source(tmp_path / "wide.npz", default_split=Split.CALIB), tiny_contract)
    np.save(tmp_path / "bare.npy", pixels)
    with pytest.raises(ResnetOptError, match="has no labels"):
        label_map(open_source(tmp_path / "bare.npy", default_split=Split.CALIB), tiny_contract)


def test_bundled_split_sizes() -> None:
    sizes = {s: len(open_source("default:" + s.value, default_split=Split.CALIB)) for s in Split}
    assert sum(sizes.values()) == 1797
    assert len(open_source("default", default_split=Split.TEST)) == sizes[Split.TEST]


def test_selection_is_deterministic() -> None:
    a = select_indices(1000, 10, seed=3)
    assert (a == select_indices(1000, 10, seed=3)).all()
    assert not (a == select_indices(1000, 10, seed=4)).all()
    assert (np.diff(a) > 0).all()
    assert len(select_indices(5, 10, seed=0)) == 5


def test_fingerprint_depends_on_content(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", {"a": 2})
    source = open_source(root, default_split=Split.CALIB)
    before = source.fingerprint([0, 1])
    (root / "a" / "000.png").write_bytes((root / "a" / "001.png").read_bytes())
    assert open_source(root, default_split=Split.CALIB).fingerprint([0, 1]) != before
