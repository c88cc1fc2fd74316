"""Tests mirror the package (ARCHITECTURE.md, "Tests"): the tests of
`resnet_opt/<package>/<module>.py` are in `tests/<package>/test_<module>*.py`, so a reader finds
them by the module's path.

The rule, checked for every `test_*.py` under tests/:
- it sits one folder down, in a folder named for a subpackage of resnet_opt or in `product/`
  (the product-wide tests: the command line end to end, hostile input, the import layers, the
  static checks, gpu collection, the hardware report, the Python API, real datasets);
- in a package folder, its name after `test_` is a module of that package, alone or followed by
  `_<what>` (`test_onnxruntime_providers.py` tests `runners/onnxruntime.py`), or a topic listed in
  TOPICS below with why it has no one module;
- every folder that holds tests has an `__init__.py` (the tests import each other as
  `tests.<package>.test_<module>`, and two folders may hold the same file name).
Shared helpers (conftest.py, fakes/, benchkit.py, ...) stay at the tests root.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "resnet_opt"
PRODUCT = "product"

# (package, topic) -> why the tests of that subject have no one module to be named after
TOPICS: dict[tuple[str, str], str] = {
    ("cuda", "api"): "both CUDA libraries' APIs the layer calls: pycuda_api and graphs",
    ("jetson", "bench"): "a Jetson as bench, run, info, compare and the report see it",
    ("quantization", "emulate"): "CPU int8 accuracy by emulation (tests/emulate.py) of the rules",
    ("quantization", "placement"): "the Q/DQ placement of every layout (placement_*.py)",
    ("runners", "details"): "each runner's typed details['runner'] (one class per runner module)",
    ("tensorrt", "findings"): "issue 9's defects, each shown across the TensorRT layer",
    ("tensorrt", "gpu"): "real TensorRT on a real GPU: build, run, cache, DLA (gpu-marked)",
    ("tensorrt", "typing"): "mypy over the TensorRT layer against the tensorrt-stubs API",
}


def subpackages() -> set[str]:
    return {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def modules(package: str) -> set[str]:
    return {p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__"}


def suite() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def misplaced(path: Path, packages: set[str]) -> str | None:
    """Why `path` breaks the rule, or None."""
    parts = path.relative_to(TESTS).parts
    if len(parts) != 2:
        return "not one folder down (tests/<package>/test_<module>.py or tests/product/)"
    folder, name = parts[0], path.stem.removeprefix("test_")
    if folder != PRODUCT and folder not in packages:
        return f"{folder}/ is neither a resnet_opt subpackage nor {PRODUCT}/"
    if not (path.parent / "__init__.py").is_file():
        return f"tests/{folder}/ has no __init__.py"
    if folder == PRODUCT:
        return None
    if any(name == m or name.startswith(f"{m}_") for m in modules(folder)):
        return None
    if (folder, name) in TOPICS:
        return None
    return f"{name!r} is no module of resnet_opt/{folder}/ nor a topic in TOPICS"


def test_every_test_file_is_named_for_its_package_and_module() -> None:
    packages = subpackages()
    files = suite()
    assert len(files) > 50  # the walk found the suite
    wrong = {str(p.relative_to(TESTS)): misplaced(p, packages) for p in files}
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_every_topic_names_a_file_and_is_no_module() -> None:
    """A topic left after its file moved, or one that is a module's name, is a stale entry."""
    present = {(p.parent.name, p.stem.removeprefix("test_")) for p in suite()}
    for package, topic in TOPICS:
        assert (package, topic) in present, (package, topic)
        assert topic not in modules(package), (package, topic)


def test_the_rule_refuses_what_it_should() -> None:
    """The check itself fails on each kind of misplacement (so it cannot pass vacuously)."""
    packages = {"calibration"}
    cases = {
        TESTS / "test_flat.py": "one folder down",
        TESTS / "nowhere" / "test_x.py": "neither a resnet_opt subpackage",
        TESTS / "calibration" / "test_histograms.py": "no module",
        TESTS / "calibration" / "test_histogram_edges.py": None,
        TESTS / PRODUCT / "test_anything.py": None,
    }
    for path, why in cases.items():
        found = misplaced(path, packages)
        assert (found is None) if why is None else (found is not None and why in found), path
