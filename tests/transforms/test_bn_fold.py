"""The BatchNormalization folding pass: numerics (property tests in ONNX Runtime) and what it
leaves alone, with the reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from resnet_opt.graph import count_ops
from resnet_opt.transforms.bn_fold import FoldResult, LeftBatchNorm, fold_batchnorm

OPSET = 17


# ---------------------------------------------------------------- graph building and running


def bn_params(
    rng: np.random.Generator, channels: int, prefix: str = "bn"
) -> list[onnx.TensorProto]:
    """Non-trivial BN statistics: γ of both signs, variances spread over four decades."""
    values = {
        "scale": rng.uniform(0.2, 2.0, channels) * rng.choice([-1.0, 1.0], channels),
        "bias": rng.normal(0, 0.5, channels),
        "mean": rng.normal(0, 0.5, channels),
        "var": np.exp(rng.uniform(np.log(1e-3), np.log(10.0), channels)),
    }
    return [
        numpy_helper.from_array(v.astype(np.float32), f"{prefix}.{k}") for k, v in values.items()
    ]


def bn_node(x: str, y: str, prefix: str = "bn", eps: float = 1e-5, **attrs: Any) -> onnx.NodeProto:
    inputs = [x, *(f"{prefix}.{k}" for k in ("scale", "bias", "mean", "var"))]
    return helper.make_node("BatchNormalization", inputs, [y], name=prefix, epsilon=eps, **attrs)


def value(name: str, rank: int, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    """A typed value of known rank and unknown sizes (the checker wants a shape on outputs)."""
    return helper.make_tensor_value_info(name, elem, [f"{name}_{i}" for i in range(rank)])


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, Sequence[int | str]]],
    outputs: Sequence[tuple[str, int]],
    initializers: Sequence[onnx.TensorProto],
    *,
    opset: int = OPSET,
    value_info: Sequence[onnx.ValueInfoProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
        [value(n, rank) for n, rank in outputs],
        list(initializers),
        value_info=list(value_info),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """ONNX Runtime with its own graph optimizations off: BN runs as BN, not pre-fused."""
    import onnxruntime as ort

    from resnet_opt.runners.onnxruntime import GraphOptimization, session_options

    opts = session_options(threads=1, optimization=GraphOptimization.DISABLED)
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    return [np.asarray(v) for v in session.run(None, dict(feed))]


def assert_same_outputs(
    original: onnx.ModelProto, folded: onnx.ModelProto, feed: Mapping[str, np.ndarray]
) -> None:
    for ref, got in zip(run(original, feed), run(folded, feed), strict=True):
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * scale)


def fold_checked(model: onnx.ModelProto) -> FoldResult:
    """Fold, and check the pass's general promises: valid result, input model untouched."""
    before = model.SerializeToString()
    result = fold_batchnorm(model)
    assert model.SerializeToString() == before
    onnx.checker.check_model(result.model)
    onnx.shape_inference.infer_shapes(result.model, check_type=True, strict_mode=True)
    return result


def conv_bn_model(
    rng: np.random.Generator,
    *,
    in_channels: int = 4,
    out_channels: int = 6,
    groups: int = 1,
    kernel: Sequence[int] = (3, 3),
    bias: bool = True,
    eps: float = 1e-5,
    size: int = 6,
) -> onnx.ModelProto:
    w = rng.normal(0, 0.5, (out_channels, in_channels // groups, *kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), *bn_params(rng, out_channels)]
    conv_inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, out_channels).astype("f4"), "b"))
        conv_inputs.append("b")
    pads = [k // 2 for k in kernel] * 2
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], name="conv", group=groups, pads=pads),
        bn_node("c", "y", eps=eps),
    ]
    shape = [2, in_channels, *([size] * len(kernel))]
    return make_model(nodes, [("x", shape)], [("y", len(shape))], inits)


