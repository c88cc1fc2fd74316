"""A pytest plugin that puts the doubles in place of TensorRT, pycuda, cuda-python and libcuda
for a whole session: `pytest -p tests.fakes.gpu_plugin -m gpu` runs the gpu tests' own code
(quantize, build, run, CUDA graphs, DLA) against the doubles, so that they are known to work
before a device runs them for real. RESNET_OPT_FAKE_GPU picks the machine: `gpu` (a discrete
sm 8.6 GPU, TensorRT 10.3), `orin` (Orin with 2 DLA cores, TensorRT 10.3) or `orin11`
(TensorRT 11.4.1)."""

from __future__ import annotations

import os

import pytest

from tests.fakes.fake_gpu import FakeGpu, install

MACHINES = {
    "gpu": {},
    "orin": {  # JetPack 6.1/6.2: CUDA 12.6 driver, cuda-bindings 12.9 (the jetson extra)
        "driver_cuda": (12, 6),
        "bindings_cuda": (12, 9),
        "gpu_name": "Orin",
        "compute_capability": (8, 7),
        "integrated": True,
        "dla_cores": 2,
        "sm_count": 16,
    },
    "orin11": {  # JetPack 7: CUDA 13 driver and bindings
        "tensorrt_version": "11.4.1",
        "driver_cuda": (13, 0),
        "bindings_cuda": (13, 5),
        "gpu_name": "Orin",
        "compute_capability": (8, 7),
        "integrated": True,
        "dla_cores": 2,
        "sm_count": 16,
    },
}

_patch = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    machine = MACHINES[os.environ.get("RESNET_OPT_FAKE_GPU", "gpu")]
    install(_patch, FakeGpu(**machine))  # type: ignore[arg-type]


def pytest_unconfigure(config: pytest.Config) -> None:
    _patch.undo()
