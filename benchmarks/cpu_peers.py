"""The fastest CPU INT8 artifact with the best fidelity: ours against the real peers, side by side.

Contenders (each skipped, with a line saying so, when its library is not installed):

- ours: `quantize --target cpu` (default: 8-bit weights with saturation-safe pairs, bias
  correction), the same with `--no-bias-correction`, with `--reduce-range` (7 bits) and with
  `--no-reduce-range` (8 bits as rounded), all on ONNX Runtime; `quantize --target openvino`
  then `build openvino` (IR) on OpenVINO, with and without bias correction;
- ONNX Runtime's `quantize_static` (QDQ, u8/s8 per-channel, MinMax) on ONNX Runtime;
- NNCF (`pip install 'resnet-opt[nncf]'`): `nncf.quantize` on the OpenVINO model (defaults) on
  OpenVINO, and on the ONNX model, its output run by ONNX Runtime and by OpenVINO;
- FP32 on both runtimes (the speed unit is ONNX Runtime FP32).

Every INT8 file is calibrated on the same images (the same count, the same seed). Timing: every
file opened once, all timed call by call in alternation in one process (benchmarks/alternate.py),
batch 1 and 8, the same thread count for all, ONNX Runtime spinning off, OpenVINO f32 hint.
Fidelity: top-1 agreement with FP32 (ONNX Runtime) on held-out images, and the AVX2 saturation
proof of each ONNX Runtime file: the largest same-sign |a| + |b| of adjacent int8 weights in the
kernels' reduction order (≤ 128: no u8×s8 pair sum can leave int16 on AVX2, whatever the input).
The OpenVINO IRs' op counts (FakeQuantize, Convert, Subtract, Multiply) show what folds.

Models:
- `resnet50` (default): torchvision ResNet-50 made offline with trained-like statistics: random
  init (seeded), BatchNorm affine parameters drawn per channel (γ log-normal, β normal, as
  trained networks have: channels of very different ranges), running statistics re-estimated
  on the upscaled, colour-tinted bundled digits, and a 10-class head fitted by ridge regression
  on its pooled features (so its logits are a real classifier's). No weights are downloaded.
- `bundled`: the bundled ResNet-20 on digits (`resnet-opt export`), its own data.

    python benchmarks/cpu_peers.py                     # reference run (ResNet-50 and bundled)
    python benchmarks/cpu_peers.py --quick             # smoke run: small input, few samples

Writes <out>/<name>.json and .md with the machine (CPU and its int8 family), load and versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
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
    md_table,
    run_stage,
    write_report,
)
from benchmarks.quantize import ort_quantize_static  # noqa: E402

REPORTS = HERE / "reports"
NOTES: list[str] = []  # what the run had to work around, printed in the report
MEAN, STD = "0.485,0.456,0.406", "0.229,0.224,0.225"
OURS_CPU = {
    "ours-cpu": [],
    "ours-cpu-no-bc": ["--no-bias-correction"],
    "ours-cpu-7bit": ["--reduce-range"],
    "ours-cpu-8bit": ["--no-reduce-range"],
}
OURS_OV = {"ours-openvino": [], "ours-openvino-no-bc": ["--no-bias-correction"]}
WHAT = {
    "fp32": "FP32",
    "ours-cpu": "ours `--target cpu` (default: safe 8-bit pairs + bias correction)",
    "ours-cpu-no-bc": "ours `--target cpu --no-bias-correction`",
    "ours-cpu-7bit": "ours `--target cpu --reduce-range` (7-bit weights)",
    "ours-cpu-8bit": "ours `--target cpu --no-reduce-range` (8-bit, VNNI only)",
    "ours-openvino": "ours `--target openvino`, `build openvino`",
    "ours-openvino-no-bc": "ours `--target openvino --no-bias-correction`, `build openvino`",
    "ort-qdq": "ONNX Runtime `quantize_static` (QDQ, per-channel, MinMax)",
    "nncf-ov": "NNCF `nncf.quantize` on the OpenVINO model (defaults)",
    "nncf-onnx": "NNCF `nncf.quantize` on the ONNX model",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data and models ------------------------------------------------------------------------


def digit_images(folder: Path, size: int, counts: dict[str, int], seed: int = 0) -> None:
    """The bundled 8×8 digits upscaled to `size`, colour-tinted on a textured background, with
    noise: class folders per split ("calib", "test"), `counts` images each."""
    from PIL import Image

    from resnet_opt.models.default import data_dir

    data = np.load(data_dir() / "digits.npz")
    images, labels = data["images"], data["labels"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    start = 0
    for split, count in counts.items():
        target = folder / split
        if target.is_dir() and sum(1 for _ in target.rglob("*.png")) >= count:
            start += count
            continue
        for i in order[start : start + count]:
            digit = Image.fromarray((images[i] * (255 // 16)).astype(np.uint8))
            big = np.asarray(digit.resize((size, size), Image.Resampling.BICUBIC), np.float32)
            ink, paper = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            yy, xx = np.mgrid[0:size, 0:size] / size
            wave = np.sin(2 * np.pi * (rng.uniform(1, 4) * xx + rng.uniform(1, 4) * yy))
            alpha = np.clip(big / 255.0, 0, 1)[..., None]
            pixels = paper * (1 - alpha) + ink * alpha + 25 * wave[..., None]
            pixels += rng.normal(0, 10, pixels.shape)
            out = target / str(int(labels[i]))
            out.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out / f"{i:04d}.png")
        start += count


def _load_folder(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    files = sorted(folder.rglob("*.png"))
    mean = np.array([float(v) for v in MEAN.split(",")], np.float32)[:, None, None]
    std = np.array([float(v) for v in STD.split(",")], np.float32)[:, None, None]
    x = np.stack([
        (np.asarray(Image.open(f).convert("RGB"), np.float32).transpose(2, 0, 1) / 255 - mean)
        / std
        for f in files
    ])  # fmt: skip
    y = np.array([int(f.parent.name) for f in files])
    assert x.shape[-1] == size
    return x, y


def make_resnet50(work: Path, size: int, samples: int) -> Path:
    """ResNet-50 with trained-like statistics (see the module docstring), exported by resnet-opt."""
    onnx_path = work / "resnet50.onnx"
    if onnx_path.is_file():
        return onnx_path
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None, num_classes=10)
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.exp(0.5 * torch.randn(n, generator=gen))
            m.bias.data = 0.3 * torch.randn(n, generator=gen) - 0.1
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
    x, y = _load_folder(work / "data" / "calib", size)
    x, y = x[:samples], y[:samples]
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), 32):
            model(torch.from_numpy(x[start : start + 32]))
    model.eval()
    features = []
    trunk = torch.nn.Sequential(*list(model.children())[:-1])
    with torch.no_grad():
        for start in range(0, len(x), 32):
            features.append(trunk(torch.from_numpy(x[start : start + 32])).flatten(1).numpy())
    f = np.concatenate(features).astype(np.float64)
    mu, sd = f.mean(0), f.std(0) + 1e-6
    z = (f - mu) / sd
    targets = np.eye(10)[y] * 2 - 1
    w = np.linalg.solve(z.T @ z + 10.0 * np.eye(z.shape[1]), z.T @ targets)  # ridge
    weight = (w / sd[:, None]).T
    bias = -(mu / sd) @ w
    model.fc.weight.data = torch.from_numpy(weight.astype(np.float32))
    model.fc.bias.data = torch.from_numpy(bias.astype(np.float32))
    state = work / "resnet50-trained-like.pt"
    torch.save(model.state_dict(), state)
    run_stage([
        "export", "--model", "resnet50", "--weights", str(state), "--num-classes", "10",
        "--input-size", str(size), "--mean", MEAN, "--std", STD, "--resize", "none",
        "--crop", "none", "-o", str(onnx_path), "--force",
    ])  # fmt: skip
    return onnx_path


# -- quantizing -----------------------------------------------------------------------------


def quantize_ours(fp32: Path, calib: str, args: argparse.Namespace) -> dict[str, Path]:
    cache = fp32.with_suffix(".calib.npz")
    common = [
        "--method", args.method, "--calib", calib, "--calib-samples", str(args.calib_samples),
        "--calib-cache", str(cache), "--eval", "none", "--force",
    ]  # fmt: skip
    out: dict[str, Path] = {}
    for name, extra in {**OURS_CPU, **OURS_OV}.items():
        target = "openvino" if name.startswith("ours-openvino") else "cpu"
        path = fp32.with_name(f"{fp32.stem}.{name}.onnx")
        log(f"quantize {name}")
        run_stage(["quantize", str(fp32), "-o", str(path), "--target", target, *common, *extra])
        if target == "openvino":
            xml = path.with_suffix(".xml")
            try:
                run_stage(["build", "openvino", str(path), "-o", str(xml), "--force"])
            except SystemExit as refused:  # its random-input check on a near-tied classifier
                log(f"build openvino refused, saving the IR directly: {refused}")
                NOTES.append(f"{name}: `build openvino` refused ({str(refused).splitlines()[-1]}); "
                             "the IR was saved with openvino.save_model instead")  # fmt: skip
                import openvino as ov

                ov.save_model(ov.Core().read_model(str(path)), str(xml), compress_to_fp16=False)
            path = xml
        out[name] = path
    return out


def calibration_samples(fp32: Path, calib: str, count: int) -> list[np.ndarray]:
    from benchmarks.quantize import preprocessed

    return [x[None] for x in preprocessed(fp32, calib, count, seed=0)]


def quantize_nncf(fp32: Path, samples: list[np.ndarray]) -> dict[str, Path]:
    """NNCF's two outputs (defaults), or {} when NNCF is not installed."""
    import nncf
    import onnx
    import openvino as ov

    out: dict[str, Path] = {}
    log("nncf on the OpenVINO model")
    ov_model = ov.Core().read_model(str(fp32))
    name = ov_model.inputs[0].get_any_name()
    quantized = nncf.quantize(ov_model, nncf.Dataset(samples), subset_size=len(samples))
    xml = fp32.with_name(f"{fp32.stem}.nncf-ov.xml")
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    out["nncf-ov"] = xml
    log("nncf on the ONNX model")
    dataset = nncf.Dataset(samples, lambda x: {name: x})
    q_onnx = nncf.quantize(onnx.load(str(fp32)), dataset, subset_size=len(samples))
    path = fp32.with_name(f"{fp32.stem}.nncf-onnx.onnx")
    onnx.save(q_onnx, str(path))
    out["nncf-onnx"] = path
    return out


