"""A quantization plan: which tensors get Q/DQ, which weights go to int8, which layers stay float.

A placement (`placement_tensorrt`, `placement_cpu`) reads a prepared graph and returns a Plan;
`qdq.apply_plan` writes it with the calibration ranges. Keeping the decision separate from the
rewrite lets tests check the placement rules on the plan and on the written graph alike, and lets
the sensitivity search re-plan with some layers kept in higher precision.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from resnet_opt.quantization.graph_rules import GraphView


class QdqTarget(str, Enum):
    """Whose int8 kernels the Q/DQ layout is written for."""

    TENSORRT = "tensorrt"  # symmetric s8, Q/DQ on Conv inputs and residual skip inputs
    CPU = "cpu"  # u8 activations / s8 weights, Q/DQ on every int8 op's inputs and outputs
    # OpenVINO's low-precision transformations: Q/DQ where NNCF puts FakeQuantize, u8/s8
    # activations, int8 weights with a scale only, float biases
    OPENVINO = "openvino"


@dataclass(frozen=True)
class TensorQuant:
    """Q/DQ on one activation tensor.

    `consumers` are the (node, input position) slots rewired to read the dequantized tensor;
    the others keep reading the float tensor. `shares` names another quantized tensor whose
    scale and zero point this one reuses (ONNX Runtime runs MaxPool/Flatten on the int8 tensor
    only when its input and output quantization are identical).
    """

    tensor: str
    consumers: tuple[tuple[str, int], ...]
    shares: str | None = None


@dataclass(frozen=True)
class WeightQuant:
    """A constant weight stored as int8 with per-channel scales along `axis`, behind a DQ."""

    node: str
    index: int
    initializer: str
    axis: int


@dataclass(frozen=True)
class BiasQuant:
    """An int32 bias (scale = input scale × weight scale): ONNX Runtime fuses Conv/Gemm into
    QLinearConv/QGemm only with it. Never written for TensorRT, whose parser rejects it."""

    node: str
    index: int
    initializer: str
    activation: str  # the quantized input tensor of the node
    weight: str  # the weight initializer


@dataclass(frozen=True)
class Plan:
    target: QdqTarget
    tensors: tuple[TensorQuant, ...]
    weights: tuple[WeightQuant, ...]
    biases: tuple[BiasQuant, ...]
    layers: tuple[str, ...]  # nodes that compute in int8
    kept: tuple[str, ...]  # quantizable nodes kept in higher precision (--exclude, budget)
    left_float: tuple[tuple[str, str], ...] = ()  # (node, why) not quantized by this placement

    def range_tensors(self) -> tuple[str, ...]:
        """Tensors whose scale comes from their own calibration range."""
        return tuple(t.tensor for t in self.tensors if t.shares is None)

    def quantized(self, tensor: str) -> TensorQuant | None:
        return next((t for t in self.tensors if t.tensor == tensor), None)


class Placement(Protocol):
    """What a placement module (`placements.PLACEMENTS`) provides."""

    @property
    def TARGET(self) -> QdqTarget:  # noqa: N802 (a module constant)
        """The layout it writes."""
        ...

    def place(self, view: GraphView, keep: Collection[str] = ()) -> Plan:
        """The plan with the nodes in `keep` left in higher precision."""
        ...

    def candidate_layers(self, view: GraphView) -> tuple[str, ...]:
        """The nodes it can run in int8: what the accuracy budget chooses from."""
        ...

    def excludable_layers(self, view: GraphView) -> tuple[str, ...]:
        """What --exclude may name."""
        ...
