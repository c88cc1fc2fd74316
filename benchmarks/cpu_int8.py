"""CPU INT8 of ResNet-50: our `--target cpu` (7-bit default, 8-bit opt-out) against ONNX Runtime
FP32 and ONNX Runtime's own `quantize_static` (with and without reduce_range), on ONNX Runtime
and on OpenVINO, all interleaved in one run; plus OpenVINO capped at AVX2.

Why: what CPU INT8 buys and whether it keeps its accuracy depend on the CPU's int8 instructions
(resnet_opt/cpu_int8.py). The 7-bit weights `--target cpu` now writes by default must cost no
speed against full 8 bits, and our file must run at least as fast as ONNX Runtime's own.

How:
- ResNet-50 exported with `resnet-opt export --model resnet50 --weights none` (random weights:
  speed does not depend on them), quantized through the CLI (`--method max`: the calibration
  method does not change the graph), and by `onnxruntime.quantization.quantize_static` (QDQ,
  u8 activations, s8 per-channel weights, MinMax) with `reduce_range` off and on; calibration on
  `--calib-samples` generated images.
- Timing: every file opened once on ONNX Runtime (CPU, spinning off) and on OpenVINO (CPU, f32
  hint: the float parts in FP32 as the ONNX says), the same thread count for all, timed call by
  call in alternation (benchmarks/alternate.py), ratio = median-latency throughput over ONNX
  Runtime FP32's.
- "OpenVINO capped at AVX2": the same OpenVINO rows in a child process with
  ONEDNN_MAX_CPU_ISA=AVX2 (OpenVINO's oneDNN kernels then dispatch to their AVX2 versions; the
  report lists the primitive types OpenVINO says it ran), ratio over OpenVINO FP32 in that same
  process. ONNX Runtime has no such switch, so no ONNX Runtime AVX2 speed is claimed.
- Agreement with FP32 (random weights: top-1 agreement and logit error on generated images, as
  ONNX Runtime runs them here and under the numpy emulation of AVX2's saturating arithmetic,
  tests/emulate.py).

    python benchmarks/cpu_int8.py                                  # reference run
    python benchmarks/cpu_int8.py --rounds 2 --calib-samples 8 --agreement-images 4 \\
        --emulate-images 0 --name cpu_int8-smoke --out /tmp        # smoke test

Writes <out>/<name>.json and .md with the machine (CPU and its int8 family), load and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks.alternate import (  # noqa: E402
    alternate,
    machine_record,
    make_images,
    md_table,
    run_stage,
    write_report,
)
from benchmarks.quantize import ort_quantize_static, preprocessed  # noqa: E402

REPORTS = HERE / "reports"
CONTENDERS = ("fp32", "ours-7bit", "ours-8bit", "ort-qdq", "ort-qdq-reduce_range")
WHAT = {
    "fp32": "FP32 export",
    "ours-7bit": "`quantize --target cpu` (default: 7-bit weights, --reduce-range)",
    "ours-8bit": "`quantize --target cpu --no-reduce-range` (full 8-bit weights)",
    "ort-qdq": "ORT `quantize_static` QDQ u8s8 per-channel",
    "ort-qdq-reduce_range": "ORT `quantize_static` QDQ u8s8 per-channel, reduce_range=True",
}


def make_models(args: argparse.Namespace) -> dict[str, Path]:
    work: Path = args.workdir
    fp32 = work / f"{args.model}.onnx"
    if not fp32.is_file():
        run_stage(["export", "--model", args.model, "--weights", "none", "-o", str(fp32)])
    images = make_images(work / "data", args.calib_samples)
    models = {"fp32": fp32}
    for name, extra in (("ours-7bit", []), ("ours-8bit", ["--no-reduce-range"])):
        out = work / f"{args.model}.{name}.onnx"
        print(f"quantize {name}", file=sys.stderr, flush=True)
        run_stage([
            "quantize", str(fp32), "-o", str(out), "--target", "cpu", "--method", "max",
            "--calib", str(images), "--calib-samples", str(args.calib_samples), "--eval", "none",
            "--force", *extra,
        ])  # fmt: skip
        models[name] = out
    for name, reduce in (("ort-qdq", False), ("ort-qdq-reduce_range", True)):
        print(f"onnxruntime quantize_static {name}", file=sys.stderr, flush=True)
        models[name] = ort_quantize_static(fp32, str(images), args.calib_samples, name, reduce)
    return models


def weight_max(path: Path) -> int:
    """The largest |int8 weight| in the file (64 for 7-bit weights, 127 for full 8 bits)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    found = 0
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            array = numpy_helper.to_array(inits[node.input[0]])
            if array.dtype == np.int8 and array.ndim > 1:
                found = max(found, int(np.abs(array.astype(int)).max()))
    return found


