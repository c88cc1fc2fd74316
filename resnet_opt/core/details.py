"""Reading a manifest's `details` section into a typed dataclass (ARCHITECTURE.md, "The artifact
contract").

Each stage's details are a frozen dataclass with `to_dict()` (exactly the JSON written, schema
v1) and `from_dict()` (validated on read). `Fields` is the one way those `from_dict`s read a
JSON object: every wrong or missing value is one `ResnetOptError` naming its key path
(`details.batchnorm.folded`); the manifest reader prefixes the file, so a bad manifest is one
line naming the file and the key, exit 1, as for any other malformed manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Protocol, TypeVar, cast

from resnet_opt.core.fields import choice_text, member_of
from resnet_opt.core.readers import is_json_type, json_type_of, json_types
from resnet_opt.errors import ResnetOptError

DETAILS_KEY = "details"
MANIFEST_SUFFIX = ".json"  # a manifest is its artifact's name + this (`core.manifest`)


class DescribedArtifact(Protocol):
    """What the one-key readers need of a `core.manifest.Manifest` (named structurally: that
    module imports the details classes)."""

    @property
    def artifact(self) -> str: ...

    @property
    def details(self) -> Mapping[str, Any]: ...


def detail_of(manifest: DescribedArtifact, key: str, *types: type) -> Any:
    """One key of a manifest's details, of one of `types` (None when absent or null), for a
    reader that needs that key alone; a wrong value is the one line naming file and key."""
    try:
        return Fields(manifest.details).maybe(key, *types)
    except ResnetOptError as exc:
        raise ResnetOptError(f"{manifest.artifact}{MANIFEST_SUFFIX}: {exc}") from exc


class StageDetails(Protocol):
    """What a stage hands `new_manifest` as its details: anything with the JSON form."""

    def to_dict(self) -> dict[str, object]: ...


DetailsT = TypeVar("DetailsT", bound="TypedDetails")
E = TypeVar("E", bound=Enum)


class TypedDetails(StageDetails, Protocol):
    """A details dataclass: its JSON form, and read back from it with validation."""

    @classmethod
    def from_dict(cls: type[DetailsT], data: Mapping[str, object]) -> DetailsT: ...


class Fields:
    """One JSON object of a manifest, read key by key with its path for the error."""

    def __init__(self, data: object, where: str = DETAILS_KEY) -> None:
        if not isinstance(data, Mapping):
            raise invalid(where, "an object", data)
        self.data: Mapping[str, object] = data
        self.where = where

    def has(self, key: str) -> bool:
        return key in self.data

    def absent(self, *keys: str) -> frozenset[str]:
        """Which of `keys` this object lacks (an older manifest, or a partial one a test
        writes): a record keeps them so that `to_dict` leaves them out again (`written`)."""
        return frozenset(key for key in keys if key not in self.data)

    def value(self, key: str, *types: type, optional: bool = False) -> Any:
        """The value under `key`, of one of `types` (None too when `optional`)."""
        path = f"{self.where}.{key}"
        if key not in self.data:
            raise ResnetOptError(f"not a valid resnet-opt manifest ({path} is missing)")
        value = self.data[key]
        if value is None and optional:
            return None
        if not is_json_type(value, types):
            raise invalid(path, json_types(types) + (" or null" if optional else ""), value)
        return value

    def maybe(self, key: str, *types: type) -> Any:
        """The value under `key`, of one of `types`, or None when absent or null (a key added
        after old manifests were written)."""
        if self.data.get(key) is None:
            return None
        return self.value(key, *types)

    def maybe_texts(self, key: str) -> tuple[str, ...] | None:
        """A JSON array of strings, or None when absent or null."""
        return None if self.data.get(key) is None else self.texts(key)

    def maybe_section(self, key: str) -> Fields | None:
        """A JSON object read in turn, or None when absent or null."""
        return None if self.data.get(key) is None else self.section(key)

    def maybe_choice(self, key: str, enum: type[E]) -> E | None:
        """The text under `key` as a member of `enum` (None when absent or null); another text
        is refused with the choices listed."""
        text = self.maybe(key, str)
        if text is None:
            return None
        member = member_of(enum, text)
        if member is not None:
            return cast(E, member)
        choices = choice_text(tuple(enum))
        raise ResnetOptError(
            f"not a valid resnet-opt manifest ({self.where}.{key} must be one of {choices}, "
            f"not {text!r})"
        )

    def text(self, key: str) -> str:
        return str(self.value(key, str))

    def optional_text(self, key: str) -> str | None:
        value = self.value(key, str, optional=True)
        return None if value is None else str(value)

    def integer(self, key: str) -> int:
        return int(self.value(key, int))

    def optional_integer(self, key: str) -> int | None:
        value = self.value(key, int, optional=True)
        return None if value is None else int(value)

    def number(self, key: str) -> float:
        """An int or float kept as read (an int stays an int: the JSON written back is the same)."""
        value: float = self.value(key, int, float)
        return value

    def optional_number(self, key: str) -> float | None:
        value: float | None = self.value(key, int, float, optional=True)
        return value

    def flag(self, key: str) -> bool:
        return bool(self.value(key, bool))

    def section(self, key: str) -> Fields:
        return Fields(self.value(key, dict), f"{self.where}.{key}")

    def optional_section(self, key: str) -> Fields | None:
        value = self.value(key, dict, optional=True)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def mapping(self, key: str) -> dict[str, Any]:
        """A JSON object kept as plain data (a shape another module owns, e.g. a model source)."""
        return dict(self.value(key, dict))

    def optional_mapping(self, key: str) -> dict[str, Any] | None:
        value = self.value(key, dict, optional=True)
        return None if value is None else dict(value)

    def counts(self, key: str) -> dict[str, int]:
        """An object of integer counts by name (folded per step, per op)."""
        fields = self.section(key)
        return {name: fields.integer(name) for name in fields.data}

    def numbers(self, key: str) -> dict[str, float]:
        """An object of numbers by name (seconds per phase)."""
        fields = self.section(key)
        return {name: fields.number(name) for name in fields.data}

    def items(self, key: str, *types: type) -> tuple[Any, ...]:
        """A JSON array whose items are each one of `types`."""
        items = self.value(key, list)
        for i, item in enumerate(items):
            if not is_json_type(item, types):
                raise invalid(f"{self.where}.{key}[{i}]", json_types(types), item)
        return tuple(items)

    def texts(self, key: str) -> tuple[str, ...]:
        """A JSON array of strings."""
        return self.items(key, str)

    def sections(self, key: str) -> tuple[Fields, ...]:
        """A JSON array of objects."""
        items = self.value(key, list)
        return tuple(Fields(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items))


def written(pairs: Iterable[tuple[str, object]], absent: frozenset[str]) -> dict[str, object]:
    """A details object's JSON: `pairs` in order, less the keys the record was read without."""
    return {key: value for key, value in pairs if key not in absent}


def invalid(path: str, want: str, value: object) -> ResnetOptError:
    """The one line for a details value of the wrong type, naming its key path."""
    return ResnetOptError(
        f"not a valid resnet-opt manifest ({path} must be {want}, not {json_type_of(value)})"
    )
