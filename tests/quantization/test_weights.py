"""Saturation-safe 8-bit weights, bias correction and the OpenVINO Q/DQ layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper

from resnet_opt.calibration.ranges import Method
from resnet_opt.core.manifest import read_manifest
from resnet_opt.pipeline.quantize import quantize
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization import placement_openvino, placement_tensorrt
from resnet_opt.quantization.graph_rules import GraphView, prepare
from resnet_opt.quantization.plan import Plan, QdqTarget, TensorQuant
from resnet_opt.quantization.qdq import apply_plan
from resnet_opt.quantization.weights import (
    SAFE_PAIR_SUM,
    WeightPolicy,
    bias_shift,
    clamp_pairs,
    from_reduction_rows,
    max_pair_sum,
    reduction_rows,
)
from tests.qdq_models import max_ranges, op_counts, run, tiny_resnet


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, (3, 10), elements=st.floats(-127.4, 127.4)))
def test_clamped_pairs_never_exceed_the_int16_limit(unrounded: np.ndarray) -> None:
    q = np.rint(unrounded).astype(np.int8)
    fixed, moved = clamp_pairs(q, unrounded)
    assert max_pair_sum(fixed) <= SAFE_PAIR_SUM
    changed = fixed != q
    assert moved == 0 or changed.any()
    # only pairs that could saturate move, and never by more than needed plus rounding
    a, b = q[:, 0::2].astype(int), q[:, 1::2].astype(int)
    risky = ((a > 0) & (b > 0) | (a < 0) & (b < 0)) & (np.abs(a) + np.abs(b) > SAFE_PAIR_SUM)
    assert not (changed[:, 0::2] & ~risky).any() and not (changed[:, 1::2] & ~risky).any()
    assert np.abs(fixed.astype(int) - q.astype(int)).max(initial=0) <= 64


def test_reduction_rows_put_the_input_channel_innermost() -> None:
    w = np.arange(2 * 4 * 3 * 3).reshape(2, 4, 3, 3)
    rows = reduction_rows(w, 0)
    assert rows.shape == (2, 36)
    assert list(rows[0, :4]) == [w[0, c, 0, 0] for c in range(4)]  # one tap, its channels
    assert np.array_equal(from_reduction_rows(rows, w.shape, 0), w)
    gemm = np.arange(12).reshape(3, 4)  # (in, out): transB = 0, output axis 1
    assert np.array_equal(from_reduction_rows(reduction_rows(gemm, 1), gemm.shape, 1), gemm)


def _conv_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")],
        "one_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", w.shape[1], 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w.shape[0], 6, 6])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_bias_correction_removes_the_mean_output_shift_of_a_quantized_conv() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0.02, 0.1, (16, 8, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 16).astype(np.float32)
    model = prepare(_conv_model(w, b), "conv")

    channel_means = rng.uniform(0.5, 2.0, (1, 8, 1, 1))  # post-ReLU-like: positive means

    def data(seed: int) -> np.ndarray:
        return np.abs(np.random.default_rng(seed).normal(channel_means, 1.0, (16, 8, 8, 8)))

    calib = [data(1).astype(np.float32)]
    plan = placement_tensorrt.place(GraphView(model))
    ranges = max_ranges(model, plan.range_tensors(), calib)
    means = {"x": calib[0].astype(np.float64).mean(axis=(0, 2, 3))}
    held_out = data(2).astype(np.float32)  # the shift measured on other data of the kind
    reference = run(model, held_out).mean(axis=(0, 2, 3))
    shifts = {}
    for correct in (False, True):
        policy = WeightPolicy(weight_max=16, bias_correction=correct)  # coarse: a visible shift
        quantized, counts = apply_plan(model, plan, ranges, policy=policy, channel_means=means)
        shifts[correct] = np.abs(run(quantized, held_out).mean(axis=(0, 2, 3)) - reference)
        assert counts["weights"]["bias_correction"]["layers"] == (1 if correct else 0)
    assert shifts[True].mean() < 0.5 * shifts[False].mean()


def test_bias_shift_matches_the_layer_output_without_padding() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 2, 1, 1))
    wq = w + rng.normal(0, 0.01, w.shape)
    mean = rng.uniform(0, 2, 2)
    expected = ((wq - w)[:, :, 0, 0] * mean).sum(axis=1)
    assert np.allclose(bias_shift(w, wq, 0, mean), expected)
    grouped = bias_shift(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=(4, 1, 3, 3)), 0, mean, 2)
    assert grouped.shape == (4,)


def test_openvino_layout_is_the_structure_openvino_folds() -> None:
    model = prepare(tiny_resnet(), "tiny")
    plan = placement_openvino.place(GraphView(model))
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 3, 8, 8), dtype=np.float32) for _ in range(2)]
    quantized, counts = apply_plan(model, plan, max_ranges(model, plan.range_tensors(), batches))
    inits = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    nodes = list(quantized.graph.node)
    produced_by_dq = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    producer = {out: n for n in nodes for out in n.output}
    # both inputs of every residual Add, every Conv's and the Gemm's input, behind Q/DQ: the
    # Gemm's on the pooled output, before the Flatten (where OpenVINO fuses it into the pooling)
    for node in nodes:
        if node.op_type in ("Add", "Conv", "Gemm"):
            wanted = list(node.input if node.op_type == "Add" else node.input[:2])
            if node.op_type == "Gemm":
                flatten = producer[wanted[0]]
                assert flatten.op_type == "Flatten" and wanted[0] not in produced_by_dq
                wanted[0] = flatten.input[0]
            assert all(x in produced_by_dq for x in wanted), node.name
            if node.op_type != "Add":
                assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32
    # weights: int8 with a scale only (no zero point: no Subtract), no int32 anywhere
    weight_dqs = [n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert len(weight_dqs) == counts["int8_weights"] == 7
    assert all(len(n.input) == 2 and inits[n.input[0]].dtype == np.int8 for n in weight_dqs)
    assert not any(v.dtype == np.int32 for v in inits.values())
    # u8 after a Relu, s8 for signed tensors (the input, the Adds' Conv inputs)
    zero_points = {
        n.input[0]: inits[n.input[2]].dtype for n in nodes if n.op_type == "QuantizeLinear"
    }
    assert zero_points["input"] == np.int8 and zero_points["ca2"] == np.int8
    assert zero_points["p0"] == np.uint8 and zero_points["ra1"] == np.uint8
    assert zero_points["gap"] == np.uint8 and "flat" not in zero_points
    assert op_counts(quantized)["QuantizeLinear"] == len(plan.tensors)
    x = rng.standard_normal((2, 3, 8, 8), dtype=np.float32)
    ref = run(model, x)
    assert np.abs(run(quantized, x) - ref).max() < 0.05 * np.abs(ref).max()


def test_bias_correction_is_recorded_reproducible_and_switchable(
    default_onnx: Path, tmp_path: Path
) -> None:
    made = {}
    for name, correct in (("a", None), ("b", None), ("off", False)):
        out = tmp_path / f"{name}.onnx"
        options = QuantizeOptions(
            target=QdqTarget.OPENVINO,
            method=Method.MAX,
            calib_samples=48,
            eval_data="none",
            bias_correction=correct,
        )
        made[name] = quantize(default_onnx, out, options).manifest
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert (tmp_path / "a.onnx").read_bytes() != (tmp_path / "off.onnx").read_bytes()
    on = made["a"].details["quantization"]["bias_correction"]
    assert on["enabled"] is True and on["layers"] == 22 and on["uncorrected"] == []
    assert on["mean_abs_shift"] > 0
    off = made["off"].details["quantization"]["bias_correction"]
    assert off["enabled"] is False and off["layers"] == 0
    assert made["off"].options["bias_correction"] is False
    reread = read_manifest(tmp_path / "a.onnx")
    assert reread is not None and reread.details["quantization"]["target"] == "openvino"


def _stem_with_max_pool() -> onnx.ModelProto:
    """Conv → Relu → MaxPool feeding two Convs (a ResNet stem and its first block's branches)."""
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)
        for name, shape in (("w0", (4, 3, 3, 3)), ("b0", (4,)), ("w1", (4, 4, 3, 3)),
                            ("b1", (4,)), ("w2", (4, 4, 1, 1)), ("b2", (4,)))
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], pads=[1] * 4, name="stem"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu"),
        helper.make_node(
            "MaxPool", ["r0"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="pool"
        ),
        helper.make_node("Conv", ["mp", "w1", "b1"], ["c1"], pads=[1] * 4, name="branch"),
        helper.make_node("Conv", ["mp", "w2", "b2"], ["c2"], name="down"),
        helper.make_node("Add", ["c1", "c2"], ["out"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "stem",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4, 4, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_openvino_layout_quantizes_the_max_pool_input_with_the_same_values() -> None:
    model = prepare(_stem_with_max_pool(), "stem")
    view = GraphView(model)
    plan = placement_openvino.place(view)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 3, 8, 8), dtype=np.float32) for _ in range(2)]
    ranges = max_ranges(model, plan.range_tensors(), batches)
    quantized, _ = apply_plan(model, plan, ranges)
    quantized_tensors = {n.input[0] for n in quantized.graph.node if n.op_type == "QuantizeLinear"}
    # OpenVINO max-pools int8 data when the Q/DQ sits before the MaxPool (as in NNCF's IR)
    assert "r0" in quantized_tensors and "mp" not in quantized_tensors
    # max commutes with the monotone quantizer: the same values as Q/DQ after the pool
    after = Plan(
        target=plan.target,
        tensors=tuple(
            TensorQuant("mp", (("branch", 0), ("down", 0))) if t.tensor == "r0" else t
            for t in plan.tensors
        ),
        weights=plan.weights,
        biases=plan.biases,
        layers=plan.layers,
        kept=plan.kept,
        left_float=plan.left_float,
    )
    ranges_after = {**ranges, "mp": ranges["r0"]}
    x = rng.standard_normal((3, 3, 8, 8), dtype=np.float32)
    assert np.array_equal(run(quantized, x), run(apply_plan(model, after, ranges_after)[0], x))
    # a MaxPool output that a float (kept) layer also reads keeps its Q/DQ after the pool
    kept = placement_openvino.place(view, keep=("down",))
    assert [t.tensor for t in kept.tensors if t.tensor in ("r0", "mp")] == ["mp"]
