"""A QDQ model's int8 Conv/Gemm computed as a CPU's integer kernels compute it, in numpy.

Why: the same INT8 file scores differently on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI),
whose u8×s8 kernels multiply with VPMADDUBSW: it adds each pair of adjacent u8·s8 products along
the reduction axis into int16 *with saturation*, and only then accumulates in int32. A test
machine with VNNI or AMX never shows that loss, so the tests emulate it: every int8 Conv/Gemm of
a QDQ graph (u8 activations behind DequantizeLinear, int8 weights, optional int32 bias) becomes
one node computing

    acc = Σ_pairs sat16(x[k]·w[k] + x[k+1]·w[k+1])      (Arithmetic.INT16_PAIRS)
    acc = Σ_k x[k]·w[k]                                  (Arithmetic.INT32: VNNI, AMX, Arm dotprod)
    y   = (acc − x_zp·Σ_k w[k] + b) · x_scale · w_scale  (zero point and scales applied after)

on the raw u8 codes (0..255) and int8 weights, as the kernels do; everything else (Q/DQ, Relu,
Add, pooling) runs in float with onnx's reference evaluator. The reduction order is that of an
NHWC convolution (kernel row, kernel column, then input channel innermost: ONNX Runtime runs its
int8 convolutions in NHWC), and a Gemm's is its input features. The result does not depend on the
CPU the emulation runs on: integers are exact in float64.

Test and benchmark tooling, not part of the installed package: no stage uses it (the saturation
warning reads manifests, `quantization/saturation.py`); `tests/quantization/test_emulate.py` and the
benchmarks `cpu_int8.py` and `avx2_accuracy.py` (which put the checkout on `sys.path`) do.
Which ops become integer kernels is declared per op kind (`quantization/ops.py`, `emulation`);
their implementations are `_ops()` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.errors import ResnetOptError
from resnet_opt.quantization.ops import emulated_ops
from resnet_opt.quantization.qdq import INT16_MAX, U8_MAX

if TYPE_CHECKING:
    import onnx

DOMAIN = "resnet_opt.emulate"
INT16_MIN = -INT16_MAX - 1
_REFERENCE_OPSET = 19
_ATTRIBUTE = {"transB": "trans_b"}  # the emulated node's snake_case name
_ROWS = 8192
_BATCH = 32  # output rows per chunk of the saturation correction (bounds memory)


class Arithmetic(str, Enum):
    """How an int8 kernel adds its u8×s8 products."""

    INT32 = "int32"  # VNNI, AMX, Arm dot product: exact int32 accumulation
    INT16_PAIRS = "int16-pairs"  # VPMADDUBSW (AVX2, AVX-512BW): pairs saturate to int16 first


def accumulate(x: np.ndarray, w: np.ndarray, arithmetic: Arithmetic) -> np.ndarray:
    """Σ_k x[r, k]·w[m, k] for u8 codes `x` (R×K) and int8 weights `w` (M×K), as float64.

    With INT16_PAIRS, each pair (k, k+1) for even k is clipped to int16 before it is added (an
    odd K's last product stands alone, as if paired with the kernels' zero padding). Only pairs
    whose weights could overflow at all (255·(|w0| + |w1|) beyond int16 on either side) are
    computed one by one; the rest is an exact matrix product.
    """
    exact = _exact_product(x, w)
    if arithmetic is Arithmetic.INT32:
        return exact
    k = w.shape[1]
    even = k - k % 2
    wi = w.astype(np.int32)
    w0, w1 = wi[:, 0:even:2], wi[:, 1:even:2]  # M × pairs
    high = U8_MAX * (np.maximum(w0, 0) + np.maximum(w1, 0)) > INT16_MAX
    low = U8_MAX * (np.minimum(w0, 0) + np.minimum(w1, 0)) < INT16_MIN
    channels, pairs = np.nonzero(high | low)
    if channels.size == 0:
        return exact
    scatter = np.zeros((channels.size, w.shape[0]), dtype=np.float64)
    scatter[np.arange(channels.size), channels] = 1.0
    a, b = w0[channels, pairs], w1[channels, pairs]
    first, second = x[:, 2 * pairs], x[:, 2 * pairs + 1]  # u8 gathers: 1 byte per element
    for start in range(0, x.shape[0], _ROWS):
        stop = start + _ROWS
        sums = first[start:stop].astype(np.int32) * a + second[start:stop].astype(np.int32) * b
        lost = np.clip(sums, INT16_MIN, INT16_MAX) - sums  # 0 where the pair fits int16
        if lost.any():
            exact[start:stop] += lost.astype(np.float64) @ scatter
    return exact


def _exact_product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w.T exactly: float32 matrix products over reduction chunks short enough that no
    partial sum can leave float32's exact integers (2^24), added in float64."""
    chunk = max(1, (2**24) // (U8_MAX * 128))  # 513 products of at most 255·128
    total = np.zeros((x.shape[0], w.shape[0]), dtype=np.float64)
    for start in range(0, w.shape[1], chunk):
        part = x[:, start : start + chunk].astype(np.float32)
        total += part @ w[:, start : start + chunk].T.astype(np.float32)
    return total


def _im2col(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    pad_value: int,
) -> tuple[np.ndarray, int, int]:
    """(N·OH·OW) × (KH·KW·C) patches of an N×C×H×W tensor, channels innermost (NHWC order)."""
    n, c, _, _ = x.shape
    kh, kw = kernel
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    padded = np.pad(
        x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=pad_value
    ).transpose(0, 2, 3, 1)  # N × H × W × C
    span_h, span_w = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (span_h, span_w), axis=(1, 2))
    windows = windows[:, :: strides[0], :: strides[1], :, :: dilations[0], :: dilations[1]]
    oh, ow = windows.shape[1], windows.shape[2]
    # N × OH × OW × C × KH × KW → N × OH × OW × KH × KW × C
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)
    return patches, oh, ow


