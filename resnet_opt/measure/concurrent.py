"""Several TensorRT engines at once, one process each: how Orin users measure GPU + DLA0 + DLA1.

NVIDIA's jetson_benchmarks starts one trtexec per engine (the GPU one and one per DLA core) at
the same time and adds their throughputs; MLPerf's Orin Offline submissions do the same. Each
engine here runs in its own process (its own CUDA context and stream, as trtexec's would), warms
up, waits at a shared barrier so that the timed windows overlap, then runs for the same duration
(or iterations).

Engines never stop at the same instant: with `--iterations` or `min_iterations` a fast GPU engine
stops first and the DLA engines then run without contention, so each engine's rate over its
own loop would overstate the total. As NVIDIA's jetson_benchmarks does (`read_window_results`),
each engine's throughput is read only inside the common window, from the latest start to the
earliest end, from its per-inference timestamps (`time.perf_counter`, the system-wide monotonic
clock on Linux, so comparable across processes); the total is their sum and the module's power
is averaged over that same window. Processes are started with
`spawn` (a forked CUDA context is unusable); `initializer` ("module:function") is called first
in each child, for tests that install TensorRT's double there.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import queue as queue_module
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.errors import ResnetOptError
from resnet_opt.measure.timing import Budget, Timing

START_TIMEOUT_S = 300.0  # loading an engine on a DLA can take a while; a hung child must not


@dataclass(frozen=True)
class EngineRun:
    """One engine's share of a concurrent run."""

    artifact: str
    device: str  # the runner's device ("GPU", "DLA 0", …)
    timing: Timing
    details: dict[str, Any]
    stamps: tuple[float, ...] = ()  # the loop's clock readings: its start, then each end


@dataclass(frozen=True)
class Window:
    """The time every engine was running: from the latest start to the earliest end."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def common_window(stamps: Sequence[Sequence[float]]) -> Window:
    """The common window of the engines' loops, or ResnetOptError if they never overlapped."""
    if not stamps or any(len(s) < 2 for s in stamps):
        raise ResnetOptError("concurrent bench: an engine recorded no timed inference")
    window = Window(max(s[0] for s in stamps), min(s[-1] for s in stamps))
    if window.seconds <= 0:
        raise ResnetOptError(
            "concurrent bench: the engines' timed loops did not overlap (one finished before "
            "another started): use a longer --duration"
        )
    return window


def inferences_in(stamps: Sequence[float], window: Window) -> float:
    """How many of the loop's inferences ran inside `window`: each counts for the share of its
    own duration that lies inside (an inference cut by an edge counts in part), so a slow
    engine's count is not rounded away at the window's edges."""
    ends = np.asarray(stamps, dtype=np.float64)
    starts, ends = ends[:-1], ends[1:]
    inside = np.clip(np.minimum(ends, window.end) - np.maximum(starts, window.start), 0.0, None)
    durations = np.maximum(ends - starts, 1e-12)
    return float(np.sum(inside / durations))


@dataclass(frozen=True)
class ConcurrentRun:
    batch: int
    runs: tuple[EngineRun, ...]
    power_w: float | None  # mean module power over the common window (Jetson power rails)
    window: Window

    def window_throughput(self, run: EngineRun) -> float:
        """Images per second of one engine inside the common window."""
        return self.batch * inferences_in(run.stamps, self.window) / self.window.seconds

    @property
    def total_throughput(self) -> float:
        """Images per second of all engines together: each one's rate inside the common
        window, added up (jetson_benchmarks' aggregate)."""
        return sum(self.window_throughput(r) for r in self.runs)


def _call_initializer(initializer: str | None) -> None:
    if initializer:
        module, _, func = initializer.partition(":")
        getattr(importlib.import_module(module), func)()


def _worker(
    index: int,
    path: str,
    batch: int,
    budget: Budget,
    inputs: np.ndarray,
    barrier: Any,
    results: Any,
    initializer: str | None,
) -> None:
    """Open the engine, warm up, meet the others at the barrier, time, report."""
    try:
        _call_initializer(initializer)
        import functools

        from resnet_opt.measure.timing import measure, warm_up
        from resnet_opt.runners.base import Backend, open_runner, single_input

        with open_runner(Backend.TENSORRT, Path(path)) as runner:
            spec = single_input(runner)
            feed = {spec.name: np.ascontiguousarray(inputs[:batch], dtype=spec.dtype)}
            call = functools.partial(runner.infer, feed)
            warm_up(call, budget.warmup_s, time.perf_counter)
            barrier.wait(timeout=START_TIMEOUT_S)
            timed = Budget(
                iterations=budget.iterations,
                duration_s=budget.duration_s,
                warmup_s=0.0,  # so that every clock reading below is one of the timed loop's
                min_iterations=budget.min_iterations,
            )
            stamps: list[float] = []

            def clock() -> float:
                now = time.perf_counter()
                stamps.append(now)
                return now

            timing = measure(call, timed, clock=clock)
            info = runner.info
            payload = (info.device, timing, dict(info.details), tuple(stamps))
            results.put((index, "ok", payload))
    except BaseException as exc:  # reported to the parent, which raises it as one line
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put((index, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def run_concurrent(
    engines: Sequence[Path],
    batch: int,
    budget: Budget,
    inputs: Sequence[np.ndarray],
    *,
    initializer: str | None = None,
) -> ConcurrentRun:
    """Run every engine at `batch` at the same time, one process each; their timings."""
    from resnet_opt.jetson.power import module_rails, sample_power

    context = mp.get_context("spawn")
    barrier = context.Barrier(len(engines) + 1)  # the parent too: power is sampled from the start
    results = context.Queue()
    procs = [
        context.Process(
            target=_worker,
            args=(i, str(path), batch, budget, inputs[i], barrier, results, initializer),
            name=f"resnet-opt-engine-{i}",
        )
        for i, path in enumerate(engines)
    ]
    for proc in procs:
        proc.start()
    collected: dict[int, tuple[str, Any]] = {}
    try:
        with contextlib.suppress(Exception):  # a child failed early: its error is queued
            barrier.wait(timeout=START_TIMEOUT_S)
        with sample_power(module_rails()) as power:
            while len(collected) < len(procs):
                try:
                    index, status, payload = results.get(timeout=START_TIMEOUT_S)
                except queue_module.Empty:
                    raise ResnetOptError(
                        "concurrent bench: an engine process stopped answering"
                    ) from None
                collected[index] = (status, payload)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    errors = [(i, p) for i, (s, p) in sorted(collected.items()) if s == "error"]
    if errors:
        index, text = errors[0]
        raise ResnetOptError(f"{Path(engines[index]).name}: {text.splitlines()[0]}")
    runs = []
    for i, path in enumerate(engines):
        device, timing, details, stamps = collected[i][1]
        runs.append(EngineRun(Path(path).name, str(device), timing, details, stamps))
    window = common_window([r.stamps for r in runs])
    return ConcurrentRun(batch, tuple(runs), power.mean_between(window.start, window.end), window)
