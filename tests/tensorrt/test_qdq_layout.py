"""An INT8 ONNX in ONNX Runtime's CPU layout is refused before TensorRT's parser, with the fix;
the parser double refuses what onnx-tensorrt's Q/DQ importer refuses."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from resnet_opt.core.manifest import Precision, Stage
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_tensorrt import build_tensorrt
from resnet_opt.quantization import placement_cpu, placement_tensorrt
from resnet_opt.quantization.graph_rules import GraphView, prepare
from resnet_opt.quantization.plan import QdqTarget as Target
from resnet_opt.quantization.qdq import apply_plan
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import BatchProfile
from resnet_opt.tensorrt.qdq_layout import layout_problems
from tests.fakes.fake_gpu import FakeGpu, install
from tests.fakes.tiny_models import qdq_model, with_manifest
from tests.qdq_models import max_ranges, tiny_resnet

OPTIONS = TensorRtBuildOptions(batch=BatchProfile(1, 2, 2))


def quantized(path: Path, target: Target) -> Path:
    """tiny_resnet quantized by our own placement for `target` (what `quantize` writes)."""
    prepared = prepare(tiny_resnet(), "model")
    place = placement_cpu.place if target is Target.CPU else placement_tensorrt.place
    plan = place(GraphView(prepared), frozenset())
    rng = np.random.default_rng(0)
    shape = [d.dim_value or 2 for d in prepared.graph.input[0].type.tensor_type.shape.dim]
    ranges = max_ranges(
        prepared, plan.range_tensors(), [rng.standard_normal(shape, dtype=np.float32)]
    )
    written, _ = apply_plan(prepared, plan, ranges)
    onnx.save(written, str(path))
    with_manifest(path, Precision.INT8, stage=Stage.QUANTIZE)
    return path


def edited(path: Path, edit: Callable[[onnx.ModelProto], None]) -> Path:
    """The tiny Q/DQ model with one thing changed, and a manifest for the changed file."""
    qdq_model(path)
    model = onnx.load(str(path))
    edit(model)
    onnx.save(model, str(path))
    with_manifest(path, Precision.INT8, stage=Stage.QUANTIZE)
    return path


def init(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    target = next(t for t in model.graph.initializer if t.name == name)
    target.CopyFrom(numpy_helper.from_array(value, name))


def u8(model: onnx.ModelProto) -> None:
    init(model, "a_z", np.array(0, np.uint8))


def nonzero(model: onnx.ModelProto) -> None:
    init(model, "a_z", np.array(3, np.int8))


def int32_bias(model: onnx.ModelProto) -> None:
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(6, np.int32), "b_q"))
    model.graph.initializer.append(numpy_helper.from_array(np.array(1e-4, np.float32), "b_s"))
    model.graph.node.insert(0, helper.make_node("DequantizeLinear", ["b_q", "b_s"], ["b_dq"]))
    conv.input[2] = "b_dq"


def negative_scale(model: onnx.ModelProto) -> None:
    init(model, "a_s", np.array(-0.04, np.float32))


def scale_count(model: onnx.ModelProto) -> None:
    init(model, "w_s", np.full(5, 0.003, np.float32))  # the weight has 6 output channels


def input_scale(model: onnx.ModelProto) -> None:
    """The activation scale computed at run time (a graph input), not a constant."""
    model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == "a_s"))
    model.graph.input.append(helper.make_tensor_value_info("a_s", TensorProto.FLOAT, []))


def test_a_cpu_target_int8_onnx_is_refused_before_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = FakeGpu()
    install(monkeypatch, gpu)
    source = quantized(tmp_path / "m.cpu.onnx", Target.CPU)
    with pytest.raises(ResnetOptError) as err:
        build_tensorrt(source, tmp_path / "m.plan", OPTIONS)
    message = str(err.value)
    assert message.endswith("which TensorRT cannot build: quantize with --target tensorrt")
    assert "uint8 zero points" in message and "int32 data (biases)" in message
    assert "OnnxParser.parse_from_file" not in gpu.names()
    assert not (tmp_path / "m.plan").exists()
    # and the reason needs no TensorRT at all
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ResnetOptError, match="quantize with --target tensorrt"):
        build_tensorrt(source, tmp_path / "m.plan", OPTIONS)


def test_the_tensorrt_target_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeGpu())
    source = quantized(tmp_path / "m.trt.onnx", Target.TENSORRT)
    assert layout_problems(onnx.load(str(source)).graph) == ()
    manifest = build_tensorrt(source, tmp_path / "m.plan", replace(OPTIONS, verify=False))
    assert manifest.precision is Precision.INT8


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (u8, "2 Q/DQ nodes with uint8 zero points"),
        (nonzero, "2 with non-zero zero points"),
        (int32_bias, "1 DequantizeLinear of int32 data (biases)"),
    ],
)
def test_each_cpu_layout_feature_is_named(
    tmp_path: Path, edit: Callable[[onnx.ModelProto], None], problem: str
) -> None:
    model = onnx.load(str(edited(tmp_path / "m.onnx", edit)))
    assert problem in layout_problems(model.graph)


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (u8, "only supports INT8 zero points"),
        (nonzero, "zero point must be all zeros"),
        (int32_bias, "INT32 input is not supported"),
        (negative_scale, "Scale coefficients must all be positive"),
        (scale_count, r"number of scales \(5\) is not equal to the number of channels \(6\)"),
        (input_scale, "non-constant scale"),
    ],
)
def test_the_parser_double_refuses_what_tensorrt_refuses(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[onnx.ModelProto], None],
    refusal: str,
) -> None:
    gpu = FakeGpu()
    install(monkeypatch, gpu)
    trt = sys.modules["tensorrt"]
    path = edited(tmp_path / "m.onnx", edit)
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert not parser.parse_from_file(str(path))
    errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
    assert any(re.search(refusal, e) for e in errors), errors
    good = trt.OnnxParser(trt.Builder(logger).create_network(0), logger)
    assert good.parse_from_file(str(qdq_model(tmp_path / "ok.onnx")))
