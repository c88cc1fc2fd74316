"""A manifest's `details` are read through the stage's typed details class, never by key
(ARCHITECTURE.md, "The artifact contract").

Every module is read with `ast`: outside the modules that define the details classes, no code
touches `<manifest>.details` (the attribute of anything named like a manifest) or takes a
`"details"` section out of a manifest's JSON or history by key. A reader asks the details
module instead: `manifest.read_details(FoldDetails)`, `runners.loaders.build_details`,
`core.build_details.built_backend`, `core.details.detail_of` for one key, `stage_details.steps_of`
for the history. So a renamed or retyped key has one home, and a malformed one is refused with
the file and the key wherever it is read. Objects whose `.details` are not a manifest's are
named in NOT_MANIFESTS, with why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "resnet_opt"

# the modules that define or hold details: they read the JSON by key, once, for everyone
DETAILS_MODULES = {
    "core/details.py": "the shared reader (Fields, detail_of)",
    "core/manifest.py": "the manifest itself: writes and carries the details as JSON",
    "core/stage_details.py": "export, import, fold and quantize details classes",
    "core/quantization_details.py": "details['quantization'] of an int8 quantize",
    "core/build_details.py": "what every build's details share (backend, CPU, weights)",
    "tensorrt/build_details.py": "the TensorRT build's details class",
}
# (module, line text) reads by key that are allowed, with why: none today
ALLOWED: dict[tuple[str, str], str] = {}


# objects with a `.details` that is not a manifest's, by the name they go by, and why
NOT_MANIFESTS = {
    "info": "RunnerInfo.details: what a runner reports about itself (bench records it)",
    "calib": "CalibrationResult.details: a typed CalibrationRun handed to the quantize details",
    "step": "stage_details.HistoryStep.details: handed whole to the step's typed reader",
}


def _holder(node: ast.expr) -> str:
    """The name the object whose `.details` is read goes by (`self.manifest` -> manifest)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ast.unparse(node)


def _is_details_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == "details"


def _takes_details_section(node: ast.AST) -> bool:
    """`x["details"]` or `x.get("details")`: a manifest's JSON or history entry, by key."""
    if isinstance(node, ast.Subscript):
        return _is_details_text(node.slice)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and bool(node.args)
        and _is_details_text(node.args[0])
    )


def key_reads(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for every place `source` reads manifest details around their classes."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "details"
            and _holder(node.value) not in NOT_MANIFESTS
        ):
            yield node.lineno, f"{ast.unparse(node)} (read it through its details class)"
        elif isinstance(node, ast.expr) and _takes_details_section(node):
            yield node.lineno, f'{ast.unparse(node)} (a "details" section taken by key)'


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).as_posix() not in DETAILS_MODULES
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_reads_manifest_details_by_key(path: Path) -> None:
    name = path.relative_to(PACKAGE).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [
        f"{name}:{line}: {what}"
        for line, what in key_reads(path.read_text(encoding="utf-8"))
        if (name, lines[line - 1].strip()) not in ALLOWED
    ]
    assert not found, "\n".join(found)


def test_the_details_modules_exist() -> None:
    for name in DETAILS_MODULES:
        assert (PACKAGE / name).is_file(), name


@pytest.mark.parametrize(
    "code",
    [
        'backend = manifest.details.get("backend")',
        "d = item.manifest.details",
        'gpu = self.manifest.details["gpu"]',
        'x = parent_manifest.details["batchnorm"]',
        'counts = parent.details.get("batchnorm")',
        "details = {**built.details, 'engine_cache': {}}",
        'for entry in history: d = entry.get("details")',
        'd = data["details"]["runner"]',
    ],
)
def test_the_check_finds_a_read_by_key(code: str) -> None:
    assert list(key_reads(code)), code


@pytest.mark.parametrize(
    "code",
    [
        'provider = info.details.get("provider")',  # a runner's info, not a manifest
        'name = self.info.details["device_name"]',
        "quant = quantization_of(step.details, step.artifact)",
        "built = manifest.read_details(FoldDetails)",
        "copied = dataclasses.replace(manifest, details=new.to_dict())",
    ],
)
def test_the_check_leaves_other_details_alone(code: str) -> None:
    assert not list(key_reads(code)), code
