"""The `resnet-opt` command line: one thin command per stage.

Commands parse options into the stage's typed arguments and call the stage function; all work
happens in `resnet_opt.pipeline`. Errors: a ResnetOptError becomes one line on stderr and its
exit code (1, or 3 for a failed quality gate); usage errors exit 2 (Typer); anything else is a
bug and keeps its traceback. RESNET_OPT_DEBUG=1 shows tracebacks for known errors too.

Only the standard library, numpy and typer are imported at the top (DESIGN §6): `--help` must
not pull in torch.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from resnet_opt import __version__
from resnet_opt.console import emit_json, say, set_verbosity
from resnet_opt.errors import ResnetOptError

P = ParamSpec("P")
R = TypeVar("R")


def domain_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the domain error into one stderr line and its exit code.

    Every command is wrapped with this (through `command`), so the rule holds for the console
    script and for Typer's test runner alike.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ResnetOptError as exc:
            if os.environ.get("RESNET_OPT_DEBUG") == "1":
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


app = typer.Typer(
    name="resnet-opt",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Take a trained ResNet to ONNX, INT8/FP16, TensorRT or ONNX Runtime engines, "
    "and measure what each step costs and buys.",
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resnet-opt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv: debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only.")] = False,
) -> None:
    set_verbosity(verbose, quiet)


def command(
    name: str | None = None, **kwargs: object
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`app.command` with the domain-error wrapper: use it for every command."""

    def register(func: Callable[P, R]) -> Callable[P, R]:
        wrapped = domain_errors(func)
        app.command(name, **kwargs)(wrapped)  # type: ignore[arg-type]
        return wrapped

    return register


@command()
def info(json_output: JsonOption = False) -> None:
    """Versions, ONNX Runtime providers, and whether TensorRT / CUDA / pycuda work (or why not)."""
    from resnet_opt.environment import collect

    env = collect()
    if json_output:
        emit_json(env.to_dict())
        return
    lines = [f"python        {env.python}"]
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.packages]
    lines.append(f"ORT providers {', '.join(env.onnxruntime_providers) or '—'}")
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.accelerators]
    m = env.machine
    lines.append(f"machine       {m.cpu_model}, {m.cpu_cores} cores, {m.memory_gb} GB")
    if m.jetpack:
        lines.append(f"jetson        {m.jetpack}")
    typer.echo("\n".join(lines))


@command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="ONNX artifact with its manifest.")],
    data: Annotated[
        str,
        typer.Option(
            help="Image folder (class subfolders), .npy/.npz, or 'default' (bundled test split)."
        ),
    ] = "default",
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference artifact (e.g. the FP32 source) for agreement and drop."),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Evaluate a seeded subset of this many samples.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --samples.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    threads: Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads.")] = (
        None
    ),
    max_drop: Annotated[
        float | None,
        typer.Option(help="Exit 3 when top-1 drops more than this many points vs --reference."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Fail on unreadable images instead of skipping.")] = (
        False
    ),
    json_output: JsonOption = False,
) -> None:
    """Top-1 / top-5 of an ONNX artifact, and its drop against a reference."""
    from resnet_opt.errors import QualityGateError
    from resnet_opt.pipeline.evaluate import evaluate

    if max_drop is not None and reference is None:
        raise ResnetOptError("--max-drop needs --reference (the drop is measured against it)")
    result = evaluate(
        model,
        data,
        reference=reference,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        threads=threads,
        strict=strict,
    )
    if json_output:
        emit_json(result.to_dict())
    else:
        acc = result.accuracy
        line = f"{model.name}: top-1 {acc.top1:.2f}%  top-5 {acc.top5:.2f}%  ({acc.count} images)"
        if result.reference is not None and result.drop_points is not None:
            line += (
                f"; reference top-1 {result.reference.top1:.2f}%, drop "
                f"{result.drop_points:+.2f} points, agreement {result.top1_agreement:.2f}%"
            )
        say(line)
    if max_drop is not None and result.drop_points is not None and result.drop_points > max_drop:
        raise QualityGateError(
            f"top-1 dropped {result.drop_points:.2f} points, over --max-drop {max_drop}"
        )


@command("fold")
def fold_command(
    model: Annotated[Path, typer.Argument(help="ONNX model (any exporter; manifest optional).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folded ONNX to write (plus its .json manifest).")
    ],
    tolerance: Annotated[
        float,
        typer.Option(min=0.0, help="Largest max-abs output difference accepted in verification."),
    ] = 1e-3,
    input_shape: Annotated[
        str | None,
        typer.Option(
            help="One sample's shape without the batch, e.g. 3,224,224; needed only when the "
            "input dims are symbolic and no manifest gives the image size."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Random inputs to verify with.")] = 8,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the random inputs.")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads.")] = (
        None
    ),
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Fold BatchNormalization into the Conv/Gemm before it; verify outputs with ONNX Runtime."""
    from resnet_opt.pipeline.fold import fold, parse_shape

    manifest = fold(
        model,
        output,
        force=force,
        tolerance=tolerance,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        input_shape=parse_shape(input_shape) if input_shape is not None else None,
        threads=threads,
    )
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
        return
    batchnorm = manifest.details["batchnorm"]
    left = batchnorm["left"]
    check = manifest.verification
    say(
        f"{output}: folded {batchnorm['folded']} BatchNormalization, left "
        f"{len(left)}; max abs error {check['max_abs_error']:.2e} over {check['samples']} "
        f"random inputs (tolerance {check['tolerance']:g})"
    )
    for entry in left:
        say(f"  left {entry['node']}: {entry['reason']}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
