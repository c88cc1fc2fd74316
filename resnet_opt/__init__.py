"""resnet-opt: take a trained ResNet to a deployable engine and state what each step cost.

The package top imports nothing heavy: `resnet-opt --help`, `build` and `bench` must run on a
Jetson that has TensorRT and numpy but no torch (DESIGN §6).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("resnet-opt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
