"""What to do on a Jetson when TensorRT, pycuda or cuda-python does not import.

On a Jetson, TensorRT's Python bindings come from JetPack as a system package
(/usr/lib/python3.X/dist-packages/tensorrt, apt `python3-libnvinfer`), never from pip: PyPI's
`tensorrt` is built for x86_64 and Arm servers and its library package does not install on Tegra.
So `pip install 'resnet-opt[tensorrt]'` is the wrong advice there, and the usual causes are
different: a venv made without --system-site-packages, a venv on another Python than JetPack's
bindings were built for, or the bindings not installed at all. pycuda has no wheels and compiles
on the device, which needs nvcc on PATH. Each case gets its own sentence.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from resnet_opt.jetson import facts

JETSON_INDEX = "https://pypi.jetson-ai-lab.io/jp6/cu126"  # jetson-containers' JetPack 6 wheels


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def _sees_system_packages() -> bool:
    """Whether this interpreter's sys.path includes the system dist-packages folder."""
    return any(
        p.rstrip("/").endswith("dist-packages") and p.startswith("/usr/lib/") for p in sys.path
    )


def system_tensorrt(root: Path, python: tuple[int, int]) -> Path | None:
    """JetPack's TensorRT bindings for `python` under root, if installed."""
    folder = root / f"usr/lib/python{python[0]}.{python[1]}/dist-packages/tensorrt"
    return folder if folder.is_dir() else None


def other_system_tensorrt(root: Path) -> Path | None:
    """JetPack's TensorRT bindings for any Python (to say which Python to use instead)."""
    for folder in sorted((root / "usr/lib").glob("python3.*/dist-packages/tensorrt")):
        return folder
    return None


def jetson_advice(
    module: str,
    *,
    root: Path | None = None,
    python: tuple[int, int] | None = None,
    in_venv: bool | None = None,
    sees_system: bool | None = None,
) -> str | None:
    """The advice for a missing `module` on a Jetson; None off a Jetson (the pip advice holds)."""
    root = facts.SYSTEM_ROOT if root is None else root
    if not facts.is_jetson(root):
        return None
    python = python or (sys.version_info[0], sys.version_info[1])
    in_venv = _in_venv() if in_venv is None else in_venv
    sees_system = _sees_system_packages() if sees_system is None else sees_system
    top = module.split(".")[0]
    here = f"python{python[0]}.{python[1]}"
    if top == "tensorrt":
        found = system_tensorrt(root, python)
        if found is not None and in_venv and not sees_system:
            return (
                f"on a Jetson TensorRT comes from JetPack, and your venv cannot see JetPack's "
                f"TensorRT at /{found.parent.relative_to(root)}: recreate the venv with "
                f"{here} -m venv --system-site-packages (never pip install tensorrt on a Jetson)"
            )
        if found is None:
            other = other_system_tensorrt(root)
            if other is not None:
                theirs = other.parent.parent.name  # python3.10
                where = other.parent.relative_to(root)
                return (
                    f"JetPack's TensorRT is built for {theirs} (/{where}), this is {here}: "
                    f"make the venv with {theirs} -m venv --system-site-packages"
                )
            return (
                "JetPack's TensorRT Python bindings are not installed: sudo apt install "
                "python3-libnvinfer (part of nvidia-jetpack; JetPack 6.1+ ships TensorRT 10.3, "
                "JetPack 6.0 ships 8.6, which resnet-opt does not support); never pip install "
                "tensorrt on a Jetson"
            )
        return None  # bindings visible but broken: the import error itself says more
    if top == "pycuda":
        return (
            "pycuda has no wheels and compiles on the device: "
            "export PATH=/usr/local/cuda/bin:$PATH and sudo apt install python3-dev, then "
            "pip install '.[jetson]' from your resnet-opt checkout (or take a "
            f"prebuilt wheel: pip install pycuda --extra-index-url {JETSON_INDEX} on JetPack 6)"
        )
    if top == "cuda":
        return (
            "NVIDIA's cuda-python bindings come from PyPI's aarch64 wheels: pip install "
            "'.[jetson]' from your resnet-opt checkout (cuda-bindings 12.x on JetPack 6, 13.x "
            "on JetPack 7)"
        )
    return None


def install_advice(
    module: str, *, machine: str | None = None, driver_cuda: str | None = None
) -> str | None:
    """What to install for a missing TensorRT, pycuda or cuda-python: on a Jetson the JetPack
    advice; on another aarch64 machine (an Arm server) for TensorRT, that the TensorRT extras
    are x86-only; on x86_64 the extra of the driver's CUDA major (`driver_cuda`, default: read
    from the driver), from the checkout (resnet-opt is not on the package index)."""
    advice = jetson_advice(module)
    if advice is not None:
        return advice
    top = module.split(".")[0]
    machine = machine or platform.machine()
    if top == "tensorrt" and machine.lower() in ("aarch64", "arm64"):
        return (
            "resnet-opt's TensorRT extras install TensorRT on x86_64 only; on an Arm server "
            "install it directly: pip install 'tensorrt>=10,<12' pycuda (on a Jetson TensorRT "
            "comes from JetPack)"
        )
    if top not in ("tensorrt", "pycuda", "cuda"):
        return None
    from resnet_opt.core.cuda_driver import CUDA_EXTRAS, driver_cuda_version, extra_for_driver

    if driver_cuda is None:
        driver_cuda = driver_cuda_version()
    choice = extra_for_driver(driver_cuda)
    if choice.extra is None:
        extras = " or ".join(f"'.[{e}]' (CUDA {m} driver)" for m, e in CUDA_EXTRAS.items())
        return f"install from your resnet-opt checkout: pip install {extras} ({choice.why})"
    return f"install from your resnet-opt checkout: pip install '.[{choice.extra}]' ({choice.why})"