def _conv_weights(w: np.ndarray) -> np.ndarray:
    """M × C × KH × KW → M × (KH·KW·C), the NHWC reduction order."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _per_channel(value: np.ndarray, m: int) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    return np.broadcast_to(v, (m,)) if v.size == 1 else v


def conv(
    x_q: np.ndarray,
    x_scale: np.ndarray,
    x_zp: np.ndarray,
    w_q: np.ndarray,
    w_scale: np.ndarray,
    b_q: np.ndarray | None,
    b_scale: np.ndarray | None,
    *,
    arithmetic: Arithmetic,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
) -> np.ndarray:
    """A 2-D u8×s8 convolution (NCHW in and out, float32 out) computed as the kernels do."""
    if x_q.ndim != 4 or w_q.ndim != 4:
        raise ResnetOptError("the int8 emulation handles 2-D convolutions only")
    n, c = x_q.shape[:2]
    m = w_q.shape[0]
    zp = _zero_point(x_zp)
    cg, mg = c // group, m // group
    outputs = []
    oh = ow = 0
    for g in range(group):
        patches, oh, ow = _im2col(
            x_q[:, g * cg : (g + 1) * cg], w_q.shape[2:], strides, pads, dilations, zp
        )
        wg = _conv_weights(w_q[g * mg : (g + 1) * mg])
        outputs.append(_centered(patches, wg, zp, arithmetic))
    acc = np.concatenate(outputs, axis=1)
    y = _dequantize(acc, x_scale, w_scale, b_q, b_scale, m)
    return y.reshape(n, oh, ow, m).transpose(0, 3, 1, 2).astype(np.float32)


def gemm(
    x_q: np.ndarray,
    x_scale: np.ndarray,
    x_zp: np.ndarray,
    w_q: np.ndarray,
    w_scale: np.ndarray,
    b_q: np.ndarray | None,
    b_scale: np.ndarray | None,
    *,
    arithmetic: Arithmetic,
    trans_b: int = 0,
) -> np.ndarray:
    """A u8×s8 Gemm (x: N×K; weights K×M, or M×K with transB) computed as the kernels do."""
    w = w_q if trans_b else w_q.T  # M × K
    acc = _centered(x_q.reshape(x_q.shape[0], -1), w, _zero_point(x_zp), arithmetic)
    return _dequantize(acc, x_scale, w_scale, b_q, b_scale, w.shape[0]).astype(np.float32)


def _zero_point(x_zp: np.ndarray) -> int:
    """The activations' (per-tensor) zero point."""
    return int(np.asarray(x_zp).reshape(-1)[0])


