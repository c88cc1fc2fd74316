"""The gpu tests' own code runs: `pytest -m gpu` on the doubles of a discrete GPU and of an
Orin with DLA cores (tests/fakes/gpu_plugin.py), in a separate process. A device runs the same
tests against the real libraries; here they would only be skipped, and could rot unseen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(("machine", "skipped"), [("gpu", 2), ("orin", 0)])
def test_the_gpu_tests_pass_on_the_doubles(machine: str, skipped: int) -> None:
    env = {**os.environ, "RESNET_OPT_FAKE_GPU": machine, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.fakes.gpu_plugin", "-m", "gpu", "tests/tensorrt/test_gpu.py"]
    command += ["tests/pipeline/test_bench_gpu.py"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " failed" not in summary and "error" not in summary
    assert (f"{skipped} skipped" in summary) if skipped else ("skipped" not in summary), summary
