"""`resnet-opt bench`: throughput, latency and accuracy per artifact × backend × batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resnet_opt.backends.registry import Target
from resnet_opt.cli.app import command
from resnet_opt.cli.params import (
    ForceOption,
    ForceThreadsOption,
    JsonOption,
    SamplesOption,
    StrictOption,
    SummaryOption,
    check_threads,
    step_summary,
    warn,
)
from resnet_opt.console import emit_json, say

if TYPE_CHECKING:
    from resnet_opt.pipeline.bench import BenchOptions
    from resnet_opt.report.schema import Report

Artifacts = Annotated[
    list[Path], typer.Argument(help="Artifacts with their manifests (.onnx, engines, builds).")
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Report folder: report.json, report.md, report.png."),
]
Backends = Annotated[  # the registry's targets (resnet_opt.backends), in its order
    str,
    typer.Option(
        "--backend",
        help="auto (every backend installed here that fits each artifact) or a comma list "
        f"of: {', '.join(target.value for target in Target)}.",
    ),
]
Batches = Annotated[str, typer.Option("--batch", help="Batch sizes, comma-separated.")]
Iterations = Annotated[
    int | None, typer.Option(min=1, help="Timed runs per point (instead of --duration).")
]
Duration = Annotated[
    float | None,
    typer.Option(
        help="Seconds of timed runs per point \\[default: 0.5, on a Jetson 3 as trtexec; "
        "unless --iterations]."
    ),
]
Warmup = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        help="Warm-up per point: one first run, then this many seconds of runs "
        "\\[default: 0.1, on a Jetson 0.2 as trtexec].",
    ),
]
MinIterations = Annotated[
    int, typer.Option(min=1, help="With --duration: at least this many timed runs.")
]
Threads = Annotated[
    int | None, typer.Option(min=1, help="Threads per backend \\[default: all usable cores].")
]
Data = Annotated[
    str,
    typer.Option(
        help="Evaluation set: image folder (class subfolders), .npy/.npz, or 'default' "
        "(bundled test split)."
    ),
]
DataLabels = Annotated[
    Path | None,
    typer.Option(
        help="A label list, one 'FILE LABEL' line per image (ImageNet's val.txt): --data is "
        "then a flat folder of those images."
    ),
]
NoAccuracy = Annotated[
    bool, typer.Option("--no-accuracy", help="Time only (seeded random input batch).")
]
Seed = Annotated[int, typer.Option(min=0, help="Seed for --samples and random inputs.")]
Reference = Annotated[
    Path | None,
    typer.Option(help="FP32 source for drops \\[default: found from each manifest's lineage]."),
]
NoDataTransfers = Annotated[
    bool,
    typer.Option(
        "--no-data-transfers", help="TensorRT: time without host/device copies (trtexec)."
    ),
]
CudaGraph = Annotated[
    bool, typer.Option("--cuda-graph", help="TensorRT: replay the inference as a CUDA graph.")
]
PlotBatch = Annotated[
    int | None, typer.Option(min=1, help="Batch size the plot shows \\[default: largest].")
]
Note = Annotated[list[str] | None, typer.Option(help="A note for the report (repeatable).")]
Concurrent = Annotated[
    bool,
    typer.Option(
        "--concurrent",
        help="TensorRT engines at the same time, one process each (GPU + DLA0 + DLA1 on an "
        "Orin): per-engine and total throughput. Needs --no-accuracy.",
    ),
]


@command("bench")
def bench_command(
    ctx: typer.Context,
    artifacts: Artifacts,
    output: Output = None,
    backend: Backends = "auto",
    batch: Batches = "1,8,32",
    iterations: Iterations = None,
    duration: Duration = None,
    warmup: Warmup = None,
    min_iterations: MinIterations = 10,
    threads: Threads = None,
    data: Data = "default",
    data_labels: DataLabels = None,
    no_accuracy: NoAccuracy = False,
    samples: SamplesOption = None,
    seed: Seed = 0,
    reference: Reference = None,
    no_data_transfers: NoDataTransfers = False,
    cuda_graph: CudaGraph = False,
    plot_batch: PlotBatch = None,
    note: Note = None,
    summary: SummaryOption = False,
    strict: StrictOption = False,
    concurrent: Concurrent = False,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Throughput, latency and accuracy per artifact × backend × batch → JSON, Markdown, PNG."""
    options = _options(ctx.params)
    _refuse_early(output, force=force, summary=summary)
    from resnet_opt.report.files import report_folder_lock

    with report_folder_lock(output):  # a second `bench -o` of this folder is refused now
        _warnings(artifacts, options)
        report = _measure(artifacts, options, concurrent=concurrent)
        for skip in report.skipped:
            say(f"skipped {skip.artifact} · {skip.backend}: {skip.reason}")
        _emit(report, output, force=force, summary=summary, json_output=json_output)


def _options(params: dict[str, Any]) -> BenchOptions:
    """BenchOptions from the command's parameters; what the timing flags leave out is the bench
    stage's to choose for the host (longer on a Jetson)."""
    from resnet_opt.cli.params import fill
    from resnet_opt.measure.jetson_budget import BudgetRequest
    from resnet_opt.measure.targets import parse_targets
    from resnet_opt.pipeline.bench import BenchOptions, parse_batches

    return fill(
        BenchOptions,
        params,
        backends=parse_targets(params["backend"]),
        batches=parse_batches(params["batch"]),
        budget=BudgetRequest(
            iterations=params["iterations"],
            duration_s=params["duration"],
            warmup_s=params["warmup"],
            min_iterations=params["min_iterations"],
        ),
        threads=check_threads(params["threads"], params["force_threads"]),
        data=None if params["no_accuracy"] else params["data"],
        notes=tuple(params["note"] or ()),
    )


def _refuse_early(output: Path | None, *, force: bool, summary: bool) -> None:
    """What writing the report would refuse, refused before minutes of measuring."""
    from resnet_opt.report import check_report_folder

    if output is not None:
        check_report_folder(output, force=force)
    if summary:
        from resnet_opt.report.files import check_step_summary

        check_step_summary()


def _warnings(artifacts: list[Path], options: BenchOptions) -> None:
    """Saturating CPU int8, as the report notes it (a Jetson's scaling clocks are the bench
    stage's warning)."""
    from resnet_opt.measure.targets import Target
    from resnet_opt.quantization.saturation import warning_for

    if options.backends is None or Target.ONNXRUNTIME in options.backends:
        warn(warning_for(artifacts))


def _measure(artifacts: list[Path], options: BenchOptions, *, concurrent: bool) -> Report:
    from resnet_opt.console import is_quiet
    from resnet_opt.measure.progress import NoProgress, RichProgress
    from resnet_opt.pipeline.bench import bench

    if concurrent:
        from resnet_opt.pipeline.bench_concurrent import bench_concurrent

        return bench_concurrent(artifacts, options)
    with RichProgress() if not is_quiet() else NoProgress() as progress:
        return bench(artifacts, options=options, progress=progress)


def _emit(
    report: Report, output: Path | None, *, force: bool, summary: bool, json_output: bool
) -> None:
    """The report folder, the step summary, and stdout (JSON or the Markdown table)."""
    from resnet_opt.report import write_report
    from resnet_opt.report.markdown import render

    markdown = render(report)
    if output is not None:
        files = write_report(report, output, force=force)
        say(f"wrote {files.json}, {files.markdown.name}, {files.plot.name}")
    if summary:
        step_summary(markdown)
    if json_output:
        emit_json(report.to_dict())
    else:
        typer.echo(markdown, nl=False)
