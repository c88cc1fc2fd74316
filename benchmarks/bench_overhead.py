"""What the bench harness costs: `bench`'s ONNX Runtime throughput vs a bare session.run loop.

Acceptance (issue 5): the bench's ORT throughput is within 3 % of a bare
`InferenceSession.run` loop on the same model, batch and threads, measured in one run.

Both sides get the same model file, the same input array, the same thread count and the same
session settings (intra-op threads fixed, inter-op 1, sequential, graph optimizations all,
spinning off as bench's runner has it), and the same number of timed runs after the same
warm-up. The bare side is the loop a user would write: `for _ in range(n): sess.run(...)`
between two clock readings, built here from the onnxruntime API directly (not through
resnet-opt's runner). The bench side is `resnet_opt.pipeline.bench.bench`, the library call
that `resnet-opt bench` and `resnet-opt run` make, with its per-run clock readings, runner
`infer` and statistics. The two alternate round by round (A B, B A, …: neither always goes
first), each round opening a fresh session, and the medians over rounds are compared.

    python benchmarks/bench_overhead.py                       # bundled default model, exported here
    python benchmarks/bench_overhead.py --model out/model.onnx --batch 1,8,32 --rounds 7

Exit status 0 when every batch is within the limit, 3 when not (like a failed quality gate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.core.manifest import read_manifest
from resnet_opt.measure.machine import machine_info, usable_cores
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import BenchOptions, bench, input_batch

LIMIT_PCT = 3.0


def bare_session(model: Path, threads: int, spinning: bool) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def bare_loop(
    model: Path, x: np.ndarray, iterations: int, warmup_s: float, threads: int, spinning: bool
) -> float:
    """Images per second of the plain loop (same warm-up rule as bench: one run, then warmup_s)."""
    sess = bare_session(model, threads, spinning)
    feed = {sess.get_inputs()[0].name: x}
    names = [o.name for o in sess.get_outputs()]
    sess.run(names, feed)
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        sess.run(names, feed)
    start = time.perf_counter()
    for _ in range(iterations):
        sess.run(names, feed)
    elapsed = time.perf_counter() - start
    return len(x) * iterations / elapsed


def bench_loop(model: Path, batch: int, iterations: int, warmup_s: float, threads: int) -> float:
    """Images per second as `bench` measures it (accuracy off: timing only)."""
    options = BenchOptions(
        backends=(Target.ONNXRUNTIME,),
        batches=(batch,),
        budget=Budget(iterations=iterations, warmup_s=warmup_s),
        threads=threads,
        data=None,
    )
    (point,) = bench([model], options=options).measurements
    return point.throughput


@dataclass(frozen=True)
class Result:
    batch: int
    iterations: int
    bench_img_s: list[float]
    bare_img_s: list[float]
    bench_median: float
    bare_median: float
    ratio: float  # median over rounds of (bench / bare) within the round: the verdict
    ratio_of_medians: float  # bench median / bare median (information: drift is not cancelled)
    ratio_quartiles: tuple[float, float]  # spread of the per-round ratios
    within_limit: bool
    spinning_median: float | None = None  # bare loop with spinning on (information only)


def calibrate(model: Path, x: np.ndarray, seconds: float, threads: int) -> int:
    """Runs per round so that a round lasts about `seconds`."""
    sess = bare_session(model, threads, spinning=False)
    feed = {sess.get_inputs()[0].name: x}
    names = [o.name for o in sess.get_outputs()]
    for _ in range(3):
        sess.run(names, feed)
    start = time.perf_counter()
    runs = 0
    while time.perf_counter() - start < 0.3:
        sess.run(names, feed)
        runs += 1
    per_run = (time.perf_counter() - start) / runs
    return max(20, int(seconds / per_run))


def measure_batch(
    model: Path,
    batch: int,
    rounds: int,
    seconds: float,
    warmup_s: float,
    threads: int,
    spinning: bool,
) -> Result:
    manifest = read_manifest(model)
    assert manifest is not None and manifest.preprocessing is not None
    options = BenchOptions(batches=(batch,), data=None)
    x = np.ascontiguousarray(input_batch(manifest.preprocessing, batch, None, options))
    iterations = calibrate(model, x, seconds, threads)
    bench_side: list[float] = []
    bare_side: list[float] = []
    spin_side: list[float] = []
    for r in range(rounds):
        order = ("bench", "bare") if r % 2 == 0 else ("bare", "bench")
        for who in order:
            if who == "bench":
                bench_side.append(bench_loop(model, batch, iterations, warmup_s, threads))
            else:
                bare_side.append(bare_loop(model, x, iterations, warmup_s, threads, False))
        if spinning:
            spin_side.append(bare_loop(model, x, iterations, warmup_s, threads, True))
    bench_median = statistics.median(bench_side)
    bare_median = statistics.median(bare_side)
    # Each round's two sides ran back to back, so their ratio cancels the machine's slow drift
    # (on 2 shared cores, 0.5 s windows of one session vary by ±10 %); the median of the
    # per-round ratios is the estimate, the ratio of the medians is shown beside it.
    ratios = sorted(a / b for a, b in zip(bench_side, bare_side, strict=True))
    ratio = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratio, ratio, ratio)
    return Result(
        batch=batch,
        iterations=iterations,
        bench_img_s=bench_side,
        bare_img_s=bare_side,
        bench_median=bench_median,
        bare_median=bare_median,
        ratio=ratio,
        ratio_of_medians=bench_median / bare_median,
        ratio_quartiles=(q1, q3),
        within_limit=ratio >= 1 - LIMIT_PCT / 100,
        spinning_median=statistics.median(spin_side) if spin_side else None,
    )


def loop_cost_ns(runs: int = 1_000_000) -> float:
    """What bench's timed loop adds per run over a bare Python loop, on a call doing nothing."""
    from resnet_opt.measure.timing import measure

    def noop() -> None:
        return None

    costs = []
    for _ in range(3):
        timed = measure(noop, Budget(iterations=runs, warmup_s=0.0)).total_s
        start = time.perf_counter()
        for _ in range(runs):
            noop()
        bare = time.perf_counter() - start
        costs.append((timed - bare) / runs * 1e9)
    return statistics.median(costs)