# ---------------------------------------------------------------- property tests


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, Any]:
    groups_kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    rank = draw(st.integers(1, 3))
    if groups_kind == "depthwise":
        channels = draw(st.integers(1, 6))
        groups, in_channels, out_channels = channels, channels, channels * draw(st.integers(1, 2))
    else:
        groups = 1 if groups_kind == "plain" else draw(st.integers(2, 3))
        in_channels = groups * draw(st.integers(1, 3))
        out_channels = groups * draw(st.integers(1, 3))
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "groups": groups,
        "kernel": tuple(draw(st.lists(st.sampled_from([1, 2, 3]), min_size=rank, max_size=rank))),
        "bias": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1])),
        "size": draw(st.integers(3, 6)) if rank < 3 else 3,
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases(), seed=st.integers(0, 2**32 - 1))
def test_folding_random_conv_bn_matches_unfolded(case: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = conv_bn_model(rng, **case)
    result = fold_checked(model)
    assert (result.folded, result.left) == (1, ())
    assert count_ops(result.model, ["BatchNormalization", "Conv"]) == {
        "BatchNormalization": 0,
        "Conv": 1,
    }
    shape = [2, case["in_channels"], *([case["size"]] * len(case["kernel"]))]
    x = rng.normal(0, 1, shape).astype(np.float32)
    assert_same_outputs(model, result.model, {"x": x})


@st.composite
def gemm_cases(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "m": draw(st.integers(1, 4)),
        "k": draw(st.integers(1, 6)),
        "n": draw(st.integers(1, 6)),
        "trans_a": draw(st.booleans()),
        "trans_b": draw(st.booleans()),
        "alpha": draw(st.sampled_from([1.0, 0.5, -2.0])),
        "beta": draw(st.sampled_from([1.0, 0.25, 0.0])),
        "c": draw(st.sampled_from(["none", "scalar", "row", "vector", "full", "column"])),
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gemm_cases(), seed=st.integers(0, 2**32 - 1))
def test_folding_random_gemm_bn_matches_unfolded(case: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, k, n = case["m"], case["k"], case["n"]
    b_shape = (n, k) if case["trans_b"] else (k, n)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, b_shape).astype("f4"), "B")]
    inits += bn_params(rng, n)
    inputs = ["a", "B"]
    c_shape = {"scalar": (), "row": (1, n), "vector": (n,), "full": (m, n), "column": (m, 1)}
    if case["c"] != "none":
        c = rng.normal(0, 0.5, c_shape[case["c"]]).astype(np.float32)
        inits.append(numpy_helper.from_array(c, "C"))
        inputs.append("C")
    gemm = helper.make_node(
        "Gemm",
        inputs,
        ["g"],
        name="fc",
        alpha=case["alpha"],
        beta=case["beta"],
        transA=int(case["trans_a"]),
        transB=int(case["trans_b"]),
    )
    a_shape = [k, m] if case["trans_a"] else [m, k]
    model = make_model([gemm, bn_node("g", "y", eps=1e-3)], [("a", a_shape)], [("y", 2)], inits)
    result = fold_checked(model)
    assert (result.folded, result.left) == (1, ())
    assert count_ops(result.model, ["BatchNormalization"]) == {"BatchNormalization": 0}
    a = rng.normal(0, 1, a_shape).astype(np.float32)
    assert_same_outputs(model, result.model, {"a": a})


# ---------------------------------------------------------------- what is folded, how


def test_weights_are_rescaled_in_place_and_bn_parameters_removed() -> None:
    model = conv_bn_model(np.random.default_rng(1), bias=False)
    result = fold_checked(model)
    graph = result.model.graph
    names = {t.name for t in graph.initializer}
    assert "w" in names and not any(n.startswith("bn.") for n in names)
    conv = graph.node[0]
    assert list(conv.output) == ["y"]  # the BN's output name survives
    assert conv.input[2] in names  # a bias was added
    bias = numpy_helper.to_array(next(t for t in graph.initializer if t.name == conv.input[2]))
    assert bias.dtype == np.float32 and bias.shape == (6,)


