"""The committed reference reports: the bundled default model and torchvision ResNet-18/50,
through every stage (export → quantize → build → bench), on the machine this runs on.

Each model goes through the command line exactly as a user would run it:

    export                      model.onnx           (FP32, BatchNorm folded)
    quantize --target cpu       model.int8-cpu.onnx  (u8/s8 Q/DQ, ONNX Runtime's fastest)
    quantize --target tensorrt  model.int8-trt.onnx  (symmetric s8 Q/DQ, TensorRT's layout)
    quantize --precision fp16   model.fp16.onnx
    build --backend onnxruntime model.ort.onnx, model.int8-cpu.ort.onnx (ORT-optimized, as built)
    build --backend tensorrt    model.plan, model.fp16.plan, model.int8.plan (only with TensorRT)
    bench (every backend installed here) → REPORTS/<machine>/<model>/report.{json,md,png}

The bundled default model has trained weights and a labelled test split, so its report has
accuracy. The torchvision models use random weights (for speed, and because no ImageNet is
bundled): calibration reads seeded random pixels and accuracy is not measured, unless
`--imagenet DIR` (a labelled ImageNet-style folder) and `--weights` are given. Every report says
which in its notes.

    python benchmarks/run_reference.py                          # all three, into benchmarks/reports
    python benchmarks/run_reference.py --models default --smoke --out /tmp/ref   # quick check

Run it on a quiet machine: a reference report is only worth its load average (recorded).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_opt.measure.machine import machine_info

HERE = Path(__file__).resolve().parent
MODELS = ("default", "resnet18", "resnet50")
RANDOM_CALIB_IMAGES = 64


@dataclass(frozen=True)
class Settings:
    batches: str
    duration: float
    warmup: float
    min_iterations: int
    threads: int | None
    samples: int | None
    calib_samples: int | None
    imagenet: Path | None
    weights: str
    backend: str


def cli(*args: str | Path) -> None:
    """One resnet-opt command, echoed; its failure stops the whole run."""
    command = [sys.executable, "-m", "resnet_opt.cli", *(str(a) for a in args)]
    print("$ resnet-opt " + shlex.join(command[3:]), file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): resnet-opt {shlex.join(command[3:])}")
    print(f"  ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)


def machine_tag() -> str:
    """A folder name for this machine: CPU model, cores, GPU."""
    m = machine_info()
    cpu = re.sub(r"\((r|tm)\)|cpu|processor|@.*", "", m.cpu_model, flags=re.I)
    parts = [cpu, f"{m.cpu_cores}cores", *(g.name for g in m.gpus)]
    slug = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts if p.strip())
    return re.sub(r"-+", "-", slug)


def random_calibration(path: Path, size: int = 256, count: int = RANDOM_CALIB_IMAGES) -> Path:
    """Seeded random RGB pixels (N×H×W×3 uint8) for calibrating random-weight models: ranges
    for speed measurements only, stated in the report."""
    rng = np.random.default_rng(0)
    np.save(path, rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    return path


def tensorrt_missing() -> str | None:
    """Why engines cannot be built here (None: TensorRT and a CUDA GPU are both present)."""
    from resnet_opt.tensorrt.device import probe_device

    device = probe_device()
    if device.tensorrt is None:
        return f"no TensorRT ({device.tensorrt_problem})"
    if device.gpu_name is None:
        return f"no CUDA GPU ({device.gpu_problem})"
    return None


def run_model(name: str, work: Path, reports: Path, s: Settings, force: bool) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model.onnx"
    notes: list[str] = []
    over = ["--force"] if force else []
    if name == "default":
        cli("export", "-o", model, *over)
        calib: list[str | Path] = []
        eval_args: list[str | Path] = ["--eval-samples", str(s.samples)] if s.samples else []
        bench_data: list[str | Path] = ["--data", "default"]
    else:
        cli("export", "--model", name, "--weights", s.weights, "-o", model, *over)
        if s.imagenet is not None:
            calib = ["--calib", s.imagenet]
            eval_args = ["--eval", s.imagenet]
            bench_data = ["--data", s.imagenet]
        else:
            calib = ["--calib", random_calibration(work / "calib-random.npy")]
            eval_args = ["--eval", "none"]
            bench_data = ["--no-accuracy"]
            notes.append(
                "random weights; INT8 calibrated on seeded random pixels; accuracy not measured "
                "(speed only)"
            )
    if s.calib_samples:
        calib += ["--calib-samples", str(s.calib_samples)]
    int8_cpu = work / "model.int8-cpu.onnx"
    int8_trt = work / "model.int8-trt.onnx"
    fp16 = work / "model.fp16.onnx"
    cli("quantize", model, "-o", int8_cpu, "--target", "cpu", *calib, *eval_args, *over)
    cli("quantize", model, "-o", int8_trt, "--target", "tensorrt", *calib, *eval_args, *over)
    cli("quantize", model, "-o", fp16, "--precision", "fp16", *eval_args, *over)
    artifacts: list[Path] = [model, int8_cpu, int8_trt, fp16]
    for source, built in ((model, "model.ort.onnx"), (int8_cpu, "model.int8-cpu.ort.onnx")):
        cli("build", source, "-o", work / built, "--backend", "onnxruntime", *over)
        artifacts.append(work / built)
    trt_missing = tensorrt_missing()
    if trt_missing is None:
        top = max(int(b) for b in s.batches.split(","))
        profile = f"1:{top}:{top}"
        for source, plan in (
            (model, "model.plan"),
            (fp16, "model.fp16.plan"),
            (int8_trt, "model.int8.plan"),
        ):
            cli(
                "build",
                source,
                "-o",
                work / plan,
                "--backend",
                "tensorrt",
                "--batch",
                profile,
                *over,
            )
            artifacts.append(work / plan)
    else:
        notes.append(f"TensorRT engines skipped: {trt_missing}")
        print(f"skipped TensorRT engines: {trt_missing}", file=sys.stderr)
    out = reports / name
    bench_args: list[str | Path] = [
        "bench",
        *artifacts,
        *bench_data,
        "--backend",
        s.backend,
        "--batch",
        s.batches,
        "--duration",
        str(s.duration),
        "--warmup",
        str(s.warmup),
        "--min-iterations",
        str(s.min_iterations),
        "-o",
        out,
        "--force",
    ]
    if s.threads:
        bench_args += ["--threads", str(s.threads)]
    if s.samples and bench_data[0] != "--no-accuracy":
        bench_args += ["--samples", str(s.samples)]
    for note in notes:
        bench_args += ["--note", note]
    cli(*bench_args)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="default,resnet18,resnet50")
    parser.add_argument("--out", type=Path, help="reports root [default: benchmarks/reports]")
    parser.add_argument("--work", type=Path, help="keep the artifacts here [default: temporary]")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point")
    parser.add_argument("--min-iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, help="[default: bench's, all usable cores]")
    parser.add_argument("--samples", type=int, help="evaluate a seeded subset of this many images")
    parser.add_argument("--calib-samples", type=int, help="[default: quantize's]")
    parser.add_argument("--imagenet", type=Path, help="labelled folder for torchvision accuracy")
    parser.add_argument("--weights", default="none", help="torchvision weights [default: none]")
    parser.add_argument("--backend", default="auto", help="bench --backend [default: auto]")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="quick check of the script: batches 1,8, 0.2 s points, 64 samples, 32 calibration",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        batches="1,8" if args.smoke else args.batch,
        duration=0.2 if args.smoke else args.duration,
        warmup=0.05 if args.smoke else args.warmup,
        min_iterations=3 if args.smoke else args.min_iterations,
        threads=args.threads,
        samples=64 if args.smoke and args.samples is None else args.samples,
        calib_samples=32 if args.smoke and args.calib_samples is None else args.calib_samples,
        imagenet=args.imagenet,
        weights=args.weights,
        backend=args.backend,
    )
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r} (choose from {', '.join(MODELS)})")
    reports = (args.out or HERE / "reports") / machine_tag()
    with tempfile.TemporaryDirectory(prefix="resnet-opt-ref-") as tmp:
        work_root = args.work or Path(tmp)
        for name in models:
            started = time.perf_counter()
            out = run_model(name, work_root / name, reports, settings, force=args.work is not None)
            print(f"{name}: {out} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