# -- measuring ------------------------------------------------------------------------------


def max_pair_sums(path: Path) -> int | None:
    """The largest same-sign |a| + |b| of adjacent int8 weights in the kernels' reduction
    order over the file's Conv/Gemm weights (≤ 128: cannot saturate on AVX2); None: no int8."""
    import onnx
    from onnx import numpy_helper

    from resnet_opt.quantization.weights import max_pair_sum, reduction_rows

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    users = {i: n for n in model.graph.node for i in n.input}
    found: int | None = None
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]]
        if q.dtype != np.int8 or q.ndim not in (2, 4):
            continue
        user = users.get(node.output[0])
        axis = 0 if q.ndim == 4 else (0 if user is not None and _trans_b(user) else 1)
        value = max_pair_sum(reduction_rows(q, axis))
        found = value if found is None else max(found, value)
    return found


def _trans_b(node: Any) -> bool:
    return any(a.name == "transB" and a.i for a in node.attribute)


def ir_ops(path: Path) -> dict[str, int]:
    """Op counts of the model OpenVINO reads (before compiling) and int8 Convolutions run."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    counts: dict[str, int] = {}
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind in ("FakeQuantize", "Convert", "Subtract", "Multiply", "Add"):
            counts[kind] = counts.get(kind, 0) + 1
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    convs = int8 = 0
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) == "Convolution":
            convs += 1
            int8 += "I8" in info["primitiveType"].astype(str).upper()
    counts["runtime Convolution"] = convs
    counts["runtime int8 Convolution"] = int8
    return counts


def open_runner(backend: str, path: Path, threads: int, batch: int | None = None) -> Any:
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.openvino import open_openvino

    if backend == "onnxruntime":
        return open_onnxruntime(path, threads=threads, spinning=False)
    return open_openvino(path, threads=threads, precision="f32", batch=batch)


def contenders(models: dict[str, Path]) -> list[tuple[str, str]]:
    """(backend, model) pairs measured."""
    pairs = [("onnxruntime", "fp32"), ("openvino", "fp32")]
    for name, path in models.items():
        if name == "fp32":
            continue
        if path.suffix == ".xml":
            pairs.append(("openvino", name))
        else:
            pairs.append(("onnxruntime", name))
            if name in ("ort-qdq", "nncf-onnx", "ours-cpu"):
                pairs.append(("openvino", name))
    return pairs


def agreement(
    models: dict[str, Path],
    pairs: list[tuple[str, str]],
    x: np.ndarray,
    y: np.ndarray,
    threads: int,
) -> dict[str, dict[str, float]]:
    """Top-1 agreement with ONNX Runtime FP32 (and top-1 against the labels), in percent."""

    def predict(backend: str, path: Path) -> np.ndarray:
        out = []
        with open_runner(backend, path, threads) as runner:
            name = runner.inputs[0].name
            for start in range(0, len(x), 8):
                batch = x[start : start + 8]
                logits = next(iter(runner.infer({name: batch}).values()))
                out.append(np.asarray(logits)[: len(batch)].argmax(1))
        return np.concatenate(out)

    reference = predict("onnxruntime", models["fp32"])
    figures = {}
    for backend, name in pairs:
        log(f"agreement {backend}/{name}")
        pred = reference if (backend, name) == ("onnxruntime", "fp32") else None
        pred = predict(backend, models[name]) if pred is None else pred
        figures[f"{backend}/{name}"] = {
            "agreement": round(100 * float((pred == reference).mean()), 2),
            "top1": round(100 * float((pred == y).mean()), 2),
        }
    return figures


def timings(
    models: dict[str, Path],
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    sample: tuple[int, ...],
) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, Any]] = {}
    for batch in args.batches:
        x = rng.standard_normal((batch, *sample), dtype=np.float32)
        with ExitStack() as stack:
            runners = {
                f"{b}/{n}": stack.enter_context(open_runner(b, models[n], args.threads, batch))
                for b, n in pairs
            }

            def call(runner: Any, x: np.ndarray = x) -> Callable[[], object]:
                feed = {runner.inputs[0].name: x}
                return lambda: runner.infer(feed)

            log(f"timing batch {batch}: {len(runners)} runners")
            measured = alternate(
                {k: call(r) for k, r in runners.items()},
                batch=batch,
                rounds=args.rounds,
                warmup=args.warmup,
            )
            out[str(batch)] = {k: t.to_dict() for k, t in measured.items()}
    return out


def bundled_test(fp32: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The bundled test split (`count` images, seed 0) preprocessed by fp32's contract, with
    its labels."""
    from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
    from resnet_opt.pipeline.evaluate import contract_of

    ds = open_source("default:test", default_split=Split.TEST)
    batches = list(BatchStream(ds, contract_of(fp32), select_indices(len(ds), count, 0), 64))
    labels = [b.labels if b.labels is not None else np.full(len(b.x), -1) for b in batches]
    return np.concatenate([b.x for b in batches]), np.concatenate(labels)


