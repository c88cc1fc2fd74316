"""resnet-opt: take a trained ResNet to a deployable engine and state what each step cost.

The package top imports nothing heavy: `resnet-opt --help`, `build` and `bench` must run on a Jetson
that has TensorRT and numpy but no torch (ARCHITECTURE.md, "Imports and extras").
"""

from resnet_opt.core.version import __version__

__all__ = ["__version__"]
