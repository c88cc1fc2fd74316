"""Progress of a bench run on stderr, drawn only between measurements.

The bar is refreshed by bench itself when a step starts or ends, never by a background thread:
a refresh thread would wake up inside the timed loops and take CPU from the model being
measured (on a 2-core machine that is visible in the numbers).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol


class ProgressSink(Protocol):
    def start(self, total: int) -> None:
        """The number of steps to come."""

    def task(self, description: str) -> None:
        """A step is about to run (shown before it starts)."""

    def done(self) -> None:
        """The current step finished."""


class NoProgress:
    """For library callers and -q."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def start(self, total: int) -> None:
        return None

    def task(self, description: str) -> None:
        return None

    def done(self) -> None:
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

    def start(self, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("bench", total=total)
            self._progress.refresh()

    def task(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description)
            self._progress.refresh()

    def done(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
            self._progress.refresh()
