"""Timing two or more runners alternately in one process, for a ratio that means something.

A speed claim is a ratio measured in one run on one machine (ARCHITECTURE.md, "Measuring"). Timing
model A for a minute and then model B for a minute lets any change in the machine's load land on one
side only; alternating run by run (A B, then B A, so that neither always goes first) spreads it over
both. ONNX Runtime runners must have spinning off (our runner's default), or the idle pool of one
session keeps spinning while the other runs.

Used by benchmarks/openvino.py and benchmarks/onnxruntime_build.py; plain functions, no CLI.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Timing:
    """One contender's latencies over the alternated rounds (milliseconds per batch)."""

    name: str
    batch: int
    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    throughput: float  # images per second at the median latency

    @classmethod
    def of(cls, name: str, batch: int, seconds: Sequence[float]) -> Timing:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50 = float(np.percentile(ms, 50))
        return cls(
            name=name,
            batch=batch,
            runs=len(ms),
            mean_ms=float(ms.mean()),
            p50_ms=p50,
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            throughput=batch * 1000.0 / p50,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alternate(
    contenders: Mapping[str, Callable[[], object]],
    *,
    batch: int,
    rounds: int,
    warmup: int,
) -> dict[str, Timing]:
    """Warm every contender up, then time them in turn `rounds` times, flipping the order."""
    names = list(contenders)
    for name in names:
        for _ in range(max(1, warmup)):
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return {name: Timing.of(name, batch, times[name]) for name in names}


def machine_record() -> dict[str, Any]:
    """Machine, load and versions, as every report under benchmarks/reports records them."""
    from resnet_opt.core.manifest import tool_versions
    from resnet_opt.environment import machine

    m = machine()
    return {
        "machine": asdict(m),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "versions": tool_versions(),
    }


def run_stage(args: Sequence[str]) -> None:
    """Run one resnet-opt command in a child process (as a user would), failing loudly."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "resnet_opt.cli", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"resnet-opt {' '.join(args)} failed ({done.returncode}):\n{done.stderr.strip()}"
        )


def has_command(name: str) -> bool:
    """Whether this checkout's CLI has `name` (stages land one by one while the team works)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "resnet_opt.cli", name, "--help"], capture_output=True, text=True
    )
    return done.returncode == 0


def make_images(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` 256×256 JPEGs of smooth patterns plus noise, in one class folder."""
    from PIL import Image

    target = folder / "images"
    if target.is_dir() and len(list(target.iterdir())) >= count:
        return folder
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    for i in range(count):
        f = rng.uniform(1, 6, 3)
        base = np.stack([np.sin(2 * np.pi * (f[c] * xx + f[(c + 1) % 3] * yy)) for c in range(3)])
        pixels = 127 + 100 * base.transpose(1, 2, 0) + rng.normal(0, 12, (256, 256, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(target / f"{i:04d}.jpg")
    return folder


def md_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(folder: Path, name: str, data: Mapping[str, Any], markdown: str) -> list[Path]:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return [json_path, md_path]