def _centered(x: np.ndarray, w: np.ndarray, zp: int, arithmetic: Arithmetic) -> np.ndarray:
    """Σ_k (x[r, k] − zp)·w[m, k] as the kernels get it: the raw u8 codes accumulated (with
    `arithmetic`'s saturation), the zero point's share zp·Σ_k w[m, k] subtracted after."""
    acc: np.ndarray = accumulate(x, w, arithmetic) - zp * w.astype(np.float64).sum(axis=1)
    return acc


def _dequantize(
    acc: np.ndarray,
    x_scale: np.ndarray,
    w_scale: np.ndarray,
    b_q: np.ndarray | None,
    b_scale: np.ndarray | None,
    m: int,
) -> np.ndarray:
    scale = float(np.asarray(x_scale).reshape(-1)[0]) * _per_channel(w_scale, m)
    y = acc * scale
    if b_q is not None and b_scale is not None:
        y = y + np.asarray(b_q, np.float64).reshape(-1) * _per_channel(b_scale, m)
    return y


# -- the graph rewrite ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rewritten:
    """The model with its int8 Conv/Gemm nodes replaced, and how many of each op type."""

    model: onnx.ModelProto
    counts: Mapping[str, int]

    @property
    def convs(self) -> int:
        return self.counts.get("Conv", 0)

    @property
    def gemms(self) -> int:
        return self.counts.get("Gemm", 0)


