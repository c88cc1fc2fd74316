"""`resnet-opt report merge`: one fleet table and plot from several devices' bench reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resnet_opt.cli.app import add_group, command
from resnet_opt.cli.params import ForceOption, JsonOption, SummaryOption, step_summary
from resnet_opt.console import emit_json, say

report_app = typer.Typer(
    help="Bench reports across devices: merge a fleet's reports into one table and plot.",
    no_args_is_help=True,
)
add_group(report_app, "report")

Reports = Annotated[
    list[Path], typer.Argument(help="report.json files, one per device (fleet CI).")
]
Output = Annotated[
    Path, typer.Option("--output", "-o", help="Folder: fleet.json, fleet.md, fleet.png.")
]
Batch = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Batch size of the latency, power and plot columns "
        "\\[default: the largest all reports measured].",
    ),
]


@command("merge", group=report_app)
def merge_command(
    reports: Reports,
    output: Output,
    batch: Batch = None,
    summary: SummaryOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """One fleet table and plot from the reports of several devices (Jetsons and x86)."""
    from resnet_opt.report.merge import merge_reports, render_fleet, write_fleet

    fleet = merge_reports(reports, batch=batch)
    files = write_fleet(fleet, output, force=force)
    say(f"wrote {files[0]}, {files[1].name}, {files[2].name}")
    if summary:
        step_summary(render_fleet(fleet))
    if json_output:
        emit_json(fleet.to_dict())
    else:
        typer.echo(render_fleet(fleet), nl=False)
