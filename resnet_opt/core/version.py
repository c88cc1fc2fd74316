"""The installed resnet-opt version, recorded in every manifest and report.

Here rather than in the package's `__init__` so that lower layers can read it without importing
the package top, which is the public API (ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("resnet-opt")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
