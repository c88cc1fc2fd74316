"""Q/DQ writing: scales and zero points, per-channel int8 weights, int32 biases, graph rewrite."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import numpy_helper

from resnet_opt.errors import ResnetOptError
from resnet_opt.quantization import placement_cpu, placement_openvino, placement_tensorrt
from resnet_opt.quantization.graph_rules import GraphView, prepare
from resnet_opt.quantization.plan import Plan, QdqTarget
from resnet_opt.quantization.qdq import (
    activation_params,
    apply_plan,
    fit_bias_scales,
    quantize_bias,
    quantize_weight,
    weight_scales,
)
from tests.qdq_models import MaxRange, max_ranges, op_counts, run, tiny_resnet

PLACEMENTS: dict[QdqTarget, Callable[..., Plan]] = {
    QdqTarget.TENSORRT: placement_tensorrt.place,
    QdqTarget.CPU: placement_cpu.place,
    QdqTarget.OPENVINO: placement_openvino.place,
}


def _batches(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 3, 8, 8), dtype=np.float32) for _ in range(n)]


def test_activation_params_per_target() -> None:
    signed, relu = MaxRange(-2.0, 3.0), MaxRange(0.0, 3.0)
    trt = activation_params(QdqTarget.TENSORRT, relu)
    assert (trt.zero_point, trt.dtype) == (0, np.int8)
    assert trt.scale == pytest.approx(3.0 / 127)
    cpu_relu = activation_params(QdqTarget.CPU, relu)
    assert (cpu_relu.zero_point, cpu_relu.dtype) == (0, np.uint8)
    assert cpu_relu.scale == pytest.approx(3.0 / 255)
    cpu_signed = activation_params(QdqTarget.CPU, signed)
    assert (cpu_signed.zero_point, cpu_signed.dtype) == (128, np.uint8)
    assert cpu_signed.scale == pytest.approx(3.0 / 127)
    with pytest.raises(ResnetOptError, match="unusable range"):
        activation_params(QdqTarget.CPU, MaxRange(0.0, float("nan")), "t")


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5),
        elements=st.floats(-50, 50, width=32),
    )
)
def test_weight_round_trip_within_half_a_step(w: np.ndarray) -> None:
    scales = weight_scales(w, 0)
    q = quantize_weight(w, scales, 0)
    assert q.dtype == np.int8 and q.min() >= -127
    shape = (-1,) + (1,) * (w.ndim - 1)
    back = q.astype(np.float64) * scales.reshape(shape)
    assert np.all(np.abs(back - w) <= scales.reshape(shape) / 2 + 1e-6)


def test_zero_channel_borrows_a_typical_scale() -> None:
    w = np.zeros((3, 2, 1, 1), np.float32)
    w[0] = 1.27
    w[2] = 2.54
    scales = weight_scales(w, 0)
    assert scales[1] > 0 and scales[1] == pytest.approx(np.median([0.01, 0.02]))


def test_denormal_channel_gets_a_positive_scale_and_rounds_to_zero() -> None:
    w = np.zeros((2, 3), np.float32)
    w[0] = 1e-44  # its largest magnitude / 127 underflows float32
    w[1] = 1.27
    scales = weight_scales(w, 0)
    assert np.all(scales > 0) and scales[0] == scales[1]
    with np.errstate(all="raise"):
        q = quantize_weight(w, scales, 0)
    assert q[0].tolist() == [0, 0, 0] and q[1].tolist() == [127, 127, 127]


def test_bias_scale_is_raised_instead_of_overflowing() -> None:
    scales = np.array([1e-12, 0.01], np.float32)
    bias = np.array([5.0, 5.0], np.float32)
    fitted = fit_bias_scales(bias, 0.02, scales)
    assert fitted[0] > scales[0] and fitted[1] == scales[1]
    q = quantize_bias(bias, 0.02, fitted)
    assert q.dtype == np.int32
    assert np.allclose(q * 0.02 * fitted.astype(np.float64), bias, rtol=1e-6)


@pytest.mark.parametrize("target", list(QdqTarget))
def test_rewrite_runs_and_stays_close(target: QdqTarget) -> None:
    model = prepare(tiny_resnet(), "tiny")
    view = GraphView(model)
    plan = PLACEMENTS[target](view)
    ranges = max_ranges(model, plan.range_tensors(), _batches())
    quantized, counts = apply_plan(model, plan, ranges)
    onnx.checker.check_model(quantized)
    assert counts["quantize_linear"] == len(plan.tensors)
    assert counts["int8_weights"] == 6 if target is QdqTarget.TENSORRT else 7
    x = _batches(1, seed=1)[0]
    ref, out = run(model, x), run(quantized, x)
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()
    # the input model is untouched (apply_plan works on a copy)
    assert "QuantizeLinear" not in op_counts(model)


def test_int8_weights_and_per_channel_scales_are_stored() -> None:
    model = prepare(tiny_resnet(), "tiny")
    plan = placement_tensorrt.place(GraphView(model))
    quantized, _ = apply_plan(model, plan, max_ranges(model, plan.range_tensors(), _batches()))
    inits = {t.name: t for t in quantized.graph.initializer}
    assert "w0" not in inits  # the float weight is gone, replaced by int8 + DQ
    w0 = numpy_helper.to_array(inits["w0_quantized"])
    scale = numpy_helper.to_array(inits["w0_scale"])
    assert w0.dtype == np.int8 and scale.shape == (4,)
    original = numpy_helper.to_array({t.name: t for t in model.graph.initializer}["w0"])
    assert np.allclose(w0 * scale[:, None, None, None], original, atol=scale.max() / 2 + 1e-7)
    dq = next(n for n in quantized.graph.node if n.output[0] == "w0_dequantized")
    assert next(a.i for a in dq.attribute if a.name == "axis") == 0


def test_same_plan_and_ranges_give_identical_bytes() -> None:
    model = prepare(tiny_resnet(), "tiny")
    plan = placement_cpu.place(GraphView(model))
    ranges = max_ranges(model, plan.range_tensors(), _batches())
    first, _ = apply_plan(model, plan, ranges)
    second, _ = apply_plan(prepare(tiny_resnet(), "tiny"), plan, ranges)
    assert first.SerializeToString() == second.SerializeToString()


def test_missing_range_is_a_clear_error() -> None:
    model = prepare(tiny_resnet(), "tiny")
    plan = placement_tensorrt.place(GraphView(model))
    with pytest.raises(ResnetOptError, match="no calibration range for 1 tensor"):
        ranges = max_ranges(model, plan.range_tensors()[1:], _batches(1))
        apply_plan(model, plan, ranges)


def test_prepare_refuses_what_it_cannot_quantize() -> None:
    model = tiny_resnet()
    plan = placement_tensorrt.place(GraphView(prepare(model, "t")))
    prepared = prepare(model, "t")
    quantized, _ = apply_plan(
        prepared, plan, max_ranges(prepared, plan.range_tensors(), _batches(1))
    )
    with pytest.raises(ResnetOptError, match="already quantized"):
        prepare(quantized, "q.onnx")
    old = tiny_resnet()
    old.opset_import[0].version = 11
    with pytest.raises(ResnetOptError, match="opset 11"):
        prepare(old, "old.onnx")
    with_bn = tiny_resnet()
    with_bn.graph.node[2].op_type = "BatchNormalization"  # only the op type is inspected
    with pytest.raises(ResnetOptError, match="fold them first"):
        prepare(with_bn, "bn.onnx")


def test_prepare_names_nodes_and_materialises_constants() -> None:
    prepared = prepare(tiny_resnet(), "t")
    names = [n.name for n in prepared.graph.node]
    assert all(names) and len(set(names)) == len(names)
    assert "Identity" not in op_counts(prepared)
    assert {"ba2", "b0"} <= {t.name for t in prepared.graph.initializer}
    assert prepare(tiny_resnet(), "t").SerializeToString() == prepared.SerializeToString()
