"""Lazy imports of the heavy, optional frameworks.

Module tops import only the standard library and numpy (ARCHITECTURE.md, "Imports and extras");
everything else is imported through `require` inside the function that needs it, so that choosing
one backend never imports another and a missing extra becomes a one-line error instead of a
traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _extras() -> dict[str, str]:
    """Module name -> the extra of resnet-opt that installs it: each backend unit's `extras`
    (torch, TensorRT and its CUDA layer, OpenVINO), and the stages' own."""
    from resnet_opt.backends.registry import units

    extras = {"torch": "export", "torchvision": "export", "onnxscript": "export"}
    for unit in units():
        extras.update(unit.extras)
    return {**extras, "sklearn": "train", "timm": "timm"}


# module name -> the extra of resnet-opt that installs it
EXTRA_FOR_MODULE: dict[str, str] = _extras()


def _import(module: str) -> ModuleType:
    """import_module that refuses an empty namespace package.

    Type-stub packages (tensorrt-stubs ships `tensorrt/__init__.pyi` only) make `import tensorrt`
    succeed with nothing inside; treating that as TensorRT would turn a missing library into an
    AttributeError deep in a build.
    """
    mod = importlib.import_module(module)
    if getattr(mod, "__file__", None) is None and hasattr(mod, "__path__"):
        raise ModuleNotFoundError(
            f"No module named {module!r} (only a namespace package or type stubs found)",
            name=module.split(".")[0],
        )
    return mod


def require(module: str) -> ModuleType:
    """Import `module` or raise MissingDependencyError naming the extra that provides it."""
    from resnet_opt.errors import MissingDependencyError

    try:
        return _import(module)
    except (ImportError, OSError) as exc:  # OSError: a shared library (libnvinfer, libcuda)
        from resnet_opt.core.signals import reraise_if_terminated

        reraise_if_terminated(exc)  # Ctrl-C or SIGTERM in the import: not a missing package
        root = module.split(".")[0]
        extra = EXTRA_FOR_MODULE.get(module, EXTRA_FOR_MODULE.get(root, root))
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == root
        reason = None if missing else str(exc)
        raise MissingDependencyError(module, extra, reason, _platform_advice(module)) from exc


# what `pip install resnet-opt` itself brings: broken or missing, the install is at fault
CORE_MODULES = ("onnx", "onnxruntime", "PIL", "matplotlib", "jsonschema")


def missing_dependency(exc: ImportError) -> Exception | None:
    """`require`'s error for an ImportError raised by a plain `import onnx` (or another module we
    depend on) anywhere in the code, or None when it is not one of ours (a bug: a traceback).

    The failing module is the exception's `name`, else the module whose import raised it.
    """
    from resnet_opt.errors import MissingDependencyError

    name = exc.name
    if name is None:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        name = tb.tb_frame.f_globals.get("__name__") if tb is not None else None
    root = str(name or "").split(".")[0]
    if root in CORE_MODULES:
        return MissingDependencyError(
            root,
            "",
            str(exc).splitlines()[0] if str(exc) else None,
            "reinstall it with pip install --force-reinstall resnet-opt",
        )
    if root in EXTRA_FOR_MODULE:
        return MissingDependencyError(
            root, EXTRA_FOR_MODULE[root], str(exc).splitlines()[0] or None, _platform_advice(root)
        )
    return None


def _platform_advice(module: str) -> str | None:
    """Where `pip install 'resnet-opt[extra]'` is the wrong advice, what to do instead."""
    if module.split(".")[0] not in ("tensorrt", "pycuda", "cuda"):
        return None
    from resnet_opt.jetson.install import install_advice

    return install_advice(module)


def probe(module: str) -> tuple[str | None, str | None]:
    """(version, None) if `module` imports, else (None, why not): for `resnet-opt info`."""
    try:
        mod = _import(module)
    except Exception as exc:  # info must report every failure mode, not crash on one
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]
    return str(getattr(mod, "__version__", getattr(mod, "VERSION", "unknown"))), None