def test_float16_weights_stay_float16_and_are_computed_in_float64() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.5, (3, 2, 1, 1)).astype(np.float16)
    inits = [numpy_helper.from_array(w, "w"), *bn_params(rng, 3)]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), bn_node("c", "y")],
        "fp16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 2, 2, 2])],
        [value("y", 4, TensorProto.FLOAT16)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    result = fold_checked(model)
    weights = {t.name: numpy_helper.to_array(t) for t in result.model.graph.initializer}
    gamma, beta, mean, var = (numpy_helper.to_array(t).astype(np.float64) for t in inits[1:])
    scale = gamma / np.sqrt(var + 1e-5)
    expected_w = (w.astype(np.float64) * scale[:, None, None, None]).astype(np.float16)
    assert weights["w"].dtype == np.float16
    np.testing.assert_array_equal(weights["w"], expected_w)
    new_bias = weights[result.model.graph.node[0].input[2]]
    np.testing.assert_array_equal(new_bias, (beta - mean * scale).astype(np.float16))


def test_chain_of_two_batchnorms_folds_both() -> None:
    rng = np.random.default_rng(3)
    model = conv_bn_model(rng)
    model.graph.node.append(bn_node("y", "z", prefix="bn2"))
    model.graph.initializer.extend(bn_params(rng, 6, prefix="bn2"))
    model.graph.output[0].name = "z"
    result = fold_checked(model)
    assert (result.folded, result.left) == (2, ())
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (2, 4, 6, 6)).astype("f4")})


def test_parameters_behind_identity_and_constant_nodes_fold_and_dead_nodes_go() -> None:
    """Exporters alias equal parameters through Identity nodes and emit Constant nodes."""
    rng = np.random.default_rng(4)
    model = conv_bn_model(rng)
    graph = model.graph
    scale = next(t for t in graph.initializer if t.name == "bn.scale")
    graph.node.insert(0, helper.make_node("Identity", ["bn.scale"], ["scale_alias"]))
    graph.node.insert(0, helper.make_node("Constant", [], ["mean_const"], value=_const(rng)))
    bn = graph.node[-1]
    bn.input[1], bn.input[3] = "scale_alias", "mean_const"
    graph.initializer.remove(next(t for t in graph.initializer if t.name == "bn.mean"))
    assert scale is not None
    result = fold_checked(model)
    assert (result.folded, result.left) == (1, ())
    assert [n.op_type for n in result.model.graph.node] == ["Conv"]
    assert {t.name for t in result.model.graph.initializer} == {"w", "b"}
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (2, 4, 6, 6)).astype("f4")})


def _const(rng: np.random.Generator, size: int = 6) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.normal(0, 0.5, size).astype(np.float32), "value")


def test_bias_computed_at_run_time_gets_the_affine_on_its_path() -> None:
    """The dynamo exporter (optimize=False) computes a zero bias with Shape/Expand at run time."""
    rng = np.random.default_rng(5)
    model = conv_bn_model(rng)
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
    graph.node.insert(0, helper.make_node("Mul", ["b", "half"], ["b_runtime"]))
    graph.node.insert(0, helper.make_node("Shape", ["w"], ["w_shape"]))  # reads the shape only
    graph.node[2].input[2] = "b_runtime"
    graph.output.append(value("w_shape", 1, TensorProto.INT64))
    result = fold_checked(model)
    assert (result.folded, result.left) == (1, ())
    assert count_ops(result.model, ["BatchNormalization"]) == {"BatchNormalization": 0}
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (2, 4, 6, 6)).astype("f4")})


