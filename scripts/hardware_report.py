"""A hardware report to attach to an issue: run on a GPU machine or a Jetson, from a checkout.

    python scripts/hardware_report.py [-o hardware-report] [--onnx MODEL.onnx]

It writes OUT/report.md (and OUT.tar.gz with every log) with:
- the machine: platform, Jetson release, `nvidia-smi`, the versions of TensorRT, pycuda,
  cuda-python (cuda-bindings), numpy, onnx, onnxruntime, torch, and `resnet-opt info`;
- every `gpu`-marked test's result (`pytest -m gpu`, which needs no torch or hypothesis: install
  the checkout with a TensorRT extra and `gpu-test`, README "GPU tests"), summed up as
  "N gpu tests ran, M passed" or why none ran;
- a bench of the bundled model (ResNet-20 on digits) in FP32, FP16 and INT8 as TensorRT engines,
  with and without CUDA graphs.

The bundled model's ONNX is made from its shipped weights by `resnet-opt export`, which needs
torch. Where torch is missing (a Jetson usually), export it on a workstation
(`resnet-opt export -o resnet20-digits.onnx`), copy the .onnx and its .json manifest to the
device and pass `--onnx resnet20-digits.onnx`; without either, the report says the bench was
skipped and why. No step stops the others: each one's exit code and log are in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "resnet-opt",
    "tensorrt",
    "pycuda",
    "cuda-bindings",
    "numpy",
    "onnx",
    "onnxruntime",
    "torch",
)
TORCH_MISSING = (
    "the bundled model's ONNX is made from its weights with torch, which is not installed here: "
    "export it on a workstation (resnet-opt export -o resnet20-digits.onnx), copy the .onnx and "
    "its .json here and pass --onnx resnet20-digits.onnx"
)


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str]
    returncode: int | None  # None: not run
    seconds: float
    log: Path | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def row(self) -> str:
        status = "skipped" if self.returncode is None else f"exit {self.returncode}"
        log = f"[{self.log.name}]({self.log.name})" if self.log else ""
        return f"| {self.name} | {status} | {self.seconds:.1f} s | {log} {self.note} |"


def cli(*args: str) -> list[str]:
    """`resnet-opt ARGS` with this Python (works without the console script on PATH)."""
    return [sys.executable, "-c", "from resnet_opt.cli import main; main()", *args]


def run(name: str, command: list[str], out: Path, *, timeout: float = 3600) -> Step:
    log = out / f"{name}.log"
    start = time.perf_counter()
    try:
        with log.open("w") as stream:
            stream.write("$ " + " ".join(command) + "\n")
            stream.flush()
            done = subprocess.run(
                command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, timeout=timeout
            )
        code = done.returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        with log.open("a") as stream:
            stream.write(f"\n{type(exc).__name__}: {exc}\n")
        code = -1
    return Step(name, command, code, time.perf_counter() - start, log)


def skipped(name: str, why: str) -> Step:
    return Step(name, [], None, 0.0, None, why)


def versions() -> list[tuple[str, str]]:
    rows = []
    for package in PACKAGES:
        try:
            rows.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    return rows


def machine() -> list[str]:
    lines = [
        f"- platform: {platform.platform()} ({platform.machine()})",
        f"- python: {sys.version.split()[0]} ({sys.executable})",
    ]
    with contextlib.suppress(OSError, IndexError):
        lines.append(f"- Jetson: {Path('/etc/nv_tegra_release').read_text().splitlines()[0]}")
    return lines


def gpu_test_results(junit: Path) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """(counts per outcome, [(test, outcome, message)]) from pytest's JUnit XML."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    rows: list[tuple[str, str, str]] = []
    if not junit.is_file():
        return counts, rows
    for case in ET.parse(junit).getroot().iter("testcase"):
        if not case.get("classname"):
            continue  # a whole module skipped at collection (it needs what is not installed)
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (
                    (found.get("message") or "").splitlines()[0][:160]
                    if found.get("message")
                    else ""
                )
                break
        counts[outcome] += 1
        rows.append((name, outcome, message))
    return counts, rows


def has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def gpu_missing() -> str | None:
    """Why no engine can be built here (no TensorRT, no GPU), or None."""
    from resnet_opt.tensorrt.device import probe_gpu, probe_tensorrt

    version, problem = probe_tensorrt()
    if version is None:
        return f"TensorRT is not installed here ({problem})"
    gpu = probe_gpu()
    if gpu.name is None:
        return f"no CUDA GPU here ({gpu.problem})"
    return None


def gpu_summary(counts: dict[str, int], rows: list[tuple[str, str, str]], step: Step) -> str:
    """'N gpu tests ran, M passed' or, where none ran, why."""
    ran = counts["passed"] + counts["failed"] + counts["error"]
    if step.returncode is None:
        return f"No gpu test ran: {step.note}."
    if not rows:
        return (
            f"No gpu test ran: pytest exited {step.returncode} without results (a collection "
            f"error? see {step.log.name if step.log else 'its log'})."
        )
    if ran:
        text = f"{ran} gpu tests ran, {counts['passed']} passed"
        bad = [f"{counts[k]} {k}" for k in ("failed", "error") if counts[k]]
        skipped = f"; {counts['skipped']} skipped" if counts["skipped"] else ""
        return text + (f" ({', '.join(bad)})" if bad else "") + skipped + "."
    reasons: dict[str, int] = {}
    for _, outcome, message in rows:
        if outcome == "skipped":
            reasons[message] = reasons.get(message, 0) + 1
    why = "; ".join(f"{n} × {m or 'no reason given'}" for m, n in reasons.items())
    return f"0 gpu tests ran: {len(rows)} collected, all skipped ({why})."


