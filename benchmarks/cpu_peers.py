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
The OpenVINO IRs' op counts (FakeQuantize, Convert, Subtract, Multiply) show what is read, and
the compiled graphs (every node's kernel, output precision and layout, in execution order) are
compared with NNCF's: identical graphs run the same kernels, whatever a noisy timing says.

Models:
- `resnet50` (default): torchvision ResNet-50 (3 channels, 10 classes) trained offline on the
  bundled digits rendered as 32×32 colour images (benchmarks/trained_resnet50.py: deterministic,
  cached under ~/.cache/resnet-opt-bench/ with its sha256, reused; no weights are downloaded),
  exported by `resnet-opt export` (registry resnet50 + the checkpoint, ImageNet mean/std, no
  resize or crop). Calibration: the train split rendered without augmentation; evaluation: the
  test split (539 held-out digits, never trained on).
- `resnet50-224`: the same trained weights exported for 224×224 input (the digits resized up
  to it): the size the field deploys a ResNet-50 at, for the speed ratios; its agreement is
  measured the same way, on a model that never saw that scale.
- `bundled`: the bundled ResNet-20 on digits (`resnet-opt export`), calibrated on its calib
  split, evaluated on its test split (539 images).

    python benchmarks/cpu_peers.py            # reference run (ResNet-50 at 32 and 224, bundled)
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


def make_resnet50(
    work: Path, input_size: int | None = None
) -> tuple[Path, Path, Path, dict[str, Any]]:
    """The trained ResNet-50 (benchmarks/trained_resnet50.py) exported by resnet-opt, its
    calibration folder (train split) and evaluation folder (test split), and its training
    record (checkpoint path, sha256, held-out top-1). `input_size`: export the same weights for
    that input (images resized up to it), for speed at a deployment size; None: the training
    size."""
    from benchmarks import trained_resnet50 as trained
    from resnet_opt.calibration.data import Split

    settings = trained.default_settings()
    weights, record = trained.checkpoint(settings, log)
    size, seed = settings["size"], settings["seed"]
    calib = trained.write_folder(
        work / "data" / "calib", *trained.render_split(Split.TRAIN, size, seed + 1)
    )
    test = trained.write_folder(
        work / "data" / "test", *trained.render_split(Split.TEST, size, seed + 2)
    )
    tag = Path(record["weights"]).stem.split("-")[-1]
    onnx_path = work / f"resnet50-{tag}{'' if input_size is None else f'-{input_size}'}.onnx"
    if not onnx_path.is_file():
        mean, std = (",".join(str(v) for v in trained.MEAN), ",".join(str(v) for v in trained.STD))
        size_flags = (
            ["--input-size", str(size), "--resize", "none"]
            if input_size is None
            else ["--input-size", str(input_size), "--resize", str(input_size)]
        )
        run_stage([
            "export", "--model", "resnet50", "--weights", str(weights), "--num-classes", "10",
            *size_flags, "--mean", mean, "--std", std,
            "--crop", "none", "--labels", ",".join(str(d) for d in range(10)),
            "--data", str(test), "-o", str(onnx_path), "--force",
        ])  # fmt: skip
    return onnx_path, calib, test, record


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


def runtime_graph(path: Path) -> list[tuple[str, str, str, str]]:
    """The compiled model's nodes in execution order (constants left out): layer type, kernel,
    output precisions and layouts, as OpenVINO's CPU plugin reports them."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    nodes = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()

        def text(key: str, info: Any = info) -> str:
            return str(info[key].astype(str)) if key in info else ""

        if text("layerType") != "Const":
            nodes.append((text("layerType"), text("primitiveType"), text("outputPrecisions"),
                          text("outputLayouts")))  # fmt: skip
    return nodes


def same_runtime_graph(models: dict[str, Path]) -> dict[str, Any]:
    """Each of our IRs against NNCF's: node count, and whether every node matches."""
    if "nncf-ov" not in models:
        return {}
    theirs = runtime_graph(models["nncf-ov"])
    out: dict[str, Any] = {}
    for name in OURS_OV:
        ours = runtime_graph(models[name])
        differ = [f"{a} vs {b}" for a, b in zip(ours, theirs, strict=False) if a != b]
        out[name] = {"nodes": len(ours), "nncf_nodes": len(theirs),
                     "identical": ours == theirs, "first_differences": differ[:3]}  # fmt: skip
    return out


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


def held_out(fp32: Path, data: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` held-out images of DATA (all when it has fewer; seed 0), preprocessed by
    fp32's contract through resnet-opt's own data path, with their labels."""
    from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
    from resnet_opt.pipeline.evaluate import contract_of

    ds = open_source(data, default_split=Split.TEST)
    batches = list(BatchStream(ds, contract_of(fp32), select_indices(len(ds), count, 0), 64))
    labels = [b.labels if b.labels is not None else np.full(len(b.x), -1) for b in batches]
    return np.concatenate([b.x for b in batches]), np.concatenate(labels)


# -- one model ------------------------------------------------------------------------------


def bench_model(kind: str, args: argparse.Namespace, skipped: list[str]) -> dict[str, Any]:
    work: Path = args.workdir / kind
    work.mkdir(parents=True, exist_ok=True)
    training: dict[str, Any] | None = None
    if kind in ("resnet50", "resnet50-224"):
        at = 224 if kind == "resnet50-224" else None
        fp32, calib_folder, test_folder, training = make_resnet50(work, at)
        calib, test = str(calib_folder), str(test_folder)
        size = at or int(training["settings"]["size"])
    else:
        size = 32
        fp32 = work / "bundled.onnx"
        if not fp32.is_file():
            run_stage(["export", "-o", str(fp32), "--force"])
        calib, test = "default:calib", "default:test"
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
    # at 224 the model sees a scale it was never trained on: its rows are for speed, so its
    # agreement is only a check on a few images, not a fidelity figure
    count = min(args.eval_samples, 64) if kind == "resnet50-224" else args.eval_samples
    x, y = held_out(fp32, test, count)
    pairs = contenders(models)
    return {
        "model": kind,
        "input_size": size,
        "training": training,
        "files": {k: str(v) for k, v in models.items()},
        "max_pair_sum": {
            k: max_pair_sums(v) for k, v in models.items() if v.suffix == ".onnx" and k != "fp32"
        },
        "ir_ops": {k: ir_ops(v) for k, v in models.items() if k != "fp32" and v.suffix == ".xml"},
        "runtime_graph_vs_nncf": same_runtime_graph(models),
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
        rows = []
        for key, fig in result["agreement"].items():
            backend, name = key.split("/")
            cells = []
            for b in t:
                ratio = t[b]["onnxruntime/fp32"]["p50_ms"] / t[b][key]["p50_ms"]
                best = t[b]["onnxruntime/fp32"]["min_ms"] / t[b][key]["min_ms"]
                cells.append(f"{ratio:.2f}× ({best:.2f}×)")
            pair = result["max_pair_sum"].get(name)
            rows.append([
                WHAT.get(name, name), backend, *cells, f"{fig['agreement']:.2f} %",
                f"{fig['top1']:.2f} %", "—" if pair is None else pair,
            ])  # fmt: skip
        header = ["file", "runtime", *(f"b{b} ×ORT FP32 median (min)" for b, _ in _batches(t))]
        header += ["top-1 agreement", "top-1", "max pair |a|+|b|"]
        n = result["eval_images"]
        lines += [
            "",
            f"## {result['model']} ({result['input_size']}×{result['input_size']}), "
            f"agreement on {n} held-out images (±1 image = {100 / n:.2f} points)",
            "",
            md_table(rows, header),
            "",
            *_training_lines(result.get("training")),
            "OpenVINO IR op counts (as read, before compiling) and int8 Convolutions run:",
            "",
        ]
        ops = result["ir_ops"]
        kinds = sorted({k for v in ops.values() for k in v})
        lines.append(md_table([[n, *(v.get(k, 0) for k in kinds)] for n, v in ops.items()],
                              ["IR", *kinds]))  # fmt: skip
        for name, same in result.get("runtime_graph_vs_nncf", {}).items():
            verdict = "identical to" if same["identical"] else "differs from"
            lines.append(
                f"- compiled graph of {name} ({same['nodes']} nodes) {verdict} NNCF's "
                f"({same['nncf_nodes']} nodes): kernel, output precision and layout of every "
                "node in execution order"
                + ("" if same["identical"] else f"; first: {same['first_differences']}")
            )
    lines.append("")
    return "\n".join(lines)


def _busy(start: Any, end: Any) -> str:
    """The preliminary note a loaded machine earns: a 1-minute load above 0.5 before the run
    began. The load at the end is recorded but not judged: this benchmark's own threads (2 of
    them, busy the whole time) raise it to about 2 on a machine that is otherwise idle."""
    del end  # recorded in the report beside the start; see above
    load = float(start[0])
    if load <= 0.5:
        return ""
    return (
        f"the machine was shared (1-minute load average {load:.1f} before the run): speed "
        "ratios are noisy; agreement and the compiled-graph comparison do not depend on load. "
        "Rerun on a quiet machine for speed figures to quote."
    )


def _training_lines(training: dict[str, Any] | None) -> list[str]:
    if not training:
        return []
    t = training["settings"]
    return [
        "Model: torchvision ResNet-50 trained here by benchmarks/trained_resnet50.py "
        f"({t['epochs']} "
        f"epochs, {t['optimizer']}, batch {t['batch_size']}, seed {t['seed']}, "
        f"{training['seconds']:.0f} s); checkpoint `{Path(training['weights']).name}` sha256 "
        f"`{training['sha256']}`; PyTorch held-out top-1 {training['test_top1']:.2f} % on "
        f"{training['test_count']} images, median top-1/top-2 logit margin "
        f"{training['test_median_margin']:.2f}.",
        "",
    ]


def _batches(t: dict[str, Any]) -> list[tuple[str, int]]:
    return [(b, int(b)) for b in t]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,resnet50-224,bundled")
    parser.add_argument("--calib-samples", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=539, help="held-out images (539: all)")
    parser.add_argument("--method", default="max")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cpu_peers"))
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--name", default="cpu_peers")
    parser.add_argument("--preliminary", default="", help="a note printed atop the report")
    parser.add_argument("--quick", action="store_true", help="smoke run: few samples and rounds")
    args = parser.parse_args()
    if args.quick:
        args.calib_samples, args.eval_samples = 16, 32
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
            "speed = ORT FP32's latency / the file's, of the medians (and of the minima: "
            "the least disturbed call, steadier on a loaded machine); ONNX Runtime spinning "
            "off; OpenVINO f32 hint"
        ),
        "preliminary": args.preliminary or _busy(record["load_average"], os.getloadavg()),
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
