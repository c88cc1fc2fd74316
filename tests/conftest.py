"""Shared fixtures: tiny models and data so the suite stays fast."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from resnet_opt.core.contract import Interpolation, PreprocessContract
from tests.collection import holds_gpu_tests, missing_dev_packages

os.environ.setdefault("RESNET_OPT_DEBUG", "0")

# this file imports only what a device has (the base install and pytest): the gpu tests import it

_left_out: dict[str, list[str]] = {}  # test module -> the dev-only packages it lacks here


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out a test module that needs a dev-only package this environment lacks (a GPU
    user's venv has no torch or hypothesis); a module holding gpu tests is never left out."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if holds_gpu_tests(collection_path):
        return None
    missing = missing_dev_packages(collection_path)
    if missing:
        _left_out[str(collection_path)] = missing
        return True
    return None


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    if not _left_out:
        return []
    needs = sorted({p for ps in _left_out.values() for p in ps})
    return [
        f"{len(_left_out)} test modules not collected: they need {', '.join(needs)} "
        "(dev tools, not installed here: pip install -e '.[dev]')"
    ]


# the preprocessing of make_tiny_cnn's default model (3×8×8 input, 4 classes)
TINY_CONTRACT = PreprocessContract(
    input_size=8,
    channels=3,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    resize=None,
    crop=None,
    interpolation=Interpolation.BILINEAR,
    num_classes=4,
    labels=("a", "b", "c", "d"),
)


def make_tiny_cnn(
    path: Path,
    *,
    channels: int = 3,
    size: int = 8,
    classes: int = 4,
    seed: int = 0,
    batch: int | str = "N",
) -> Path:
    """Conv→Relu→GlobalAveragePool→Flatten→Gemm written with onnx.helper (no torch)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (6, channels, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    fc_w = rng.normal(0, 0.3, (classes, 6)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, classes).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((w, "w"), (b, "b"), (fc_w, "fc_w"), (fc_b, "fc_b"))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def gpu_tests_missing(*, torch: bool = False, cuda_python: bool = False) -> str | None:
    """Why the real-TensorRT tests cannot run here (None: they can): TensorRT, a CUDA GPU and
    pycuda; cuda-python (cuda-bindings) for CUDA graphs, and torch when a test exports a model
    (the gpu tests make theirs with onnx.helper). The reason becomes the skip reason."""
    from resnet_opt.deps import probe
    from resnet_opt.tensorrt.device import probe_gpu, probe_tensorrt

    version, problem = probe_tensorrt()
    if version is None:
        return f"TensorRT is not installed here ({problem})"
    gpu = probe_gpu()
    if gpu.name is None:
        return f"no CUDA GPU here ({gpu.problem})"
    version, problem = probe("pycuda.driver")
    if version is None:
        return f"pycuda is not available ({problem})"
    if cuda_python:
        version, problem = probe("cuda.bindings.driver")
        if version is None:
            return f"CUDA graphs need cuda-python (cuda-bindings), not available ({problem})"
    if torch:
        version, problem = probe("torch")
        if version is None:
            return f"exporting the models needs torch ({problem})"
    return None


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    return make_tiny_cnn(tmp_path / "tiny.onnx")


@pytest.fixture
def tiny_contract() -> PreprocessContract:
    return TINY_CONTRACT


def write_image_folder(
    root: Path, classes: dict[str, int], *, size: int = 12, mode: str = "RGB", seed: int = 0
) -> Path:
    """An ImageFolder tree of random PNGs: {class name: number of images}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).convert(mode).save(folder / f"{i:03d}.png")
    return root


# -- exported models, shared by the whole session (treat the files as read-only) ------------------


@pytest.fixture(scope="session")
def default_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled default model (ResNet-20 on digits) exported once, with its manifest."""
    from resnet_opt.pipeline.export import ExportOptions, export

    path = tmp_path_factory.mktemp("default-export") / "resnet20-digits.onnx"
    export(None, path, ExportOptions())
    return path


def save_torchvision_checkpoint(name: str, path: Path, *, seed: int = 0) -> Path:
    """A seeded random torchvision model saved the way training scripts do: a dict holding the
    state_dict under `model_state_dict`, keys prefixed `module.` (DataParallel)."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(name, weights=None)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 90, "model_state_dict": state}, path)
    return path


@pytest.fixture(scope="session")
def torchvision_onnx(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`torchvision_onnx("resnet18")`: that architecture exported once per session from a
    (seeded, random) state_dict checkpoint, dynamic batch, with its manifest."""
    from resnet_opt.pipeline.export import ExportOptions, export

    exported: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in exported:
            folder = tmp_path_factory.mktemp(f"export-{name}")
            checkpoint = save_torchvision_checkpoint(name, folder / f"{name}-checkpoint.pt")
            path = folder / f"{name}.onnx"
            export(name, path, ExportOptions(weights=str(checkpoint)))
            exported[name] = path
        return exported[name]

    return get


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tensorrt_stubs() -> Path:
    """typings/, the repaired tensorrt-stubs copy mypy reads (pyproject's mypy_path), written
    from the installed tensorrt-stubs by scripts/tensorrt_stubs.py: generated, not committed."""
    try:
        metadata.version("tensorrt-stubs")
    except metadata.PackageNotFoundError:
        pytest.skip(
            "tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs==10.13.0.35.1)"
        )
    result = subprocess.run(
        [sys.executable, "scripts/tensorrt_stubs.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ROOT / "typings"
