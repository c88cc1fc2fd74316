"""The CUDA layer under the TensorRT runner: typed views of the two CUDA libraries it calls.

pycuda (`pycuda_api`) gives the memory and the stream: the primary context, pinned host
buffers, device allocations, asynchronous copies. pycuda has no CUDA graph API in any release,
so CUDA graphs (`graphs`) go through NVIDIA's cuda-python runtime bindings (`cuda-bindings`,
wheels for x86-64 and aarch64, the library NVIDIA's own TensorRT samples use). Both run in the
same primary context, which pycuda makes current and the CUDA runtime picks up.

Each library is reached only through a Protocol listing the calls this package makes, with the
signatures the real library has, so mypy checks every call and a test checks every name
against the released library (tests/cuda/test_api.py). Nothing here imports either library at
module level.
"""
