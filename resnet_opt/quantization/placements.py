"""Which module places Q/DQ for each int8 layout: the one table `quantize` dispatches on.

A layout's module (`placement_<layout>.py`) provides `TARGET`, `place`, `candidate_layers` and
`excludable_layers` (`plan.Placement`); what it does per op kind is its column in `ops.OPS`.
"""

from __future__ import annotations

import importlib
from typing import cast

from resnet_opt.quantization.plan import Placement, QdqTarget

PLACEMENTS: dict[QdqTarget, str] = {
    QdqTarget.TENSORRT: "resnet_opt.quantization.placement_tensorrt",
    QdqTarget.CPU: "resnet_opt.quantization.placement_cpu",
    QdqTarget.OPENVINO: "resnet_opt.quantization.placement_openvino",
}


def placement(target: QdqTarget) -> Placement:
    """The placement module of `target`."""
    return cast(Placement, importlib.import_module(PLACEMENTS[target]))
