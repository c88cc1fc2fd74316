"""The gpu tests collect where a GPU user runs them: a fresh venv made as the README tells a GPU
user (the checkout installed with the `gpu-test` extra: no torch, no hypothesis, no dev tools),
`pytest -m gpu --collect-only` there: no error, every gpu test listed.

TensorRT and pycuda cannot be installed here (TensorRT's libraries come from NVIDIA's index,
pycuda compiles against CUDA), so the venv has the base install and `gpu-test` only; the
TensorRT extras add nothing the gpu tests import at collection (TensorRT, pycuda and
cuda-python are imported inside the tests, which skip without them). Needs PyPI (pip's cache
keeps it short after the first run); skipped when PyPI is unreachable. Never
`--system-site-packages`: that would let this venv see torch.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

from tests.collection import DEV_ONLY, holds_gpu_tests

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _pypi_reachable() -> bool:
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=5).close()
    except OSError:
        return False
    return True


def _gpu_test_ids() -> set[str]:
    """The gpu test modules, by path under tests/: those marked with pytest.mark.gpu."""
    return {p.relative_to(TESTS).as_posix() for p in TESTS.rglob("test_*.py") if holds_gpu_tests(p)}


def test_gpu_test_modules_and_conftest_import_no_dev_tool_at_their_top() -> None:
    """Fast and offline: the static half of the check below."""
    from tests.collection import _imports

    modules = [TESTS / "conftest.py", *(TESTS / n for n in sorted(_gpu_test_ids()))]
    assert len(modules) >= 3
    for path in modules:
        tops = {name.split(".")[0] for name in _imports(path)}
        assert not tops & DEV_ONLY, (path.name, tops & DEV_ONLY)


def test_a_missing_dev_tool_leaves_a_module_out_and_says_so(tmp_path: Path) -> None:
    """In a venv without hypothesis, a module importing it is left out, not an error."""
    from tests import collection

    module = tmp_path / "test_x.py"
    module.write_text("import hypothesis\nimport numpy\n")
    gpu = tmp_path / "test_y.py"
    gpu.write_text("import hypothesis\nimport pytest\npytestmark = pytest.mark.gpu\n")
    present = collection.missing_dev_packages(module)
    assert present == ([] if collection.installed("hypothesis") else ["hypothesis"])
    assert collection.holds_gpu_tests(gpu) and not collection.holds_gpu_tests(module)
    tree = ast.parse("if TYPE_CHECKING:\n    import torch\ntry:\n    import torch\nexcept: pass\n")
    assert collection._top_level_imports(tree) == set()


@pytest.mark.slow
@pytest.mark.network
def test_a_fresh_gpu_test_venv_collects_the_gpu_tests(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # README, "GPU tests": from the checkout, the base install plus gpu-test (and a TensorRT
    # extra, which cannot install here)
    install = [str(python), "-m", "pip", "install", "--quiet", f"{ROOT}[gpu-test]"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0 and not _pypi_reachable():
        pytest.skip("PyPI is unreachable from here: cannot build the venv")
    assert done.returncode == 0, done.stderr[-3000:]
    probe = (
        "import importlib.util as u; print([m for m in ('torch', 'hypothesis') if u.find_spec(m)])"
    )
    leaked = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env)
    assert leaked.stdout.strip() == "[]", leaked.stdout  # the venv has neither
    collect = [str(python), "-m", "pytest", "-m", "gpu", "--collect-only", "-q"]
    collect += ["-p", "no:cacheprovider"]
    done = subprocess.run(collect, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert not re.search(r"\berrors?\b", output.splitlines()[-1]), output[-3000:]
    listed = {line.split("::")[0].removeprefix("tests/") for line in done.stdout.splitlines()}
    assert _gpu_test_ids() <= listed, (_gpu_test_ids(), output[-2000:])
    assert "not collected: they need" in output and "hypothesis" in output
    assert re.search(r"(\d+)/\d+ tests collected", output) is not None
