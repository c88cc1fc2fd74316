"""Parameter types and small parsing helpers that several commands share, declared once.

Enum options are taken as text and turned into their enum late (`choice`): the enums live in
modules that import numpy or onnx, and `--help` must stay light. A bad choice is a usage error
(exit 2, one line on stderr like every domain error) that lists the choices, in every command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

from resnet_opt.console import say
from resnet_opt.errors import UsageError

E = TypeVar("E", bound=Enum)
T = TypeVar("T")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
ForceThreadsOption = Annotated[
    bool,
    typer.Option("--force-threads", help="Allow --threads above this machine's CPU count."),
]
OrtThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="ONNX Runtime intra-op threads.")
]
SamplesOption = Annotated[
    int | None,
    typer.Option("--samples", min=1, help="Evaluate a seeded subset of this many images."),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict/--no-strict", help="Fail on unreadable images instead of skipping."),
]
SummaryOption = Annotated[
    bool,
    typer.Option(
        "--summary/--no-summary", help="Append the Markdown to $GITHUB_STEP_SUMMARY when it is set."
    ),
]


def check_threads(value: int | None, force: bool) -> int | None:
    """`--threads`, refused above this host's CPU count unless `--force-threads`."""
    from resnet_opt.core.validation import threads as check

    check(value, "--threads", force=force, force_hint="pass --force-threads")
    return value


def choice(enum: type[E], value: str, option: str, only: tuple[E, ...] = ()) -> E:
    """An enum option given as text: a usage error lists the choices (`only` those members,
    when the command takes a subset)."""
    from resnet_opt.core.fields import choice_text, member_of

    allowed = only or tuple(enum)
    chosen = member_of(enum, value, allowed)  # the library's rule, worded here as the flag
    if chosen is None:
        raise UsageError(f"{option} {value!r}: choose {choice_text(allowed)}")
    return chosen  # type: ignore[return-value]  # a member of `enum`: one of `allowed`


def optional_choice(enum: type[E], value: str | None, option: str) -> E | None:
    """`choice` for an option that may be left out (None: not given)."""
    return None if value is None else choice(enum, value, option)


def given(**values: Any) -> dict[str, Any]:
    """The parsed values that are not None, for `fill`: a choice left out keeps the schema's
    default instead of overriding it with None."""
    return {name: value for name, value in values.items() if value is not None}


def warn(warning: str | None) -> None:
    """One warning line on stderr (silent under -q), when there is one."""
    if warning is not None:
        say(f"warning: {warning}")


def step_summary(markdown: str) -> None:
    """`--summary`: append to $GITHUB_STEP_SUMMARY and say so, or say why not."""
    from resnet_opt.report import append_step_summary

    target = append_step_summary(markdown)
    if target is None:
        say("--summary: GITHUB_STEP_SUMMARY is not set; no step summary written")
    else:
        say(f"appended the summary to {target}")


def parse_shape(text: str) -> tuple[int, ...]:
    """'3,224,224' or '3x224x224' → (3, 224, 224): one sample's shape, without the batch axis
    (`fold --input-shape` and `build --input-shape` read it alike)."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise UsageError(
            f"input shape {text!r} is not a list of positive integers such as 3,224,224"
        )
    return dims


def fill(schema: type[T], params: Mapping[str, Any], **parsed: Any) -> T:
    """A stage's options dataclass from the command's parameters named after its fields.

    Why: the options class is the stage's one schema, which `run`'s TOML decoder fills too, by
    the same field metadata (`core.fields`): a parameter is named as the field's key (its name,
    or its CONFIG_KEY: `--workspace` fills `workspace_bytes`), and text becomes the field's type
    the way a config value does (a TEXT parser, or an enum listing its CHOICES). So a new option
    is one field in the schema plus one flag in the command. `parsed` holds the fields the
    command works out itself, passed on as they are (None too: `bench --no-accuracy` sets data
    None); a parameter that is no field (`--json`, `--force`) is left out, and one not given
    (None) leaves the schema's default.
    """
    from typing import get_type_hints

    from resnet_opt.core.fields import config_key
    from resnet_opt.core.naming import flag_of

    assert dataclasses.is_dataclass(schema)
    hints = get_type_hints(schema)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        key = config_key(f)
        if params.get(key) is not None and f.name not in parsed:
            values[f.name] = _typed(f, hints[f.name], params[key], flag_of(key))
    names = {f.name for f in dataclasses.fields(schema)}
    values.update({name: value for name, value in parsed.items() if name in names})
    return schema(**values)


def _typed(f: dataclasses.Field[Any], hint: Any, value: Any, flag: str) -> Any:
    """A flag's text as its field's type: the field's TEXT parser, or its enum's member."""
    from resnet_opt.core.fields import TEXT, choices_of, enum_of

    if not isinstance(value, str):
        return value
    if TEXT in f.metadata:
        return f.metadata[TEXT](value)
    enum = enum_of(hint)
    if enum is not None:
        return choice(enum, value, flag, choices_of(f, enum))
    return value
