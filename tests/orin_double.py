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
        sm_count=16,  # AGX Orin; an Orin NX / Nano has 8
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


# -- an Orin whose engines slow each other down, for bench --concurrent's common window ----------

CONTENTION_ENV = "RESNET_OPT_TEST_CONTENTION"  # "<marker file>:<GPU iterations>"
GPU_LATENCY_S = 0.025
DLA_LATENCY_S = {True: 0.200, False: 0.050}  # while the GPU engine runs, and after it stopped


def install_contended() -> None:
    """The spawned child's initializer for a contended Orin: the GPU engine takes 25 ms an
    inference and, after its set number of inferences, removes the marker file; a DLA engine
    takes 200 ms while the marker exists (the GPU's traffic slows it down, as the shared memory
    bus does on a real Orin) and 50 ms once the GPU engine stopped. The sleeps are lower bounds:
    the double's own work (ONNX Runtime on the CPU) adds to them."""
    import os
    import time
    from pathlib import Path

    marker_text, _, count_text = os.environ[CONTENTION_ENV].rpartition(":")
    marker, count = Path(marker_text), int(count_text)
    gpu = install_into(pytest.MonkeyPatch())
    done = [0]

    def hook(dla_core: int | None) -> None:
        if dla_core is None:
            time.sleep(GPU_LATENCY_S)
            done[0] += 1
            if done[0] == count:
                marker.unlink(missing_ok=True)
        else:
            time.sleep(DLA_LATENCY_S[marker.exists()])

    gpu.execute_hook = hook
