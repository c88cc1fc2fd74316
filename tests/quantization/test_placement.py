"""The Q/DQ placement rules, checked by walking the written graphs.

TensorRT: every Conv's activation input behind a DQ, int8 weights per output channel behind a
DQ, exactly one input of every Add behind a DQ (the skip), no Q/DQ on a Conv output unless it is
such a skip input, none on the logits, all zero points 0, biases float. CPU: ONNX Runtime's
optimizer turns every Conv and Add into QLinearConv / QLinearAdd.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from resnet_opt.calibration.ranges import Method
from resnet_opt.graph import attribute, index_graph
from resnet_opt.pipeline.quantize import quantize
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization import placement_cpu, placement_tensorrt
from resnet_opt.quantization.graph_rules import GraphView, prepare
from resnet_opt.quantization.plan import QdqTarget
from resnet_opt.quantization.qdq import apply_plan
from tests.qdq_models import max_ranges, tiny_resnet


def assert_tensorrt_placement(
    model: onnx.ModelProto, excluded: frozenset[str] = frozenset()
) -> None:
    """Every TensorRT placement rule, on a written graph."""
    index = index_graph(model.graph)
    inits = index.initializers

    def from_dq(tensor: str) -> bool:
        producer = index.producer(tensor)
        return producer is not None and producer.op_type == "DequantizeLinear"

    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zp = numpy_helper.to_array(inits[node.input[2]])
            assert zp.dtype == np.int8 and not zp.any(), f"{node.name}: zero point not int8 0"
        if node.op_type == "Conv" and node.name not in excluded:
            assert from_dq(node.input[0]), f"{node.name}: activation input not behind a DQ"
            dq = index.producer(node.input[1])
            assert dq is not None and dq.op_type == "DequantizeLinear", f"{node.name}: weight"
            q_weight = inits[dq.input[0]]
            assert q_weight.data_type == TensorProto.INT8
            scales = numpy_helper.to_array(inits[dq.input[1]])
            assert scales.shape == (q_weight.dims[0],), f"{node.name}: not per output channel"
            assert attribute(dq, "axis") == 0
            assert np.abs(numpy_helper.to_array(q_weight)).max() <= 127
            if len(node.input) > 2 and node.input[2]:
                assert node.input[2] in inits, f"{node.name}: bias must stay a float initializer"
                assert inits[node.input[2]].data_type == TensorProto.FLOAT
        if node.op_type == "Add" and node.name not in excluded:
            behind = [from_dq(x) for x in node.input]
            assert sum(behind) == 1, f"{node.name}: {sum(behind)} inputs behind a DQ, not 1"
        if node.op_type == "QuantizeLinear":
            producer = index.producer(node.input[0])
            if producer is not None and producer.op_type == "Conv":
                dq_out = index.consumers_of(node.output[0])[0].output[0]
                users = index.consumers_of(dq_out)
                assert users and all(u.op_type == "Add" for u in users), (
                    f"{producer.name}: Conv output quantized but not as a residual skip input"
                )
            assert node.input[0] not in index.graph_outputs, "Q/DQ on the logits"
        if node.op_type in ("Gemm", "MatMul"):
            assert not any(from_dq(x) for x in node.input), f"{node.name}: classifier quantized"
    for out in index.graph_outputs:
        producer = index.producer(out)
        assert producer is not None and producer.op_type != "DequantizeLinear"


def _plan_and_write(
    model: onnx.ModelProto, target: QdqTarget, keep: frozenset[str] = frozenset()
) -> onnx.ModelProto:
    prepared = prepare(model, "model")
    place = placement_tensorrt.place if target is QdqTarget.TENSORRT else placement_cpu.place
    plan = place(GraphView(prepared), keep)
    rng = np.random.default_rng(0)
    shape = [d.dim_value or 2 for d in prepared.graph.input[0].type.tensor_type.shape.dim]
    ranges = max_ranges(
        prepared, plan.range_tensors(), [rng.standard_normal(shape, dtype=np.float32)]
    )
    written, _ = apply_plan(prepared, plan, ranges)
    return written


def test_tiny_resnet_tensorrt_rules() -> None:
    written = _plan_and_write(tiny_resnet(), QdqTarget.TENSORRT)
    assert_tensorrt_placement(written)
    index = index_graph(written.graph)
    add_b = next(n for n in written.graph.node if n.name == "b_add")
    # the downsample Conv output is the skip input, whatever its position in the Add
    assert index.producer(add_b.input[0]).op_type == "DequantizeLinear"  # type: ignore[union-attr]
    assert add_b.input[1] == "cb2"


def test_skip_is_found_by_structure() -> None:
    view = GraphView(prepare(tiny_resnet(), "m"))
    a = view.residual_add(view.by_name["a_add"])
    b = view.residual_add(view.by_name["b_add"])
    assert a is not None and (a.skip, a.skip_index) == ("p0", 1)
    assert b is not None and (b.skip, b.skip_index) == ("cbd", 0)


def test_excluded_layers_stay_float() -> None:
    keep = frozenset({"a_conv1", "b_add"})
    written = _plan_and_write(tiny_resnet(), QdqTarget.TENSORRT, keep)
    assert_tensorrt_placement(written, excluded=keep)
    index = index_graph(written.graph)
    nodes = {n.name: n for n in written.graph.node}
    assert nodes["a_conv1"].input[1] == "wa1"  # float weight kept
    assert all(
        index.producer(x) is None or index.producer(x).op_type != "DequantizeLinear"  # type: ignore[union-attr]
        for x in nodes["b_add"].input
    )


def test_cpu_leaves_a_conv_with_a_run_time_bias_float() -> None:
    """ORT's int8 Conv needs an int32 bias made from a constant one: such a Conv stays float."""
    from onnx import helper

    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["b_in"], ["b"], name="bias_relu"),
            helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv"),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4]),
            helper.make_tensor_value_info("b_in", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    view = GraphView(prepare(model, "m"))
    assert placement_cpu.candidate_layers(view) == ()
    plan = placement_cpu.place(view)
    assert plan.layers == () and plan.weights == () and plan.biases == ()
    assert plan.left_float == (("conv", "weight or bias not a constant in a supported form"),)


def _ort_optimized(path: Path, tmp_path: Path) -> onnx.ModelProto:
    import onnxruntime as ort

    from resnet_opt.runners.onnxruntime import CPU, session_options

    optimized = tmp_path / "optimized.onnx"
    ort.InferenceSession(
        str(path),
        sess_options=session_options(threads=1, optimized_model_path=optimized),
        providers=[CPU],
    )
    return onnx.load(str(optimized))


def test_tiny_resnet_cpu_layout_fuses_in_onnxruntime(tmp_path: Path) -> None:
    written = _plan_and_write(tiny_resnet(), QdqTarget.CPU)
    path = tmp_path / "cpu.onnx"
    onnx.save(written, str(path))
    ops = [n.op_type for n in _ort_optimized(path, tmp_path).graph.node]
    assert ops.count("QLinearConv") == 6 and ops.count("QLinearAdd") == 2
    assert "Conv" not in ops and "Add" not in ops and "DequantizeLinear" not in ops
    assert "QGemm" in ops and "QLinearGlobalAveragePool" in ops


# -- torchvision ResNets through the stage (few calibration images) ----------------------------


@pytest.fixture(scope="module")
def imagenet_calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calib") / "calib.npy"
    pixels = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    np.save(path, pixels)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_torchvision_tensorrt_placement(
    arch: str, torchvision_onnx: Callable[[str], Path], imagenet_calib: Path, tmp_path: Path
) -> None:
    source = torchvision_onnx(arch)
    out = tmp_path / f"{arch}.int8.onnx"
    result = quantize(
        source,
        out,
        QuantizeOptions(target=QdqTarget.TENSORRT, method=Method.MAX, calib=str(imagenet_calib)),
    )
    model = onnx.load(str(out))
    assert_tensorrt_placement(model)
    convs = sum(1 for n in model.graph.node if n.op_type == "Conv")
    adds = sum(1 for n in model.graph.node if n.op_type == "Add")
    assert (convs, adds) == (
        {"resnet18": 20, "resnet50": 53}[arch],
        {"resnet18": 8, "resnet50": 16}[arch],
    )
    details = result.manifest.details["quantization"]
    assert details["int8_layers"] == convs + adds
    assert result.tensorrt_cache is not None and result.tensorrt_cache.is_file()


@pytest.mark.slow
def test_torchvision_cpu_layout_runs_int8_in_onnxruntime(
    torchvision_onnx: Callable[[str], Path], imagenet_calib: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resnet18.cpu.onnx"
    quantize(
        torchvision_onnx("resnet18"),
        out,
        QuantizeOptions(target=QdqTarget.CPU, method=Method.MAX, calib=str(imagenet_calib)),
    )
    ops = [n.op_type for n in _ort_optimized(out, tmp_path).graph.node]
    assert ops.count("QLinearConv") == 20 and ops.count("QLinearAdd") == 8
    assert "Conv" not in ops and "Add" not in ops
    assert ops.count("Transpose") <= 2  # one int8 NHWC chain from input to classifier
