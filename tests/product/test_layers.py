"""Imports run downward only, and no two files import each other (ARCHITECTURE.md, "Layers").

Every `import` in the package is read from the source with `ast`, including the ones inside
functions and under `if TYPE_CHECKING:` (a lazy import is still a dependency; only the moment it
runs differs). A module may import modules of its own layer or of a lower one; the file graph
must have no circle.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "resnet_opt"

# module prefix -> layer (higher may import lower, never the reverse); the longest prefix wins.
# The same table, with what each layer is for, is in ARCHITECTURE.md.
LAYERS: dict[str, int] = {
    "resnet_opt.errors": 0,
    "resnet_opt.backends": 0,  # the backend units and their registry: plain data, stdlib only
    "resnet_opt.core": 1,
    "resnet_opt.deps": 1,
    "resnet_opt.console": 1,
    "resnet_opt.jetson": 1,  # file readers (stdlib only): deps' Jetson advice and reports use them
    "resnet_opt.graph": 2,
    "resnet_opt.models": 2,
    "resnet_opt.calibration": 2,
    "resnet_opt.tensorrt": 2,
    "resnet_opt.cuda": 2,
    "resnet_opt.report": 2,
    "resnet_opt.environment": 3,
    "resnet_opt.transforms": 3,  # pure graph rewrites (BN fold, constant folding, FP16 casts)
    "resnet_opt.runners": 4,
    "resnet_opt.calibration.collect": 5,
    "resnet_opt.quantization": 5,
    "resnet_opt.measure": 5,
    "resnet_opt.pipeline": 6,
    "resnet_opt.cli": 7,
    "resnet_opt.api": 7,
    "resnet_opt": 7,  # the package top: the public API, which calls the stages
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported resnet_opt module, line) for every import statement in `module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    yield from imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[str, int]]:
    """(imported resnet_opt module, line) for every import in `source`, a module of `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for name in names:
            if name == "resnet_opt" or name.startswith("resnet_opt."):
                yield name, node.lineno


def test_every_module_has_a_layer() -> None:
    assert "resnet_opt.core.manifest" in MODULES
    missing = [m for m in MODULES if not any(m == p or m.startswith(p + ".") for p in LAYERS)]
    assert not missing


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module: str) -> None:
    mine = layer_of(module)
    upward = [
        f"{module}:{line} imports {target} (layer {layer_of(target)} > {mine})"
        for target, line in sorted(set(imports_of(module)))
        if target in MODULES and layer_of(target) > mine
    ]
    assert not upward, "\n".join(upward)


def test_imports_name_existing_modules() -> None:
    """A moved module leaves no import behind (no shims: every import names a real module)."""
    unknown = [
        f"{module}:{line} imports {target}"
        for module in MODULES
        for target, line in imports_of(module)
        if target not in MODULES
    ]
    assert not unknown, "\n".join(unknown)


def test_core_imports_only_the_standard_library_numpy_and_errors() -> None:
    """The bottom layer every module may use pulls in nothing else, at any depth of a function
    (the backend registry it reads tool names from is stdlib-only itself: the next test)."""
    _only_stdlib_and(
        "resnet_opt.core", ("resnet_opt.errors", "resnet_opt.core", "resnet_opt.backends")
    )


def test_backend_units_are_plain_data() -> None:
    """The registry and the units import nothing but the standard library and each other: the
    parts above them are named by import path, so reading the table imports no framework."""
    _only_stdlib_and("resnet_opt.backends", ("resnet_opt.backends",), numpy=False)


def _only_stdlib_and(package: str, allowed_own: tuple[str, ...], *, numpy: bool = True) -> None:
    found = []
    for module, path in MODULES.items():
        if not module.startswith(package):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                own_ok = name.startswith(allowed_own)
                if not (own_ok or (numpy and top == "numpy") or top in sys.stdlib_module_names):
                    found.append(f"{module}:{node.lineno} imports {name}")
    assert not found, "\n".join(found)


def test_no_import_circle_between_files() -> None:
    graph = {m: {t for t, _ in imports_of(m) if t in MODULES and t != m} for m in MODULES}
    # Tarjan's strongly connected components: any component of two or more files is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not circles, circles


def test_the_check_sees_lazy_and_relative_imports() -> None:
    """The walker itself: imports inside functions, under TYPE_CHECKING and relative ones count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from resnet_opt.runners import base\n"
        "def f():\n    from resnet_opt.pipeline.run import run\n"
        "def g():\n    from ..errors import ResnetOptError\n"
        "import numpy\n"
    )
    found = sorted(imports_in(source, "resnet_opt.core"))
    assert found == [
        ("resnet_opt.errors", 7),
        ("resnet_opt.pipeline.run", 5),
        ("resnet_opt.runners.base", 3),
    ]
    assert layer_of("resnet_opt.pipeline.run") > layer_of("resnet_opt.core.manifest")
    assert layer_of("resnet_opt.calibration.collect") > layer_of("resnet_opt.calibration.data")


def test_architecture_md_states_the_same_layers() -> None:
    """The table a contributor reads is the table this test enforces."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for row in re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, re.M):
        for name in re.findall(r"`([\w.]+)`", row[1]):
            module = name if name == "resnet_opt" else f"resnet_opt.{name}"
            documented[module] = int(row[0])
    assert documented == LAYERS


def test_the_package_imports_no_test_or_benchmark_tooling() -> None:
    """Test tooling (the int8 emulation, `tests/emulate.py`) stays out of the installed package:
    no module of it may import `tests` or `benchmarks`, which are not installed."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{module}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in ("tests", "benchmarks")
            ]
    assert not found, "\n".join(found)
