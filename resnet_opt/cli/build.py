"""`resnet-opt build tensorrt|onnxruntime|openvino`: one subcommand per backend.

Each subcommand declares only the flags its backend reads, so `--help` shows what applies and a
flag of another backend is refused by name ("--workspace applies to --backend tensorrt, not
onnxruntime"), never ignored. The form scripts and READMEs already use, `build SOURCE --backend
NAME ...`, stays: `BackendGroup` turns it into `build NAME SOURCE ...` before parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from typer.core import TyperGroup

from resnet_opt.cli.app import add_group
from resnet_opt.cli.params import check_threads
from resnet_opt.console import emit_json, say
from resnet_opt.errors import UsageError

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest

BACKEND_FLAG = "--backend"


class _Param(Protocol):
    opts: list[str]
    secondary_opts: list[str]


class _Command(Protocol):
    @property
    def params(self) -> Sequence[_Param]: ...


class BackendGroup(TyperGroup):
    """`build`'s subcommands, taking the backend as `--backend NAME` too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # ctx: Typer's vendored click Context (a private module, so not named here)
        try:
            args = self.backend_first(args)
        except UsageError as exc:
            typer.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        return list(super().parse_args(ctx, args))

    def backend_first(self, args: list[str]) -> list[str]:
        """`SOURCE --backend NAME …` → `NAME SOURCE …`; then no flag of another backend."""
        backend, rest = _pop_backend(args)
        if backend is not None:
            if rest and rest[0] in self.commands:
                raise UsageError(
                    f"build {rest[0]} … {BACKEND_FLAG} {backend}: name the backend once"
                )
            if backend not in self.commands:
                raise UsageError(f"{BACKEND_FLAG} {backend!r}: choose {self._choices()}")
            args = [backend, *rest]
        elif args and not args[0].startswith("-") and args[0] not in self.commands:
            raise UsageError(
                f"say which backend: resnet-opt build {{{self._choices('|')}}} SOURCE -o OUTPUT "
                f"(or {BACKEND_FLAG} NAME)"
            )
        if args and args[0] in self.commands:
            self._refuse_foreign_flags(args[0], args[1:])
        return args

    def _choices(self, sep: str = ", ") -> str:
        return sep.join(self.commands)

    def _refuse_foreign_flags(self, backend: str, args: Sequence[str]) -> None:
        own = _flags(self.commands[backend])
        for arg in args:
            if arg == "--":
                return
            flag = arg.partition("=")[0]
            if not flag.startswith("--") or flag in own:
                continue
            owners = [name for name, cmd in self.commands.items() if flag in _flags(cmd)]
            if owners:
                raise UsageError(
                    f"{flag} applies to {BACKEND_FLAG} {' or '.join(sorted(owners))}, not {backend}"
                )


def _pop_backend(args: list[str]) -> tuple[str | None, list[str]]:
    for i, arg in enumerate(args):
        if arg == BACKEND_FLAG and i + 1 < len(args):
            return args[i + 1], [*args[:i], *args[i + 2 :]]
        if arg.startswith(BACKEND_FLAG + "="):
            return arg.partition("=")[2], [*args[:i], *args[i + 1 :]]
    return None, args


def _flags(cmd: _Command) -> set[str]:
    return {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}


def _group_help() -> str:
    """`build`'s help: the build backends' names, from their units."""
    from resnet_opt.backends.registry import build_backends, unit

    titles = [unit(b).title for b in build_backends()]
    named = " or ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1 else titles)
    return (
        f"Build a deployable artifact for {named} "
        "(`build BACKEND SOURCE -o OUTPUT`, or `build SOURCE --backend BACKEND -o OUTPUT`)."
    )


def _output_help() -> str:
    """`--output`'s help: each build backend's suffixes, from its unit."""
    from resnet_opt.backends.registry import build_backends, build_part

    kinds = ", ".join(build_part(b).output_help for b in build_backends())
    return f"Artifact to write: a {kinds}; its manifest goes beside it as <file>.json."


build_app = typer.Typer(cls=BackendGroup, no_args_is_help=True, help=_group_help())


add_group(build_app, "build")

Source = Annotated[Path, typer.Argument(help="ONNX artifact (with its manifest) to build.")]
Output = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help=_output_help(),
    ),
]
CpuThreads = Annotated[
    int | None, typer.Option(min=1, help="Threads the runner uses \\[default: the backend's].")
]
InputShape = Annotated[
    str | None, typer.Option(help="One sample's shape for symbolic dims, C,H,W.")
]
Samples = Annotated[int | None, typer.Option(min=1, help="Random inputs checked vs the source.")]
Tolerance = Annotated[float | None, typer.Option(help="Largest max-abs difference accepted.")]


def finish(manifest: Manifest, output: Path, json_output: bool, lines: list[str]) -> None:
    """What every build prints: the manifest as JSON, or the backend's summary lines."""
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
    else:
        say("\n".join(lines))


def cpu_common(params: dict[str, Any]) -> dict[str, Any]:
    """The fields ONNX Runtime and OpenVINO builds share, parsed from their flags."""
    from resnet_opt.cli.params import parse_shape

    shape = params["input_shape"]
    return {
        "input_shape": parse_shape(shape) if shape is not None else None,
        "threads": check_threads(params["threads"], params["force_threads"]),
    }
