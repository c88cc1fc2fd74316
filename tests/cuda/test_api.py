"""Every CUDA call the runner makes exists in the released libraries, and so does every name
the doubles offer: pycuda against its pinned 2026.1 API (tests/cuda_api_pins.py), cuda-python
against the installed cuda-bindings package (it installs without a driver).

The runner reaches pycuda and cuda-bindings only through the Protocols in resnet_opt.cuda (mypy
strict checks each call against them); these tests check the Protocols against the libraries.
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from resnet_opt.cuda import graphs, pycuda_api
from tests.cuda_api_pins import PYCUDA_CLASSES, PYCUDA_DRIVER_NAMES
from tests.fakes.fake_gpu import FakeGpu

ROOT = Path(__file__).parents[2] / "resnet_opt"

real_runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-bindings not installed")
real_driver = pytest.importorskip("cuda.bindings.driver", reason="cuda-bindings not installed")


def members(protocol: type) -> set[str]:
    """The names a Protocol declares (methods, properties, attributes, and `__int__`)."""
    names = {n for n in vars(protocol) if not n.startswith("_")}
    names |= set(getattr(protocol, "__annotations__", {}))
    return names | ({"__int__"} & set(vars(protocol)))


def params(function: Any) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.name != "self"]


@pytest.mark.parametrize(
    ("protocol", "pycuda_class"),
    [
        (pycuda_api.Device, "Device"),
        (pycuda_api.Context, "Context"),
        (pycuda_api.Stream, "Stream"),
        (pycuda_api.DeviceAllocation, "DeviceAllocation"),
    ],
)
def test_every_pycuda_method_the_runner_calls_exists(protocol: type, pycuda_class: str) -> None:
    assert members(protocol) <= PYCUDA_CLASSES[pycuda_class], protocol


def test_every_pycuda_function_the_runner_calls_exists() -> None:
    assert members(pycuda_api.Driver) <= PYCUDA_DRIVER_NAMES
    # what the issue found: no released pycuda can capture a stream or make a graph
    assert not {"begin_capture", "end_capture"} & PYCUDA_CLASSES["Stream"]
    assert not {"Graph", "GraphExec"} & PYCUDA_DRIVER_NAMES


def test_every_cuda_bindings_call_exists_with_these_parameters() -> None:
    protocol = graphs.CudaDriver
    for name in members(protocol):
        assert hasattr(real_driver, name), f"cuda.bindings.driver has no {name}"
        declared = getattr(protocol, name, None)
        if callable(declared) and not isinstance(declared, type):
            assert params(declared) == params(getattr(real_driver, name)), name
    modes = real_driver.CUstreamCaptureMode
    assert hasattr(modes, "CU_STREAM_CAPTURE_MODE_THREAD_LOCAL")
    assert hasattr(real_driver.CUresult, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED")


def test_only_the_cuda_layer_imports_pycuda_or_cuda_bindings() -> None:
    """Everything else goes through its typed Protocols, so mypy sees every call."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "cuda":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                names = [str(a.value) for a in node.args if isinstance(a, ast.Constant)]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in names
                if isinstance(n, str) and (n.startswith("pycuda") or n.startswith("cuda."))
            ]
    assert offenders == []


def test_the_doubles_offer_only_real_names() -> None:
    from tests.fakes import fake_cudart, fake_pycuda

    gpu = FakeGpu()
    package, driver = fake_pycuda.make_modules(gpu)
    public = {n for n in vars(driver) if not n.startswith("_")}
    assert public <= PYCUDA_DRIVER_NAMES, public - PYCUDA_DRIVER_NAMES
    for name, allowed in PYCUDA_CLASSES.items():
        cls = getattr(driver, name)
        offered = {n for n in vars(cls) if not n.startswith("_")}
        assert offered <= allowed, (name, offered - allowed)
    assert package.VERSION == (2026, 1)
    modules = fake_cudart.make_modules(gpu)
    for key, real_module in (
        ("cuda.bindings.runtime", real_runtime),
        ("cuda.bindings.driver", real_driver),
    ):
        fake_module = modules[key]
        for name in (n for n in vars(fake_module) if not n.startswith("_")):
            assert hasattr(real_module, name), (key, name)
            fake, real = getattr(fake_module, name), getattr(real_module, name)
            if inspect.isfunction(fake):
                assert params(fake) == params(real), name
            else:
                assert fake is real, name  # the enums are the real ones
    assert set(fake_cudart.DRIVER_FUNCTION_SINCE) == {
        n for n in members(graphs.CudaDriver) if n.startswith("cu")
    }


def test_info_shows_cuda_python() -> None:
    """`--cuda-graph` needs cuda-python: `info` says whether it is there."""
    import json

    from typer.testing import CliRunner

    from resnet_opt.cli import app

    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    accelerators = {p["name"]: p for p in json.loads(result.stdout)["accelerators"]}
    bindings = sys.modules["cuda.bindings"]
    assert accelerators["cuda.bindings"]["version"] == bindings.__version__
