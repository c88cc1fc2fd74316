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
    if any(m.power_w is not None for m in report.measurements):
        header += ["W", "mJ/img", "img/s/W"]
        for row, m in zip(rows, report.measurements, strict=True):
            row += [
                _opt(m.power_w, ".1f"),
                _opt(None if m.energy_per_image_j is None else m.energy_per_image_j * 1e3, ".2f"),
                _opt(m.images_per_s_per_w, ".1f"),
            ]
        return table(header, rows, right=10)
    return table(header, rows, right=7)


def concurrent_table(report: Report) -> str:
    """Per batch: each engine's images/s while the others ran, their total, and power."""
    names = [e.artifact for e in report.concurrent[0].engines]
    devices = {e.artifact: e.device for c in report.concurrent for e in c.engines}
    header = ["batch", *(f"{n} ({devices[n]}) img/s" for n in names), "total img/s"]
    window = any(c.window_s is not None for c in report.concurrent)
    if window:
        header.append("common window s")
    power = any(c.power_w is not None for c in report.concurrent)
    if power:
        header += ["W", "img/s/W"]
    rows: list[list[object]] = []
    for c in report.concurrent:
        by_name = {e.artifact: e.throughput for e in c.engines}
        row: list[object] = [c.batch, *(fmt_throughput(by_name[n]) for n in names)]
        row.append(fmt_throughput(c.total_throughput))
        if window:
            row.append(_opt(c.window_s, ".2f"))
        if power:
            row += [_opt(c.power_w, ".1f"), _opt(c.images_per_s_per_w, ".1f")]
        rows.append(row)
    return table(header, rows, right=len(header) - 1)


def jetson_line(report: Report) -> str | None:
    """The Jetson facts a reader needs to trust the numbers: module, power mode, clocks."""
    j = report.machine.jetson
    if j is None:
        return None
    parts = [j.module_or_model, f"power mode {j.power_mode or 'unknown'}"]
    if j.clocks_locked is not None:
        parts.append("clocks locked" if j.clocks_locked else "clocks NOT locked (jetson_clocks)")
    for name, freq in (("GPU", j.gpu_mhz), ("EMC", j.emc_mhz)):
        if freq is not None and freq.max_mhz is not None:
            parts.append(f"{name} {freq.min_mhz:g}–{freq.max_mhz:g} MHz")
    if j.jetpack or j.l4t:
        parts.append(f"JetPack {j.jetpack or '?'} (L4T {j.l4t or '?'})")
    if j.total_power_w is not None:
        parts.append(f"{j.total_power_w:.1f} W before measuring ({j.total_power_from})")
    return "Jetson: " + "; ".join(parts) + "."


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
        *([jetson] if (jetson := jetson_line(report)) else []),
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
    if report.concurrent:
        lines += ["", "### Engines at the same time (aggregate)", "", concurrent_table(report)]
    if report.skipped:
        lines += ["", "### Skipped", ""]
        lines += [f"- {s.artifact} · {s.backend}: {s.reason}" for s in report.skipped]
    if report.notes:
        lines += ["", "### Notes", ""]
        lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _load(value: tuple[float, float, float] | None) -> str:
    return "n/a" if value is None else ", ".join(f"{v:.2f}" for v in value)