# -- one model ------------------------------------------------------------------------------


def bench_model(kind: str, args: argparse.Namespace, skipped: list[str]) -> dict[str, Any]:
    work: Path = args.workdir / kind
    work.mkdir(parents=True, exist_ok=True)
    if kind == "resnet50":
        size = args.size
        counts = {"calib": args.calib_samples, "test": args.eval_samples}
        digit_images(work / "data", size, counts)
        fp32 = make_resnet50(work, size, args.calib_samples)
        calib, test = str(work / "data" / "calib"), work / "data" / "test"
    else:
        size = 32
        fp32 = work / "bundled.onnx"
        if not fp32.is_file():
            run_stage(["export", "-o", str(fp32), "--force"])
        calib, test = "default:calib", None
    models: dict[str, Path] = {"fp32": fp32}
    models |= quantize_ours(fp32, calib, args)
    log("onnxruntime quantize_static")
    models["ort-qdq"] = ort_quantize_static(fp32, calib, args.calib_samples)
    if importlib.util.find_spec("nncf") is None:
        line = "NNCF not installed (pip install 'resnet-opt[nncf]'): its rows are skipped"
        if line not in skipped:
            skipped.append(line)
    else:
        models |= quantize_nncf(fp32, calibration_samples(fp32, calib, args.calib_samples))
    if test is not None:
        x, y = _load_folder(test, size)
    else:
        x, y = bundled_test(fp32, args.eval_samples)
    x = x[: args.eval_samples]
    y = y[: args.eval_samples]
    pairs = contenders(models)
    return {
        "model": kind,
        "input_size": size,
        "files": {k: str(v) for k, v in models.items()},
        "max_pair_sum": {
            k: max_pair_sums(v) for k, v in models.items() if v.suffix == ".onnx" and k != "fp32"
        },
        "ir_ops": {k: ir_ops(v) for k, v in models.items() if k != "fp32" and v.suffix == ".xml"},
        "agreement": agreement(models, pairs, x, y, args.threads),
        "eval_images": len(x),
        "timings": timings(models, pairs, args, tuple(x.shape[1:])),
    }


