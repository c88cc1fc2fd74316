"""Content hashes: how a manifest names the files a stage read and wrote.

`run` compares these to skip unchanged stages and every loader compares an artifact with its
manifest's hash before using it, so both sides must hash the same way: here, once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from resnet_opt.errors import ResnetOptError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise ResnetOptError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON-able value in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
