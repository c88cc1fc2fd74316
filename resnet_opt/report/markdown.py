"""The report as Markdown: what a person (or a CI step summary) reads.

Two tables: one row per artifact × backend with accuracy, size and throughput at each batch
size; then one row per measurement with its latency percentiles. Skipped backends and notes
(e.g. random weights) follow, so nothing measured or left out is hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from resnet_opt.report.schema import Measurement, Report


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]], right: int = 0) -> str:
    """A GitHub Markdown table; the last `right` columns are right-aligned (numbers)."""
    align = ["---"] * (len(header) - right) + ["---:"] * right
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_throughput(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def fmt_ms(value: float) -> str:
    """Three significant figures, without exponent notation."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_size(size_bytes: int) -> str:
    """Decimal units, as the other stages print sizes."""
    if size_bytes >= 1_000_000:
        return f"{size_bytes / 1e6:.1f} MB"
    return f"{size_bytes / 1e3:.1f} kB"


def _opt(value: float | None, spec: str, none: str = "—") -> str:
    return none if value is None else format(value, spec)


def _precision(m: Measurement) -> str:
    if m.precision_run != m.precision:
        return f"{m.precision} (ran {m.precision_run})"
    return m.precision


def _backend(m: Measurement) -> str:
    return m.backend if m.device.lower() == "cpu" else f"{m.backend} ({m.device})"


def pairs(report: Report) -> list[tuple[str, str]]:
    """(artifact, backend) in measuring order."""
    seen: list[tuple[str, str]] = []
    for m in report.measurements:
        if (m.artifact, m.backend) not in seen:
            seen.append((m.artifact, m.backend))
    return seen


def summary_table(report: Report) -> str:
    batches = report.settings.batches
    header = [
        "artifact",
        "backend",
        "precision",
        "size",
        "top-1 %",
        "top-5 %",
        "top-1 drop (pts)",
        "agreement %",
        *(f"img/s @{b}" for b in batches),
    ]
    rows = []
    for artifact, backend in pairs(report):
        points = {
            m.batch: m
            for m in report.measurements
            if m.artifact == artifact and m.backend == backend
        }
        first = next(iter(points.values()))
        info = report.artifact(artifact)
        acc = report.accuracy_of(artifact, backend)
        rows.append(
            [
                artifact,
                _backend(first),
                _precision(first),
                fmt_size(info.size_bytes) if info else "—",
                _opt(acc.top1 if acc else None, ".2f"),
                _opt(acc.top5 if acc else None, ".2f"),
                _opt(acc.drop_points if acc else None, "+.2f"),
                _opt(acc.top1_agreement if acc else None, ".1f"),
                *(fmt_throughput(points[b].throughput) if b in points else "—" for b in batches),
            ]
        )
    return table(header, rows, right=5 + len(batches))


def latency_table(report: Report) -> str:
    header = [
        "artifact",
        "backend",
        "batch",
        "runs",
        "mean ms",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "img/s",
    ]
    rows = [
        [
            m.artifact,
            _backend(m),
            m.batch,
            m.iterations,
            fmt_ms(m.latency_ms.mean),
            fmt_ms(m.latency_ms.p50),
            fmt_ms(m.latency_ms.p90),
            fmt_ms(m.latency_ms.p99),
            fmt_throughput(m.throughput),
        ]
        for m in report.measurements
    ]
    return table(header, rows, right=7)


def settings_line(report: Report) -> str:
    s = report.settings
    budget = (
        f"{s.iterations} timed runs"
        if s.iterations is not None
        else f"{s.duration_s:g} s (at least {s.min_iterations} runs)"
    )
    accuracy = f"accuracy on {s.data}" + (f", {s.samples} samples" if s.samples else "")
    if s.data is None:
        accuracy = "accuracy not measured"
    inputs = "real images" if s.input == "eval-data" else "seeded random input"
    return (
        f"{s.threads} threads; per point: {s.warmup_s:g} s warm-up, then {budget}; "
        f"{inputs}; {accuracy}."
    )


def render(report: Report, *, image: str | None = None) -> str:
    """The whole report in Markdown; `image` links the plot (a path relative to the .md)."""
    m = report.machine
    load = report.load_average
    lines = [
        f"## resnet-opt bench: {m.describe()}",
        "",
        settings_line(report),
        f"Drop and agreement: against each artifact's FP32 source scored with ONNX Runtime. "
        f"Load average before/after: {_load(load.before)} / {_load(load.after)}. "
        f"resnet-opt {report.tool_version}, {report.created_at}.",
        "",
        summary_table(report) if report.measurements else "_No measurements._",
    ]
    if image is not None and report.measurements:
        lines += ["", f"![throughput vs top-1 accuracy]({image})"]
    from resnet_opt.report.int8_advice import advice_lines

    advice = advice_lines(report)
    if advice:
        lines += ["", "### What INT8 buys on this CPU", "", *advice]
    if report.measurements:
        lines += ["", "### Latency per batch", "", latency_table(report)]
    if report.skipped:
        lines += ["", "### Skipped", ""]
        lines += [f"- {s.artifact} · {s.backend}: {s.reason}" for s in report.skipped]
    if report.notes:
        lines += ["", "### Notes", ""]
        lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _load(value: tuple[float, float, float] | None) -> str:
    return "n/a" if value is None else ", ".join(f"{v:.2f}" for v in value)
