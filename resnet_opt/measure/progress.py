"""Progress of a bench run on stderr, drawn only between measurements: a
`core.progress.ProgressCallback` that also shows each step's name (`describe`).

The bar is refreshed by bench itself when a step starts or ends, never by a background thread:
a refresh thread would wake up inside the timed loops and take CPU from the model being
measured (on a 2-core machine that is visible in the numbers).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class NoProgress:
    """For library callers and -q (a context manager, as RichProgress is)."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, done: int, total: int) -> None:
        return None


class RichProgress:
    """A rich progress bar on stderr when it is a terminal; use as a context manager."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True)
        if not console.is_terminal:  # CI logs and pipes: a bar there is only noise
            return self
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            auto_refresh=False,
            transient=True,
        )
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        """`done` of `total` steps (`core.progress.ProgressCallback`)."""
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("bench", total=total)
        self._progress.update(self._task, completed=done, total=total)
        self._progress.refresh()

    def describe(self, text: str) -> None:
        """The step about to run (shown before it starts)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)
            self._progress.refresh()