def test_biases_aliased_through_identity_or_from_constant_get_new_initializers() -> None:
    """The TorchScript exporter aliases equal tensors (zero biases, say) through Identity."""
    rng = np.random.default_rng(18)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 3, 3)).astype("f4"), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 3, 3)).astype("f4"), "w2")
    shared = numpy_helper.from_array(rng.normal(0, 0.5, 4).astype("f4"), "shared_bias")
    nodes = [
        helper.make_node("Identity", ["shared_bias"], ["bias1"]),
        helper.make_node("Identity", ["shared_bias"], ["bias2"]),
        helper.make_node("Conv", ["x", "w1", "bias1"], ["c1"], pads=[1, 1, 1, 1]),
        bn_node("c1", "y1", prefix="bn1"),
        helper.make_node("Conv", ["y1", "w2", "bias2"], ["c2"], pads=[1, 1, 1, 1]),
        bn_node("c2", "y2", prefix="bn2"),
        helper.make_node("Constant", [], ["bias3"], value=_const(rng, 4)),
        helper.make_node("Conv", ["y2", "w3", "bias3"], ["c3"], pads=[1, 1, 1, 1]),
        bn_node("c3", "y", prefix="bn3"),
    ]
    w3 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 3, 3)).astype("f4"), "w3")
    params = [p for name in ("bn1", "bn2", "bn3") for p in bn_params(rng, 4, name)]
    model = make_model(nodes, [("x", [1, 4, 5, 5])], [("y", 4)], [w1, w2, w3, shared, *params])
    result = fold_checked(model)
    assert (result.folded, result.left) == (3, ())
    assert [n.op_type for n in result.model.graph.node] == ["Conv", "Conv", "Conv"]
    names = {t.name for t in result.model.graph.initializer}
    assert names == {"w1", "w2", "w3", "w1.folded_bias", "w2.folded_bias", "w3.folded_bias"}
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (1, 4, 5, 5)).astype("f4")})


def test_stale_value_info_is_dropped_and_the_bn_output_keeps_its_own() -> None:
    rng = np.random.default_rng(6)
    info = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 6, 6, 6]) for name in "cr"]
    w = numpy_helper.from_array(rng.normal(0, 0.5, (6, 4, 3, 3)).astype("f4"), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        bn_node("c", "bn_out"),
        helper.make_node("Relu", ["bn_out"], ["r"]),
        helper.make_node("Neg", ["r"], ["y"]),
    ]
    value_info = [*info, helper.make_tensor_value_info("bn_out", TensorProto.FLOAT, [2, 6, 6, 6])]
    model = make_model(
        nodes, [("x", [2, 4, 6, 6])], [("y", 4)], [w, *bn_params(rng, 6)], value_info=value_info
    )
    result = fold_checked(model)
    assert result.folded == 1
    assert [v.name for v in result.model.graph.value_info] == ["r", "bn_out"]
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (2, 4, 6, 6)).astype("f4")})


# ---------------------------------------------------------------- what is left, and why


def _left(result: FoldResult) -> dict[str, str]:
    return {entry.node: entry.reason for entry in result.left}


def test_batchnorm_after_relu_and_after_add_is_left_with_its_reason() -> None:
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 3, 3)).astype("f4"), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        bn_node("c", "c_bn", prefix="folds"),
        helper.make_node("Relu", ["c_bn"], ["r"]),
        bn_node("r", "r_bn", prefix="after_relu"),
        helper.make_node("Add", ["r_bn", "x"], ["s"]),
        bn_node("s", "y", prefix="after_add"),
    ]
    inits = [
        w,
        *(p for name in ("folds", "after_relu", "after_add") for p in bn_params(rng, 4, name)),
    ]
    model = make_model(nodes, [("x", [1, 4, 5, 5])], [("y", 4)], inits)
    result = fold_checked(model)
    assert result.folded == 1
    assert _left(result) == {
        "after_relu": "input comes from Relu, not Conv/Gemm",
        "after_add": "input comes from Add, not Conv/Gemm",
    }
    assert count_ops(result.model, ["BatchNormalization"]) == {"BatchNormalization": 2}
    assert_same_outputs(model, result.model, {"x": rng.normal(0, 1, (1, 4, 5, 5)).astype("f4")})


def test_conv_output_with_two_consumers_is_left() -> None:
    rng = np.random.default_rng(8)
    model = conv_bn_model(rng)
    model.graph.node.append(helper.make_node("Relu", ["c"], ["side"]))
    model.graph.output.append(value("side", 4))
    result = fold_checked(model)
    assert result.folded == 0
    assert result.left == (LeftBatchNorm("bn", "Conv output has 2 consumers"),)
    assert result.model.SerializeToString() == model.SerializeToString()


def test_conv_output_that_is_a_graph_output_is_left() -> None:
    model = conv_bn_model(np.random.default_rng(9))
    model.graph.output.append(value("c", 4))
    assert _left(fold_checked(model)) == {"bn": "Conv output 'c' is also a graph output"}