# -- report ---------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]["machine"]
    lines = [
        "# CPU INT8 peers: the fastest artifact with the best fidelity",
        "",
        f"CPU: {m.get('cpu_model') or m.get('cpu')}, {report['threads']} threads; **int8 "
        f"family: {report['int8_family']}**. Load average at start "
        f"{report['machine']['load_average']}, at end {report['load_end']}.",
        f"Versions: {report['machine']['versions']}.",
        f"Settings: {report['settings']}.",
    ]
    if report.get("preliminary"):
        lines += ["", f"**Preliminary:** {report['preliminary']}"]
    lines += [f"- {line}" for line in report["skipped"]]
    for result in report["models"]:
        t = result["timings"]
        base = {b: t[b]["onnxruntime/fp32"]["p50_ms"] / b_int for b, b_int in _batches(t)}
        rows = []
        for key, fig in result["agreement"].items():
            backend, name = key.split("/")
            cells = []
            for b, b_int in _batches(t):
                per_image = t[b][key]["p50_ms"] / b_int
                cells.append(f"{base[b] / per_image:.2f}×")
            pair = result["max_pair_sum"].get(name)
            rows.append([
                WHAT.get(name, name), backend, *cells, f"{fig['agreement']:.2f} %",
                f"{fig['top1']:.2f} %", "—" if pair is None else pair,
            ])  # fmt: skip
        header = ["file", "runtime", *(f"b{b} ×ORT FP32" for b, _ in _batches(t))]
        header += ["top-1 agreement", "top-1", "max pair |a|+|b|"]
        lines += [
            "",
            f"## {result['model']} ({result['input_size']}×{result['input_size']}), "
            f"agreement on {result['eval_images']} images",
            "",
            md_table(rows, header),
            "",
            "OpenVINO IR op counts (as read, before compiling) and int8 Convolutions run:",
            "",
        ]
        ops = result["ir_ops"]
        kinds = sorted({k for v in ops.values() for k in v})
        lines.append(md_table([[n, *(v.get(k, 0) for k in kinds)] for n, v in ops.items()],
                              ["IR", *kinds]))  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def _batches(t: dict[str, Any]) -> list[tuple[str, int]]:
    return [(b, int(b)) for b in t]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,bundled")
    parser.add_argument("--size", type=int, default=224, help="ResNet-50 input size")
    parser.add_argument("--calib-samples", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=300)
    parser.add_argument("--method", default="max")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cpu_peers"))
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--name", default="cpu_peers")
    parser.add_argument("--preliminary", default="", help="a note printed atop the report")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, few samples")
    args = parser.parse_args()
    if args.quick:
        args.size, args.calib_samples, args.eval_samples = 64, 16, 32
        args.rounds, args.warmup = 2, 1
        args.name = args.name if args.name != "cpu_peers" else "cpu_peers-quick"
    args.batches = [int(b) for b in str(args.batches).split(",")]
    from resnet_opt.environment import cpu_int8_family

    started = time.time()
    record = machine_record()
    skipped: list[str] = []
    results = [bench_model(kind, args, skipped) for kind in args.models.split(",")]
    import os

    report = {
        "machine": record,
        "int8_family": cpu_int8_family().label,
        "threads": args.threads,
        "settings": (
            f"calibration {args.calib_samples} images, method {args.method} for ours; "
            f"{args.rounds} alternated rounds per batch after {args.warmup} warm-up calls, "
            "median latency; ONNX Runtime spinning off; OpenVINO f32 hint"
        ),
        "preliminary": args.preliminary,
        "skipped": skipped + NOTES,
        "models": results,
        "load_end": list(os.getloadavg()),
        "seconds": round(time.time() - started, 1),
        "command": "python benchmarks/cpu_peers.py " + " ".join(sys.argv[1:]),
    }
    for path in write_report(args.out, args.name, report, markdown(report)):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
