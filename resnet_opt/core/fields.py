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
  that text, as the flag does. A parser names what it refuses by the flag (`--workspace`); the
  decoder words that as the config key (`flag_of` is the rule between the two).
"""

from __future__ import annotations

import dataclasses
import re
import types
from enum import Enum
from typing import Any, Union, get_args, get_origin

CHOICES = "choices"
CONFIG_KEY = "config_key"
TEXT = "text"


def config_key(field: dataclasses.Field[Any]) -> str:
    """The key `field` is given by: its CONFIG_KEY, else its name."""
    key: str = field.metadata.get(CONFIG_KEY, field.name)
    return key


def flag_of(key: str) -> str:
    """The command-line flag a key is spelled as (`opt_level` → `--opt-level`)."""
    return "--" + key.replace("_", "-")


def flag_pattern(flag: str) -> re.Pattern[str]:
    """`flag` where a message names it, not as the start of a longer flag (`--calib` is not in
    `--calib-cache`): how a flag in a message is found to be reworded as a config key."""
    return re.compile(re.escape(flag) + r"(?![\w-])")


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
