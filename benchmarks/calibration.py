"""Calibration cost: wall time and peak memory per range method, per model.

For the bundled default model and torchvision resnet18 / resnet50 (random weights: the cost of
calibration does not depend on them), each method runs in a fresh Python process that does
what `quantize` does before it rewrites the graph: open the calibration data, stream it
through ONNX Runtime with every calibration tensor exposed, keep the streaming statistics, and
compute the ranges. The child reports its own peak resident memory (VmHWM), so every figure
is that of one calibration alone.

Data at 224: a folder of generated JPEGs (written once, 320×256, smooth patterns plus noise),
so the real decode + resize + crop + normalize path is measured, not a synthetic array. The
bundled default calibrates on its own data (the bundled calibration split, 257 images).

    python benchmarks/calibration.py                       # reference run: 512 images
    python benchmarks/calibration.py --images 16 --models resnet18 --name smoke   # smoke test

Writes benchmarks/reports/<name>.json and .md (machine and versions included). Other work on
the machine distorts the times: run the reference on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
METHODS = ("max", "percentile", "entropy", "mse")
MODELS = ("default", "resnet18", "resnet50")
MEMORY_LIMIT_GB = 3.0  # the acceptance: ResNet-50, 512 images, every method


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- inputs --------------------------------------------------------------------------------------


def make_images(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` JPEGs of 320×256 in one class folder (kept between runs)."""
    from PIL import Image

    target = folder / "images"
    target.mkdir(parents=True, exist_ok=True)
    existing = sorted(target.glob("*.jpg"))
    if len(existing) >= count:
        return folder
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:320].astype(np.float32)
    for i in range(len(existing), count):
        fx, fy = rng.uniform(0.005, 0.05, 2).tolist()
        phase = float(rng.uniform(0, 6.3))
        base = np.stack(
            [
                np.sin(xx * fx + phase) * np.cos(yy * fy),
                np.sin((xx + yy) * fx * 0.7 + 2 * phase),
                np.cos(yy * fy * 1.3 - phase),
            ],
            axis=-1,
        )
        pixels = (base * 80 + 128 + rng.normal(0, 20, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(target / f"{i:05d}.jpg", quality=90)
    return folder


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from resnet_opt.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def export_model(name: str, workdir: Path) -> tuple[Path, str]:
    """The ONNX of `name` (exported once) and how it was made."""
    path = workdir / f"{name}.onnx"
    if path.is_file():
        made = "resnet-opt export" if path.with_name(path.name + ".json").is_file() else "torch"
        return path, f"{made}, reused from {path.parent} (delete it to export again)"
    args = ["export", "-o", str(path), "--force"]
    if name != "default":
        args += ["--model", name, "--weights", "none"]
    done = _cli(*args)
    if done.returncode == 0 and path.is_file():
        return path, "resnet-opt export"
    if name == "default":
        raise RuntimeError(f"resnet-opt export of the bundled model failed: {done.stderr.strip()}")
    import torch
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 224, 224),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    return path, f"torch.onnx.export (resnet-opt export failed: {done.stderr.strip()[:200]})"


def contract_for(model: Path, name: str) -> dict[str, Any]:
    from resnet_opt.core.manifest import read_manifest
    from resnet_opt.models.contract import ContractOptions, imagenet_template, resolve_contract

    manifest = read_manifest(model, required=False)
    if manifest is not None and manifest.preprocessing is not None:
        return manifest.preprocessing.to_dict()
    if name == "default":
        raise RuntimeError(f"{model}: no manifest with a preprocessing contract")
    return resolve_contract(imagenet_template(), ContractOptions(), 1000).to_dict()


# -- one measured calibration (child process) ---------------------------------------------------


def child(args: argparse.Namespace) -> None:
    from resnet_opt.calibration.collect import (
        calibration_tensors,
        collect_statistics,
        run_batch_size,
    )
    from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
    from resnet_opt.calibration.ranges import Method, compute_ranges
    from resnet_opt.core.contract import PreprocessContract
    from resnet_opt.graph import load_onnx

    started = time.perf_counter()
    contract = PreprocessContract.from_dict(json.loads(args.contract))
    source = open_source(args.data, default_split=Split.CALIB)
    indices = select_indices(len(source), args.images, args.seed)
    tensors = calibration_tensors(load_onnx(Path(args.model)))
    stream = BatchStream(source, contract, indices, args.batch)
    t0 = time.perf_counter()
    stats = collect_statistics(
        Path(args.model), stream, tensors, threads=args.threads, requested=args.images
    )
    t1 = time.perf_counter()
    ranges = compute_ranges(stats, Method(args.method))
    t2 = time.perf_counter()
    clipped = sum(1 for r in ranges.values() if r.observed_max and r.amax < r.observed_max)
    per_run = run_batch_size(
        load_onnx(Path(args.model)), [t for t in tensors if t not in stats.inputs]
    )
    print(
        json.dumps(
            {
                "wall_s": round(t2 - started, 3),
                "collect_s": round(t1 - t0, 3),
                "ranges_s": round(t2 - t1, 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "samples": stats.samples,
                "tensors": len(tensors),
                "clipped_tensors": clipped,
                "images_per_s": round(stats.samples / (t1 - t0), 2),
                "run_batch": per_run,
            }
        )
    )


def measure(
    model: Path, data: str, contract: dict[str, Any], method: str, args: argparse.Namespace
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--model",
        str(model),
        "--data",
        data,
        "--contract",
        json.dumps(contract),
        "--method",
        method,
        "--images",
        str(args.images),
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- report -------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    from resnet_opt.environment import collect

    env = collect().to_dict()
    env["python"] = platform.python_version()
    return env


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    machine = env["machine"]
    versions = ", ".join(f"{p['name']} {p['version']}" for p in env["packages"] if p.get("version"))
    lines = [
        "# Calibration cost per range method",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"{machine['memory_gb']} GB; load average at start {machine['load_average']}.",
        f"Versions: Python {env['python']}, {versions}.",
        f"Settings: {report['settings']['images']} images requested, data batch "
        f"{report['settings']['batch']}, threads {report['settings']['threads'] or 'default'}, "
        f"seed {report['settings']['seed']}.",
        f"Command: `{report['command']}`",
        "",
        "Each row is one calibration in a fresh process: open the data, stream it through ONNX "
        "Runtime with every calibration tensor exposed, keep streaming statistics, compute the "
        "ranges. Peak RSS is the process's VmHWM (everything: Python, ONNX Runtime, the model).",
        "",
        "| model | data | method | samples | tensors | wall s | collect s | ranges s "
        "| collect images/s | run batch | peak RSS MB | clipped tensors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        if "error" in row:
            lines.append(
                f"| {row['model']} | {row['data']} | {row['method']} | error: "
                f"{row['error']} ||||||||||"
            )
            continue
        lines.append(
            f"| {row['model']} | {row['data']} | {row['method']} | {row['samples']} | "
            f"{row['tensors']} | {row['wall_s']:.1f} | {row['collect_s']:.1f} | "
            f"{row['ranges_s']:.2f} | {row['images_per_s']:.1f} | {row['run_batch']} | "
            f"{row['peak_rss_mb']:.0f} | "
            f"{row['clipped_tensors']} |"
        )
    lines += ["", "Models:"]
    for name, how in report["models"].items():
        lines.append(f"- {name}: {how}")
    verdict = report.get("resnet50_memory")
    if verdict:
        lines += [
            "",
            f"ResNet-50 peak memory, every method: {verdict['max_peak_mb']:.0f} MB "
            f"({'under' if verdict['passed'] else 'OVER'} the {MEMORY_LIMIT_GB:.0f} GB limit, "
            f"{verdict['samples']} samples).",
        ]
    return "\n".join(lines) + "\n"


def parent(args: argparse.Namespace) -> None:
    default_workdir = Path(tempfile.gettempdir()) / "resnet-opt-calib-bench"
    workdir = Path(args.workdir) if args.workdir else default_workdir
    workdir.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    needs_images = any(m != "default" for m in models)
    images = make_images(workdir / "data", args.images) if needs_images else None
    report: dict[str, Any] = {
        "benchmark": "calibration",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "images": args.images,
            "batch": args.batch,
            "threads": args.threads,
            "seed": args.seed,
            "methods": methods,
        },
        "environment": environment(),
        "models": {},
        "results": [],
    }
    for name in models:
        model, how = export_model(name, workdir)
        report["models"][name] = how
        contract = contract_for(model, name)
        data = "default" if name == "default" else str(images)
        for method in methods:
            print(f"{name} {method} …", file=sys.stderr, flush=True)
            row = measure(model, data, contract, method, args)
            described = (
                "bundled calib split"
                if name == "default"
                else f"{args.images} JPEGs 320×256 → {contract['input_size']}"
            )
            row = {"model": name, "data": described, "method": method, **row}
            report["results"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    r50 = [r for r in report["results"] if r["model"] == "resnet50" and "error" not in r]
    if r50:
        peak = max(r["peak_rss_mb"] for r in r50)
        report["resnet50_memory"] = {
            "max_peak_mb": peak,
            "limit_gb": MEMORY_LIMIT_GB,
            "passed": peak < MEMORY_LIMIT_GB * 1024,
            "samples": min(r["samples"] for r in r50),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    print(f"wrote {out / args.name}.json and .md", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=512, help="calibration samples asked for")
    parser.add_argument("--batch", type=int, default=32, help="data stream batch size")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="models and images (kept between runs)")
    parser.add_argument("--out", default=str(REPORTS))
    parser.add_argument("--name", default="calibration", help="report file name (no suffix)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--contract", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
