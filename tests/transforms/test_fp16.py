"""FP16: conversion, the fp32 keep-list, the emulation twin, and the stage's honest CPU score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from resnet_opt.core.manifest import Precision, read_manifest
from resnet_opt.pipeline.quantize import quantize
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.transforms import fp16
from tests.qdq_models import run


def _scaled_add(scale: float, offset: float = 0.1) -> onnx.ModelProto:
    """y = x * scale + offset, both constants: one node that can overflow fp16, one that rounds."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "scale"], ["m"], name="mul"),
            helper.make_node("Add", ["m", "offset"], ["y"], name="add"),
        ],
        "scaled_add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [
            numpy_helper.from_array(np.array(scale, np.float32), "scale"),
            numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_emulation_rounds_every_fp16_tensor() -> None:
    converted = fp16.convert(_scaled_add(3.3), keep_io_types=True)
    twin = fp16.emulate(converted)
    x = np.array([[0.1234567, 1.7654321, -2.5, 1000.123]], np.float32)
    half = np.float16
    m = (x.astype(half).astype(np.float32) * np.float32(half(3.3))).astype(half)
    expected = (m.astype(np.float32) + np.float32(half(0.1))).astype(half).astype(np.float32)
    got = run(twin, x)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)


def test_overflowing_node_is_kept_fp32() -> None:
    model = _scaled_add(400.0)
    x = np.full((1, 4), 100.0, np.float32)  # x * 400 = 40000: fits fp16, but not by much
    risky = fp16.overflow_nodes(model, {"m": 40000.0, "y": 40000.1, "x": 100.0})
    assert risky == ["mul", "add"]
    plain = fp16.emulate(fp16.convert(_scaled_add(1000.0), keep_io_types=True))
    assert np.isinf(run(plain, x)).all()  # 100 000 overflows fp16
    guarded = fp16.convert(_scaled_add(1000.0), keep_io_types=True, keep_fp32={"mul", "add"})
    assert np.allclose(run(fp16.emulate(guarded), x), 100000.1)
    assert fp16.fp16_nodes(guarded) == (0, 2)


def test_converted_nodes_are_topologically_sorted() -> None:
    converted = fp16.convert(_scaled_add(2.0), keep_io_types=True)
    onnx.checker.check_model(converted)  # the converter appends its Casts at the end
    produced = {"x", "scale", "offset"}
    for node in converted.graph.node:
        assert all(name in produced for name in node.input if name), node.name
        produced.update(node.output)


@pytest.mark.parametrize("keep_io", [True, False])
def test_stage_scores_the_artifact_and_its_emulation(
    default_onnx: Path, tmp_path: Path, keep_io: bool
) -> None:
    out = tmp_path / "out.fp16.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(
            precision=Precision.FP16,
            keep_io_types=keep_io,
            calib_samples=64,
            eval_samples=128,
            max_drop=0.5,
        ),
    )
    model = onnx.load(str(out))
    io_type = model.graph.input[0].type.tensor_type.elem_type
    assert io_type == (TensorProto.FLOAT if keep_io else TensorProto.FLOAT16)
    assert any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
    manifest = read_manifest(out)
    assert manifest is not None and manifest.precision is Precision.FP16
    check = manifest.verification
    assert check["evaluated"] and check["artifact"] == out.name
    assert check["drop_points"] <= 0.5 and check["fp16_emulated"]["drop_points"] <= 0.5
    assert check["gate"]["passed"]
    ops = {n.op_type for n in model.graph.node}
    assert set(check["cpu_fp32_fallback"]["ops"]) <= ops
    details = result.manifest.details["fp16"]
    assert details["fp16_nodes"] == details["nodes"] > 0
    assert details["overflow_check"]["checked"] and details["overflow_check"]["kept_fp32"] == []


def test_stage_exclude_keeps_convs_fp32(default_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.fp16.onnx"
    result = quantize(
        default_onnx,
        out,
        QuantizeOptions(precision=Precision.FP16, exclude=("Conv",), eval_data="none"),
    )
    details = result.manifest.details["fp16"]
    convs = [n.name for n in onnx.load(str(default_onnx)).graph.node if n.op_type == "Conv"]
    assert set(convs) <= set(details["kept_fp32"])
    assert details["fp16_nodes"] < details["nodes"]
    assert result.manifest.verification == {
        "evaluated": False,
        "reason": "--eval none",
        "cpu_fp32_fallback": result.manifest.verification["cpu_fp32_fallback"],
    }
