"""FP16 ONNX for strongly typed TensorRT builds, and how to score it honestly on a CPU.

The conversion is ONNX Runtime's `convert_float_to_float16` (onnxruntime ships it; no new
dependency), with its default list of ops that have no fp16 form kept in fp32, plus the nodes we
name: user exclusions and nodes whose calibration outputs came near the fp16 limit (65504),
which would overflow to inf in fp16.

Scoring: ONNX Runtime's x86 CPU provider has no fp16 Conv/Gemm kernels. It runs an fp16 model by
inserting Casts and computing the whole network in fp32 on the fp16-rounded weights, so the
artifact's accuracy on ORT CPU measures weight rounding only. `emulate` therefore also builds a
float32 twin that rounds every fp16 tensor of the artifact to fp16 (Cast→fp16→fp32 after each
node; ORT keeps such lossy Cast pairs), which is what fp16 storage between layers does to the
numbers. Both figures go into the manifest; `quantization/fp16.cpu_fp32_fallback` says which ops
ORT ran in fp32.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import numpy as np

from resnet_opt.errors import ResnetOptError

if TYPE_CHECKING:
    import onnx

FP16_MAX = 65504.0
# a tensor whose calibration max |x| passes this share of the fp16 limit stays fp32: unseen
# inputs may go further than the calibration set did
OVERFLOW_HEADROOM = 0.25


def overflow_nodes(model: onnx.ModelProto, absmax: Mapping[str, float]) -> list[str]:
    """Nodes with an output whose observed max |x| is too close to the fp16 limit."""
    limit = FP16_MAX * OVERFLOW_HEADROOM
    return [
        node.name
        for node in model.graph.node
        if any(absmax.get(out, 0.0) > limit for out in node.output)
    ]


def convert(
    model: onnx.ModelProto, *, keep_io_types: bool, keep_fp32: Collection[str] = ()
) -> onnx.ModelProto:
    """`model` in fp16, the nodes in `keep_fp32` (and ORT's no-fp16 op list) left in fp32."""
    from onnxruntime.transformers.float16 import (
        DEFAULT_OP_BLOCK_LIST,
        convert_float_to_float16,
    )

    try:
        converted: onnx.ModelProto = convert_float_to_float16(
            model,
            keep_io_types=keep_io_types,
            op_block_list=list(DEFAULT_OP_BLOCK_LIST),
            node_block_list=sorted(keep_fp32),
        )
    except Exception as exc:  # the converter raises plain exceptions on graphs it cannot type
        raise ResnetOptError(f"FP16 conversion failed ({type(exc).__name__}: {exc})") from exc
    _toposort(converted.graph)
    _drop_round_trips(converted)
    return converted


def _drop_round_trips(model: onnx.ModelProto) -> None:
    """Remove fp32 → fp16 → fp32 Cast pairs, which the converter leaves between nodes kept fp32.

    The converter wraps every blocked node in Casts and stores the tensor between two blocked
    nodes in fp16: a value kept fp32 because it overflows fp16 would still become inf there.
    Where a Cast to fp16 feeds a Cast back to fp32, the second one's readers take the original
    fp32 tensor instead; the Cast to fp16 goes when nothing else reads it.
    """
    from onnx import TensorProto

    graph = model.graph
    types = _elem_types(model)
    outputs = {o.name for o in graph.output}

    def cast_to(node: onnx.NodeProto) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((int(a.i) for a in node.attribute if a.name == "to"), None)

    nodes = list(graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    replace: dict[str, str] = {}
    dropped: set[int] = set()
    ups: set[int] = set()
    for i, down in enumerate(nodes):
        if cast_to(down) != TensorProto.FLOAT or down.input[0] not in producer:
            continue
        j = producer[down.input[0]]
        up = nodes[j]
        if cast_to(up) != TensorProto.FLOAT16 or types.get(up.input[0]) != TensorProto.FLOAT:
            continue
        ups.add(j)
        if down.output[0] in outputs:  # keep the output's name: a float→float Cast
            down.input[0] = up.input[0]
        else:
            replace[down.output[0]] = up.input[0]
            dropped.add(i)
    if not ups:
        return
    for node in nodes:
        for k, name in enumerate(node.input):
            if name in replace:
                node.input[k] = replace[name]
    still_read = {name for i, n in enumerate(nodes) if i not in dropped for name in n.input}
    dropped |= {j for j in ups if nodes[j].output[0] not in still_read | outputs}
    kept = [n for i, n in enumerate(nodes) if i not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    live = {name for n in kept for name in (*n.input, *n.output)}
    infos = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def _toposort(graph: onnx.GraphProto) -> None:
    """Sort nodes so every input is produced before use.

    The converter appends its Cast nodes at the end of the list; ONNX (its checker, TensorRT's
    parser) requires topological order. Stable: nodes keep their order where it is valid.
    """
    available = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progress = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            raise ResnetOptError(
                f"FP16 conversion left a cycle or a missing input at {rest[0].name}"
            )
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def fp16_nodes(model: onnx.ModelProto) -> tuple[int, int]:
    """(nodes computing in fp16, nodes in total), Casts not counted."""
    types = _elem_types(model)
    from onnx import TensorProto

    compute = [n for n in model.graph.node if n.op_type != "Cast"]
    half = sum(1 for n in compute if types.get(n.output[0]) == TensorProto.FLOAT16)
    return half, len(compute)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    from resnet_opt.graph import tensor_types_and_shapes

    return tensor_types_and_shapes(model)[0]


def emulate(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float32 twin of an fp16 model: same values, every fp16 tensor rounded to fp16.

    Same inputs and outputs (types included) as the artifact, so the same feeds run both.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half, single = TensorProto.FLOAT16, TensorProto.FLOAT
    types = _elem_types(model)
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    graph = twin.graph
    del graph.value_info[:]

    inits = []
    for tensor in graph.initializer:
        if tensor.data_type == half:
            inits.append(
                numpy_helper.from_array(
                    numpy_helper.to_array(tensor).astype(np.float32), tensor.name
                )
            )
        else:
            inits.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(inits)

    renamed: dict[str, str] = {}  # fp16 graph input → its fp32 copy
    nodes: list[onnx.NodeProto] = []
    for value in graph.input:
        if types.get(value.name) == half:
            renamed[value.name] = f"{value.name}__emulated"
            nodes.append(helper.make_node("Cast", [value.name], [renamed[value.name]], to=single))
    outputs = {o.name for o in graph.output if types.get(o.name) == half}

    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == half:
                    value = numpy_helper.to_array(attr.t).astype(np.float32)
                    attr.t.CopyFrom(numpy_helper.from_array(value, attr.t.name))
        rounding: list[onnx.NodeProto] = []
        for k, out in enumerate(node.output):
            if types.get(out) != half:
                continue
            raw, rounded = f"{out}__raw", f"{out}__fp16"
            final = f"{out}__emulated" if out in outputs else out
            node.output[k] = raw
            if node.op_type == "Cast":  # a Cast to fp16 rounds by itself
                rounding.append(helper.make_node("Cast", [raw], [final], to=single))
            else:
                rounding.append(helper.make_node("Cast", [raw], [rounded], to=half))
                rounding.append(helper.make_node("Cast", [rounded], [final], to=single))
            if out in outputs:
                rounding.append(helper.make_node("Cast", [final], [out], to=half))
        nodes.append(node)
        nodes.extend(rounding)
    del graph.node[:]
    graph.node.extend(nodes)
    try:
        onnx.checker.check_model(twin)
    except Exception as exc:  # our rewrite must give a valid model
        raise ResnetOptError(f"could not build the fp16 emulation model ({exc})") from exc
    return twin
