"""The part of pycuda's driver API that the TensorRT runner uses, as Protocols.

Every member below exists in pycuda 2024.1 through 2026.1 (`src/wrapper/wrap_cudadrv.cpp`),
with these parameter names; tests/cuda/test_api.py pins the list against pycuda 2026.1's
source. What pycuda does not have (stream capture, graphs) is not here: see `graphs`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np

from resnet_opt.deps import require


class Context(Protocol):
    """`pycuda.driver.Context`: `pop` is a static method that pops the current context."""

    def push(self) -> None: ...

    def pop(self) -> None: ...

    def detach(self) -> None: ...


class Device(Protocol):
    def retain_primary_context(self) -> Context: ...


class Stream(Protocol):
    """`pycuda.driver.Stream`: synchronize, is_done, wait_for_event and the raw handle only."""

    @property
    def handle(self) -> int: ...

    def synchronize(self) -> None: ...


class DeviceAllocation(Protocol):
    def __int__(self) -> int: ...

    def free(self) -> None: ...


_Stream = Stream  # for the annotations inside Driver, where `Stream` names the method
_Device = Device


class Driver(Protocol):
    """The module `pycuda.driver`, as far as the runner calls it."""

    def init(self, flags: int = 0) -> None: ...

    def Device(self, number: int, /) -> _Device: ...  # noqa: N802 - pycuda's class name

    def Stream(self, flags: int = 0) -> _Stream: ...  # noqa: N802

    def pagelocked_empty(self, shape: Any, dtype: Any) -> np.ndarray: ...

    def mem_alloc(self, nbytes: int, /) -> DeviceAllocation: ...  # positional in pycuda

    def memcpy_htod_async(self, dest: Any, src: np.ndarray, stream: _Stream) -> None: ...

    def memcpy_dtoh_async(self, dest: np.ndarray, src: Any, stream: _Stream) -> None: ...


def load_driver() -> Driver:
    """`pycuda.driver`, or MissingDependencyError naming the `tensorrt` extra."""
    return cast(Driver, require("pycuda.driver"))
