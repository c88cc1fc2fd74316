"""The one TensorRT logger of the process, and the recorder that turns its errors into messages.

TensorRT keeps one logger per process: the first one handed to a Builder, Runtime or Refitter;
a later, different logger is ignored (with a warning) and TensorRT keeps logging to the first.
So every part of resnet-opt (the build, the inspector, the runner, the DLA core probe) takes
`process_logger()`, and each operation reads the errors logged since it began (`mark`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger("resnet_opt.tensorrt")


class Recorder:
    """Collects TensorRT's errors (for one-line messages) and forwards them to logging.

    TensorRT keeps one logger per process (the first one given to a Builder, Runtime or
    Refitter; a later, different one is ignored with a warning), so every part of resnet-opt
    shares one recorder and reads the errors logged since it started an operation (`mark`).
    """

    KEEP = 256  # the most recent errors kept; marks older than that read as "none"

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.count = 0  # errors recorded since the process started

    def record(self, severity_name: str, msg: str) -> None:
        if severity_name in ("ERROR", "INTERNAL_ERROR"):
            self.errors.append(msg.strip())
            self.count += 1
            del self.errors[: -self.KEEP]
            log.debug("TensorRT %s: %s", severity_name, msg)
        elif severity_name == "WARNING":
            log.info("TensorRT: %s", msg)
        else:
            log.debug("TensorRT: %s", msg)

    def mark(self) -> int:
        """A position: `last(default, since=mark)` reads only what was logged after it."""
        return self.count

    def last(self, default: str, since: int = 0) -> str:
        new = min(self.count - since, len(self.errors))
        if new <= 0 or not self.errors:
            return default
        return self.errors[-1].splitlines()[0] if self.errors[-1] else default


class _ProcessLogger:
    """The one TensorRT logger of this process, for the `tensorrt` module it was made with."""

    module: object = None
    logger: trt.ILogger | None = None
    recorder = Recorder()


def make_logger(recorder: Recorder) -> trt.ILogger:
    """A trt.ILogger that hands every message to `recorder`."""
    import tensorrt as trt

    class RecordingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            recorder.record(severity.name, msg)

    return RecordingLogger()


def process_logger() -> tuple[trt.ILogger, Recorder]:
    """The process-wide TensorRT logger and its recorder (made on first use).

    Every Builder, Runtime and parser of resnet-opt takes this logger: with a second logger,
    TensorRT would keep sending errors to the first, and a second runner's failures would
    read "no message".
    """
    import tensorrt as trt

    state = _ProcessLogger
    if state.logger is None or state.module is not trt:
        state.module = trt
        state.recorder = Recorder()
        state.logger = make_logger(state.recorder)
    return state.logger, state.recorder
