"""PyTorch eager: the FP32 baseline bench measures an export against. It builds nothing."""

from __future__ import annotations

from types import MappingProxyType

from resnet_opt.backends.spec import BackendUnit, Natural, TargetSpec

UNIT = BackendUnit(
    name="torch",
    title="PyTorch",
    runner="resnet_opt.runners.torch:open_torch",
    targets=(
        TargetSpec(
            "torch",
            colour="tab:red",
            natural=Natural.TORCH_SOURCE,
            requires=(("torch", "torch is not installed: pip install 'resnet-opt[export]'"),),
            not_applicable="PyTorch eager runs an FP32 export made by resnet-opt export "
            "(the source) only",
        ),
    ),
    tools=("torch", "torchvision"),
    extras=MappingProxyType({"torch": "export", "torchvision": "export"}),
)
