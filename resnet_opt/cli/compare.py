"""`resnet-opt compare`: two bench reports diffed, exit 3 on a regression (for CI)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import JsonOption, SummaryOption, step_summary

if TYPE_CHECKING:
    from resnet_opt.report.compare import Thresholds

Base = Annotated[Path, typer.Argument(help="The baseline report.json.")]
New = Annotated[Path, typer.Argument(help="The new report.json.")]
MaxThroughputDrop = Annotated[
    str, typer.Option(help="Largest throughput drop accepted, in percent (5% or 5).")
]
MaxLatencyRise = Annotated[
    str, typer.Option(help="Largest latency rise accepted, in percent; 'off' to not gate.")
]
LatencyStat = Annotated[str, typer.Option(help="Latency gated: mean, p50, p90 or p99.")]
MaxAccuracyDrop = Annotated[
    float, typer.Option(min=0.0, help="Largest top-1 drop accepted, in points.")
]
AllowDifferentHardware = Annotated[
    bool, typer.Option(help="Compare reports from different machines or settings anyway.")
]
FailOnMissing = Annotated[
    bool, typer.Option(help="A measurement missing from NEW is a regression.")
]


@command("compare")
def compare_command(
    base: Base,
    new: New,
    max_throughput_drop: MaxThroughputDrop = "5%",
    max_latency_rise: MaxLatencyRise = "10%",
    latency_stat: LatencyStat = "p50",
    max_accuracy_drop: MaxAccuracyDrop = 0.2,
    allow_different_hardware: AllowDifferentHardware = False,
    fail_on_missing: FailOnMissing = False,
    summary: SummaryOption = False,
    json_output: JsonOption = False,
) -> None:
    """Diff two bench reports; exit 3 on a regression beyond the limits (for CI)."""
    from resnet_opt.errors import QualityGateError
    from resnet_opt.report import load_report
    from resnet_opt.report.compare import compare_reports, comparison_dict, render_comparison

    thresholds = _thresholds(
        max_throughput_drop, max_latency_rise, latency_stat, max_accuracy_drop, fail_on_missing
    )
    comparison = compare_reports(
        load_report(base),
        load_report(new),
        thresholds,
        allow_different_hardware=allow_different_hardware,
    )
    markdown = render_comparison(comparison)
    if summary:
        step_summary(markdown)
    if json_output:
        from resnet_opt.console import emit_json

        emit_json(comparison_dict(comparison))
    else:
        typer.echo(markdown, nl=False)
    if comparison.regressed:
        first = comparison.regressions[0]
        more = len(comparison.regressions) - 1
        raise QualityGateError(first + (f" (and {more} more)" if more else ""))


def _thresholds(
    max_throughput_drop: str,
    max_latency_rise: str,
    latency_stat: str,
    max_accuracy_drop: float,
    fail_on_missing: bool,
) -> Thresholds:
    from resnet_opt.cli.params import choice
    from resnet_opt.report.compare import LatencyStat, Thresholds, parse_percent

    rise = max_latency_rise.strip().lower()
    return Thresholds(
        max_throughput_drop_pct=parse_percent(max_throughput_drop, "--max-throughput-drop"),
        max_latency_rise_pct=None
        if rise == "off"
        else parse_percent(max_latency_rise, "--max-latency-rise"),
        max_accuracy_drop_points=max_accuracy_drop,
        latency_stat=choice(LatencyStat, latency_stat, "--latency-stat"),
        fail_on_missing=fail_on_missing,
    )
