"""Atomic writes: an interrupted or failed stage leaves no half-written file behind.

Every file resnet-opt writes goes to a hidden temporary file in the destination folder first and
is renamed into place (an atomic rename on one file system) only when it is complete. A stage's
outputs go through `staged_outputs`, which renames all of them together on success and removes
all of them on error; a single file written outside a stage (a cache) uses `write_bytes_atomic`.
Both name their temporary files with `temporary_sibling`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from resnet_opt.core import output_lock, signals
from resnet_opt.core.manifest import MANIFEST_SUFFIX, manifest_path
from resnet_opt.errors import ResnetOptError


def temporary_sibling(final: Path) -> Path:
    """A hidden, unique temporary name beside `final` (same folder: the rename stays atomic)."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling and a rename.

    Raises the OSError (after removing the temporary file) so that each caller words the error
    for its own file.
    """
    tmp = temporary_sibling(path)
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class StagedOutputs:
    """Files a stage is writing, kept under temporary names until the whole stage succeeds.

    Use through `staged_outputs`. `add(final)` checks up front that `final` may be written
    (absent, or `force`) and returns the temporary path to write to, in the same folder so that
    the final rename is atomic.
    """

    def __init__(self, force: bool) -> None:
        self._force = force
        self._pending: list[tuple[Path, Path]] = []
        self._created_dirs: list[Path] = []
        self._locks: list[output_lock.OutputLock | None] = []

    def add(self, final: Path) -> Path:
        final = Path(final)
        if any(final == done for done, _ in self._pending):
            raise ResnetOptError(f"{final}: the same output is written twice")
        if final.is_dir():
            raise ResnetOptError(f"{final}: is a folder; give a file path")
        if final.exists() and not self._force:
            raise ResnetOptError(f"{final}: exists; pass --force to overwrite it")
        self._ensure_dir(final.parent)
        # one writer at a time; checked again under the lock, as another may have just finished
        self._locks.append(output_lock.acquire(final))
        if final.exists() and not self._force:
            raise ResnetOptError(f"{final}: exists; pass --force to overwrite it")
        tmp = temporary_sibling(final)
        try:
            tmp.touch()
        except OSError as exc:
            raise ResnetOptError(output_lock.cannot_write(final, exc)) from exc
        self._pending.append((final, tmp))
        return tmp

    def add_with_manifest(self, final: Path) -> tuple[Path, Path]:
        """Temporary paths for an artifact and its manifest."""
        return self.add(final), self.add(manifest_path(final))

    def _ensure_dir(self, folder: Path) -> None:
        if folder.is_dir():
            return
        missing = []
        probe = folder
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise ResnetOptError(f"{folder}: cannot create folder ({exc.strerror or exc})") from exc
        self._created_dirs.extend(missing)

    def commit(self) -> None:
        # artifacts before manifests: a manifest never describes a file that is not there
        ordered = sorted(self._pending, key=lambda p: p[0].name.endswith(MANIFEST_SUFFIX))
        done: list[Path] = []
        try:
            with signals.deferred():  # no Ctrl-C / SIGTERM between the renames
                for final, tmp in ordered:
                    tmp.replace(final)
                    done.append(final)
        except OSError as exc:
            for path in done:
                path.unlink(missing_ok=True)
            self.discard()
            raise ResnetOptError(f"cannot move output into place ({exc})") from exc
        self._pending.clear()
        self._release()

    def _release(self) -> None:
        for lock in self._locks:
            output_lock.release(lock)
        self._locks.clear()

    def discard(self) -> None:
        for _, tmp in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()
        self._release()  # before the folders: a lock file would keep them from going
        for folder in self._created_dirs:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._created_dirs.clear()


@contextlib.contextmanager
def staged_outputs(*, force: bool) -> Iterator[StagedOutputs]:
    """Write outputs atomically: all are renamed into place on success, all removed on error."""
    staged = StagedOutputs(force)
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    staged.commit()
