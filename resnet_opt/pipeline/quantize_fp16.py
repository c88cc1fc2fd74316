"""`quantize --precision fp16`: every float tensor in fp16, except those that would overflow.

With calibration data, the activations' largest magnitudes find the nodes whose outputs would
overflow fp16; they stay fp32. ONNX Runtime's CPU provider runs some fp16 ops in fp32 on the
rounded weights, so the artifact's CPU score is optimistic: a float32 twin that rounds every
fp16 tensor to fp16 is scored too, and the gate takes the larger drop of the two.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.manifest import Precision, write_manifest
from resnet_opt.core.stage_details import Fp16Conversion, Fp16OverflowCheck, Fp16QuantizeDetails
from resnet_opt.graph import save_onnx
from resnet_opt.pipeline.calibrate import calibrate
from resnet_opt.pipeline.quantize_artifact import (
    QuantizeResult,
    artifact_manifest,
    evaluate_artifact,
    exclusions,
    verification_of,
)
from resnet_opt.pipeline.quantize_options import (
    QuantizeOptions,
    calibration_spec,
    evaluation_spec,
)
from resnet_opt.pipeline.quantize_source import QuantizeSource

if TYPE_CHECKING:
    from resnet_opt.core.progress import ProgressCallback


def quantize_fp16(
    source: QuantizeSource,
    output: Path,
    options: QuantizeOptions,
    force: bool,
    progress: ProgressCallback | None,
) -> QuantizeResult:
    import tempfile

    from resnet_opt.quantization.fp16 import cpu_fp32_fallback
    from resnet_opt.quantization.graph_rules import GraphView, prepare
    from resnet_opt.transforms import fp16

    prepared = prepare(source.model, str(source.path), int8=False)
    view = GraphView(prepared)
    excluded = exclusions(view, options.exclude, [n.name for n in view.nodes])  # any node
    calib_spec = calibration_spec(options, source.contract)
    eval_spec = evaluation_spec(options, source.contract)
    timings: dict[str, float] = {}
    with staged_outputs(force=force) as staged:
        onnx_tmp, manifest_tmp = staged.add_with_manifest(output)
        overflow: Fp16OverflowCheck
        keep = set(excluded)
        if calib_spec is not None:
            calib = calibrate(source, calib_spec, options, progress)
            absmax = {name: t.absmax for name, t in calib.stats.tensors.items()}
            risky = fp16.overflow_nodes(prepared, absmax)
            keep |= set(risky)
            overflow = Fp16OverflowCheck(
                checked=True,
                limit=fp16.FP16_MAX * fp16.OVERFLOW_HEADROOM,
                largest_abs=max(absmax.values(), default=0.0),
                kept_fp32=tuple(risky),
                calibration=calib.details,
            )
        else:
            overflow = Fp16OverflowCheck(
                checked=False,
                reason="no calibration data (give --calib DATA to find tensors that would "
                "overflow fp16)",
            )
        started = time.perf_counter()
        converted = fp16.convert(prepared, keep_io_types=options.keep_io_types, keep_fp32=keep)
        save_onnx(converted, onnx_tmp)
        timings["convert"] = time.perf_counter() - started
        half, total = fp16.fp16_nodes(converted)
        fallback = cpu_fp32_fallback(onnx_tmp)

        verification: dict[str, Any]
        if eval_spec is not None:
            started = time.perf_counter()
            evaluation = evaluate_artifact(onnx_tmp, eval_spec, source, options)
            with tempfile.TemporaryDirectory(prefix="resnet-opt-fp16-") as folder:
                twin = Path(folder) / "emulated.onnx"
                save_onnx(fp16.emulate(converted), twin)
                emulated = evaluate_artifact(twin, eval_spec, source, options)
            timings["evaluate"] = time.perf_counter() - started
            verification = verification_of(evaluation, eval_spec, options, output.name)
            verification["fp16_emulated"] = {
                **emulated.to_dict(),
                "artifact": None,  # a temporary twin, not kept
                "what": "float32 twin of the artifact rounding every fp16 tensor to fp16",
            }
            worst = max(evaluation.drop_points or 0.0, emulated.drop_points or 0.0)
            if options.max_drop is not None:
                verification["gate"] = {
                    "max_drop": options.max_drop,
                    "drop_points": worst,
                    "passed": worst <= options.max_drop,
                    "of": "the larger of the artifact's and the fp16 emulation's drops",
                }
        else:
            verification = verification_of(None, None, options)
        verification["cpu_fp32_fallback"] = {
            "ops": fallback,
            "note": (
                "ONNX Runtime's CPU provider has no fp16 kernel for these ops and ran them in "
                "fp32 on the fp16-rounded weights; fp16_emulated rounds activations too"
                if fallback
                else "ONNX Runtime's CPU provider ran every fp16 op in fp16"
            ),
        }
        details = Fp16QuantizeDetails(
            fp16=Fp16Conversion(
                converter="onnxruntime.transformers.float16.convert_float_to_float16",
                keep_io_types=options.keep_io_types,
                fp16_nodes=half,
                nodes=total,
                kept_fp32=tuple(sorted(keep)),
                excluded=tuple(sorted(excluded)),
                overflow_check=overflow,
            ),
            seconds={k: round(v, 3) for k, v in timings.items()},
        )
        manifest = artifact_manifest(
            source,
            output=output,
            content=onnx_tmp,
            precision=Precision.FP16,
            inputs=(source.input_ref(),),
            options=options,
            verification=verification,
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return QuantizeResult(output, manifest, None)
