"""The one progress type: `progress(done, total)`, called as a long job moves on.

Why one: calibration, evaluation and sensitivity stream samples, bench runs named steps; a face
(the CLI's bars, `run`, a library caller's lambda) should give any stage the same kind of
object. A reporter that can also show text has `describe(text)`, which a job of named steps
(bench: "model · backend · batch 8") calls before each step; a plain callable just counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

# (steps or samples done so far, how many in all)
ProgressCallback = Callable[[int, int], None]


@runtime_checkable
class NamesSteps(Protocol):
    """A progress reporter that shows the name of the step now running."""

    def describe(self, text: str) -> None: ...


def no_progress(done: int, total: int) -> None:
    """For library callers and -q."""


class StepCounter:
    """A job of `total` named steps told to a ProgressCallback: `task(name)` before a step,
    `done()` after it."""

    def __init__(self, progress: ProgressCallback, total: int) -> None:
        self._progress, self.total, self.count = progress, total, 0
        progress(0, total)

    def task(self, description: str) -> None:
        if isinstance(self._progress, NamesSteps):
            self._progress.describe(description)

    def done(self) -> None:
        self.count += 1
        self._progress(self.count, self.total)
