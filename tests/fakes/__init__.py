"""Test doubles for the libraries that cannot be installed here (TensorRT, pycuda, libcuda).

Never used by the product: tests inject them into `sys.modules` with monkeypatch. They record
every call in order and enforce the rules the real libraries enforce (profiles for dynamic
inputs, no precision flags on strongly typed networks, pinned host memory for async copies,
…), so that a wrong flag, a missing call or a wrong order fails a test on the CPU.
"""