def bench_steps(out: Path, onnx: Path | None) -> list[Step]:
    work = out / "bench-work"
    work.mkdir(exist_ok=True)
    steps: list[Step] = []
    missing = gpu_missing()
    if missing is not None:
        return [skipped("bench", missing)]
    if onnx is None:
        if not has("torch"):
            return [skipped("bench", TORCH_MISSING)]
        onnx = work / "resnet20-digits.onnx"
        steps.append(run("export", cli("export", "-o", str(onnx), "--force"), out))
        if not steps[-1].ok:
            return steps
    fp16, int8 = work / "model.fp16.onnx", work / "model.int8.onnx"
    steps.append(
        run("quantize-fp16", cli("quantize", str(onnx), "-o", str(fp16), "--precision", "fp16",
                                 "--force"), out)
    )  # fmt: skip
    steps.append(
        run("quantize-int8", cli("quantize", str(onnx), "-o", str(int8), "--precision", "int8",
                                 "--target", "tensorrt", "--force"), out)
    )  # fmt: skip
    plans = []
    for label, source in (("fp32", onnx), ("fp16", fp16), ("int8", int8)):
        plan = work / f"model.{label}.plan"
        if not source.is_file():
            steps.append(skipped(f"build-{label}", f"{source.name} was not made"))
            continue
        steps.append(
            run(f"build-{label}", cli("build", str(source), "-o", str(plan), "--backend",
                                      "tensorrt", "--batch", "1:8:32", "--force"), out)
        )  # fmt: skip
        if plan.is_file():
            plans.append(str(plan))
    if not plans:
        return [*steps, skipped("bench", "no engine was built")]
    bench = ["bench", *plans, "--data", "default", "--batch", "1,8,32", "--backend", "tensorrt"]
    steps.append(run("bench", cli(*bench, "-o", str(out / "bench"), "--force"), out))
    if has("cuda.bindings"):
        graph = cli(*bench, "--cuda-graph", "-o", str(out / "bench-cuda-graph"), "--force")
        steps.append(run("bench-cuda-graph", graph, out))
    else:
        steps.append(skipped("bench-cuda-graph", "cuda-python (cuda-bindings) is not installed"))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("hardware-report"))
    parser.add_argument("--onnx", type=Path, help="the bundled model's ONNX, exported elsewhere")
    parser.add_argument("--skip-tests", action="store_true", help="leave out `pytest -m gpu`")
    parser.add_argument("--skip-bench", action="store_true", help="leave out the bench")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:  # this checkout's resnet_opt, as the steps' subprocesses use
        sys.path.insert(0, str(ROOT))
    out: Path = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    onnx = args.onnx.resolve() if args.onnx else None
    if onnx is not None and not onnx.is_file():
        print(f"--onnx {args.onnx}: no such file", file=sys.stderr)
        return 1

    steps = [run("info", cli("info"), out, timeout=300)]
    if shutil.which("nvidia-smi"):
        steps.append(run("nvidia-smi", ["nvidia-smi"], out, timeout=60))
    else:
        steps.append(skipped("nvidia-smi", "not on PATH (a Jetson has none: see tegrastats)"))
    junit = out / "gpu-tests.xml"
    if args.skip_tests:
        steps.append(skipped("gpu-tests", "--skip-tests"))
    elif not has("pytest"):
        steps.append(
            skipped("gpu-tests", "pytest is not installed: pip install '.[gpu-test]' (README)")
        )
    else:
        pytest = [sys.executable, "-m", "pytest", "-m", "gpu", "-rA", "-p", "no:cacheprovider"]
        steps.append(run("gpu-tests", [*pytest, f"--junitxml={junit}", "tests"], out))
    steps += [skipped("bench", "--skip-bench")] if args.skip_bench else bench_steps(out, onnx)

    counts, results = gpu_test_results(junit)
    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["# resnet-opt hardware report", "", f"Written {written}.", ""]
    lines += ["## Machine", "", *machine(), "", "| package | version |", "|---|---|"]
    lines += [f"| {name} | {version} |" for name, version in versions()]
    info = out / "info.log"
    if info.is_file():
        lines += ["", "```", *info.read_text().splitlines()[1:], "```"]
    lines += ["", "## Steps", "", "| step | result | time | log |", "|---|---|---|---|"]
    lines += [step.row() for step in steps]
    tests_step = next(s for s in steps if s.name == "gpu-tests")
    summary = gpu_summary(counts, results, tests_step)
    lines[4:4] = [f"**{summary}**", ""]
    lines += ["", "## gpu tests", "", summary, ""]
    if results:
        lines.append(", ".join(f"{n} {k}" for k, n in counts.items()))
        lines += ["", "| test | outcome | message |", "|---|---|---|"]
        lines += [f"| {name} | {outcome} | {message} |" for name, outcome, message in results]
    else:
        lines.append("not run (see the steps above)")
    for folder in ("bench", "bench-cuda-graph"):
        report = out / folder / "report.md"
        if report.is_file():
            lines += ["", f"## {folder}", "", report.read_text()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    archive = out.with_name(out.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=lambda t: None if "bench-work" in t.name else t)
    print(f"{summary}\n{out / 'report.md'}\n{archive}  <- attach this to the issue")
    return 0 if all(s.ok or s.returncode is None for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
