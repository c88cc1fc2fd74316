"""Loading, indexing and saving ONNX graphs, with the errors a user should see.

Every ONNX pass (fold, quantize) and every stage that reads an .onnx goes through `load_onnx`,
so a missing file, a file that is not ONNX and a corrupt ONNX each give one clear line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.core.manifest import Precision
from resnet_opt.core.readers import describe_input
from resnet_opt.errors import ResnetOptError, first_line

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

TWO_GB = 2**31
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# ONNX Runtime's operator-format int8 ops: a model that has them is int8 without any Q/DQ pair
QOPERATOR_OPS = frozenset({"QLinearConv", "QLinearMatMul", "QLinearAdd", "QGemm", "MatMulInteger"})
FLOAT16 = 10  # onnx.TensorProto.FLOAT16


def load_onnx(path: Path, *, check: bool = True) -> onnx.ModelProto:
    """Read an ONNX model (external data included) and run the checker on it."""
    import onnx

    path = Path(path)
    problem = describe_input(path)  # a FIFO, /dev/null or a symlink loop: one clear line
    if problem is not None:
        problem = "is a folder, not an ONNX file" if path.is_dir() else problem
        raise ResnetOptError(f"{path}: {problem}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, truncated files, bad external data
        text = first_line(exc)
        if "should be stored in" in text:  # onnx names the tensor and the side file it wants
            raise ResnetOptError(
                f"{path}: its external weight data is missing or unreadable ({text})"
            ) from exc
        raise ResnetOptError(f"{path}: not an ONNX model ({type(exc).__name__})") from exc
    if not model.graph.node:
        raise ResnetOptError(f"{path}: not an ONNX model (no graph nodes)")
    if check:
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx.checker.ValidationError and friends
            raise ResnetOptError(f"{path}: invalid ONNX model ({first_line(exc)})") from exc
    return model


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Write with weights inside the file: one artifact, no `.onnx.data` side file."""
    import onnx

    size = model.ByteSize()
    if size >= TWO_GB:
        raise ResnetOptError(
            f"{path}: model is {size / 2**30:.1f} GiB, over protobuf's 2 GiB single-file limit"
        )
    onnx.save_model(model, str(path), save_as_external_data=False)


@dataclass(frozen=True)
class GraphIndex:
    """Who produces and who consumes each tensor, and the weights by name."""

    producers: dict[str, onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]]
    initializers: dict[str, onnx.TensorProto]
    graph_inputs: frozenset[str]
    graph_outputs: frozenset[str]

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return self.producers.get(tensor)

    def consumers_of(self, tensor: str) -> list[onnx.NodeProto]:
        return self.consumers.get(tensor, [])

    def weight(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        tensor = self.initializers.get(name)
        return None if tensor is None else np.asarray(numpy_helper.to_array(tensor))


def index_graph(graph: onnx.GraphProto) -> GraphIndex:
    producers: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for out in node.output:
            if out:
                producers[out] = node
        for name in node.input:
            if name:
                consumers[name].append(node)
    initializers = {t.name: t for t in graph.initializer}
    return GraphIndex(
        producers=producers,
        consumers=dict(consumers),
        initializers=initializers,
        graph_inputs=frozenset(i.name for i in graph.input if i.name not in initializers),
        graph_outputs=frozenset(o.name for o in graph.output),
    )


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def drop_initializers(graph: onnx.GraphProto, names: Iterable[str]) -> None:
    """Remove these initializers, and their entries among the graph inputs (old IR versions
    list every initializer there too, and an input left behind would have to be fed)."""
    gone = set(names)
    if not gone:
        return
    kept = [t for t in graph.initializer if t.name not in gone]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [v for v in graph.input if v.name not in gone]
    del graph.input[:]
    graph.input.extend(inputs)


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """A rewrite's leftovers go: initializers that no node reads and no graph output names."""
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    drop_initializers(graph, (t.name for t in graph.initializer if t.name not in used))


def opset_version(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ResnetOptError("model imports no default-domain opset")


def unique_name(taken: set[str], base: str) -> str:
    """`base`, or `base_1`, `base_2`, … whichever is free; the result is added to `taken`."""
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def all_names(graph: onnx.GraphProto) -> set[str]:
    names: set[str] = {t.name for t in graph.initializer}
    names.update(v.name for v in (*graph.input, *graph.output, *graph.value_info))
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        if node.name:
            names.add(node.name)
    return names


def count_ops(model: onnx.ModelProto, op_types: Iterable[str]) -> dict[str, int]:
    wanted = set(op_types)
    counts = dict.fromkeys(sorted(wanted), 0)
    for node in model.graph.node:
        if node.op_type in wanted:
            counts[node.op_type] += 1
    return counts


def precision_of(
    model: onnx.ModelProto, declared: Precision | None = None
) -> tuple[Precision, int, int]:
    """(precision, int8 node count, fp16 tensor count) read from the graph itself.

    For a model without a manifest, and to check that a manifest describes its file: Q/DQ (or
    ONNX Runtime's QLinear*) nodes mean INT8 (MIXED when the manifest says some layers were kept
    in higher precision); fp16 initializers, inputs, outputs or casts mean FP16; else FP32.
    """
    graph = model.graph
    int8 = sum(1 for node in graph.node if node.op_type in QDQ_OPS | QOPERATOR_OPS)
    fp16 = sum(1 for t in graph.initializer if t.data_type == FLOAT16)
    fp16 += sum(1 for v in (*graph.input, *graph.output) if v.type.tensor_type.elem_type == FLOAT16)
    for node in graph.node:
        if node.op_type == "Cast":
            fp16 += sum(1 for a in node.attribute if a.name == "to" and a.i == FLOAT16)
    if int8:
        precision = Precision.MIXED if declared is Precision.MIXED else Precision.INT8
    elif fp16:
        precision = Precision.FP16
    else:
        precision = Precision.FP32
    return precision, int8, fp16


def tensor_types_and_shapes(
    model: onnx.ModelProto,
) -> tuple[dict[str, int], dict[str, list[int | None]]]:
    """Element type and shape of every tensor whose type ONNX shape inference can tell (shape
    dims None where not fixed); where inference fails, what the model's own value_info says."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # inference is best effort; the model's own value_info remains
        log.debug("shape inference failed (%s); using the model's value_info only", exc)
        inferred = model
    types: dict[str, int] = {}
    shapes: dict[str, list[int | None]] = {}
    graph = inferred.graph
    for info in (*graph.input, *graph.output, *graph.value_info):
        tensor_type = info.type.tensor_type
        if tensor_type.elem_type:
            types[info.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = [
                d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
            ]
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types, shapes
