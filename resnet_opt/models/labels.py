"""A model's class labels as users have them: one name per line, or ImageNet's WordNet-id lines.

ImageNet ships its classes as `n01440764 tench, Tinca tinca` lines, one per class in index
order (`LOC_synset_mapping.txt`, Caffe's `synset_words.txt`), or as bare ids (`synsets.txt`).
Either becomes the class names (the text after the id) plus the WordNet ids, and data classes
are then matched by either: a folder `n01440764/` or `tench/`. A plain list is one name per
line (or a comma list on the command line). Names must be unique in a plain list (a data class
is matched by name: one of two equal names could never be right); with ids, the ids must be
unique and names may repeat (ImageNet has two "crane" and two "maillot" classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from resnet_opt.errors import ResnetOptError, UsageError

WNID = re.compile(r"^n\d{8}$")
_WNID_LINE = re.compile(r"^(n\d{8})(?:\s+(.*\S))?\s*$")


@dataclass(frozen=True)
class ClassLabels:
    """Class names in index order, and their WordNet ids when the file gave them."""

    names: tuple[str, ...]
    ids: tuple[str, ...] | None = None


def parse_class_labels(text: str, what: str = "--labels") -> ClassLabels:
    """`what` (a file path, or a comma list) as class labels; see the module docstring."""
    lines, source = _lines(text, what)
    if all(_WNID_LINE.match(line) for line in lines):
        ids: list[str] = []
        names: list[str] = []
        for line in lines:
            match = _WNID_LINE.match(line)
            assert match is not None
            ids.append(match.group(1))
            names.append(match.group(2) or match.group(1))
        _unique(ids, source, "WordNet id")
        return ClassLabels(tuple(names), tuple(ids))
    _unique(lines, source, "label")
    return ClassLabels(tuple(lines))


def _unique(values: list[str], source: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise UsageError(
                f"{source}: {what} {value!r} is given twice (classes {seen[value]} and {i}); "
                f"{what}s must be unique"
            )
        seen[value] = i


def _lines(text: str, what: str) -> tuple[list[str], str]:
    path = Path(text)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ResnetOptError(f"{path}: cannot read labels ({exc})") from exc
        while lines and not lines[-1].strip():
            lines.pop()
        labels = [line.strip() for line in lines]
        if not labels or any(not label for label in labels):
            raise ResnetOptError(f"{path}: labels file has empty lines (one label per line)")
        return labels, str(path)
    if "," in text:
        labels = [part.strip() for part in text.split(",")]
        if any(not label for label in labels):
            raise UsageError(f"{what}: empty label in {text!r}")
        return labels, what
    if path.suffix or "/" in text:
        raise ResnetOptError(f"{path}: no such labels file")
    return [text.strip()], what


def match_keys(names: tuple[str, ...], ids: tuple[str, ...] | None) -> dict[str, list[int]]:
    """Every name a data class may go by → the model classes it names: the WordNet id, the
    whole name, and (for ImageNet's 'tench, Tinca tinca') its first synonym."""
    keys: dict[str, list[int]] = {}

    def add(key: str, index: int) -> None:
        hits = keys.setdefault(key, [])
        if index not in hits:
            hits.append(index)

    for i, name in enumerate(names):
        add(name, i)
        if ids is not None:
            add(ids[i], i)
            first = name.split(",")[0].strip()
            if first:
                add(first, i)
    return keys