def default_model(folder: Path) -> Path:
    """The bundled default model, exported with resnet-opt (needs the export extra)."""
    from resnet_opt.pipeline.export import ExportOptions, export

    path = folder / "resnet20-digits.onnx"
    export(None, path, ExportOptions())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="ONNX with manifest [default: bundled model]")
    parser.add_argument("--batch", default="1,8,32", help="batch sizes (comma-separated)")
    parser.add_argument("--threads", type=int, default=None, help="[default: usable cores]")
    parser.add_argument("--rounds", type=int, default=41, help="alternated rounds per side")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round")
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up seconds per round")
    parser.add_argument(
        "--spinning", action="store_true", help="also time a bare loop with spinning on (info)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    threads = args.threads or usable_cores()
    batches = [int(b) for b in args.batch.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp))
        results = [
            measure_batch(model, b, args.rounds, args.seconds, args.warmup, threads, args.spinning)
            for b in batches
        ]
    machine = machine_info()
    load = os.getloadavg()[0]
    spin_head, spin_rule = (" bare, spinning on |", "---:|") if args.spinning else ("", "")
    print(
        f"bench overhead: {model.name}, {threads} threads, {args.rounds} alternated rounds of "
        f"~{args.seconds:g} s per side; {machine.describe()}; load {load:.2f}"
    )
    print(
        "| batch | runs/round | bench img/s (median) | bare loop img/s (median) | "
        "bench/bare (median of rounds) | quartiles | ratio of medians |" + spin_head
    )
    print("|---:|---:|---:|---:|---:|---:|---:|" + spin_rule)
    for r in results:
        spin = f" {r.spinning_median:,.0f} |" if r.spinning_median is not None else ""
        q1, q3 = r.ratio_quartiles
        print(
            f"| {r.batch} | {r.iterations} | {r.bench_median:,.0f} | {r.bare_median:,.0f} | "
            f"{r.ratio:.3f} | {q1:.3f}–{q3:.3f} | {r.ratio_of_medians:.3f} |{spin}"
        )
    print(f"timing loop: {loop_cost_ns():.0f} ns per run over a bare Python loop (no-op call)")
    ok = all(r.within_limit for r in results)
    verdict = "within" if ok else "NOT within"
    print(f"{'PASS' if ok else 'FAIL'}: bench {verdict} {LIMIT_PCT:g}% of the bare loop")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": str(model),
                    "threads": threads,
                    "machine": asdict(machine),
                    "limit_pct": LIMIT_PCT,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