def timings(
    models: dict[str, Path], backends: list[str], args: argparse.Namespace
) -> dict[str, dict[str, dict[str, Any]]]:
    """{batch: {"backend/contender": Timing dict}} from one alternated loop per batch."""
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.openvino import open_openvino

    rng = np.random.default_rng(0)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for batch in args.batches:
        x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
        with ExitStack() as stack:
            runners: dict[str, Any] = {}
            for backend in backends:
                for name, path in models.items():
                    if backend == "onnxruntime":
                        runner: Any = open_onnxruntime(path, threads=args.threads, spinning=False)
                    else:
                        runner = open_openvino(
                            path, threads=args.threads, precision="f32", batch=batch
                        )
                    runners[f"{backend}/{name}"] = stack.enter_context(runner)

            def call(runner: Any, x: np.ndarray = x) -> Callable[[], object]:
                feed = {runner.inputs[0].name: x}
                return lambda: runner.infer(feed)

            print(f"timing batch {batch}: {len(runners)} runners", file=sys.stderr, flush=True)
            measured = alternate(
                {k: call(r) for k, r in runners.items()},
                batch=batch,
                rounds=args.rounds,
                warmup=args.warmup,
            )
            out[str(batch)] = {k: t.to_dict() for k, t in measured.items()}
    return out


def openvino_primitives(path: Path) -> dict[str, int]:
    """Which kernels OpenVINO's CPU plugin picked for the Convolutions (e.g. jit_avx2_I8)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    kinds: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) == "Convolution":
            kind = info["primitiveType"].astype(str)
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def agreement(
    models: dict[str, Path], args: argparse.Namespace, backend: str
) -> dict[str, dict[str, Any]]:
    """Top-1 agreement and logit error against ORT FP32 on generated images."""
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.openvino import open_openvino

    x, expected = _reference(models, args, args.agreement_images)
    figures = {}
    for name, path in models.items():
        if name == "fp32":
            continue
        if backend == "onnxruntime":
            runner: Any = open_onnxruntime(path, threads=args.threads)
        else:
            runner = open_openvino(path, threads=args.threads, precision="f32")
        with runner:
            got = np.asarray(runner.infer({runner.inputs[0].name: x})[runner.outputs[0].name])
        figures[name] = _agree(expected, got)
    return figures


def _reference(
    models: dict[str, Path], args: argparse.Namespace, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` generated images preprocessed for the FP32 model, and its ORT FP32 logits."""
    from resnet_opt.runners.onnxruntime import open_onnxruntime

    source = models["fp32"]
    x = np.stack(list(preprocessed(source, str(args.workdir / "data"), count, 1)))
    with open_onnxruntime(source, threads=args.threads) as ref:
        expected = np.asarray(ref.infer({ref.inputs[0].name: x})[ref.outputs[0].name])
    return x, expected


