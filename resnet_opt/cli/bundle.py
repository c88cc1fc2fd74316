"""`resnet-opt bundle` and `bundle-verify`: what a device needs, in one checked folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import ForceOption, JsonOption
from resnet_opt.console import emit_json, say

Artifacts = Annotated[
    list[Path], typer.Argument(help="Artifacts to hand to the device (with their manifests).")
]
Output = Annotated[Path, typer.Option("--output", "-o", help="Folder to write the bundle into.")]
Folder = Annotated[Path, typer.Argument(help="A folder written by resnet-opt bundle.")]


@command("bundle")
def bundle_command(
    artifacts: Artifacts,
    output: Output,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Collect what a device needs (ONNX, manifests, calibration cache, FP32 source for DLA,
    labels) into one folder with bundle.json: every file's sha256, checked on arrival."""
    from resnet_opt.pipeline.bundle import bundle

    made = bundle(artifacts, output, force=force)
    if json_output:
        emit_json({"output": str(output), **made.to_dict()})
        return
    uses: dict[str, list[str]] = {}
    for f in made.files:
        uses.setdefault(f.path, []).append(f"{f.role} of {f.serves}")
    say(f"wrote {output}/bundle.json: {len(uses)} files for {', '.join(made.artifacts)}")
    for path, roles in uses.items():
        say(f"  {path:<36} {'; '.join(roles)}")


@command("bundle-verify")
def bundle_verify_command(folder: Folder, json_output: JsonOption = False) -> None:
    """Check every file of a bundle against its bundle.json (after copying it to the device)."""
    from resnet_opt.pipeline.bundle import verify_bundle

    found, count = verify_bundle(folder)
    if json_output:
        emit_json({"folder": str(folder), "files_checked": count, "ok": True})
        return
    say(f"{folder}: {count} files match bundle.json ({', '.join(found.artifacts)})")
