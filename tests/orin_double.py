"""TensorRT's double as an Orin (GPU + 2 DLA cores), installable in a fresh process.

`bench --concurrent` runs each engine in a spawned process; `install` is the initializer the
tests pass so that each child sees the same double the parent built the engines with.
"""

from __future__ import annotations

import importlib.machinery
import sys

import pytest

from tests.fakes.fake_gpu import FakeGpu
from tests.fakes.fake_gpu import install as install_double


def orin() -> FakeGpu:
    """An Orin on JetPack 6.1/6.2: TensorRT 10.3, a CUDA 12.6 driver, and the cuda-bindings 12.9
    the jetson extra installs (the newest 12.x on PyPI)."""
    return FakeGpu(
        driver_cuda=(12, 6),
        bindings_cuda=(12, 9),
        tensorrt_version="10.3.0.30",
        gpu_name="Orin",
        compute_capability=(8, 7),
        integrated=True,
        dla_cores=2,
    )


def install_into(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    gpu = orin()
    install_double(monkeypatch, gpu)
    # bench asks importlib whether tensorrt is installed: the double is, with an origin
    sys.modules["tensorrt"].__spec__ = importlib.machinery.ModuleSpec(
        "tensorrt", None, origin="double"
    )
    return gpu


def install() -> None:
    """The spawned child's initializer (its monkeypatch lives as long as the process)."""
    install_into(pytest.MonkeyPatch())
