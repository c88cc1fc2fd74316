"""`resnet-opt run`: every stage from one TOML config, skipping what is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import JsonOption
from resnet_opt.console import emit_json, say

Config = Annotated[
    Path | None,
    typer.Argument(help="TOML config \\[default: the bundled default model, every stage]."),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Output folder \\[default: the config's, else ./resnet-opt-out]."
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Re-run every stage, even those that are unchanged.")
]


@command("run")
def run_command(
    config: Config = None,
    output: Output = None,
    force: Force = False,
    json_output: JsonOption = False,
) -> None:
    """Every stage from one config: export → quantize → build → bench → report."""
    from resnet_opt.console import is_quiet
    from resnet_opt.measure.progress import RichProgress
    from resnet_opt.pipeline.run import gate_error, run
    from resnet_opt.pipeline.run_config import load_config

    result = run(
        load_config(config),
        output,
        force=force,
        progress=None if is_quiet() else RichProgress,
    )
    if json_output:
        emit_json(result.to_dict())
    else:
        typer.echo(result.markdown, nl=False)
        if result.report is not None:
            say(f"report: {result.report} (+ report.md, report.png)")
    error = gate_error(result)
    if error is not None:
        raise error
