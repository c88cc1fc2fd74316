"""The one rule for naming an option in an error: the library names the field, each face words it.

Why: an options class is filled from Python, from the command line and from a `run` config, and
a refusal should name the option the way its user gave it: `opt_level` from Python, `--opt-level`
on the command line, `config: build.tensorrt.opt_level` in a config. So library and stage code
raise `OptionError` with the field and a message written against `OptionNames` (how to say an
option, a setting of it, the int8 target); `str()` of the error words it for Python
(`FIELD_NAMES`), the CLI words it with `FLAGS` (`cli/app.domain_errors`) and `run`'s TOML decoder
with the config keys of the table it read (`pipeline/run_config`). No face rewrites the text of
another's message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from resnet_opt.errors import ResnetOptError, UsageError


class OptionNames(Protocol):
    """How a refusal names an option: as a field, a flag or a config key."""

    @property
    def prefix(self) -> str:
        """What starts every message ("" for fields and flags, "config: " for config keys)."""
        ...

    def option(self, name: str, value: object = None) -> str:
        """The option `name` (an options-class field) given as `value`: `--percentile`."""
        ...

    def setting(self, name: str, value: str) -> str:
        """The option `name` set to `value`: `--method percentile`, `method = "percentile"`."""
        ...

    def int8_target(self, target: str) -> str:
        """The int8 layout `target`: "the int8 cpu target", 'int8 with target = "cpu"'."""
        ...


class FieldNames:
    """Python's words: the options-class field (`opt_level`, `method='percentile'`)."""

    prefix = ""

    def option(self, name: str, value: object = None) -> str:
        return name

    def setting(self, name: str, value: str) -> str:
        return f"{name}={value!r}"

    def int8_target(self, target: str) -> str:
        return f"precision='int8' with target={target!r}"


# fields whose flag is not the field's name: the flag names the text the field is parsed from
# (core.fields CONFIG_KEY) or a shorter word the command line has always used
FLAG_OF_FIELD: Mapping[str, str] = MappingProxyType(
    {"eval_data": "eval", "workspace_bytes": "workspace"}
)


def flag_of(key: str) -> str:
    """The command-line flag a field or key is spelled as (`opt_level` → `--opt-level`)."""
    return "--" + FLAG_OF_FIELD.get(key, key).replace("_", "-")


class FlagNames:
    """The command line's words: the flags (`--opt-level`, `--no-reduce-range`)."""

    prefix = ""

    def option(self, name: str, value: object = None) -> str:
        flag = flag_of(name)
        return "--no-" + flag[2:] if value is False else flag

    def setting(self, name: str, value: str) -> str:
        return f"{self.option(name)} {value}"

    def int8_target(self, target: str) -> str:
        return f"the int8 {target} target"


FIELD_NAMES = FieldNames()
FLAGS = FlagNames()

Words = Callable[[OptionNames], str]


class OptionError(ResnetOptError):
    """An option refused by library or stage code, naming the option by its field.

    `words` writes the message with the names it is given; `str()` is Python's wording (the
    field), `worded(FLAGS)` the command line's, `worded(keys)` a config's. Exit 1 (a value
    refused by what it meets, e.g. a model); `OptionUsageError` for a value wrong in itself.
    """

    def __init__(self, field: str, words: Words | str) -> None:
        self.field = field
        self.words: Words = words if callable(words) else _after_option(field, words)
        super().__init__(self.worded(FIELD_NAMES))

    def worded(self, names: OptionNames) -> str:
        return names.prefix + self.words(names)

    def reworded(self, names: OptionNames) -> ResnetOptError:
        """This refusal as a plain error in `names`' words, of the same exit code (a face
        re-raises it so that no later face words it again)."""
        kind = UsageError if isinstance(self, UsageError) else ResnetOptError
        return kind(self.worded(names))


class OptionUsageError(OptionError, UsageError):
    """An option value wrong in itself (out of range, an empty name): exit 2."""


def _after_option(field: str, text: str) -> Words:
    """`<option><text>`: the common shape (`--opt-level 9: …`, `--calib-samples: must …`)."""
    return lambda names: names.option(field) + text


def worded(exc: ResnetOptError, names: OptionNames) -> str:
    """`exc`'s message with its option named by `names` (any other error as it is)."""
    return exc.worded(names) if isinstance(exc, OptionError) else str(exc)


@dataclass(frozen=True)
class Option:
    """An options-class field as the `what` of a `core.validation` check: a refusal is then an
    `OptionUsageError` naming the field, which each face words."""

    field: str


def refusal(what: str | Option, rest: str) -> UsageError:
    """A usage error saying `<what><rest>`: by the field when `what` is an `Option`."""
    if isinstance(what, Option):
        return OptionUsageError(what.field, rest)
    return UsageError(f"{what}{rest}")
