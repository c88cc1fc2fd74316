"""mypy checks the TensorRT layer against the tensorrt-stubs API, through a repaired copy.

The stubs are TensorRT 10.13's Python API (tensorrt-stubs on PyPI). `typings/` holds them with
two syntax repairs (scripts/tensorrt_stubs.py, run by the `tensorrt_stubs` fixture: the copy is
generated, not committed); pyproject's `mypy_path` points mypy there, so a misspelled TensorRT
attribute or a wrong signature in our calls is a type error here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = [
    "resnet_opt/tensorrt",
    "resnet_opt/runners/tensorrt.py",
    "resnet_opt/pipeline/build_tensorrt.py",
    "resnet_opt/pipeline/build.py",
]


def _stubs_version() -> str | None:
    try:
        return metadata.version("tensorrt-stubs")
    except metadata.PackageNotFoundError:
        return None


def _mypy(*paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *paths],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.usefixtures("tensorrt_stubs")
def test_tensorrt_layer_type_checks_against_the_stubs() -> None:
    pytest.importorskip("mypy", reason="mypy is a dev dependency")
    result = _mypy(*LAYER)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("tensorrt_stubs")
def test_a_misspelled_tensorrt_call_fails_the_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is a dev dependency")
    probe = tmp_path / "probe.py"  # checked with the project's config (cwd: the repo root)
    probe.write_text(
        "import tensorrt as trt\n\n\n"
        "def f(config: trt.IBuilderConfig) -> None:\n"
        "    config.set_flag(trt.BuilderFlag.FP61)\n"
        "    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE)\n"
    )
    result = _mypy(str(probe))
    assert result.returncode == 1
    assert 'has no attribute "FP61"' in result.stdout
    assert "Missing positional argument" in result.stdout


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/tensorrt_stubs.py", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.skipif(
    _stubs_version() is None,
    reason="tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs==10.13.0.35.1)",
)
def test_the_generated_copy_is_repaired_typed_and_complete(tmp_path: Path) -> None:
    target = tmp_path / "typings"
    assert _script("--check", "--target", str(target)).returncode == 1  # missing: stale
    written = _script("--target", str(target))
    assert written.returncode == 0, written.stdout + written.stderr
    assert _script("--check", "--target", str(target)).returncode == 0
    assert (target / "tensorrt" / "py.typed").is_file()
    assert (target / "tensorrt_bindings" / "py.typed").is_file()
    assert (target / "LICENSE").is_file()
    for stub in target.rglob("*.pyi"):
        ast.parse(stub.read_text(encoding="utf-8"), filename=str(stub))  # the repairs hold
    again = _script("--target", str(target))
    assert "wrote 0 of" in again.stdout  # unchanged files are not rewritten (mypy's cache)


def _stub_members(typings: Path, cls: str) -> set[str]:
    """Member names of an enum class in the typed TensorRT API (typings/)."""
    text = (typings / "tensorrt_bindings" / "tensorrt.pyi").read_text()
    body = text.split(f"\nclass {cls}:", 1)[1].split("\nclass ", 1)[0]
    return set(re.findall(rf"^    (\w+): typing.ClassVar\[{cls}\]", body, re.M))


def test_flag_names_the_plan_uses_exist_in_tensorrt_10(tensorrt_stubs: Path) -> None:
    """`builder` sets flags by name (getattr); every name the plans produce must be real."""
    from tests.fakes.fake_gpu import FakeGpu
    from tests.fakes.fake_tensorrt import make_module

    builder_flags = _stub_members(tensorrt_stubs, "BuilderFlag")
    assert {"FP16", "INT8", "GPU_FALLBACK", "VERSION_COMPATIBLE"} <= builder_flags
    assert "STRONGLY_TYPED" in _stub_members(tensorrt_stubs, "NetworkDefinitionCreationFlag")
    assert "SAME_COMPUTE_CAPABILITY" in _stub_members(tensorrt_stubs, "HardwareCompatibilityLevel")
    # the double has no flag TensorRT 10.13 lacks, and its 11.x drops the removed ones
    fake10 = make_module(FakeGpu(tensorrt_version="10.13.0"))
    assert set(fake10.BuilderFlag.__members__) <= builder_flags
    fake11 = make_module(FakeGpu(tensorrt_version="11.0.0"))
    assert not {"FP16", "INT8", "BF16", "FP8"} & set(fake11.BuilderFlag.__members__)
    assert not hasattr(fake11, "IInt8EntropyCalibrator2")
