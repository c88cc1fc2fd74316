"""`--timing-cache FILE`: read before the build, written back (atomically) after it.

TensorRT's timing cache keeps the measured speed of each kernel tactic, so the next build of
the same or a similar network skips most of the timing. The file is tied to the GPU and the
TensorRT version that wrote it; TensorRT rejects a mismatched one, and `builder` turns that into
a clear error instead of a silent full re-time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from resnet_opt.core.atomic import write_bytes_atomic
from resnet_opt.core.manifest import manifest_path
from resnet_opt.errors import ResnetOptError


@dataclass(frozen=True)
class TimingCacheFile:
    """A timing cache to read (`data`, empty when the file does not exist yet) and update."""

    path: Path
    data: bytes
    existed: bool

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.existed else None


def resolve_timing_cache(path: Path, *, outputs: tuple[Path, ...] = ()) -> Path:
    """The cache path with `~` expanded, refused where it would clash with a build output."""
    resolved = Path(path).expanduser()
    if str(path).strip() == "":
        raise ResnetOptError("--timing-cache: empty path")
    if resolved.is_dir():
        raise ResnetOptError(f"--timing-cache {path}: is a folder; give a file path")
    for out in outputs:
        for taken in (out, manifest_path(out)):
            if resolved.resolve() == taken.resolve():
                raise ResnetOptError(
                    f"--timing-cache {path}: is also the build's output {taken.name}; "
                    "give the timing cache its own file"
                )
    return resolved


def open_timing_cache(path: Path, *, outputs: tuple[Path, ...] = ()) -> TimingCacheFile:
    """Read the cache at `path`: an absent file starts a new cache (its folder must exist or
    be creatable when it is written); an unreadable one is an error, not a silent restart."""
    resolved = resolve_timing_cache(path, outputs=outputs)
    if not resolved.exists():
        return TimingCacheFile(resolved, b"", existed=False)
    if not resolved.is_file():
        raise ResnetOptError(f"--timing-cache {path}: not a regular file")
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ResnetOptError(f"--timing-cache {path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise ResnetOptError(
            f"--timing-cache {path}: the file is empty, not a TensorRT timing cache; "
            "delete it to start a new cache"
        )
    return TimingCacheFile(resolved, data, existed=True)


def save_timing_cache(path: Path, data: bytes) -> str:
    """Write the updated cache atomically (temp file + rename); returns its sha256."""
    if not data:
        raise ResnetOptError(f"{path}: TensorRT returned an empty timing cache; not written")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise ResnetOptError(
            f"--timing-cache {path}: cannot write ({exc.strerror or exc})"
        ) from exc
    return hashlib.sha256(data).hexdigest()
