"""resnet-opt: take a trained ResNet to a deployable engine and state what each step cost.

The Python API is one function per stage, the same code as the command line (see
`resnet_opt.api` for the shared signature and the options classes):

    from resnet_opt import export, fold, quantize, build, evaluate, bench

The package top imports nothing heavy: `resnet-opt --help`, `build` and `bench` must run on a
Jetson that has TensorRT and numpy but no torch (ARCHITECTURE.md, "Imports and extras"). So the
API's names load `resnet_opt.api` on first use (PEP 562 module `__getattr__`), not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resnet_opt.core.version import __version__

if TYPE_CHECKING:
    from resnet_opt.api import bench, build, evaluate, export, fold, quantize

_API = ("bench", "build", "evaluate", "export", "fold", "quantize")

__all__ = ["__version__", "bench", "build", "evaluate", "export", "fold", "quantize"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from resnet_opt import api

        return getattr(api, name)
    raise AttributeError(f"module 'resnet_opt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
