"""The ONNX Runtime build artifact vs its source ONNX: start-up and inference time.

The claim under test (issue 4): `build --backend onnxruntime` artifacts give the source's outputs
(checked by the build itself; its max error is copied here from the manifest) and are at least
as fast. The source is loaded the way ONNX Runtime loads any model (optimization "all" at load);
each artifact the way the runner loads it as built (its manifest's runner options: optimization
off for the default and .ort artifacts, layout only for the portable one).

Per source model (ResNet-50 FP32 from `resnet-opt export --weights none`, and its INT8 from
`resnet-opt quantize --target cpu` when the quantize stage is in this checkout, or any --source):
- builds: default (level all, NCHWc layout for this CPU), --portable, and the .ort format;
- load time: session creation, median of --loads fresh loads each;
- inference: source and artifacts timed alternately in one process, run by run, ORT spinning
  off, the same threads, at each --batch; the ratio is source median / artifact median.

    python benchmarks/onnxruntime_build.py                                        # reference
    python benchmarks/onnxruntime_build.py --rounds 3 --warmup 1 --loads 1 --batch 1 \\
        --name onnxruntime_build-smoke                                            # smoke test

Writes benchmarks/reports/<name>.json and .md with the machine, its load and the versions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.alternate import (  # noqa: E402
    alternate,
    has_command,
    machine_record,
    make_images,
    md_table,
    run_stage,
    write_report,
)

REPORTS = ROOT / "benchmarks" / "reports"


def sources(work: Path, given: list[Path], calib: int) -> list[tuple[Path, str]]:
    if given:
        return [(p, f"given: {p}") for p in given]
    fp32 = work / "resnet50.onnx"
    if not fp32.is_file():
        print("exporting resnet50 …", file=sys.stderr)
        run_stage(["export", "--model", "resnet50", "--weights", "none", "-o", str(fp32)])
    found = [(fp32, "resnet-opt export --model resnet50 --weights none (random init)")]
    if has_command("quantize"):
        int8 = work / f"resnet50.int8.cpu.calib{calib}.onnx"  # reused only as made
        if not int8.is_file():
            print("quantizing (resnet-opt quantize --target cpu) …", file=sys.stderr)
            images = make_images(work / "calib", calib)
            args = ["quantize", str(fp32), "-o", str(int8), "--precision", "int8"]
            args += ["--target", "cpu", "--method", "max", "--calib", str(images)]
            run_stage([*args, "--calib-samples", str(calib)])
        found.append((int8, f"resnet-opt quantize --target cpu --method max, {calib} images"))
    return found


def build_all(source: Path, out: Path, threads: int) -> dict[str, Any]:
    """The three artifacts of one source, and each build's manifest facts."""
    from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime

    variants = {
        "artifact (all)": (out / f"{source.stem}.opt.onnx", OrtBuildOptions(threads=threads)),
        "artifact (portable)": (
            out / f"{source.stem}.portable.onnx",
            OrtBuildOptions(threads=threads, portable=True),
        ),
        "artifact (.ort)": (out / f"{source.stem}.ort", OrtBuildOptions(threads=threads)),
    }
    built = {}
    for name, (path, options) in variants.items():
        manifest = build_onnxruntime(source, path, options, force=True)
        built[name] = {
            "path": path,
            "optimization": manifest.details["optimization"],
            "portable": manifest.details["portable"],
            "runner": manifest.details["runner"],
            "max_abs_error": manifest.verification["max_abs_error"],
            "size_bytes": manifest.details["size_bytes"],
        }
    return built


