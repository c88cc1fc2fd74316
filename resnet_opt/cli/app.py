"""The Typer application every command registers on, and the rule that turns errors into exits.

A ResnetOptError becomes one line on stderr and its exit code (1; 2 for a UsageError: the command
line or config is wrong in itself, as for Typer's own usage errors; 3 for a failed quality gate);
anything else is a bug and keeps its traceback. RESNET_OPT_DEBUG=1 shows tracebacks for known
errors too. No option takes NaN or infinity, and SIGTERM unwinds like Ctrl-C (exit 143) so that no
temporary file is left behind.

Only the standard library and typer are imported at the top (ARCHITECTURE.md, "Imports and
extras"): `--help` must not pull in torch.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from typer.core import TyperGroup

from resnet_opt.console import set_verbosity
from resnet_opt.core.naming import FLAGS, worded
from resnet_opt.core.signals import reraise_if_terminated
from resnet_opt.core.version import __version__
from resnet_opt.errors import ResnetOptError

P = ParamSpec("P")
R = TypeVar("R")

_ORDER: list[str] = []  # command and group names as registered: the order `--help` lists


class _RegistrationOrder(TyperGroup):
    """Lists commands in the order the modules register them (the pipeline's order), where Typer
    would list every command before every group (`build`, `report`)."""

    def list_commands(self, ctx: Any) -> list[str]:  # ctx: Typer's vendored click Context
        names = list(super().list_commands(ctx))
        return sorted(names, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))


app = typer.Typer(
    name="resnet-opt",
    cls=_RegistrationOrder,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Take a trained ResNet to ONNX, INT8/FP16, TensorRT or ONNX Runtime engines, "
    "and measure what each step costs and buys.",
)


def domain_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the domain error into one stderr line and its exit code.

    Every command is wrapped with this (through `command`), so the rule holds for the console
    script and for Typer's test runner alike.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                _check_numbers(kwargs)
                return func(*args, **kwargs)
            except OSError as exc:  # the environment (disk full, name too long): not a bug
                raise (_environment_error(exc) or exc) from exc
            except RuntimeError as exc:  # Path.resolve() on a symlink loop (Python < 3.13)
                text = str(exc)
                if not text.startswith("Symlink loop from "):
                    raise
                raise ResnetOptError(f"{text[18:].strip(chr(39))}: is a symlink loop") from None
            except ImportError as exc:  # a plain `import onnx` that failed: deps.require's words
                from resnet_opt.deps import missing_dependency

                reraise_if_terminated(exc)
                raise (missing_dependency(exc) or exc) from exc
        except ResnetOptError as exc:
            reraise_if_terminated(exc)
            if os.environ.get("RESNET_OPT_DEBUG") == "1":
                raise
            # an option refused by its field is named as this face's user gave it: the flag
            message = " ".join(worded(exc, FLAGS).split()) or type(exc).__name__
            # a non-UTF-8 file name (surrogate escapes) must not turn the error into another one
            message = message.encode("utf-8", "backslashreplace").decode("utf-8")
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:  # a bug keeps its traceback, unless it was SIGTERM in disguise
            reraise_if_terminated(exc)
            raise

    return wrapper


def _check_numbers(options: dict[str, Any]) -> None:
    """No option takes NaN or infinity: NaN compares false, so a gate given `--max-drop nan`
    would pass anything, and `--duration inf` would never end (a usage error, exit 2). No
    integer option goes beyond 2**63 - 1 (what numpy, ONNX Runtime and C take), and a seed is
    checked alike in every command."""
    from resnet_opt.core.validation import MAX_SEED, finite, seed

    for name, value in options.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, float):
            finite(value, flag)
        elif isinstance(value, int) and not isinstance(value, bool):
            if name == "seed":
                seed(value, flag)
            elif abs(value) > MAX_SEED:
                from resnet_opt.errors import UsageError

                raise UsageError(f"{flag}: {value} is out of range (at most {MAX_SEED})")


_ENVIRONMENT = {
    "ENOSPC": "no space left on the device",
    "EDQUOT": "disk quota exceeded",
    "ENAMETOOLONG": "file name too long",
    "EROFS": "read-only file system",
    "ELOOP": "a symlink loop",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EFBIG": "file too large",
    "EIO": "input/output error",
    "EMFILE": "too many open files",
    "ENFILE": "too many open files",
}


def _environment_error(exc: OSError) -> ResnetOptError | None:
    """One line for an OSError the environment caused, naming the user's path (not the hidden
    temporary file an atomic write was filling); None for another OSError (a bug)."""
    import errno
    import re

    name = errno.errorcode.get(exc.errno or 0, "")
    if name not in _ENVIRONMENT:
        return None
    where = ""
    if exc.filename is not None:
        path = os.fsdecode(exc.filename)
        head, _, tail = path.rpartition("/")
        match = re.fullmatch(r"\.(.+)\.[0-9a-f]{8}\.tmp", tail)
        if match:  # core.atomic.temporary_sibling's name for the output being written
            path = f"{head}/{match.group(1)}" if head else match.group(1)
        if len(path) > 200:
            path = f"{path[:80]}…{path[-80:]}"
        where = f"{path}: "
    return ResnetOptError(f"{where}{_ENVIRONMENT[name]}")


def command(
    name: str | None = None, *, group: typer.Typer = app, **kwargs: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`group.command` with the domain-error wrapper: use it for every command."""

    def register(func: Callable[P, R]) -> Callable[P, R]:
        wrapped = domain_errors(func)
        group.command(name, **kwargs)(wrapped)
        if group is app:
            _ORDER.append(name or func.__name__)
        return wrapped

    return register


def add_group(group: typer.Typer, name: str) -> None:
    """`app.add_typer` for a command group (`build`, `report`), listed where it is registered."""
    app.add_typer(group, name=name)
    _ORDER.append(name)


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


def main() -> None:
    """Console-script entry point: SIGTERM cleans up as Ctrl-C does (exit 143)."""
    from resnet_opt.core.signals import terminate_cleanly

    with terminate_cleanly():
        app()
