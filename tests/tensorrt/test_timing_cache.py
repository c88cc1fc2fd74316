"""--timing-cache path handling: read, created when absent, refused when it cannot work."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.timing_cache import open_timing_cache, save_timing_cache


def test_absent_file_starts_a_new_cache(tmp_path: Path) -> None:
    cache = open_timing_cache(tmp_path / "sub" / "t.cache")
    assert cache.data == b"" and not cache.existed and cache.sha256 is None


def test_existing_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.cache"
    path.write_bytes(b"tactics")
    cache = open_timing_cache(path)
    assert cache.data == b"tactics" and cache.existed
    assert cache.sha256 == hashlib.sha256(b"tactics").hexdigest()


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "t.cache").write_bytes(b"x")
    assert open_timing_cache(Path("~/t.cache")).path == tmp_path / "t.cache"


def test_folder_empty_file_and_output_clash_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ResnetOptError, match=r"is a folder"):
        open_timing_cache(tmp_path)
    (tmp_path / "empty.cache").write_bytes(b"")
    with pytest.raises(ResnetOptError, match=r"is empty"):
        open_timing_cache(tmp_path / "empty.cache")
    plan = tmp_path / "m.plan"
    with pytest.raises(ResnetOptError, match=r"also the build's output m.plan"):
        open_timing_cache(plan, outputs=(plan,))
    with pytest.raises(ResnetOptError, match=r"also the build's output m.plan.json"):
        open_timing_cache(tmp_path / "m.plan.json", outputs=(plan,))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_an_error_not_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "t.cache"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(ResnetOptError, match=r"cannot read"):
        open_timing_cache(path)


def test_save_is_atomic_and_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "t.cache"
    digest = save_timing_cache(path, b"updated")
    assert path.read_bytes() == b"updated"
    assert digest == hashlib.sha256(b"updated").hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["t.cache"]  # no temp file left
    save_timing_cache(path, b"again")
    assert path.read_bytes() == b"again"


def test_save_refuses_empty_data_and_unwritable_places(tmp_path: Path) -> None:
    with pytest.raises(ResnetOptError, match=r"empty timing cache"):
        save_timing_cache(tmp_path / "t.cache", b"")
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ResnetOptError, match=r"cannot write"):
        save_timing_cache(blocker / "t.cache", b"x")