def _agree(expected: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    return {
        "top1_agreement": 100.0 * float((expected.argmax(1) == got.argmax(1)).mean()),
        "mean_abs_error": float(np.abs(expected - got).mean()),
        "logit_scale": float(np.abs(expected).mean()),
        "count": len(expected),
    }


def emulated(models: dict[str, Path], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Agreement with FP32 under the numpy emulation of AVX2's saturating int8 arithmetic."""
    import onnx

    from tests.emulate import Arithmetic, Emulator

    x, expected = _reference(models, args, args.emulate_images)
    figures = {}
    for name, path in models.items():
        if name == "fp32":
            continue
        print(f"emulating AVX2 arithmetic: {name}", file=sys.stderr, flush=True)
        got = Emulator(onnx.load(str(path)), Arithmetic.INT16_PAIRS).run(x, batch_size=2)
        figures[name] = _agree(expected, got)
    return figures


def avx2_child(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, Any]:
    """The OpenVINO rows again in a child process with oneDNN capped at AVX2."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    command = [
        sys.executable, __file__, "--child-openvino-avx2", "--workdir", str(args.workdir),
        "--model", args.model, "--batches", ",".join(map(str, args.batches)),
        "--rounds", str(args.rounds), "--warmup", str(args.warmup),
        "--threads", str(args.threads), "--agreement-images", str(args.agreement_images),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the AVX2-capped OpenVINO run failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _models_in(args: argparse.Namespace) -> dict[str, Path]:
    work: Path = args.workdir
    models = {"fp32": work / f"{args.model}.onnx"}
    models.update({n: work / f"{args.model}.{n}.onnx" for n in CONTENDERS[1:]})
    return models


def child(args: argparse.Namespace) -> None:
    models = _models_in(args)
    result = {
        "primitives": {n: openvino_primitives(p) for n, p in models.items()},
        "timings": timings(models, ["openvino"], args),
        "agreement": agreement(models, args, "openvino"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }
    print(json.dumps(result))


def _ratio(per: dict[str, Any], key: str, base: str) -> float:
    return float(per[key]["throughput"] / per[base]["throughput"])


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    m = env["machine"]
    family = report["cpu_int8_family"]
    s = report["settings"]
    lines = [
        f"# CPU INT8 of {s['model']}: `--target cpu` (7-bit / 8-bit) vs ONNX Runtime FP32 and "
        "ONNX Runtime's `quantize_static`",
        "",
        f"CPU: {m['cpu_model']}, {m['cpu_cores']} cores; **int8 family: {family['label']}** "
        f"({family['describe']}). Flags: {', '.join(m['cpu_flags'])}.",
        f"Load average at start {'/'.join(f'{v:.2f}' for v in env['load_average'])}, at end "
        f"{'/'.join(f'{v:.2f}' for v in report['load_average_end'])} (other engineers' jobs "
        "shared the 2 cores: ratios within one interleaved run hold, absolute img/s are low).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        f"Settings: {s['threads']} threads for every runner; ONNX Runtime intra-op spinning off; "
        f"OpenVINO f32 hint; {s['rounds']} alternated rounds per batch (median latency), "
        f"{s['warmup']} warm-up calls; calibration on {s['calib_samples']} generated images "
        "(our files `--method max`, ORT's MinMax). Weights: random (torchvision init, seeded).",
        f"Command: `{report['command']}`",
        "",
        "Files: " + "; ".join(
            f"{k}: {WHAT[k]}, int8 weights within ±{report['weight_max'][k]}"
            for k in CONTENDERS[1:]
        ) + ".",
        "",
        "## Throughput (img/s at the median latency) and × ONNX Runtime FP32, one interleaved run",
        "",
    ]  # fmt: skip
    header = ["file", "batch", "ORT img/s", "ORT ×FP32", "OpenVINO img/s", "OpenVINO ×ORT FP32"]
    avx2 = report.get("openvino_avx2")
    if avx2:
        header += ["OpenVINO capped at AVX2: img/s", "×its FP32"]
    rows = []
    for batch, per in report["timings"].items():
        for name in CONTENDERS:
            ort, ov = per[f"onnxruntime/{name}"], per[f"openvino/{name}"]
            row = [
                name,
                batch,
                f"{ort['throughput']:.1f}",
                f"{_ratio(per, f'onnxruntime/{name}', 'onnxruntime/fp32'):.2f}",
                f"{ov['throughput']:.1f}",
                f"{_ratio(per, f'openvino/{name}', 'onnxruntime/fp32'):.2f}",
            ]
            if avx2:
                cap = avx2["timings"][batch]
                row += [
                    f"{cap[f'openvino/{name}']['throughput']:.1f}",
                    f"{_ratio(cap, f'openvino/{name}', 'openvino/fp32'):.2f}",
                ]
            rows.append(row)
    lines.append(md_table(rows, header))
    lines += ["", "## Agreement with FP32 (random weights, generated images)", ""]
    agree_rows = []
    for name in CONTENDERS[1:]:
        row = [name]
        for key in ("agreement_onnxruntime", "agreement_openvino", "agreement_emulated_avx2"):
            a = report.get(key, {}).get(name)
            row.append(
                "—" if a is None else f"{a['top1_agreement']:.1f} % ({a['mean_abs_error']:.3g})"
            )
        if avx2:
            a = avx2["agreement"].get(name)
            row.append(f"{a['top1_agreement']:.1f} % ({a['mean_abs_error']:.3g})")
        agree_rows.append(row)
    agree_header = ["file", "ORT here", "OpenVINO here", "AVX2 arithmetic (numpy emulation)"]
    if avx2:
        agree_header.append("OpenVINO capped at AVX2")
    lines.append(md_table(agree_rows, agree_header))
    lines += [
        "",
        "Cells: top-1 agreement with ORT FP32 (mean abs logit error; mean abs FP32 logit "
        f"{report['logit_scale']:.3g}) on {s['agreement_images']} images "
        f"({s['emulate_images']} for the emulation).",
    ]
    if avx2:
        lines += [
            "",
            "OpenVINO capped at AVX2 ran these Convolution kernels: "
            + "; ".join(
                f"{n}: " + ", ".join(f"{k} ×{v}" for k, v in kinds.items())
                for n, kinds in avx2["primitives"].items()
            )
            + ".",
        ]
    lines += [
        "",
        "Not measured here: ONNX Runtime on an AVX2-only CPU. This machine has AVX-512 VNNI and "
        "AMX and ONNX Runtime has no switch to cap its kernels, so its AVX2 speed cannot be "
        "measured here (its AVX2 *accuracy* can: see README, 'CPU int8 instruction families').",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calib-samples", type=int, default=64)
    parser.add_argument("--agreement-images", type=int, default=16)
    parser.add_argument("--emulate-images", type=int, default=4)
    parser.add_argument("--no-avx2", dest="avx2", action="store_false")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", default=str(REPORTS))
    parser.add_argument("--name", default="cpu_int8")
    parser.add_argument("--child-openvino-avx2", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.workdir = args.workdir or Path(tempfile.gettempdir()) / "resnet-opt-cpu-int8-bench"
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child_openvino_avx2:
        child(args)
        return
    from resnet_opt.core.cpu_int8 import describe
    from resnet_opt.environment import cpu_int8_family

    started = time.perf_counter()
    environment = machine_record()
    models = make_models(args)
    family = cpu_int8_family()
    report: dict[str, Any] = {
        "benchmark": "cpu_int8",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpu_int8_family": {
            "value": family.value,
            "label": family.label,
            "describe": describe(family),
        },
        "settings": {
            "model": args.model,
            "threads": args.threads,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "batches": args.batches,
            "calib_samples": args.calib_samples,
            "agreement_images": args.agreement_images,
            "emulate_images": args.emulate_images,
            "spinning": False,
            "openvino_hint": "f32",
        },
        "environment": environment,
        "weight_max": {n: weight_max(p) for n, p in models.items() if n != "fp32"},
    }
    report["timings"] = timings(models, ["onnxruntime", "openvino"], args)
    if args.avx2:
        print("OpenVINO capped at AVX2 (child process)", file=sys.stderr, flush=True)
        report["openvino_avx2"] = avx2_child(args, models)
    report["agreement_onnxruntime"] = agreement(models, args, "onnxruntime")
    report["agreement_openvino"] = agreement(models, args, "openvino")
    if args.emulate_images:
        report["agreement_emulated_avx2"] = emulated(models, args)
    first = next(iter(report["agreement_onnxruntime"].values()))
    report["logit_scale"] = first["logit_scale"]
    report["load_average_end"] = list(os.getloadavg())
    report["seconds"] = round(time.perf_counter() - started, 1)
    for path in write_report(Path(args.out), args.name, report, markdown(report)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