def load_seconds(path: Path, threads: int, loads: int) -> float:
    from resnet_opt.runners.onnxruntime import open_onnxruntime

    times = []
    for _ in range(loads):
        start = time.perf_counter()
        with open_onnxruntime(path, threads=threads):
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, action="append", default=[])
    parser.add_argument("--batch", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--loads", type=int, default=3, help="fresh session loads timed each")
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "resnet-opt-bench-ort-build"
    )
    parser.add_argument("--name", default="onnxruntime_build")
    args = parser.parse_args()
    from resnet_opt.runners.onnxruntime import open_onnxruntime

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    batches = [int(b) for b in args.batch.split(",")]
    started = time.perf_counter()
    results = []
    for source, how in sources(args.workdir, args.source, args.calib):
        print(f"building {source.name} …", file=sys.stderr)
        built = build_all(source, args.workdir / "built", args.threads)
        paths = {"source (optimized at load)": source, **{k: v["path"] for k, v in built.items()}}
        loads = {k: load_seconds(p, args.threads, args.loads) for k, p in paths.items()}
        timings: dict[int, dict[str, Any]] = {}
        runners = {k: open_onnxruntime(p, threads=args.threads) for k, p in paths.items()}
        for runner in runners.values():
            runner.__enter__()
        try:
            name = next(iter(runners.values())).inputs[0].name
            infos = {k: dict(r.info.details) for k, r in runners.items()}
            for batch in batches:
                print(f"  timing batch {batch} …", file=sys.stderr)
                x = np.random.default_rng(args.seed).standard_normal(
                    (batch, 3, 224, 224), dtype=np.float32
                )
                feed = {name: x}
                timed = alternate(
                    {k: (lambda r=r, feed=feed: r.infer(feed)) for k, r in runners.items()},
                    batch=batch,
                    rounds=args.rounds,
                    warmup=args.warmup,
                )
                timings[batch] = {k: t.to_dict() for k, t in timed.items()}
        finally:
            for runner in runners.values():
                runner.__exit__(None, None, None)
        results.append(
            {
                "source": str(source),
                "how": how,
                "builds": {k: {**v, "path": str(v["path"])} for k, v in built.items()},
                "load_seconds": loads,
                "runners": infos,
                "timings": timings,
            }
        )
    data = {
        "benchmark": "onnxruntime_build",
        "claim": "build --backend onnxruntime artifacts match their source, at least as fast",
        "settings": {
            "batches": batches,
            "threads": args.threads,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "loads": args.loads,
            "ort_spinning": False,
            "inputs": "seeded standard-normal batch",
        },
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        **machine_record(),
        "load_average_before": list(load_before),
    }
    paths_written = write_report(REPORTS, args.name, data, render(data))
    print(render(data))
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in paths_written), file=sys.stderr)


def render(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["settings"]
    lines = [
        "# ONNX Runtime build artifacts vs their source",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_cores']} cores; CPU flags: "
        f"{', '.join(m.get('cpu_flags') or []) or 'unknown'}; load average before "
        f"{', '.join(f'{v:.2f}' for v in data['load_average_before'])}, after "
        f"{', '.join(f'{v:.2f}' for v in data['load_average'])}.",
        f"Versions: onnxruntime {data['versions'].get('onnxruntime')}, python "
        f"{data['versions'].get('python')}. {s['threads']} threads, ORT spinning off, "
        f"{s['rounds']} alternated rounds after {s['warmup']} warm-up runs; load time: median "
        f"of {s['loads']} fresh sessions.",
    ]
    for result in data["results"]:
        lines += ["", f"## {Path(result['source']).name}", "", f"Source: {result['how']}.", ""]
        rows = []
        for name, load in result["load_seconds"].items():
            build = result["builds"].get(name, {})
            runner = result["runners"][name]
            row: list[object] = [
                name,
                runner.get("optimization"),
                f"{build['max_abs_error']:.2g}" if build else "—",
                f"{load * 1000:.0f}",
            ]
            for timed in result["timings"].values():
                t = timed[name]
                base = timed["source (optimized at load)"]["p50_ms"]
                row += [f"{t['p50_ms']:.1f}", f"{base / t['p50_ms']:.2f}×"]
            rows.append(row)
        header = ["model", "optimization at load", "max abs err vs source", "load ms"]
        for batch in result["timings"]:
            header += [f"p50 ms (batch {batch})", f"speed vs source (batch {batch})"]
        lines.append(md_table(rows, header))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
