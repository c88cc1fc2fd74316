"""A TOML value for any options field and what `run`'s decoder makes of it.

Why: the tests that every QuantizeOptions and build options field is a config key generate
their cases from the fields' types and metadata (`core.fields`), so a new field is tested with
no edit; this is the one table of sample values they share.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from resnet_opt.core.fields import TEXT, choices_of, enum_of
from resnet_opt.tensorrt.options import parse_bytes
from resnet_opt.tensorrt.profiles import BatchProfile, parse_batch

# a text form per parser a field may declare (core.fields.TEXT): the TOML text and its value
TEXT_SAMPLES: dict[Callable[[str], Any], tuple[str, Any]] = {
    parse_batch: ("'1:8:32'", BatchProfile(1, 8, 32)),
    parse_bytes: ("'1GiB'", 2**30),
}

# by type: the TOML text and its value (a tuple by its item type)
SCALARS: dict[Any, tuple[str, Any]] = {
    bool: ("true", True),
    int: ("3", 3),
    float: ("2.5", 2.5),
    str: ("'x'", "x"),
    Path: ("'x.cache'", Path("x.cache")),
}
TUPLES: dict[Any, tuple[str, Any]] = {
    str: ("['x']", ("x",)),
    int: ("[3, 32, 32]", (3, 32, 32)),
}


def toml_sample(hint: Any, field: dataclasses.Field[Any]) -> tuple[str, Any]:
    """A TOML value for `field` (of type `hint`, `X | None` included) and what it decodes to."""
    parse = field.metadata.get(TEXT)
    if parse is not None:
        return TEXT_SAMPLES[parse]
    enum = enum_of(hint)
    if enum is not None:
        member = choices_of(field, enum)[-1]
        return f"'{member.value}'", member
    union = get_origin(hint) in (Union, types.UnionType)
    kind = next(a for a in get_args(hint) if a is not type(None)) if union else hint
    if get_origin(kind) is tuple:
        return TUPLES[get_args(kind)[0]]
    return SCALARS[kind]
