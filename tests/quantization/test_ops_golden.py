"""What quantize writes, pinned: the per-op declarations must not change a byte of it.

The fingerprints below were computed with the code on main before the op table
(`quantization/ops.py`) replaced the per-module op rules: for each model and int8 layout, the
calibrated tensors, the candidate and excludable layers, the plan, the written graph (sha256 of
the serialized model, so node lists, names, attributes and integer weights alike), the MACs the
sensitivity search weighs, and what the int8 emulation rewrites. Ranges are synthetic and
deterministic (no ONNX Runtime arithmetic), so a change in any figure is a change in the rules.

Models: the tiny residual model of the placement tests; a tiny SE / ResNet-D model (ReLU6 Clip
stem, an average-pool shortcut, a squeeze-and-excitation Mul, a Concat and a MatMul
classifier), written with onnx.helper; the bundled ResNet-20 as exported here (its hashes hold
for the FP32 graph whose hash is recorded: another torch may export another graph, and the test
then says so and skips).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from resnet_opt.calibration.collect import calibration_tensors
from resnet_opt.quantization import placement_cpu, placement_openvino, placement_tensorrt
from resnet_opt.quantization.graph_rules import GraphView, prepare
from resnet_opt.quantization.plan import QdqTarget
from resnet_opt.quantization.qdq import apply_plan, default_policy
from resnet_opt.quantization.sensitivity import layer_macs
from tests.qdq_models import MaxRange, tiny_resnet

PLACEMENTS = {
    QdqTarget.TENSORRT: placement_tensorrt,
    QdqTarget.CPU: placement_cpu,
    QdqTarget.OPENVINO: placement_openvino,
}


def se_resnet_d(seed: int = 0) -> onnx.ModelProto:
    """Stem Conv→Clip(0, 6)→MaxPool; a bottleneck whose branch ends in a squeeze-and-excitation
    Mul and whose shortcut is ResNet-D's AveragePool→1×1 Conv; a Concat of two Conv branches;
    GlobalAveragePool→Reshape→MatMul+Add classifier."""
    rng = np.random.default_rng(seed)

    def t(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    inits = [
        t("w0", 8, 3, 3, 3),
        t("b0", 8),
        t("w1", 8, 8, 3, 3),
        t("b1", 8),
        t("w2", 16, 8, 3, 3),
        t("b2", 16),
        t("wse1", 4, 16, 1, 1),
        t("bse1", 4),
        t("wse2", 16, 4, 1, 1),
        t("bse2", 16),
        t("wsc", 16, 8, 1, 1),
        t("bsc", 16),
        t("wc1", 8, 16, 1, 1),
        t("bc1", 8),
        t("wc2", 8, 16, 3, 3),
        t("bc2", 8),
        t("fc_w", 16, 5),
        t("fc_b", 5),
        numpy_helper.from_array(np.array(0.0, np.float32), "clip_lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "clip_hi"),
        numpy_helper.from_array(np.array([-1, 16], np.int64), "flat_shape"),
    ]
    p1 = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], name="stem_conv", pads=p1),
        helper.make_node("Clip", ["c0", "clip_lo", "clip_hi"], ["r0"], name="stem_relu6"),
        helper.make_node(
            "MaxPool", ["r0"], ["p0"], name="stem_pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Conv", ["p0", "w1", "b1"], ["c1"], name="conv1", pads=p1),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=p1, strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["se_pool"], name="se_pool"),
        helper.make_node("Conv", ["se_pool", "wse1", "bse1"], ["se1"], name="se_reduce"),
        helper.make_node("Relu", ["se1"], ["se1r"], name="se_relu"),
        helper.make_node("Conv", ["se1r", "wse2", "bse2"], ["se2"], name="se_expand"),
        helper.make_node("Sigmoid", ["se2"], ["se_gate"], name="se_sigmoid"),
        helper.make_node("Mul", ["c2", "se_gate"], ["se_out"], name="se_mul"),
        helper.make_node(
            "AveragePool",
            ["p0"],
            ["sc_pool"],
            name="down_pool",
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node("Conv", ["sc_pool", "wsc", "bsc"], ["sc"], name="down_conv"),
        helper.make_node("Add", ["se_out", "sc"], ["s"], name="block_add"),
        helper.make_node("Relu", ["s"], ["rs"], name="block_relu"),
        helper.make_node("Conv", ["rs", "wc1", "bc1"], ["cc1"], name="cat_a"),
        helper.make_node("Conv", ["rs", "wc2", "bc2"], ["cc2"], name="cat_b", pads=p1),
        helper.make_node("Concat", ["cc1", "cc2"], ["cat"], name="concat", axis=1),
        helper.make_node("Relu", ["cat"], ["rcat"], name="cat_relu"),
        helper.make_node("GlobalAveragePool", ["rcat"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fc_w"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fc_b"], ["logits"], name="fc_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "se_resnet_d",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def synthetic_ranges(model: onnx.ModelProto, tensors: list[str]) -> dict[str, MaxRange]:
    """A deterministic range per tensor: amax from its name's hash, non-negative after a
    Relu / Clip / MaxPool (the u8 [0, amax] case), signed elsewhere."""
    producers = {out: n.op_type for n in model.graph.node for out in n.output}
    ranges = {}
    for name in tensors:
        amax = 0.5 + int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) / 2**24 * 6
        signed = producers.get(name) not in ("Relu", "Clip", "MaxPool")
        ranges[name] = MaxRange(-amax / 2 if signed else 0.0, amax)
    return ranges


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def fingerprint(model: onnx.ModelProto) -> dict[str, object]:
    """What every part of the int8 path says about `model`, hashed where it is long."""
    from tests.emulate import Arithmetic, rewrite

    tensors = calibration_tensors(model)
    prepared = prepare(model, "model")
    view = GraphView(prepared)
    ranges = synthetic_ranges(prepared, sorted(set(tensors) | {i.name for i in model.graph.input}))
    result: dict[str, object] = {
        "calibration_tensors": _sha(json.dumps(tensors)),
        "macs": _sha(json.dumps(sorted(layer_macs(prepared).items()))),
    }
    for target, placement in PLACEMENTS.items():
        candidates = placement.candidate_layers(view)
        keep = set(candidates[1:3])
        for label, kept in (("", set[str]()), ("-keep", keep)):
            plan = placement.place(view, kept)
            written, counts = apply_plan(
                prepared, plan, ranges, policy=default_policy(target, None, False)
            )
            result[f"{target.value}{label}"] = {
                "candidates": _sha(json.dumps(candidates)),
                "excludable": _sha(json.dumps(placement.excludable_layers(view))),
                "plan": _sha(repr(plan)),
                "graph": _sha(written.SerializeToString(deterministic=True)),
                "counts": _sha(json.dumps(counts, sort_keys=True)),
            }
            if target is QdqTarget.CPU and not label:
                emulated = rewrite(written, Arithmetic.INT16_PAIRS)
                nodes = [(n.op_type, n.domain, list(n.input)) for n in emulated.model.graph.node]
                result["emulated"] = [emulated.convs, emulated.gemms, _sha(json.dumps(nodes))]
    return result


EXPECTED: dict[str, dict[str, object]] = {
    "tiny_resnet": {
        "calibration_tensors": "4742a9f804b82f89",
        "macs": "f6f36973dcf0c292",
        "tensorrt": {
            "candidates": "33be2f48181f601c",
            "excludable": "33be2f48181f601c",
            "plan": "de4c43dde69d915d",
            "graph": "c678e00777b275e2",
            "counts": "236992154b99ad5f",
        },
        "tensorrt-keep": {
            "candidates": "33be2f48181f601c",
            "excludable": "33be2f48181f601c",
            "plan": "aaab8df1af38ee87",
            "graph": "299c9b2b63631a77",
            "counts": "74fe145e1441b81c",
        },
        "cpu": {
            "candidates": "1ac3802dc8da6002",
            "excludable": "8df6954d71558e0e",
            "plan": "6f7be52a4e25b337",
            "graph": "39d97fcd8bd99fcf",
            "counts": "f2df4273582f76ef",
        },
        "emulated": [6, 1, "ef28e421720d0684"],
        "cpu-keep": {
            "candidates": "1ac3802dc8da6002",
            "excludable": "8df6954d71558e0e",
            "plan": "aba9f3d24270f8ee",
            "graph": "a7ac9a3f82458b2a",
            "counts": "37663b91077ccdff",
        },
        "openvino": {
            "candidates": "1ac3802dc8da6002",
            "excludable": "1ac3802dc8da6002",
            "plan": "4ab8a5c1bfe9909d",
            "graph": "d65dc250bca573e6",
            "counts": "902651335d058629",
        },
        "openvino-keep": {
            "candidates": "1ac3802dc8da6002",
            "excludable": "1ac3802dc8da6002",
            "plan": "34a717c44beb1d51",
            "graph": "16713319edaf25bd",
            "counts": "fb2d2132e065b7d6",
        },
    },
    "se_resnet_d": {
        "calibration_tensors": "299201674d6d08be",
        "macs": "d1d313c92c20f2f3",
        "tensorrt": {
            "candidates": "fa90a3734a28c789",
            "excludable": "fa90a3734a28c789",
            "plan": "6a5779afe5951f9f",
            "graph": "7b5ddfd88b232f89",
            "counts": "392254dbc9716a0b",
        },
        "tensorrt-keep": {
            "candidates": "fa90a3734a28c789",
            "excludable": "fa90a3734a28c789",
            "plan": "96bd041dabf8734c",
            "graph": "261cb8681d151d9f",
            "counts": "20eee5c5f730d7bf",
        },
        "cpu": {
            "candidates": "f2630c977d6fce52",
            "excludable": "8f39331df0f33bba",
            "plan": "16a7f00ac2e970c8",
            "graph": "b44c0c4d2c44d94f",
            "counts": "396f7b7410e80397",
        },
        "emulated": [8, 0, "692ae11809aba5b9"],
        "cpu-keep": {
            "candidates": "f2630c977d6fce52",
            "excludable": "8f39331df0f33bba",
            "plan": "f5e8effb6bd077df",
            "graph": "b6877b2ac17ecddd",
            "counts": "d0daafb2e49e0428",
        },
        "openvino": {
            "candidates": "f2630c977d6fce52",
            "excludable": "f2630c977d6fce52",
            "plan": "0f8e5a3080bca7ca",
            "graph": "e46605480eee6443",
            "counts": "88d93e58bb5ada46",
        },
        "openvino-keep": {
            "candidates": "f2630c977d6fce52",
            "excludable": "f2630c977d6fce52",
            "plan": "e65303a290810769",
            "graph": "1211dd6a39d5cd44",
            "counts": "28446d42cb488db6",
        },
    },
    "bundled": {
        "calibration_tensors": "ac4eea60a52219e8",
        "macs": "6d4afd136c41ebe9",
        "tensorrt": {
            "candidates": "4ef4d1e8cb1c253b",
            "excludable": "4ef4d1e8cb1c253b",
            "plan": "bf5127a57c64d114",
            "graph": "b305245b59c049c5",
            "counts": "08aa313fbbf10163",
        },
        "tensorrt-keep": {
            "candidates": "4ef4d1e8cb1c253b",
            "excludable": "4ef4d1e8cb1c253b",
            "plan": "46c6dc343733bad2",
            "graph": "30b2533dcd37d212",
            "counts": "734eda4cf3924c26",
        },
        "cpu": {
            "candidates": "877654088cfdbd6e",
            "excludable": "d77248757a0e6b8c",
            "plan": "f504e2d2a0230799",
            "graph": "1d8aff23c4807df7",
            "counts": "956c776f34dc1c13",
        },
        "emulated": [21, 1, "37df51eb9bf6df79"],
        "cpu-keep": {
            "candidates": "877654088cfdbd6e",
            "excludable": "d77248757a0e6b8c",
            "plan": "8ca3d8e7d8efbbfc",
            "graph": "91ef81d6e06edc27",
            "counts": "f47c7294f5d5b63a",
        },
        "openvino": {
            "candidates": "877654088cfdbd6e",
            "excludable": "877654088cfdbd6e",
            "plan": "c8a91e9465797b37",
            "graph": "a343663d0c1febc6",
            "counts": "43a9a12639a25a15",
        },
        "openvino-keep": {
            "candidates": "877654088cfdbd6e",
            "excludable": "877654088cfdbd6e",
            "plan": "4b21c8e1cec88abc",
            "graph": "4fc3bcd0af45cc2c",
            "counts": "8e0447ab266ea56c",
        },
    },
}

# sha256 (16 hex digits) of the bundled model's FP32 export the bundled figures were made from
BUNDLED_EXPORT = "c15c96f2fcc574e2"


@pytest.mark.parametrize("name", ["tiny_resnet", "se_resnet_d"])
def test_quantized_graphs_are_unchanged(name: str) -> None:
    model = tiny_resnet() if name == "tiny_resnet" else se_resnet_d()
    assert fingerprint(model) == EXPECTED[name]


def test_bundled_model_quantizes_as_before(default_onnx: Path) -> None:
    model = onnx.load(str(default_onnx))
    exported = _sha(model.graph.SerializeToString(deterministic=True))
    if exported != BUNDLED_EXPORT:
        pytest.skip(f"this torch exports another FP32 graph ({exported}), not the pinned one")
    assert fingerprint(model) == EXPECTED["bundled"]
