"""NVIDIA Jetson: the facts a Jetson measurement depends on, read from files like jtop reads them.

Every reader takes a `root` folder that stands in for `/`, so recorded sysfs/procfs trees of real
boards (tests/data/jetson/) exercise the same code that runs on a device. Readers never raise:
a fact that cannot be read is None, and the reason is kept beside it.
"""
