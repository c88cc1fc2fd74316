"""pycuda's API as released, for checking our calls and our double without building pycuda.

pycuda cannot be built here (it compiles against CUDA), so the names below were read from
pycuda's own source at tag v2026.1 (github.com/inducer/pycuda): `src/wrapper/wrap_cudadrv.cpp`
(`py::def`, `DEF_SIMPLE_FUNCTION`, the `class_` blocks with their `.def`,
`DEF_SIMPLE_METHOD` and `add_property` members) and `pycuda/driver.py`. Every name the runner
uses is also in pycuda 2024.1 (the floor in pyproject's `tensorrt` extra): none of them changed
between the two. pycuda has no stream capture and no graph API in any release.
"""

from __future__ import annotations

PYCUDA_VERSION = (2026, 1)

# module-level functions of pycuda.driver (the C++ module and driver.py)
PYCUDA_DRIVER_FUNCTIONS = frozenset(
    {
        "aligned_empty", "aligned_empty_like", "aligned_zeros", "aligned_zeros_like",
        "bind_array_to_texref", "dtype_to_array_format", "from_device", "from_device_like",
        "get_driver_version", "get_version", "gpuarray_to_array", "init", "initialize_profiler",
        "make_multichannel_2d_array", "managed_empty", "managed_empty_like", "managed_zeros",
        "managed_zeros_like", "matrix_to_array", "matrix_to_texref", "mem_alloc", "mem_alloc_like",
        "mem_alloc_pitch", "mem_get_address_range", "mem_get_info", "mem_get_ipc_handle",
        "memcpy_atoa", "memcpy_atod", "memcpy_dtoa", "memcpy_dtod", "memcpy_dtod_async",
        "memcpy_dtoh", "memcpy_dtoh_async", "memcpy_htod", "memcpy_htod_async", "memcpy_peer",
        "memcpy_peer_async", "memset_d16", "memset_d16_async", "memset_d2d16",
        "memset_d2d16_async", "memset_d2d32", "memset_d2d32_async", "memset_d2d8",
        "memset_d2d8_async", "memset_d32", "memset_d32_async", "memset_d8", "memset_d8_async",
        "module_from_buffer", "module_from_file", "np_to_array", "pagelocked_empty",
        "pagelocked_empty_like", "pagelocked_zeros", "pagelocked_zeros_like",
        "register_host_memory", "set_debugging", "start_profiler", "stop_profiler", "to_device",
    }
)  # fmt: skip

# the classes the runner touches, with every member pycuda gives them
PYCUDA_CLASSES: dict[str, frozenset[str]] = {
    "Device": frozenset(
        {
            "can_access_peer", "compute_capability", "count", "get_attribute", "make_context",
            "name", "pci_bus_id", "retain_primary_context", "total_memory",
        }
    ),
    "Context": frozenset(
        {
            "attach", "detach", "disable_peer_access", "enable_peer_access", "get_api_version",
            "get_cache_config", "get_current", "get_device", "get_limit", "get_shared_config",
            "handle", "pop", "push", "set_cache_config", "set_limit", "set_shared_config",
            "synchronize",
        }
    ),
    "Stream": frozenset({"handle", "is_done", "synchronize", "wait_for_event"}),
    "DeviceAllocation": frozenset({"__int__", "__index__", "as_buffer", "free"}),
}  # fmt: skip

PYCUDA_DRIVER_NAMES = PYCUDA_DRIVER_FUNCTIONS | frozenset(PYCUDA_CLASSES)
