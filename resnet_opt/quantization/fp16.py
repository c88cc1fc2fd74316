"""Which ops of an FP16 artifact ONNX Runtime's CPU provider really ran in fp16.

ONNX Runtime's x86 CPU provider has no fp16 Conv/Gemm kernels: it inserts Casts and computes
those nodes in fp32 on the fp16-rounded weights, so an fp16 artifact's accuracy on ORT CPU
measures weight rounding only (the rewrite itself, and the float32 twin that rounds activations
too, are `resnet_opt.transforms.fp16`). `quantize --precision fp16` and `bench` record which ops
fell back.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.graph import tensor_types_and_shapes


def cpu_fp32_fallback(artifact: Path) -> dict[str, int]:
    """op type → count of the artifact's fp16 nodes that ONNX Runtime's CPU provider ran in fp32.

    Read from the graph ORT actually executes (saved at the basic optimization level, which
    keeps standard ops), compared with the artifact's own types.
    """
    import onnx

    from resnet_opt.deps import require
    from resnet_opt.runners.onnxruntime import CPU, GraphOptimization, session_options

    ort = require("onnxruntime")
    model = onnx.load(str(artifact))
    planned = tensor_types_and_shapes(model)[0]
    with tempfile.TemporaryDirectory(prefix="resnet-opt-fp16-") as folder:
        optimized = Path(folder) / "optimized.onnx"
        opts = session_options(
            threads=1, optimization=GraphOptimization.BASIC, optimized_model_path=optimized
        )
        try:
            ort.InferenceSession(str(artifact), sess_options=opts, providers=[CPU])
        except Exception as exc:  # ORT's own exception types
            raise ResnetOptError(
                f"{artifact}: ONNX Runtime cannot load it ({first_line(exc)})"
            ) from exc
        ran = onnx.load(str(optimized))
    actual = tensor_types_and_shapes(ran)[0]
    # ORT renames the tensors it re-types, but keeps node names
    half_nodes = {
        n.name
        for n in model.graph.node
        if n.op_type != "Cast" and n.output and planned.get(n.output[0]) == onnx.TensorProto.FLOAT16
    }
    fallback: Counter[str] = Counter()
    for node in ran.graph.node:
        if node.name in half_nodes and actual.get(node.output[0]) != onnx.TensorProto.FLOAT16:
            fallback[node.op_type] += 1
    return dict(sorted(fallback.items()))
