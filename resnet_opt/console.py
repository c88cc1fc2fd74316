"""Human output: progress, summaries and logs on stderr; stdout stays for JSON/Markdown.

`-q` silences the summaries, `-v`/`-vv` adds logs. Rich is imported lazily so that the CLI's
start-up stays quick.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resnet_opt.core.progress import ProgressCallback

_state = {"verbosity": 0}
_LOG_LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}  # -vv and more: DEBUG


def set_verbosity(verbose: int, quiet: bool) -> None:
    """-q → -1 (errors only), default 0 (summaries, warnings), -v → info logs, -vv → debug."""
    level = -1 if quiet else verbose
    _state["verbosity"] = level
    from rich.logging import RichHandler

    root = logging.getLogger("resnet_opt")
    root.handlers.clear()
    handler = RichHandler(console=_stderr(), show_time=False, show_path=level >= 2)
    root.addHandler(handler)
    root.setLevel(_LOG_LEVELS.get(level, logging.DEBUG))
    root.propagate = False
    # other libraries' warnings (Pillow, torch, onnx) are logs, shown from -v on: by default
    # stderr carries our own lines only
    logging.captureWarnings(True)
    library = logging.getLogger("py.warnings")
    library.handlers.clear()
    library.addHandler(handler)
    library.setLevel(logging.WARNING if level >= 1 else logging.CRITICAL)
    library.propagate = False


def is_quiet() -> bool:
    """Whether -q was given (progress bars and summaries stay off)."""
    return _state["verbosity"] < 0


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """A summary line for people (stderr); silent under -q."""
    if _state["verbosity"] >= 0:
        _stderr().print(message, markup=False)


def emit_json(value: Any) -> None:
    """The one JSON object a `--json` command prints on stdout."""
    from resnet_opt.errors import ResnetOptError

    if sys.stdout is None or sys.stdout.closed:  # started with stdout closed (`>&-`)
        raise ResnetOptError("stdout is closed: nowhere to print the JSON (drop --json or >&-)")
    try:
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError) as exc:  # a reader that went away, a closed stream
        raise ResnetOptError(f"cannot write the JSON to stdout ({exc})") from None
    except OSError as exc:
        raise ResnetOptError(f"cannot write the JSON to stdout ({exc.strerror})") from None


@contextlib.contextmanager
def counting_bar(description: str) -> Iterator[ProgressCallback]:
    """A `(done, total)` callback drawing a rich bar on stderr (calibration, the long part of
    quantize); a no-op under -q or when stderr is not a terminal (CI logs)."""
    from rich.console import Console

    console = Console(stderr=True)
    if is_quiet() or not console.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        description,
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
