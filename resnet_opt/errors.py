"""The one domain error family.

The library raises these; only the CLI layer (`cli/app.py`'s `domain_errors`, which every command
is registered through) turns them into a single line on stderr and an exit code, so library
callers can catch one class and decide for themselves.
"""

from __future__ import annotations


def first_line(exc: BaseException | str) -> str:
    """The first line of an error's message (its type's name when it has none): what goes into
    our one-line errors when a library or the user's code raises a paragraph."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ResnetOptError(Exception):
    """A problem the user can fix: bad file, bad data, incompatible engine, missing extra."""

    exit_code: int = 1


class UsageError(ResnetOptError):
    """A value the command refuses before doing any work (out of range, NaN, unknown choice),
    from the command line or a run config alike: exit 2, as Typer's own usage errors, so one
    kind of mistake has one exit code whichever way it was given."""

    exit_code = 2


class QualityGateError(ResnetOptError):
    """A quality gate (accuracy drop, throughput regression) was exceeded: CI should fail."""

    exit_code = 3


class MissingDependencyError(ResnetOptError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(
        self, module: str, extra: str, reason: str | None = None, advice: str | None = None
    ) -> None:
        detail = f" ({reason})" if reason else ""
        # advice: what to do where the pip extra is the wrong answer (a Jetson's TensorRT)
        how = advice or f"install it with pip install 'resnet-opt[{extra}]'"
        super().__init__(f"{module} is not available{detail}: {how}")
        self.module = module
        self.extra = extra
