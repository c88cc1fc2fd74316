"""Whether an INT8 ONNX is in TensorRT's Q/DQ layout, read before TensorRT's parser sees it.

`quantize --target cpu` writes ONNX Runtime's fastest layout: uint8 activations with non-zero
zero points, and int32 biases dequantized by a DequantizeLinear. TensorRT's ONNX parser takes
symmetric int8 only (zero point 0, int8 type) and has no int32 DequantizeLinear, so it refuses
such a file with a message about one node. `layout_problems` names what makes a file the CPU
layout, so that `build` can say "quantize with --target tensorrt" before calling TensorRT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

_UINT8, _INT32 = 2, 6  # onnx.TensorProto element types
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = attr.t
    return consts


def layout_problems(graph: onnx.GraphProto) -> tuple[str, ...]:
    """What in `graph` TensorRT's parser refuses, as 'N uint8 zero points' phrases (empty: none)."""
    from onnx import numpy_helper

    consts = _constants(graph)
    uint8 = nonzero = int32 = 0
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in consts:
            int32 += consts[node.input[0]].data_type == _INT32
        zero_point = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero_point is None:
            continue
        uint8 += zero_point.data_type == _UINT8
        nonzero += bool(np.any(numpy_helper.to_array(zero_point)))
    problems = []
    if uint8:
        problems.append(f"{uint8} Q/DQ nodes with uint8 zero points")
    if nonzero:
        problems.append(f"{nonzero} with non-zero zero points")
    if int32:
        problems.append(f"{int32} DequantizeLinear of int32 data (biases)")
    return tuple(problems)