def rewrite(model: onnx.ModelProto, arithmetic: Arithmetic) -> Rewritten:
    """`model` (QDQ, u8 activations, int8 weights) with every int8 Conv/Gemm as an emulated node.

    A Conv/Gemm counts as int8 when its input is DequantizeLinear(QuantizeLinear(…)) with a uint8
    zero point and its weight DequantizeLinear of an int8 initializer (the layout `--target cpu`
    writes and ONNX Runtime fuses into QLinearConv/QGemm); any other stays a float node.
    """
    import onnx
    from onnx import helper, numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def dq_of(name: str) -> onnx.NodeProto | None:
        node = producer.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    def init_dtype(name: str) -> Any:
        return numpy_helper.to_array(inits[name]).dtype if name in inits else None

    emulated = emulated_ops()
    counts = dict.fromkeys(emulated, 0)
    nodes = []
    for node in graph.node:
        replaced = None
        emulation = emulated.get(node.op_type)
        if emulation is not None and len(node.input) >= 2:
            x_dq, w_dq = dq_of(node.input[0]), dq_of(node.input[1])
            b_dq = dq_of(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            has_bias = len(node.input) > 2 and bool(node.input[2])
            if (
                x_dq is not None
                and w_dq is not None
                and len(x_dq.input) == 3
                and init_dtype(x_dq.input[2]) == np.uint8
                and init_dtype(w_dq.input[0]) == np.int8
                and (not has_bias or (b_dq is not None and init_dtype(b_dq.input[0]) == np.int32))
            ):
                inputs = [*x_dq.input[:3], w_dq.input[0], w_dq.input[1]]
                if b_dq is not None:
                    inputs += [b_dq.input[0], b_dq.input[1]]
                attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                    raise ResnetOptError(
                        f"{node.name}: the int8 emulation takes explicit pads, not auto_pad"
                    )
                if emulation.plain(attrs):
                    replaced = helper.make_node(
                        emulation.kernel,
                        inputs,
                        list(node.output),
                        name=node.name,
                        domain=DOMAIN,
                        arithmetic=arithmetic.value,
                        **{
                            _ATTRIBUTE.get(k, k): v
                            for k, v in attrs.items()
                            if k in emulation.attributes
                        },
                    )
                    counts[node.op_type] += 1
        nodes.append(replaced if replaced is not None else node)
    del graph.node[:]
    graph.node.extend(nodes)
    copy.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    for opset in copy.opset_import:
        # onnx's reference evaluator implements Q/DQ from opset 19 on only; nothing this
        # evaluates (Q/DQ on u8/s8/s32, Relu, Add, pooling, Flatten) changed meaning since 13
        if opset.domain in ("", "ai.onnx") and opset.version < _REFERENCE_OPSET:
            opset.version = _REFERENCE_OPSET
    return Rewritten(copy, counts)


class Emulator:
    """Runs a QDQ cpu-target model with its int8 Conv/Gemm emulated (see the module docstring)."""

    def __init__(self, model: onnx.ModelProto, arithmetic: Arithmetic) -> None:
        from onnx.reference import ReferenceEvaluator

        self.arithmetic = arithmetic
        self.rewritten = rewrite(model, arithmetic)
        if sum(self.rewritten.counts.values()) == 0:
            raise ResnetOptError(
                "no int8 Conv/Gemm with u8 activations and int8 weights to emulate (quantize "
                "with --target cpu)"
            )
        self._session = ReferenceEvaluator(self.rewritten.model, new_ops=_ops())
        self.input_name = model.graph.input[0].name

    def run(self, x: np.ndarray, batch_size: int = _BATCH) -> np.ndarray:
        """The model's first output for the float input batch `x` (run `batch_size` samples at
        a time: the im2col patches of a whole test set would take gigabytes)."""
        x = np.asarray(x, dtype=np.float32)
        outputs = []
        for start in range(0, max(len(x), 1), batch_size):
            out: Any = self._session.run(None, {self.input_name: x[start : start + batch_size]})
            outputs.append(np.asarray(out[0]))
        return np.concatenate(outputs)


def _ops() -> list[type[Any]]:
    """The reference evaluator's implementations of the emulated nodes."""
    from onnx.reference.op_run import OpRun

    def optional(args: tuple[Any, ...]) -> tuple[Any, Any]:
        return (args[0], args[1]) if len(args) == 2 else (None, None)

    class U8S8Conv(OpRun):
        op_domain = DOMAIN

        def _run(
            self,
            x_q: np.ndarray,
            x_scale: np.ndarray,
            x_zp: np.ndarray,
            w_q: np.ndarray,
            w_scale: np.ndarray,
            *bias: np.ndarray,
            arithmetic: str | None = None,
            strides: Sequence[int] | None = None,
            pads: Sequence[int] | None = None,
            dilations: Sequence[int] | None = None,
            group: int | None = None,
        ) -> tuple[np.ndarray]:
            b_q, b_scale = optional(bias)
            return (
                conv(
                    x_q,
                    x_scale,
                    x_zp,
                    w_q,
                    w_scale,
                    b_q,
                    b_scale,
                    arithmetic=Arithmetic(arithmetic),
                    strides=strides or (1, 1),
                    pads=pads or (0, 0, 0, 0),
                    dilations=dilations or (1, 1),
                    group=group or 1,
                ),
            )

    class U8S8Gemm(OpRun):
        op_domain = DOMAIN

        def _run(
            self,
            x_q: np.ndarray,
            x_scale: np.ndarray,
            x_zp: np.ndarray,
            w_q: np.ndarray,
            w_scale: np.ndarray,
            *bias: np.ndarray,
            arithmetic: str | None = None,
            trans_b: int | None = None,
        ) -> tuple[np.ndarray]:
            b_q, b_scale = optional(bias)
            return (
                gemm(
                    x_q,
                    x_scale,
                    x_zp,
                    w_q,
                    w_scale,
                    b_q,
                    b_scale,
                    arithmetic=Arithmetic(arithmetic),
                    trans_b=trans_b or 0,
                ),
            )

    return [U8S8Conv, U8S8Gemm]


def kernels() -> frozenset[str]:
    """The emulated kernels implemented here (the op table's `Emulation.kernel` names)."""
    return frozenset(op.__name__ for op in _ops())
