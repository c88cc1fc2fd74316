"""OpenVINO on the CPU: the TensorRT-layout INT8 ResNet-50 vs ONNX Runtime's FP32, at batch 8.

The claim under test (issue 4): one INT8 Q/DQ artifact, quantized with `--target tensorrt` for
the GPU, also runs fast on a CPU through OpenVINO, at ≥ 3.2× ONNX Runtime's FP32 model, and gives
the answers ONNX Runtime gives for the same file.

How it is measured:
- Models: ResNet-50 exported by `resnet-opt export --model resnet50 --weights none` (random
  init: speed does not depend on the weights), quantized by `resnet-opt quantize --target
  tensorrt` (calibrated on generated JPEGs). While the quantize stage is not in this checkout,
  a clearly labelled stand-in is used instead: onnxruntime.quantization.quantize_static (QDQ,
  symmetric s8 activations, per-channel s8 weights). `--int8 FILE` takes a ready INT8 ONNX.
- The acceptance pair, ORT FP32 (CPU provider, spinning off) and OpenVINO INT8 (f32 hint: the
  float parts in FP32, as the ONNX says), is timed alternately in one process, run by run, after
  a warm-up; the speed-up is the ratio of median latencies. Threads: the same count for both.
- Context rows (skip with --no-context), alternated among themselves: ORT on the same INT8
  file, OpenVINO FP32 with the f32 hint (the honest FP32 baseline) and with the device default
  (bf16 on a bf16-capable CPU: reported as such), OpenVINO INT8 with the device default.
- Agreement: OpenVINO and ONNX Runtime run the same INT8 file on the same seeded inputs; max /
  mean abs error of the logits and top-1 agreement are recorded.

    python benchmarks/openvino.py                                          # reference run
    python benchmarks/openvino.py --rounds 3 --warmup 1 --samples 8 --name openvino-smoke
    python benchmarks/openvino.py --int8 resnet50.int8.onnx --fp32 resnet50.onnx

Writes benchmarks/reports/<name>.json and .md with the machine, its load and the versions.
Other work on the machine distorts the figures: run the reference on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this file's folder comes first on sys.path, and this file is named like the
# openvino package: take the folder off, so that `import openvino` finds OpenVINO
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))


from benchmarks.alternate import (  # noqa: E402
    Timing,
    alternate,
    has_command,
    machine_record,
    make_images,
    md_table,
    run_stage,
    write_report,
)

REPORTS = ROOT / "benchmarks" / "reports"
TARGET_SPEEDUP = 3.2
STAND_IN = (
    "STAND-IN (resnet-opt quantize is not in this checkout): onnxruntime.quantization."
    "quantize_static, QDQ, symmetric s8 activations, per-channel symmetric s8 weights, "
    "calibrated on {n} seeded normal batches"
)


@dataclass(frozen=True)
class Model:
    path: Path
    how: str
    stand_in: bool = False


def fp32_model(work: Path, name: str, given: Path | None) -> Model:
    if given is not None:
        return Model(given, f"given: {given}")
    out = work / f"{name}.onnx"
    how = f"resnet-opt export --model {name} --weights none (random init)"
    if not out.is_file():
        if not has_command("export"):
            raise SystemExit("resnet-opt export is not available: pass --fp32 FILE")
        print(f"exporting {name} …", file=sys.stderr)
        run_stage(["export", "--model", name, "--weights", "none", "-o", str(out), "--force"])
    return Model(out, how)


def int8_model(work: Path, fp32: Path, given: Path | None, calib: int) -> Model:
    if given is not None:
        return Model(given, f"given: {given}")
    if has_command("quantize"):
        out = work / f"{fp32.stem}.int8.trt.calib{calib}.onnx"  # reused only as made
        args = ["quantize", str(fp32), "-o", str(out), "--precision", "int8"]
        args += ["--target", "tensorrt", "--method", "max"]
        args += ["--calib", str(make_images(work / "calib", calib)), "--calib-samples", str(calib)]
        how = "resnet-opt quantize FP32 -o INT8 " + " ".join(args[4:-4])
        how += f" --calib <{calib} generated JPEGs> --calib-samples {calib}"
        if not out.is_file():
            print("quantizing (resnet-opt quantize --target tensorrt) …", file=sys.stderr)
            run_stage([*args, "--force"])
        return Model(out, how)
    out = work / f"{fp32.stem}.int8.standin.calib{calib}.onnx"
    batches = max(1, calib // 8)
    if not out.is_file():
        print("quantizing with the STAND-IN (quantize_static) …", file=sys.stderr)
        stand_in_quantize(fp32, out, batches)
    return Model(out, STAND_IN.format(n=batches), stand_in=True)


def stand_in_quantize(source: Path, out: Path, batches: int) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            shape = (8, 3, 224, 224)
            self.it = iter(
                [{"input": rng.standard_normal(shape, dtype=np.float32)} for _ in range(batches)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    quantize_static(
        str(source),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )


def agreement(
    reference: Any, candidate: Any, batch: int, samples: int, seed: int
) -> dict[str, Any]:
    from resnet_opt.pipeline.verify import compare_runners, random_batches

    shape = tuple(int(d) for d in reference.inputs[0].shape[1:])
    result = compare_runners(reference, candidate, random_batches(shape, samples, batch, seed))
    return result.to_dict()


def info_of(runner: Any) -> dict[str, Any]:
    info = runner.info
    return {
        "backend": info.backend.value,
        "device": info.device,
        "precision_ran": info.precision,
        "threads": info.threads,
        "details": dict(info.details),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--fp32", type=Path, help="FP32 ONNX to use instead of exporting")
    parser.add_argument("--int8", type=Path, help="INT8 Q/DQ ONNX (--target tensorrt) to use")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=40, help="alternated timed runs each")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--samples", type=int, default=64, help="inputs for the agreement check")
    parser.add_argument("--calib", type=int, default=64, help="calibration images (quantize)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-context", action="store_true", help="time the acceptance pair only")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "resnet-opt-bench-openvino"
    )
    parser.add_argument("--name", default="openvino", help="report name under benchmarks/reports")
    args = parser.parse_args()

    from resnet_opt.runners.onnxruntime import OnnxRuntimeRunner, open_onnxruntime
    from resnet_opt.runners.openvino import OpenVinoRunner, open_openvino

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    fp32 = fp32_model(args.workdir, args.model, args.fp32)
    int8 = int8_model(args.workdir, fp32.path, args.int8, args.calib)
    threads, batch = args.threads, args.batch
    x = np.random.default_rng(args.seed).standard_normal((batch, 3, 224, 224), dtype=np.float32)

    def ort(path: Path) -> OnnxRuntimeRunner:
        return open_onnxruntime(path, threads=threads, spinning=False)

    def ov(path: Path, precision: str) -> OpenVinoRunner:
        return open_openvino(path, threads=threads, precision=precision, batch=batch)

    def call(runner: Any) -> Callable[[], object]:
        name = runner.inputs[0].name
        return lambda: runner.infer({name: x})

    started = time.perf_counter()
    print(f"timing the acceptance pair, {args.rounds} alternated rounds …", file=sys.stderr)
    with ort(fp32.path) as ort_fp32, ov(int8.path, "f32") as ov_int8:
        pair = alternate(
            {"ort-fp32": call(ort_fp32), "openvino-int8": call(ov_int8)},
            batch=batch,
            rounds=args.rounds,
            warmup=args.warmup,
        )
        pair_info = {"ort-fp32": info_of(ort_fp32), "openvino-int8": info_of(ov_int8)}
        with ort(int8.path) as ort_int8:
            agree = {
                "openvino-int8 vs ort on the same int8 file": agreement(
                    ort_int8, ov_int8, batch, args.samples, args.seed + 1
                ),
                "openvino-int8 vs ort-fp32 (what quantization changed)": agreement(
                    ort_fp32, ov_int8, batch, args.samples, args.seed + 1
                ),
            }
    speedup = pair["ort-fp32"].p50_ms / pair["openvino-int8"].p50_ms

    context: dict[str, Timing] = {}
    context_info: dict[str, Any] = {}
    if not args.no_context:
        print("timing the context rows …", file=sys.stderr)
        with (
            ort(fp32.path) as r_ort_fp32,
            ort(int8.path) as r_ort_int8,
            ov(fp32.path, "f32") as r_ov_fp32,
            ov(fp32.path, "default") as r_ov_fp32_default,
            ov(int8.path, "f32") as r_ov_int8,
            ov(int8.path, "default") as r_ov_int8_default,
        ):
            runners = {
                "ort-fp32": r_ort_fp32,
                "ort-int8 (same int8 file)": r_ort_int8,
                "openvino-fp32 (f32 hint)": r_ov_fp32,
                "openvino-fp32 (device default)": r_ov_fp32_default,
                "openvino-int8 (f32 hint)": r_ov_int8,
                "openvino-int8 (device default)": r_ov_int8_default,
            }
            context = alternate(
                {k: call(r) for k, r in runners.items()},
                batch=batch,
                rounds=max(1, args.rounds // 2),
                warmup=args.warmup,
            )
            context_info = {k: info_of(r) for k, r in runners.items()}
            agree["openvino-fp32 (f32 hint) vs ort-fp32"] = agreement(
                r_ort_fp32, r_ov_fp32, batch, args.samples, args.seed + 1
            )
            agree["openvino-fp32 (device default) vs ort-fp32"] = agreement(
                r_ort_fp32, r_ov_fp32_default, batch, args.samples, args.seed + 1
            )

    data = {
        "benchmark": "openvino",
        "claim": f"OpenVINO runs the --target tensorrt INT8 ONNX ≥ {TARGET_SPEEDUP}× ORT FP32",
        "models": {
            "fp32": {"path": str(fp32.path), "how": fp32.how},
            "int8": {"path": str(int8.path), "how": int8.how, "stand_in": int8.stand_in},
        },
        "settings": {
            "batch": batch,
            "threads": threads,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "samples": args.samples,
            "seed": args.seed,
            "inputs": "seeded standard-normal batch (the scale of normalized images)",
            "ort_spinning": False,
        },
        "acceptance": {
            "speedup_p50": speedup,
            "speedup_mean": pair["ort-fp32"].mean_ms / pair["openvino-int8"].mean_ms,
            "target": TARGET_SPEEDUP,
            "met": speedup >= TARGET_SPEEDUP,
            "top1_agreement_same_file": agree["openvino-int8 vs ort on the same int8 file"][
                "top1_agreement"
            ],
        },
        "pair": {k: v.to_dict() for k, v in pair.items()},
        "pair_runners": pair_info,
        "context": {k: v.to_dict() for k, v in context.items()},
        "context_runners": context_info,
        "agreement": agree,
        "seconds": round(time.perf_counter() - started, 1),
        **machine_record(),
        "load_average_before": list(load_before),
    }
    paths = write_report(REPORTS, args.name, data, render(data))
    print(render(data))
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in paths), file=sys.stderr)


def render(data: dict[str, Any]) -> str:
    acc, s = data["acceptance"], data["settings"]
    m = data["machine"]
    int8 = data["models"]["int8"]
    lines = [
        "# OpenVINO vs ONNX Runtime on the CPU (ResNet-50)",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_cores']} cores, {m['memory_gb']} GB; CPU flags: "
        f"{', '.join(m.get('cpu_flags') or []) or 'unknown'}; load average before "
        f"{', '.join(f'{v:.2f}' for v in data['load_average_before'])}, after "
        f"{', '.join(f'{v:.2f}' for v in data['load_average'])}.",
        "Versions: "
        + ", ".join(
            f"{k} {v}"
            for k, v in data["versions"].items()
            if k in ("python", "onnxruntime", "openvino", "numpy", "resnet-opt")
        )
        + ".",
        f"Batch {s['batch']}, {s['threads']} threads each, ORT spinning off, "
        f"{s['rounds']} alternated rounds after {s['warmup']} warm-up runs; inputs: {s['inputs']}.",
        "",
        f"FP32 model: {data['models']['fp32']['how']}.  ",
        f"INT8 model: {int8['how']}.",
    ]
    if int8["stand_in"]:
        lines += ["", "**The INT8 model is a stand-in, not the output of resnet-opt quantize.**"]
    verdict = "met" if acc["met"] else "NOT met"
    lines += [
        "",
        "## Acceptance pair (two models alternated in one run)",
        "",
        md_table(_timing_rows(data["pair"], data["pair_runners"]), _HEADER),
        "",
        f"**Speed-up of OpenVINO INT8 over ORT FP32: {acc['speedup_p50']:.2f}× (median), "
        f"{acc['speedup_mean']:.2f}× (mean); target {acc['target']}×: {verdict}.** "
        f"Top-1 agreement with ORT on the same INT8 file: {acc['top1_agreement_same_file']:.1f}%.",
    ]
    if data["context"]:
        lines += [
            "",
            "## Context (alternated among themselves)",
            "",
            "'device default' is OpenVINO's own choice of float precision: bf16 on a CPU with "
            "AVX512_BF16/AMX. It is not FP32, whatever the model file says.",
            "",
            md_table(_timing_rows(data["context"], data["context_runners"]), _HEADER),
        ]
    lines += ["", "## Agreement (same seeded inputs)", ""]
    rows = [
        [k, v["samples"], f"{v['max_abs_error']:.4g}", f"{v['mean_abs_error']:.4g}",
         f"{v['top1_agreement']:.1f}%"]
        for k, v in data["agreement"].items()
    ]  # fmt: skip
    lines += [md_table(rows, ["pair", "samples", "max abs err", "mean abs err", "top-1 agree"])]
    return "\n".join(lines) + "\n"


_HEADER = ["run", "precision ran", "p50 ms", "mean ms", "p90 ms", "p99 ms", "images/s"]


def _timing_rows(timings: dict[str, Any], infos: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, t in timings.items():
        info = infos.get(name, {})
        ran = info.get("precision_ran") or ("fp32/int8 as in the file" if "ort" in name else "?")
        rows.append(
            [
                name,
                ran,
                f"{t['p50_ms']:.1f}",
                f"{t['mean_ms']:.1f}",
                f"{t['p90_ms']:.1f}",
                f"{t['p99_ms']:.1f}",
                f"{t['throughput']:.1f}",
            ]
        )
    return rows


if __name__ == "__main__":
    main()