def test_batchnorm_on_a_graph_input_is_left() -> None:
    rng = np.random.default_rng(10)
    model = make_model([bn_node("x", "y")], [("x", [1, 3, 2, 2])], [("y", 4)], bn_params(rng, 3))
    assert _left(fold_checked(model)) == {
        "bn": "input 'x' is a graph input, not a Conv/Gemm output"
    }


def test_shared_conv_weight_is_left() -> None:
    rng = np.random.default_rng(11)
    model = conv_bn_model(rng, in_channels=6)
    model.graph.node.append(helper.make_node("Conv", ["y", "w"], ["z"], pads=[1, 1, 1, 1]))
    model.graph.output[0].name = "z"
    assert _left(fold_checked(model)) == {"bn": "Conv weight 'w' is shared with another node"}


def test_conv_weight_that_is_not_an_initializer_is_left() -> None:
    rng = np.random.default_rng(12)
    w = rng.normal(0, 0.5, (6, 4, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "wv")),
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        bn_node("c", "y"),
    ]
    model = make_model(nodes, [("x", [1, 4, 6, 6])], [("y", 4)], bn_params(rng, 6))
    assert _left(fold_checked(model)) == {
        "bn": "Conv weight 'w' is not an initializer (produced by Constant)"
    }


def test_training_mode_batchnorm_is_left() -> None:
    rng = np.random.default_rng(13)
    model = conv_bn_model(rng)
    bn = model.graph.node[-1]
    bn.attribute.append(helper.make_attribute("training_mode", 1))
    bn.output.extend(["running_mean", "running_var"])
    model.opset_import[0].version = 15
    reason = _left(fold_checked(model))["bn"]
    assert reason.startswith("training_mode=1")


def test_opset_12_batchnorm_with_statistics_outputs_is_left() -> None:
    rng = np.random.default_rng(14)
    model = conv_bn_model(rng)
    model.graph.node[-1].output.extend(["rm", "rv", "sm", "sv"])
    model.opset_import[0].version = 12
    reason = _left(fold_checked(model))["bn"]
    assert reason.startswith("it has running-statistics outputs (rm, rv, sm, sv)")


def test_batchnorm_with_a_run_time_scale_is_left() -> None:
    rng = np.random.default_rng(15)
    model = conv_bn_model(rng)
    model.graph.node.insert(0, helper.make_node("Abs", ["bn.scale"], ["abs_scale"]))
    model.graph.node[-1].input[1] = "abs_scale"
    assert _left(fold_checked(model)) == {
        "bn": "its scale 'abs_scale' is computed at run time, not a constant"
    }


def test_batchnorm_inside_a_subgraph_is_reported() -> None:
    rng = np.random.default_rng(16)
    body_bn = bn_node("x", "inner_y", prefix="inner")
    branch = helper.make_graph([body_bn], "branch", [], [value("inner_y", 4)])
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["other_y"])],
        "other",
        [],
        [value("other_y", 4)],
    )
    inits = [*bn_params(rng, 3, "inner"), numpy_helper.from_array(np.array(True), "cond")]
    node = helper.make_node(
        "If", ["cond"], ["y"], name="branchy", then_branch=branch, else_branch=other
    )
    model = make_model([node], [("x", [1, 3, 2, 2])], [("y", 4)], inits)
    assert _left(fold_checked(model)) == {
        "inner": "inside the If 'branchy' body; only the main graph is folded"
    }


def test_conv_output_read_by_a_subgraph_counts_as_a_consumer() -> None:
    rng = np.random.default_rng(17)
    model = conv_bn_model(rng)
    reads_c = helper.make_graph(
        [helper.make_node("Neg", ["c"], ["neg_c"])], "reads_c", [], [value("neg_c", 4)]
    )
    reads_x = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["neg_x"])], "reads_x", [], [value("neg_x", 4)]
    )
    model.graph.initializer.append(numpy_helper.from_array(np.array(False), "cond"))
    model.graph.node.append(
        helper.make_node("If", ["cond"], ["z"], then_branch=reads_c, else_branch=reads_x)
    )
    model.graph.output.append(value("z", 4))
    assert _left(fold_checked(model)) == {"bn": "Conv output has 2 consumers"}
