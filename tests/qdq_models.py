"""Tiny residual ONNX models and a max-range helper for the quantization tests (no torch).

The model has what the placements must get right on a real ResNet: a stem Conv→Relu→MaxPool,
an identity block (skip = block input), a downsample block whose Add sees two Conv outputs (in
the order downsample-first, to check the skip is found by structure), GlobalAveragePool →
Flatten → Gemm, a bias shared through an Identity node (the TorchScript exporter's dedup) and an
unnamed node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class MaxRange:
    """A test-side range (max |x| and min over the batches): the placement tests' calibration."""

    amin: float
    amax: float


def tiny_resnet(
    *, channels: int = 3, size: int = 8, classes: int = 4, seed: int = 0
) -> onnx.ModelProto:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def weight(name: str, cout: int, cin: int, k: int) -> onnx.TensorProto:
        w = rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)).astype(np.float32)
        return numpy_helper.from_array(w, name)

    def bias(name: str, n: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.1, n).astype(np.float32), name)

    inits = [
        weight("w0", 4, channels, 3),
        bias("b0", 4),
        weight("wa1", 4, 4, 3),
        bias("ba1", 4),
        weight("wa2", 4, 4, 3),
        bias("shared_b", 4),
        weight("wb1", 8, 4, 3),
        bias("bb1", 8),
        weight("wb2", 8, 8, 3),
        bias("bb2", 8),
        weight("wbd", 8, 4, 1),
        bias("bbd", 8),
        numpy_helper.from_array(rng.normal(0, 0.3, (classes, 8)).astype(np.float32), "fc_w"),
        bias("fc_b", classes),
    ]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Identity", ["shared_b"], ["ba2"], name="dedup_bias"),
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], name="stem_conv", pads=pads),
        helper.make_node("Relu", ["c0"], ["r0"], name="stem_relu"),
        helper.make_node(
            "MaxPool", ["r0"], ["p0"], name="stem_pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Conv", ["p0", "wa1", "ba1"], ["ca1"], name="a_conv1", pads=pads),
        helper.make_node("Relu", ["ca1"], ["ra1"], name="a_relu1"),
        helper.make_node("Conv", ["ra1", "wa2", "ba2"], ["ca2"], name="a_conv2", pads=pads),
        helper.make_node("Add", ["ca2", "p0"], ["sa"], name="a_add"),
        helper.make_node("Relu", ["sa"], ["ra"], name=""),  # unnamed on purpose
        helper.make_node(
            "Conv", ["ra", "wb1", "bb1"], ["cb1"], name="b_conv1", strides=[2, 2], pads=pads
        ),
        helper.make_node("Relu", ["cb1"], ["rb1"], name="b_relu1"),
        helper.make_node("Conv", ["rb1", "wb2", "bb2"], ["cb2"], name="b_conv2", pads=pads),
        helper.make_node("Conv", ["ra", "wbd", "bbd"], ["cbd"], name="b_down", strides=[2, 2]),
        helper.make_node("Add", ["cbd", "cb2"], ["sb"], name="b_add"),
        helper.make_node("Relu", ["sb"], ["rb"], name="b_relu"),
        helper.make_node("GlobalAveragePool", ["rb"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_resnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def max_ranges(
    model: onnx.ModelProto, tensors: Iterable[str], batches: Iterable[np.ndarray]
) -> dict[str, MaxRange]:
    """min and max |x| of `tensors` over `batches`, by running the float model in ORT."""
    import onnx
    import onnxruntime as ort

    names = list(tensors)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    have = {o.name for o in exposed.graph.output}
    for name in names:
        if name not in have:
            exposed.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    lo: dict[str, float] = dict.fromkeys(names, np.inf)
    hi: dict[str, float] = dict.fromkeys(names, 0.0)
    for x in batches:
        for name, value in zip(names, session.run(names, {input_name: x}), strict=True):
            lo[name] = min(lo[name], float(value.min()))
            hi[name] = max(hi[name], float(np.abs(value).max()))
    return {n: MaxRange(lo[n], hi[n]) for n in names}


def run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    data = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def op_counts(model: onnx.ModelProto) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
