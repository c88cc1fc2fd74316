"""INT8 from `resnet-opt quantize` (both targets) against FP32, on ONNX Runtime CPU.

For the bundled default model and torchvision ResNet-18 / ResNet-50 (random weights: speed does
not depend on them), each model is exported and quantized through the command line as a user
would (`--target cpu` and `--target tensorrt`); for the torchvision models ONNX Runtime's own
`quantize_static` (QDQ, u8 activations, s8 per-channel weights: the layout measured at
3.39–3.41× FP32 before this stage existed) is added as a yardstick. Then:

- throughput at batch 1 and 8: every model of one architecture opened once (ONNX Runtime,
  fixed threads, intra-op spinning off, sequential), timed alternately call by call for
  `--rounds` rounds (A B C, then C B A), ratio = median-latency throughput / FP32's;
- what ONNX Runtime made of each INT8 graph (QLinearConv / QLinearAdd / float Conv left);
- accuracy: top-1/top-5, drop and agreement against FP32 on the bundled test split for the
  default model; for the random-weight models only top-1 agreement and logit error against FP32
  on synthetic images (indicative: random logits are close to one another).

    python benchmarks/quantize.py                        # reference run (quiet machine!)
    python benchmarks/quantize.py --models default,resnet18 --rounds 3 --calib-samples 16 \\
        --out /tmp/qbench --name smoke                   # smoke test

The acceptance figure is ResNet-50 `--target cpu` at batch 8: ≥ 3.3× FP32. Writes
<out>/<name>.json and .md with the machine, load and versions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
# run as a script, this folder comes first on sys.path; import the helpers as benchmarks.*
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks.alternate import (  # noqa: E402
    Timing,
    alternate,
    machine_record,
    make_images,
    md_table,
    run_stage,
    write_report,
)

REPORTS = HERE / "reports"
MODELS = ("default", "resnet18", "resnet50")
ACCEPTANCE = ("resnet50", "int8-cpu", 8, 3.3)  # model, contender, batch, minimum ratio
QLINEAR_OPS = ("QLinearConv", "QLinearAdd", "QGemm", "QLinearGlobalAveragePool")
FLOAT_OPS = ("Conv", "FusedConv", "Add", "DequantizeLinear", "QuantizeLinear")


def export(name: str, workdir: Path) -> Path:
    path = workdir / f"{name}.onnx"
    if not path.is_file():
        args = ["export", "-o", str(path), "--force"]
        if name != "default":
            args += ["--model", name, "--weights", "none"]
        run_stage(args)
    return path


def quantize(source: Path, target: str, calib: str, args: argparse.Namespace) -> Path:
    out = source.with_name(f"{source.stem}.int8-{target}.onnx")
    command = [
        "quantize", str(source), "-o", str(out), "--target", target, "--method", args.method,
        "--calib", calib, "--calib-samples", str(args.calib_samples), "--force",
        "--eval", "default" if calib == "default" else "none",
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    run_stage(command)
    return out


def preprocessed(source: Path, data: str, count: int, seed: int) -> Iterator[np.ndarray]:
    """`count` samples of DATA preprocessed by `source`'s contract, one per array."""
    from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
    from resnet_opt.pipeline.evaluate import contract_of

    contract = contract_of(source)
    ds = open_source(data, default_split=Split.CALIB)
    for batch in BatchStream(ds, contract, select_indices(len(ds), count, seed), 16):
        yield from batch.x


