"""One writer per output file: an advisory lock held from "may I write X?" to the rename.

Why: two `quantize -o same.onnx` started together both find the file absent, both write, and
the later rename silently replaces the earlier result. A stage takes `.X.lock` (flock,
non-blocking) before it checks that X may be written; a second process gets a one-line refusal
instead. The kernel drops a flock when its process dies, even by SIGKILL, so a killed run never
leaves a lock that blocks the next one; and whoever holds the lock knows that any `.X.*.tmp`
beside X was left by a dead writer and may be removed.

On systems without `fcntl` (Windows), or file systems without locks, no lock is taken: outputs
are still written atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from resnet_opt.errors import ResnetOptError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class OutputLock:
    path: Path
    fd: int


def lock_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.lock")


def temp_pattern(final: Path) -> re.Pattern[str]:
    """The names StagedOutputs gives `final`'s temporary files: `.X.<8 hex>.tmp`."""
    return re.compile(rf"\.{re.escape(final.name)}\.[0-9a-f]{{8}}\.tmp")


def acquire(final: Path) -> OutputLock | None:
    """Lock `final` for this process, or refuse: another process is writing it."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    path = lock_path(final)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ResnetOptError(cannot_write(final, exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ResnetOptError(
                f"{final}: another resnet-opt process is writing it; wait for it to finish or "
                "choose another output"
            ) from None
        except OSError:  # a file system without locks (some network mounts): write unlocked
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        # the holder before us unlinks the file on release: lock only the file still at `path`
        try:
            same = path.stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    remove_stale_temps(final)
    return OutputLock(path, fd)


def release(lock: OutputLock | None) -> None:
    """Unlock and remove the lock file (removed first, while still held: see `acquire`)."""
    if lock is None:
        return
    with contextlib.suppress(OSError):
        lock.path.unlink()
    with contextlib.suppress(OSError):
        os.close(lock.fd)


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove `.X.*.tmp` files a killed writer of `final` left behind (call with the lock)."""
    pattern = temp_pattern(final)
    removed = []
    with contextlib.suppress(OSError):
        for entry in final.parent.iterdir():
            if pattern.fullmatch(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def cannot_write(final: Path, exc: OSError) -> str:
    """Why `final` cannot be written, naming the user's path: a name too long is the file's
    fault, not its folder's (and the hidden temporary name must not be what the user reads)."""
    import errno

    if exc.errno == errno.ENAMETOOLONG:
        return f"{final}: file name too long"
    return f"{final.parent}: cannot write there ({exc.strerror or exc})"
