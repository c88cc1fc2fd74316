"""SIGTERM handled like Ctrl-C: the running stage unwinds and removes its temporary files.

Why: CI runners, `timeout` and `docker stop` send SIGTERM, whose default action kills the
process on the spot, leaving the hidden `.X.*.tmp` files of a half-written artifact. Turning it
into an exception lets every `staged_outputs` block (and every temporary folder) clean up as it
does for SIGINT; the process then exits 143 (128 + SIGTERM), as a killed one would, so callers
still see that it was terminated. Further SIGTERMs are ignored while the cleanup runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM; exits 143 when nothing catches it."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


_received: list[int] = []  # the signal that asked this process to end, once one did


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_IGN)  # let the cleanup finish
    _received.append(signum)
    raise Terminated(signum)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def reraise_if_terminated(exc: BaseException) -> None:
    """Raise `Terminated` (or, for Ctrl-C, KeyboardInterrupt: exit 130) again when `exc` is
    what became of it: a C extension interrupted in its import or call turns our exception into
    its own (pybind11: ImportError "initialization failed"), and that must not reach the user
    as a missing dependency or a bug."""
    if not _received or isinstance(exc, Terminated | KeyboardInterrupt):
        return
    if _received[0] == signal.SIGINT:
        raise KeyboardInterrupt from exc
    raise Terminated(_received[0]) from exc


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back while a few renames put a stage's outputs in place: they
    arrive right after, so a stage is either wholly in place or wholly gone, never half."""
    held = {signal.SIGINT, signal.SIGTERM}
    can_block = hasattr(signal, "pthread_sigmask")
    if can_block:
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        if can_block:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Within this block SIGTERM raises `Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    interrupt = signal.getsignal(signal.SIGINT)
    if interrupt is signal.default_int_handler:  # Ctrl-C as before, but remembered
        signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if interrupt is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        _received.clear()
