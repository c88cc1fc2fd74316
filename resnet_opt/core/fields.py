"""Field metadata a stage's options dataclass declares beside the field, for what fills it.

Why: an options class is the one schema of its stage; the command line and `run`'s TOML
decoder (`pipeline/run_config.py`) fill it alike. What a field needs beyond its type (which
members of its enum it takes, the name and the text form its users give it) is said once, here
in the field's metadata, so a reader needs no code per option and a new field is a new key by
itself. The options classes live in several layers (`tensorrt/options.py` at 2, the stages at
6), so the keys live at the bottom.

- CHOICES: an enum field takes only these members (a refusal lists them).
- CONFIG_KEY: the key a field is given by, where it is not the field's name: the flag's name,
  for a field that holds the parsed value (`workspace_bytes` is `workspace = "2G"`, as the
  command line's `--workspace 2G`).
- TEXT: the parser from the field's text form (the flag's parser, `parse_bytes`): the key takes
  that text, as the flag does. A parser refuses by the field (`core.naming.OptionError`); the
  CLI words that as the flag, the decoder as the config key.

Also here, the one rule for text → choice from Python (`take_choices`, called by every options
class's `__post_init__`): an enum field, or a tuple of an enum, takes the member or its value as
text; anything else is refused as a usage error (exit 2) that lists the choices.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Sequence
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints

from resnet_opt.errors import UsageError

CHOICES = "choices"
CONFIG_KEY = "config_key"
TEXT = "text"


def config_key(field: dataclasses.Field[Any]) -> str:
    """The key `field` is given by: its CONFIG_KEY, else its name."""
    key: str = field.metadata.get(CONFIG_KEY, field.name)
    return key


def choices_of(field: dataclasses.Field[Any], enum: type[Enum]) -> tuple[Enum, ...]:
    """The members a field of enum type takes (all unless its CHOICES narrow them)."""
    return tuple(field.metadata.get(CHOICES, tuple(enum)))


def enum_of(hint: Any) -> type[Enum] | None:
    """The enum a field is typed with (`E` or `E | None`), else None."""
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, Enum):
            return option
    return None


def tuple_enum_of(hint: Any) -> type[Enum] | None:
    """The enum of a field typed as a tuple of one (`tuple[E, ...]`, or that `| None`), else
    None."""
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for option in options:
        if get_origin(option) is tuple:
            items = [a for a in get_args(option) if a is not Ellipsis]
            if len(items) == 1:
                return enum_of(items[0])
    return None


def member_of(enum: type[Enum], value: object, allowed: Sequence[Enum] = ()) -> Enum | None:
    """The member of `enum` (one of `allowed` when given) that `value` is or names as its text
    value, else None. Why one lookup: the command line, `run`'s config and Python callers must
    agree on what a choice's text means."""
    members = tuple(allowed) or tuple(enum)
    for member in members:
        if value is member or (isinstance(value, str) and value == member.value):
            return member
    return None


def choice_text(members: Sequence[Enum]) -> str:
    """The choices as a refusal lists them: `basic, extended, all`."""
    return ", ".join(str(m.value) for m in members)


def choice(enum: type[Enum], value: object, name: str, allowed: Sequence[Enum] = ()) -> Enum:
    """The member `value` is or names; a usage error naming the field and listing the choices
    otherwise (`unknown optimization 'fast' (choose disabled, basic, extended, all)`)."""
    member = member_of(enum, value, allowed)
    if member is None:
        raise UsageError(
            f"unknown {name} {value!r} (choose {choice_text(tuple(allowed) or tuple(enum))})"
        )
    return member


@functools.cache
def _choice_fields(cls: type) -> tuple[tuple[str, type[Enum], tuple[Enum, ...], bool], ...]:
    """Each choice field of the dataclass `cls`: its name, its enum, the members it takes and
    whether it holds a tuple of them."""
    hints = get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        single, many = enum_of(hints[f.name]), tuple_enum_of(hints[f.name])
        enum = single or many
        if enum is not None:
            found.append((f.name, enum, choices_of(f, enum), single is None))
    return tuple(found)


def take_choices(options: Any) -> None:
    """Turn each choice field of the frozen dataclass `options` given as text into its member,
    in place (its `__post_init__` calls this): `OrtBuildOptions(optimization="all")`,
    `BenchOptions(backends=("onnxruntime",))`. A member is kept as given (a narrower CHOICES is
    the stage's own check, worded its way); text that names no choice, or a value of another
    type, is refused listing the choices."""
    for name, enum, allowed, is_tuple in _choice_fields(options.__class__):
        value = getattr(options, name)
        if value is None:
            continue
        if is_tuple:
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise UsageError(
                    f"{name}: give a sequence of choices, not {value!r} "
                    f"(choose from {choice_text(allowed)})"
                )
            taken = tuple(_one(enum, item, name, allowed) for item in value)
            object.__setattr__(options, name, taken)
        else:
            object.__setattr__(options, name, _one(enum, value, name, allowed))


def _one(enum: type[Enum], value: object, name: str, allowed: Sequence[Enum]) -> Enum:
    if isinstance(value, enum):
        return value  # a member outside CHOICES: the stage's own check refuses it
    return choice(enum, value, name, allowed)
