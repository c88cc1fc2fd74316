"""`bench --concurrent`: TensorRT engines run at the same time, per engine and in total.

On an Orin the GPU and both DLA cores are separate accelerators: the throughput a deployment
gets is what they deliver together, which is how NVIDIA's jetson_benchmarks and MLPerf's Orin
Offline results count it. Every artifact must be a TensorRT engine (built with and without
`--dla-core N`); each engine is checked as `bench` checks it (manifest, hash, device, profile)
before any process starts. Accuracy is not scored here (it does not change by running engines
side by side): score it with a plain `bench` run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from resnet_opt.backends.registry import Backend
from resnet_opt.core.build_details import built_backend
from resnet_opt.core.manifest import tool_versions
from resnet_opt.core.version import __version__
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.jetson.power import power_figures
from resnet_opt.measure.concurrent import run_concurrent
from resnet_opt.measure.machine import load_average, machine_info, usable_cores
from resnet_opt.measure.targets import Target
from resnet_opt.pipeline.bench import (
    BenchOptions,
    _plan,
    for_this_host,
    input_batch,
    report_settings,
)
from resnet_opt.report.schema import (
    ConcurrentResult,
    EngineShare,
    LoadAverage,
    Measurement,
    Report,
)


def bench_concurrent(
    artifacts: Sequence[str | object],
    options: BenchOptions,
    *,
    initializer: str | None = None,
) -> Report:
    """Run the engines together at each batch size; a report with one row per engine and batch
    and the aggregate in `concurrent`."""
    from pathlib import Path

    paths = [Path(str(a)) for a in artifacts]
    if len(paths) < 2:
        raise UsageError("--concurrent runs two or more engines at once (e.g. GPU + DLA0)")
    if options.data is not None:  # a usage mistake (exit 2), as any flag that excludes another
        raise UsageError(
            "--concurrent measures throughput only: add --no-accuracy (score accuracy with a "
            "plain bench run; running side by side does not change it)"
        )
    ignored = [
        flag
        for flag, given in (
            ("--cuda-graph", options.cuda_graph),
            ("--no-data-transfers", options.no_data_transfers),
        )
        if given
    ]
    if ignored:  # each engine process runs eagerly with its copies: refuse, never drop a flag
        raise ResnetOptError(f"--concurrent does not take {' or '.join(ignored)}")
    if options.backends not in (None, (Target.TENSORRT,)):
        raise ResnetOptError("--concurrent runs TensorRT engines: use --backend tensorrt or auto")
    options = for_this_host(options)  # a Jetson's budget and clock warning, as bench's
    planned, _, _ = _plan(paths, options)
    for item in planned:
        if built_backend(item.manifest) != Backend.TENSORRT.value:
            raise ResnetOptError(
                f"{item.path.name}: --concurrent runs TensorRT engines (.plan from resnet-opt "
                "build --backend tensorrt), not this artifact"
            )
    machine = machine_info()
    before = load_average()
    inputs = [input_batch(p.contract, max(options.batches), None, options) for p in planned]
    results: list[ConcurrentResult] = []
    measurements: list[Measurement] = []
    names = [p.path.name for p in planned]
    for batch in options.batches:
        run = run_concurrent(
            [p.path for p in planned], batch, options.timing, inputs, initializer=initializer
        )
        for item, engine in zip(planned, run.runs, strict=True):
            stats = engine.timing.stats()
            measurements.append(
                Measurement(
                    artifact=engine.artifact,
                    sha256=item.manifest.sha256,
                    precision=item.manifest.precision.value,
                    backend=Target.TENSORRT.value,
                    device=engine.device,
                    provider=None,
                    precision_run=item.manifest.precision.value,
                    batch=batch,
                    threads=None,
                    iterations=engine.timing.iterations,
                    warmup_iterations=engine.timing.warmup_iterations,
                    warmup_s=engine.timing.warmup_s,
                    total_s=engine.timing.total_s,
                    latency_ms=stats,
                    throughput=engine.timing.throughput(batch),
                    options={
                        "concurrent_with": [n for n in names if n != engine.artifact],
                        # this row's figures are its own loop's; the rate while all ran:
                        "window_throughput": run.window_throughput(engine),
                    },
                )
            )
        energy = power_figures(run.power_w, run.total_throughput)
        results.append(
            ConcurrentResult(
                batch=batch,
                engines=tuple(
                    EngineShare(r.artifact, r.device, run.window_throughput(r)) for r in run.runs
                ),
                total_throughput=run.total_throughput,
                power_w=energy.power_w,
                energy_per_image_j=energy.energy_per_image_j,
                images_per_s_per_w=energy.images_per_s_per_w,
                window_s=run.window.seconds,
            )
        )
    settings = report_settings(options, options.threads or usable_cores(), None)
    note = (
        f"concurrent: {', '.join(names)} ran at the same time, one process each; throughputs "
        "and power are read inside the window all of them were running"
    )
    return Report(
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        machine=machine,
        versions=tool_versions(),
        load_average=LoadAverage(before, load_average()),
        settings=settings,
        artifacts=tuple(p.info for p in planned),
        measurements=tuple(measurements),
        accuracy=(),
        notes=(*options.notes, note),
        concurrent=tuple(results),
    )