def ort_quantize_static(
    source: Path, calib: str, count: int, name: str = "ort-qdq", reduce_range: bool = False
) -> Path:
    """ONNX Runtime's own QDQ u8/s8 per-channel model of `source` (MinMax), as a yardstick,
    written beside it as `<stem>.<name>.onnx`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    out = source.with_name(f"{source.stem}.{name}.onnx")
    samples = [x[None] for x in preprocessed(source, calib, count, seed=0)]

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {"input": x}

    quantize_static(
        str(source),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
    )
    return out


def fused_ops(path: Path, threads: int | None) -> dict[str, int]:
    """Op counts of the graph ONNX Runtime actually runs for `path`."""
    import onnx
    import onnxruntime as ort

    from resnet_opt.runners.onnxruntime import CPU, session_options

    with tempfile.TemporaryDirectory() as folder:
        optimized = Path(folder) / "optimized.onnx"
        opts = session_options(threads=threads, optimized_model_path=optimized)
        ort.InferenceSession(str(path), sess_options=opts, providers=[CPU])
        ops = [n.op_type for n in onnx.load(str(optimized)).graph.node]
    return {op: ops.count(op) for op in (*QLINEAR_OPS, *FLOAT_OPS) if op in ops}


def accuracy(source: Path, models: dict[str, Path], threads: int | None) -> dict[str, Any]:
    from resnet_opt.pipeline.evaluate import EvalOptions, evaluate

    figures = {}
    for name, path in models.items():
        result = evaluate(
            path, options=EvalOptions(data="default", reference=source, threads=threads)
        )
        figures[name] = {
            "top1": result.accuracy.top1,
            "top5": result.accuracy.top5,
            "drop_points": result.drop_points,
            "top1_agreement": result.top1_agreement,
            "count": result.accuracy.count,
            "fp32_top1": result.reference.top1 if result.reference else None,
        }
    return figures


def agreement(
    source: Path, models: dict[str, Path], images: str, count: int, threads: int | None
) -> dict[str, Any]:
    from resnet_opt.pipeline.verify import ComparisonAccumulator
    from resnet_opt.runners.base import Backend, open_runner, run_batch

    batch = np.stack(list(preprocessed(source, images, count, seed=1)))
    figures = {}
    with open_runner(Backend.ONNXRUNTIME, source, threads=threads) as ref:
        expected = run_batch(ref, batch)
    for name, path in models.items():
        acc = ComparisonAccumulator()
        with open_runner(Backend.ONNXRUNTIME, path, threads=threads) as runner:
            acc.update(expected, run_batch(runner, batch))
        result = acc.result()
        figures[name] = {
            "top1_agreement": result.top1_agreement,
            "max_abs_error": result.max_abs_error,
            "mean_abs_error": result.mean_abs_error,
            "logit_scale": float(np.abs(expected).mean()),
            "count": result.samples,
        }
    return figures


def timings(
    models: dict[str, Path], shape: tuple[int, ...], args: argparse.Namespace
) -> dict[int, dict[str, Timing]]:
    from contextlib import ExitStack

    from resnet_opt.runners.base import Backend, open_runner

    rng = np.random.default_rng(0)
    results: dict[int, dict[str, Timing]] = {}
    with ExitStack() as stack:
        runners = {
            name: stack.enter_context(open_runner(Backend.ONNXRUNTIME, path, threads=args.threads))
            for name, path in models.items()
        }
        for batch in args.batches:
            x = rng.standard_normal((batch, *shape), dtype=np.float32)

            def call(name: str, x: np.ndarray = x) -> Callable[[], object]:
                runner = runners[name]
                spec = runner.inputs[0].name
                return lambda: runner.infer({spec: x})

            results[batch] = alternate(
                {name: call(name) for name in runners},
                batch=batch,
                rounds=args.rounds,
                warmup=args.warmup,
            )
    return results


def bench_model(
    name: str, workdir: Path, images: Path | None, args: argparse.Namespace
) -> dict[str, Any]:
    from resnet_opt.pipeline.evaluate import contract_of

    started = time.perf_counter()
    source = export(name, workdir)
    calib = "default" if name == "default" else str(images)
    models = {"fp32": source}
    for target in ("cpu", "tensorrt"):
        print(f"{name}: quantize --target {target}", file=sys.stderr, flush=True)
        models[f"int8-{target}"] = quantize(source, target, calib, args)
    if name != "default" and args.ort_reference:
        print(f"{name}: onnxruntime quantize_static", file=sys.stderr, flush=True)
        models["ort-quantize_static"] = ort_quantize_static(source, calib, args.calib_samples)
    int8 = {k: v for k, v in models.items() if k != "fp32"}
    row: dict[str, Any] = {
        "model": name,
        "weights": "trained (bundled)" if name == "default" else "random (seeded)",
        "graphs": {k: fused_ops(v, args.threads) for k, v in int8.items()},
    }
    if name == "default":
        row["accuracy"] = accuracy(source, int8, args.threads)
    else:
        row["agreement"] = agreement(source, int8, calib, args.agreement_images, args.threads)
    print(f"{name}: timing {', '.join(models)}", file=sys.stderr, flush=True)
    shape = contract_of(source).input_shape
    measured = timings(models, shape, args)
    row["timings"] = {
        str(b): {k: t.to_dict() for k, t in per.items()} for b, per in measured.items()
    }
    row["ratios"] = {
        str(b): {k: t.throughput / per["fp32"].throughput for k, t in per.items() if k != "fp32"}
        for b, per in measured.items()
    }
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _loads(values: Any) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "unknown"


def markdown(report: dict[str, Any]) -> str:
    rec = report["environment"]
    m = rec["machine"]
    lines = [
        "# INT8 from `resnet-opt quantize` vs FP32, ONNX Runtime CPU",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('cpu_cores')} cores; load average at start "
        f"{_loads(rec['load_average'])}, at end {_loads(report['load_average_end'])}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in rec["versions"].items()) + ".",
        f"Settings: threads {report['settings']['threads']}, intra-op spinning off, "
        f"{report['settings']['rounds']} alternated rounds per batch size (median latency), "
        f"calibration {report['settings']['method']} on {report['settings']['calib_samples']} "
        "samples.",
        f"Command: `{report['command']}`",
        "",
        "## Throughput (images/s at the median latency) and ratio to FP32",
        "",
    ]
    rows = []
    for row in report["results"]:
        for batch, per in row["timings"].items():
            for name, t in per.items():
                ratio = "1.00" if name == "fp32" else f"{row['ratios'][batch][name]:.2f}"
                rows.append([row["model"], batch, name, f"{t['throughput']:.1f}",
                             f"{t['p50_ms']:.2f}", ratio])  # fmt: skip
    lines.append(md_table(rows, ["model", "batch", "graph", "img/s", "p50 ms", "× FP32"]))
    lines += ["", "## What ONNX Runtime runs (optimized graph)", ""]
    graph_rows = [
        [row["model"], name, ", ".join(f"{op} {n}" for op, n in ops.items())]
        for row in report["results"]
        for name, ops in row["graphs"].items()
    ]
    lines.append(md_table(graph_rows, ["model", "graph", "ops"]))
    lines += ["", "## Accuracy", ""]
    acc_rows = []
    for row in report["results"]:
        for name, a in row.get("accuracy", {}).items():
            acc_rows.append([row["model"], name, f"{a['top1']:.2f}", f"{a['fp32_top1']:.2f}",
                             f"{a['drop_points']:+.2f}", f"{a['top1_agreement']:.2f}",
                             f"bundled test split ({a['count']})"])  # fmt: skip
        for name, a in row.get("agreement", {}).items():
            on = (
                f"{a['count']} synthetic images, random weights; mean abs logit error "
                f"{a['mean_abs_error']:.3g} (mean abs logit {a['logit_scale']:.3g})"
            )
            acc_rows.append([row["model"], name, "—", "—", "—", f"{a['top1_agreement']:.1f}", on])
    lines.append(
        md_table(acc_rows, ["model", "graph", "top-1 %", "FP32 top-1 %", "drop", "agree %", "on"])
    )
    verdict = report.get("acceptance")
    if verdict:
        lines += [
            "",
            f"Acceptance: ResNet-50 `--target cpu` at batch {verdict['batch']}: "
            f"{verdict['ratio']:.2f}× FP32 ({'meets' if verdict['passed'] else 'BELOW'} "
            f"{verdict['minimum']}×).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=15, help="alternated timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per graph first")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--method", default="max", help="calibration method for quantize")
    parser.add_argument("--calib-samples", type=int, default=64)
    parser.add_argument("--agreement-images", type=int, default=32)
    parser.add_argument("--no-ort-reference", dest="ort_reference", action="store_false")
    parser.add_argument("--workdir", default=None, help="exports and images (kept)")
    parser.add_argument("--out", default=str(REPORTS))
    parser.add_argument("--name", default="quantize")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b]
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "resnet-opt-quantize-bench")
    workdir.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    images = None
    if any(m != "default" for m in models):
        count = max(args.calib_samples, args.agreement_images)
        images = make_images(workdir / "data", count)  # ImageFolder layout: one class folder
    report: dict[str, Any] = {
        "benchmark": "quantize",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "threads": args.threads,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "batches": args.batches,
            "method": args.method,
            "calib_samples": args.calib_samples,
            "spinning": False,
        },
        "environment": machine_record(),
        "results": [],
    }
    for name in models:
        report["results"].append(bench_model(name, workdir, images, args))
    report["load_average_end"] = list(os.getloadavg())
    model, contender, batch, minimum = ACCEPTANCE
    for row in report["results"]:
        if row["model"] == model and str(batch) in row["ratios"]:
            ratio = row["ratios"][str(batch)][contender]
            report["acceptance"] = {
                "model": model, "graph": contender, "batch": batch, "ratio": ratio,
                "minimum": minimum, "passed": ratio >= minimum,
            }  # fmt: skip
    for path in write_report(Path(args.out), args.name, report, markdown(report)):
        print(f"wrote {path}", file=sys.stderr)
    summary = [
        f"{row['model']} b{b}: " + ", ".join(f"{k} {v:.2f}×" for k, v in per.items())
        for row in report["results"]
        for b, per in row["ratios"].items()
    ]
    print("\n".join(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
