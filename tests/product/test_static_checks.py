"""The team's code standards as a test, so CI enforces them: ruff (lint + format) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_and_format() -> None:
    pytest.importorskip("ruff", reason="ruff is not installed (dev extra)")
    lint = _run(sys.executable, "-m", "ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.usefixtures("tensorrt_stubs")
def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (dev extra)")
    result = _run(sys.executable, "-m", "mypy", "resnet_opt", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
