"""Tiny ONNX models in the precisions the TensorRT build distinguishes, with manifests.

`tests.conftest.make_tiny_cnn` gives the FP32 network; these add a Q/DQ INT8 version (what
`quantize --target tensorrt` produces, in miniature), an fp16 version, and manifests written
the way the stages write them, so build tests start from real files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    write_manifest,
)
from tests.conftest import TINY_CONTRACT, make_tiny_cnn


def with_manifest(
    path: Path,
    precision: Precision,
    *,
    stage: Stage = Stage.EXPORT,
    inputs: tuple[InputRef, ...] = (),
    details: dict[str, Any] | None = None,
) -> Manifest:
    manifest = new_manifest(
        stage=stage,
        artifact=path,
        precision=precision,
        inputs=inputs,
        preprocessing=TINY_CONTRACT,
        details=details or {},
    )
    write_manifest(manifest_path(path), manifest)
    return manifest


def fp32_model(path: Path, *, batch: int | str = "N") -> Path:
    make_tiny_cnn(path, batch=batch)
    with_manifest(path, Precision.FP32)
    return path


def qdq_model(path: Path, *, source: Path | None = None, cache: str | None = None) -> Path:
    """Conv with Q/DQ on its activation input and per-channel int8 weights (symmetric)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.integers(-100, 100, (6, 3, 3, 3)).astype(np.int8)
    w_scale = np.full(6, 0.003, np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "a_s", "a_z"], ["q"], name="q_in"),
        helper.make_node("DequantizeLinear", ["q", "a_s", "a_z"], ["dq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0, name="dq_w"),
        helper.make_node("Conv", ["dq", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.04, np.float32), "a_s"),
        numpy_helper.from_array(np.array(0, np.int8), "a_z"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(w_scale, "w_s"),
        numpy_helper.from_array(np.zeros(6, np.int8), "w_z"),
        numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "b"),
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 6)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "fc_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    inputs = (InputRef.of("model", source),) if source is not None else ()
    details = {"tensorrt_calibration_cache": cache} if cache else {}
    with_manifest(path, Precision.INT8, stage=Stage.QUANTIZE, inputs=inputs, details=details)
    return path


def fp16_model(path: Path) -> Path:
    """The tiny CNN with fp16 weights and fp16 input/output (what TensorRT 11 builds in FP16)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    make_tiny_cnn(path)
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init).astype(np.float16)
        init.CopyFrom(numpy_helper.from_array(array, init.name))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    with_manifest(path, Precision.FP16, stage=Stage.QUANTIZE)
    return path


def unsupported_op_model(path: Path) -> Path:
    """The tiny CNN with a custom-domain op TensorRT's parser has no importer for."""
    import onnx
    from onnx import helper

    make_tiny_cnn(path)
    model = onnx.load(str(path))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "FancyActivation", "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(model, str(path))
    with_manifest(path, Precision.FP32)
    return path


def calibration_cache(path: Path, names: list[str], *, version: str = "10.3.0") -> Path:
    """A TensorRT calibration cache in the quantize stage's format."""
    from resnet_opt.calibration.tensorrt_cache import format_tensorrt_cache

    text = format_tensorrt_cache(dict.fromkeys(names, 2.0), tensorrt_version=version)
    path.write_bytes(text.encode("utf-8"))
    return path
