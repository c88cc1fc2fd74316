"""What the build needs to know about an ONNX before TensorRT sees it: its one image input,
its outputs, and the precision its types carry (TensorRT 11 takes precision from the ONNX
only, so the ONNX, not a flag, says whether an engine is INT8, FP16 or FP32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_opt.core.manifest import Precision
from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    import onnx

Dim = int | str | None

# onnx.TensorProto element types by name (so that this module needs no onnx import at the top)
_ELEM_NAMES = {1: "float32", 10: "float16", 16: "bfloat16", 11: "float64", 3: "int8", 2: "uint8"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[Dim, ...]
    dtype: str


@dataclass(frozen=True)
class NetworkFacts:
    """The parts of an ONNX that the TensorRT build decides on."""

    path: Path
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    precision: Precision
    qdq_nodes: int
    fp16_tensors: int
    tensor_names: frozenset[str] = field(repr=False, default=frozenset())
    qdq_problems: tuple[str, ...] = ()  # why TensorRT's parser would refuse its Q/DQ layout

    def check_tensorrt_layout(self) -> None:
        """Refuse an INT8 ONNX in ONNX Runtime's CPU layout before TensorRT's parser sees it."""
        if self.qdq_problems:
            raise ResnetOptError(
                f"{self.path}: its INT8 layout is ONNX Runtime's CPU one "
                f"({'; '.join(self.qdq_problems)}), which TensorRT cannot build: quantize with "
                "--target tensorrt"
            )

    @property
    def image_input(self) -> TensorInfo:
        if len(self.inputs) != 1:
            names = ", ".join(i.name for i in self.inputs) or "none"
            raise ResnetOptError(
                f"{self.path}: expected one image input, found {len(self.inputs)}"
                + (f" ({names})" if names else "")
            )
        return self.inputs[0]

    def precision_dict(self) -> dict[str, object]:
        return {
            "onnx": self.precision.value,
            "qdq_nodes": self.qdq_nodes,
            "fp16_tensors": self.fp16_tensors,
        }


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    ttype = value.type.tensor_type
    dims: list[Dim] = []
    for d in ttype.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(str(d.dim_param))
        else:
            dims.append(None)
    return TensorInfo(
        value.name, tuple(dims), _ELEM_NAMES.get(ttype.elem_type, str(ttype.elem_type))
    )


def read_network(path: Path, declared: Precision | None = None) -> NetworkFacts:
    """Load `path` (clear errors for missing / not ONNX / invalid) and collect its facts."""
    from resnet_opt.graph import all_names, load_onnx, precision_of
    from resnet_opt.tensorrt.qdq_layout import layout_problems

    model = load_onnx(path)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    precision, qdq, fp16 = precision_of(model, declared)
    if declared is not None and _family(declared) != _family(precision):
        raise ResnetOptError(
            f"{path}: its manifest says {declared.value} but the graph is {precision.value} "
            f"({qdq} Q/DQ nodes, {fp16} fp16 tensors): the manifest does not describe this file"
        )
    return NetworkFacts(
        path=path,
        inputs=tuple(_tensor_info(v) for v in graph.input if v.name not in initializers),
        outputs=tuple(_tensor_info(v) for v in graph.output),
        precision=precision,
        qdq_nodes=qdq,
        fp16_tensors=fp16,
        tensor_names=frozenset(all_names(graph)),
        qdq_problems=layout_problems(graph) if qdq else (),
    )


def _family(p: Precision) -> str:
    return "int8" if p in (Precision.INT8, Precision.MIXED) else p.value
