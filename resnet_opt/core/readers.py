"""The one bounded reader for every JSON and TOML file resnet-opt reads.

Why one: manifests, reports, `bundle.json`, `run-state.json`, run configs and calibration caches
all come from disk, where anything may have been written. Python's parsers die on some of it
with a traceback (a 200k-deep array is a RecursionError, a 5000-digit integer a ValueError) and
accept much more than any of our files holds (an integer of a million digits, nesting hundreds
deep, a FIFO that never ends). Every reader goes through here, so each of those is one line:
a `ResnetOptError` (exit 1: a bad artifact or report) or, for a run config, a `UsageError`
(exit 2: the command's own input is wrong), naming the file.

`fields` checks the type of each top-level field a reader relies on, so `"preprocessing": [1]`
is a clear error instead of an AttributeError deep in the code that uses it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from resnet_opt.errors import ResnetOptError

MAX_DEPTH = 64  # our deepest file (a report) nests about 6 levels
MAX_INT_DIGITS = 40  # byte counts, seeds (< 2**63: 19 digits), sizes: far fewer
MAX_BYTES = 256 * 1024**2  # the largest manifest or report is a few MB

JSON_TYPES: Mapping[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def is_json_type(value: object, types: tuple[type, ...]) -> bool:
    """Whether `value` is one of `types` as JSON means it: true is not an integer, though
    Python's bool is an int."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def json_types(types: tuple[type, ...]) -> str:
    """`types` as a refusal names them: "an integer or a number"."""
    return " or ".join(JSON_TYPES.get(t, t.__name__) for t in types)


def json_type_of(value: object) -> str:
    """What a refused value is, in JSON's words: "a string", "null"."""
    return JSON_TYPES.get(type(value), type(value).__name__)


def describe_input(path: Path) -> str | None:
    """Why `path` cannot be read as an input file (None when it is a regular file).

    Checked before opening: a FIFO blocks an `open` for ever, /dev/null reads as empty, and
    a symlink loop or an over-long name otherwise surface as a bare OSError.
    """
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return _os_reason(exc)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    return "is not a regular file"


def _os_reason(exc: OSError) -> str:
    import errno

    reasons = {
        errno.ELOOP: "is a symlink loop",
        errno.ENAMETOOLONG: "file name too long",
        errno.EACCES: "permission denied",
        errno.ENOTDIR: "a part of the path is not a folder",
    }
    return reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def check_input(
    path: Path, what: str = "", *, error: type[ResnetOptError] = ResnetOptError
) -> Path:
    """`path` if it is a regular file, else one line saying what it is instead."""
    reason = describe_input(Path(path))
    if reason is not None:
        raise error(f"{what + ': ' if what else ''}{path}: {reason}")
    return Path(path)


def read_text(path: Path, *, error: type[ResnetOptError] = ResnetOptError) -> str:
    """A regular file of at most MAX_BYTES as UTF-8 text."""
    check_input(path, error=error)
    size = Path(path).stat().st_size
    if size > MAX_BYTES:
        raise error(f"{path}: {size} bytes is more than the {MAX_BYTES} a resnet-opt file holds")
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({_os_reason(exc)})") from None


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _check_tree(data: Any) -> None:
    """Depth and integer size of a parsed tree, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 133:
            raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")


def parse_json(
    text: str, source: str, *, error: type[ResnetOptError] = ResnetOptError, what: str = "JSON"
) -> Any:
    """`text` as JSON, bounded in depth and integer size; one `error` line otherwise."""
    try:
        data = json.loads(text, parse_int=_int)
        _check_tree(data)
    except RecursionError:
        raise error(f"{source}: not valid {what} (nested deeper than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # JSONDecodeError is one
        raise error(f"{source}: not valid {what} ({exc})") from None
    return data


def read_json(
    path: Path,
    *,
    error: type[ResnetOptError] = ResnetOptError,
    what: str = "JSON",
    fields: Mapping[str, tuple[type, ...]] | None = None,
) -> dict[str, Any]:
    """A JSON object from `path`, bounded, with the type of each field in `fields` checked."""
    data = parse_json(read_text(path, error=error), str(path), error=error, what=what)
    if not isinstance(data, dict):
        raise error(f"{path}: not valid {what} (not a JSON object)")
    if fields:
        check_fields(data, fields, str(path), error=error)
    return data


def read_toml(
    path: Path,
    loads: Callable[[str], dict[str, Any]],
    *,
    error: type[ResnetOptError] = ResnetOptError,
) -> dict[str, Any]:
    """A TOML file, bounded like JSON (tomllib recurses and takes any integer). `loads` is
    tomllib's (tomli's on Python 3.10), passed in: core imports only the standard library."""
    text = read_text(path, error=error)
    try:
        data = loads(text)
        _check_tree(data)
    except RecursionError:
        raise error(f"{path}: not valid TOML (nested deeper than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # TOMLDecodeError is one; so is int()'s digit limit
        raise error(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    return data


def check_fields(
    data: Mapping[str, Any],
    fields: Mapping[str, tuple[type, ...]],
    source: str,
    *,
    error: type[ResnetOptError] = ResnetOptError,
) -> None:
    """Refuse a top-level field of the wrong JSON type, naming the field and what it must be
    (a missing field is left to the reader: some are optional)."""
    for name, types in fields.items():
        if name not in data:
            continue
        value = data[name]
        if not is_json_type(value, types):
            raise error(f"{source}: {name} must be {json_types(types)}, not {json_type_of(value)}")
