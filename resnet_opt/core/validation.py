"""Checks for the numbers a user hands us, applied where they enter (CLI, run config, reports).

Why one module: NaN compares false with everything, so a gate written `drop > limit` passes
when either side is NaN, and a range check `value < 0` lets NaN through. Every number that
gates, sizes an allocation or starts threads is checked here, once, with a message that names
where it came from (`--max-drop`, `bench.threads`, `report.json: measurements/0/throughput`),
or, for an options-class field (`Option("max_drop")`), the field, which each face then words
(`core/naming.py`).

Bad values are usage errors (exit 2) whether they came from an option or a TOML key; values that
are valid but more than this host can hold (threads beyond its CPUs, arrays beyond its memory)
are also refused before any work, saying the limit and, for threads, how to override it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from resnet_opt.core.naming import Option, refusal
from resnet_opt.errors import ResnetOptError, UsageError

# numpy's own limit for seeds is 0 ≤ seed; above 2**63 some of our seeded draws overflow
MAX_SEED = 2**63 - 1

# Ceilings on counts and durations: far above any real use, far below what hangs a host or
# overflows a count (a latency list of 1e18 floats is a MemoryError; 1e18 seconds never ends).
MAX_THREADS = 1024  # even with --force-threads: libgomp and the process limit give out beyond
MAX_COUNT = 10**7  # timed iterations, samples: 10 million runs of the fastest model take hours
MAX_SECONDS = 24 * 3600.0  # a duration or warm-up per point: one day


def finite(value: float, what: str | Option) -> float:
    """`value` if it is a finite number; NaN or ±inf refused (they switch comparisons off)."""
    if not math.isfinite(value):
        raise refusal(what, f": {value} is not a finite number")
    return value


def at_least(value: float, low: float, what: str | Option) -> float:
    """A finite number ≥ `low`."""
    finite(value, what)
    if value < low:
        raise refusal(what, f": must be at least {low:g}, not {value:g}")
    return value


def positive(value: float, what: str | Option) -> float:
    """A finite number > 0 (a duration, a tolerance that must admit something)."""
    finite(value, what)
    if value <= 0:
        raise refusal(what, f": must be more than 0, not {value:g}")
    return value


def positive_int(value: int, what: str | Option) -> int:
    """An integer ≥ 1 (a count, a batch size)."""
    if value < 1:
        raise refusal(what, f": must be 1 or more, not {value}")
    return value


def positive_count(
    value: int,
    what: str | Option,
    *,
    colon: bool = False,
    error: type[ResnetOptError] = UsageError,
) -> int:
    """A count that must be 1 or more (a batch size, samples, classes, a size in pixels):
    `<what> must be positive, not 0` (`<what>: must …` with `colon`). The one place that says
    it, so every count is refused alike; `error` for a count that is not the user's mistake."""
    if value < 1:
        rest = f"{':' if colon else ''} must be positive, not {value}"
        if isinstance(what, Option) or error is UsageError:
            raise refusal(what, rest)
        raise error(f"{what}{rest}")
    return value


def thread_count(value: int | None, what: str | Option = "threads") -> int | None:
    """A thread count given to a stage or runner (None: the runtime's default): 1 or more.

    Why apart from `threads`: the library takes any positive count (a caller may know its host);
    the ceiling at this host's CPUs, and `--force-threads` past it, are the faces' rule."""
    if value is not None:
        positive_count(value, what)
    return value


def count(value: int, what: str | Option, *, low: int = 1) -> int:
    """A count of runs or samples: `low` to MAX_COUNT (more never ends in useful time)."""
    if not low <= value <= MAX_COUNT:
        raise refusal(what, f": must be from {low} to {MAX_COUNT:,}, not {value}")
    return value


def seconds(value: float, what: str | Option, *, low: float = 0.0, strict: bool = True) -> float:
    """A duration in seconds: above `low` (or equal, when not `strict`), at most MAX_SECONDS."""
    finite(value, what)
    if value < low or (strict and value == low):
        bound = "more than" if strict else "at least"
        raise refusal(what, f": must be {bound} {low:g} s, not {value:g}")
    if value > MAX_SECONDS:
        raise refusal(what, f": {value:g} s is more than the {MAX_SECONDS:g} s (a day) allowed")
    return value


def seed(value: int, what: str | Option) -> int:
    """A seed numpy accepts: 0 ≤ seed < 2**63."""
    if not 0 <= value <= MAX_SEED:
        raise refusal(what, f": a seed is an integer from 0 to {MAX_SEED}, not {value}")
    return value


def cpu_limit() -> int:
    """The most threads a command starts without being forced: the host's logical CPUs."""
    return os.cpu_count() or 1


def threads(
    value: int | None, what: str | Option, *, force: bool = False, force_hint: str = ""
) -> None:
    """Refuse a thread count below 1, or above this host's CPUs unless `force`.

    Tens of thousands of threads exhaust the host's process limit and take other work down
    with it; no runtime gets faster beyond one thread per logical CPU.
    """
    if value is None:
        return
    positive_int(value, what)
    limit = cpu_limit()
    if value > limit and not force:
        hint = f"; {force_hint} to use more anyway" if force_hint else ""
        raise refusal(what, f": {value} threads is more than the {limit} CPUs here{hint}")
    if value > MAX_THREADS:  # no flag lifts this one: beyond it a runtime hangs or dies
        raise refusal(
            what,
            f": {value} threads is more than the {MAX_THREADS} any run may start, "
            "--force-threads or not",
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), else total RAM."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:  # noqa: PTH123 - a pseudo-file
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError, AttributeError):
        return None


def fmt_bytes(count: float) -> str:
    """1.5 GB, 12.0 MB, 3.73 TB: decimal units, as people read memory sizes."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def array_bytes(shape: Sequence[int], dtype: Any = np.float32) -> int:
    """Bytes of an array of `shape` and `dtype` (Python ints: no overflow)."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * int(np.dtype(dtype).itemsize)


def check_fits(
    shape: Sequence[int],
    what: str | Option,
    dtype: Any = np.float32,
    copies: int = 1,
    *,
    error: type[ResnetOptError] = UsageError,
) -> None:
    """Refuse an array (times `copies`) that cannot fit in the memory available here.

    The input array alone is checked, before it is allocated: a model's activations need more,
    so this catches the impossible (a batch of a billion), not every out-of-memory.
    """
    need = array_bytes(shape, dtype) * copies
    have = available_memory()
    if have is not None and need > have:
        dims = "×".join(str(int(d)) for d in shape)
        raise error(
            f"{what}: a {dims} {np.dtype(dtype).name} array needs {fmt_bytes(need)}, more than "
            f"the {fmt_bytes(have)} of memory available here"
        )


def non_finite_paths(data: Any, path: str = "") -> Iterator[str]:
    """Where in a JSON-like tree a float is NaN or infinite ("measurements/0/throughput")."""
    if isinstance(data, float):
        if not math.isfinite(data):
            yield path or "(top level)"
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from non_finite_paths(value, f"{path}/{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from non_finite_paths(value, f"{path}/{i}" if path else str(i))


def check_all_finite(data: Any, source: str) -> None:
    """Refuse a report or manifest holding NaN or ±inf, naming the first such field."""
    for where in non_finite_paths(data):
        raise ResnetOptError(f"{source}: {where} is not a finite number")
