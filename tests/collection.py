"""Which test modules this environment can import: so that `pytest -m gpu` collects in the venv
a GPU user makes (the base install, a TensorRT extra and `gpu-test`: no torch, no hypothesis,
no dev tools).

pytest imports every module under tests/ before `-m gpu` deselects anything, so one module
importing hypothesis at its top would stop the whole collection with an error. A module whose
top-level imports (followed through the tests.* helpers it imports) need a dev-only package that
is not installed is left out of collection instead, and the session header names them and why.
Only dev-only packages count: a module missing anything else still fails to collect, loudly. A
module that holds gpu tests is never left out: it must import only what a device has
(tests/product/test_gpu_collection.py checks this in a fresh venv). Stdlib only: conftest
imports this.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# import names of the packages only the dev extra brings (pyproject's `dev`, `export`, `openvino`)
DEV_ONLY = frozenset(
    {
        "hypothesis", "torch", "torchvision", "onnxscript", "sklearn", "packaging",
        "check_jsonschema", "ruamel", "openvino", "ruff", "mypy", "timm",
    }
)  # fmt: skip
GPU_MARK = "pytest.mark.gpu"


def _top_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module itself is imported (not those inside functions)."""
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            continue  # a guarded import is the module's own fallback
    return names


@cache
def _imports(path: Path) -> frozenset[str]:
    """Top-level imports of `path` and of the tests.* modules it imports, transitively."""
    found = _top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
    result = set(found)
    for name in found:
        if name == "tests" or name.startswith("tests."):
            helper = TESTS.parent.joinpath(*name.split("."))
            helper = helper / "__init__.py" if helper.is_dir() else helper.with_suffix(".py")
            if helper.is_file() and helper != path:
                result |= _imports(helper)
    return frozenset(result)


@cache
def installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


@cache
def holds_gpu_tests(path: Path) -> bool:
    """Whether the module uses `pytest.mark.gpu` (in code, not in a string)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and ast.unparse(node) == GPU_MARK:
            return True
    return False


def missing_dev_packages(path: Path) -> list[str]:
    """The dev-only packages `path` imports at its top that are not installed here."""
    tops = {name.split(".")[0] for name in _imports(path)}
    return sorted(p for p in tops & DEV_ONLY if not installed(p))
