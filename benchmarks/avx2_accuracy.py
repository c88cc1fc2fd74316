"""The bundled model's `--target cpu` INT8 on AVX2 arithmetic: 7-bit (default) vs 8-bit weights.

Why: x86 CPUs without VNNI add u8×s8 product pairs into int16 with saturation; this machine (VNNI,
AMX) never shows it. Three ways to see it here, for every calibration method:

- ONNX Runtime on this CPU (int32 accumulation);
- the numpy emulation of the AVX2 arithmetic (tests/emulate.py);
- ONNX Runtime's own AVX2 kernels, running under `qemu-x86_64 -cpu Haswell` (user-mode QEMU
  reports an AVX2-only CPU to ONNX Runtime's kernel dispatch; only results, not timings, mean
  anything there). Skipped, and said so, where qemu-x86_64 is not installed (`apt-get install
  qemu-user`), and with `--no-qemu`.

    python benchmarks/avx2_accuracy.py                   # every method, qemu for entropy only
    python benchmarks/avx2_accuracy.py --methods entropy --no-qemu --out /tmp --name smoke

Writes <out>/<name>.json and .md with the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks.alternate import machine_record, md_table, write_report  # noqa: E402

REPORTS = HERE / "reports"
METHODS = ("entropy", "max", "percentile", "mse")

# run by the Python under QEMU: ONNX Runtime only, on arrays saved by the parent
CHILD = """
import sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1])
for path in sys.argv[2:]:
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(path + ".avx2.npy", s.run(None, {s.get_inputs()[0].name: x})[0])
"""


def bundled_test_split(source: Path) -> tuple[np.ndarray, np.ndarray]:
    from resnet_opt.calibration.data import (
        BatchStream,
        Split,
        label_map,
        open_source,
        select_indices,
    )
    from resnet_opt.pipeline.evaluate import contract_of

    contract = contract_of(source)
    data = open_source("default", default_split=Split.TEST)
    mapping = label_map(data, contract)
    batches = list(BatchStream(data, contract, select_indices(len(data), None, 0), 128, False))
    return np.concatenate([b.x for b in batches]), np.concatenate(
        [mapping[b.labels] for b in batches]
    )


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def figures(top1: np.ndarray, labels: np.ndarray, fp32: np.ndarray) -> dict[str, float]:
    accuracy = 100.0 * float((top1 == labels).mean())
    return {
        "top1": accuracy,
        "drop_points": 100.0 * float((fp32 == labels).mean()) - accuracy,
        "agreement": 100.0 * float((top1 == fp32).mean()),
    }


def main() -> None:
    import onnx

    from resnet_opt.pipeline.export import ExportOptions, export
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions
    from resnet_opt.quantization.plan import QdqTarget
    from tests.emulate import Arithmetic, Emulator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--qemu-methods", default="entropy", help="methods also run under QEMU")
    parser.add_argument("--no-qemu", dest="qemu", action="store_false")
    parser.add_argument("--out", default=str(REPORTS))
    parser.add_argument("--name", default="avx2_accuracy")
    args = parser.parse_args()
    qemu = shutil.which("qemu-x86_64") if args.qemu else None
    work = Path(tempfile.mkdtemp(prefix="resnet-opt-avx2-"))
    source = work / "model.onnx"
    export(None, source, ExportOptions())
    x, labels = bundled_test_split(source)
    fp32 = ort_logits(source, x).argmax(axis=1)
    cache = work / "calib.npz"
    rows: list[dict[str, Any]] = []
    for method in [m for m in args.methods.split(",") if m]:
        for reduce_range in (True, False):
            path = work / f"model.{method}.{'7bit' if reduce_range else '8bit'}.onnx"
            options = QuantizeOptions(
                target=QdqTarget.CPU, method=method, reduce_range=reduce_range, calib_cache=cache,
                eval_data="none",
            )  # fmt: skip
            quantize(source, path, options)
            emulator = Emulator(onnx.load(str(path)), Arithmetic.INT16_PAIRS)
            rows.append({
                "method": method,
                "weights": "7-bit (default)" if reduce_range else "8-bit (--no-reduce-range)",
                "file": path.name,
                "onnxruntime_here": figures(ort_logits(path, x).argmax(1), labels, fp32),
                "avx2_emulated": figures(emulator.run(x).argmax(1), labels, fp32),
            })  # fmt: skip
            print(f"{path.name}: {rows[-1]}", file=sys.stderr, flush=True)
    qemu_note = "not run: qemu-x86_64 not installed" if qemu is None else None
    if qemu is not None:
        wanted = {m for m in args.qemu_methods.split(",") if m}
        files = [work / r["file"] for r in rows if r["method"] in wanted]
        np.save(work / "x.npy", x)
        (work / "child.py").write_text(CHILD, encoding="utf-8")
        print(f"ONNX Runtime under QEMU (-cpu Haswell): {len(files)} files", file=sys.stderr)
        done = subprocess.run(
            [qemu, "-cpu", "Haswell", sys.executable, str(work / "child.py"), str(work / "x.npy"),
             *map(str, files)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"ONNX Runtime under QEMU failed:\n{done.stderr[-2000:]}")
        for row in rows:
            logits = work / (row["file"] + ".avx2.npy")
            if logits.is_file():
                avx2 = np.load(logits)
                emulated = Emulator(onnx.load(str(work / row["file"])), Arithmetic.INT16_PAIRS)
                row["onnxruntime_avx2_qemu"] = figures(avx2.argmax(1), labels, fp32)
                diff = np.abs(avx2 - emulated.run(x))
                row["emulation_vs_qemu_max_abs_logit_difference"] = float(diff.max())
    report = {
        "benchmark": "avx2_accuracy",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "environment": machine_record(),
        "fp32_top1": 100.0 * float((fp32 == labels).mean()),
        "images": len(labels),
        "qemu": qemu_note or f"{qemu} -cpu Haswell",
        "rows": rows,
    }
    write_report(Path(args.out), args.name, report, markdown(report))
    print(json.dumps({"wrote": str(Path(args.out) / args.name)}), file=sys.stderr)


def _cell(row: dict[str, Any], key: str) -> str:
    f = row.get(key)
    return "—" if f is None else f"{f['top1']:.2f} ({f['drop_points']:+.2f})"


def markdown(report: dict[str, Any]) -> str:
    m = report["environment"]["machine"]
    lines = [
        "# The bundled model's `--target cpu` INT8 under AVX2 arithmetic: 7-bit vs 8-bit weights",
        "",
        f"Machine: {m['cpu_model']}, CPU int8 family {m.get('cpu_int8_family', 'unknown')}. "
        f"Bundled test split, {report['images']} images, FP32 top-1 {report['fp32_top1']:.2f} %. "
        f"QEMU: {report['qemu']}.",
        f"Command: `{report['command']}`",
        "",
        "Top-1 % (drop in points against FP32):",
        "",
    ]
    rows = [
        [r["method"], r["weights"], _cell(r, "onnxruntime_here"), _cell(r, "avx2_emulated"),
         _cell(r, "onnxruntime_avx2_qemu"),
         "—" if "emulation_vs_qemu_max_abs_logit_difference" not in r
         else f"{r['emulation_vs_qemu_max_abs_logit_difference']:.3f}"]
        for r in report["rows"]
    ]  # fmt: skip
    header = [
        "method", "weights", "ONNX Runtime here", "AVX2 arithmetic (numpy emulation)",
        "ONNX Runtime's AVX2 kernels (QEMU -cpu Haswell)", "emulation vs QEMU: max abs logit diff",
    ]  # fmt: skip
    lines.append(md_table(rows, header))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
