"""`report merge`: bench reports from several devices → one fleet table, JSON and plot.

A fleet CI job benches the same artifacts on every runner (AGX Orin at MAXN, an Orin Nano at
15 W, an x86 box) and wants one page that puts them side by side. Each report keeps its own
machine section; the fleet names each device by what tells them apart (Jetson module and power
mode, else CPU and GPU), one row per device × artifact × backend: throughput at every batch
size, latency, accuracy, and on a Jetson with power rails the watts and images/s per watt.
Reports are merged, not compared: different settings are listed, not refused (`compare` gates
one device against its own baseline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.errors import ResnetOptError
from resnet_opt.report.markdown import fmt_ms, fmt_throughput, table
from resnet_opt.report.schema import Report, load_report

FLEET_KIND = "resnet-opt-fleet"
FLEET_SCHEMA = 1
JSON_NAME, MARKDOWN_NAME, PLOT_NAME = "fleet.json", "fleet.md", "fleet.png"


@dataclass(frozen=True)
class Device:
    label: str
    hostname: str
    source: str  # the report file
    module: str | None
    power_mode: str | None
    clocks_locked: bool | None
    describe: str


@dataclass(frozen=True)
class FleetRow:
    device: str
    artifact: str
    backend: str
    precision: str  # what ran
    throughput: dict[int, float]  # batch -> images/s
    p50_ms: float | None  # at the fleet batch
    top1: float | None
    power_w: float | None  # at the fleet batch
    images_per_s_per_w: float | None


@dataclass(frozen=True)
class Fleet:
    batch: int
    batches: tuple[int, ...]
    devices: tuple[Device, ...]
    rows: tuple[FleetRow, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": FLEET_KIND,
            "schema": FLEET_SCHEMA,
            "batch": self.batch,
            "batches": list(self.batches),
            "devices": [asdict(d) for d in self.devices],
            "rows": [
                {**asdict(r), "throughput": {str(b): v for b, v in r.throughput.items()}}
                for r in self.rows
            ],
            "notes": list(self.notes),
        }


def device_label(report: Report) -> str:
    """What tells devices apart: the Jetson module and power mode, else CPU (+ GPUs)."""
    m = report.machine
    if m.jetson is not None:
        return f"{m.jetson.module_or_model} @ {m.jetson.power_mode or 'unknown mode'}"
    gpus = ", ".join(g.name for g in m.gpus)
    return f"{m.cpu_model}" + (f" + {gpus}" if gpus else "")


def _devices(reports: Sequence[tuple[Path, Report]]) -> list[Device]:
    labels = [device_label(r) for _, r in reports]
    devices = []
    seen: set[str] = set()
    for (path, report), label in zip(reports, labels, strict=True):
        if labels.count(label) > 1:  # the same kind of device twice: the host tells them apart
            label = f"{label} ({report.machine.hostname})"
        if label in seen:
            raise ResnetOptError(
                f"{path}: a second report from {label}; merge one report per device"
            )
        seen.add(label)
        j = report.machine.jetson
        devices.append(
            Device(
                label=label,
                hostname=report.machine.hostname,
                source=str(path),
                module=j.module_or_model if j else None,
                power_mode=j.power_mode if j else None,
                clocks_locked=j.clocks_locked if j else None,
                describe=report.machine.describe(),
            )
        )
    return devices


def _fleet_batch(reports: Sequence[Report], batch: int | None) -> tuple[int, tuple[int, ...]]:
    every = sorted({b for r in reports for b in r.settings.batches})
    common = set.intersection(*(set(r.settings.batches) for r in reports))
    if batch is not None:
        if batch not in common:
            raise ResnetOptError(
                f"--batch {batch}: not measured in every report (common: "
                f"{', '.join(map(str, sorted(common))) or 'none'})"
            )
        return batch, tuple(every)
    if not common:
        raise ResnetOptError(
            "the reports share no batch size; bench every device with one common --batch"
        )
    return max(common), tuple(every)


def _differences(reports: Sequence[tuple[Path, Report]]) -> list[str]:
    notes = []
    keys = reports[0][1].settings.comparable().keys()
    for key in keys:
        values = {str(r.settings.comparable()[key]) for _, r in reports}
        if len(values) > 1:
            notes.append(f"settings differ across devices: {key} ({', '.join(sorted(values))})")
    artifacts = [{a.sha256 for a in r.artifacts} for _, r in reports]
    if len({frozenset(a) for a in artifacts}) > 1:
        notes.append("the devices benched different artifacts (sha256 differ): rows differ")
    return notes


def merge_reports(paths: Sequence[Path], *, batch: int | None = None) -> Fleet:
    if len(paths) < 2:
        raise ResnetOptError("give two or more reports to merge (one per device)")
    loaded = [(Path(p), load_report(Path(p))) for p in paths]
    fleet_batch, batches = _fleet_batch([r for _, r in loaded], batch)
    devices = _devices(loaded)
    rows = []
    for device, (_, report) in zip(devices, loaded, strict=True):
        keys: list[tuple[str, str]] = []
        for m in report.measurements:
            if (m.artifact, m.backend) not in keys:
                keys.append((m.artifact, m.backend))
        for artifact, backend in keys:
            points = {
                m.batch: m
                for m in report.measurements
                if (m.artifact, m.backend) == (artifact, backend)
            }
            at = points.get(fleet_batch)
            acc = report.accuracy_of(artifact, backend)
            rows.append(
                FleetRow(
                    device=device.label,
                    artifact=artifact,
                    backend=backend,
                    precision=next(iter(points.values())).precision_run,
                    throughput={b: m.throughput for b, m in sorted(points.items())},
                    p50_ms=at.latency_ms.p50 if at else None,
                    top1=acc.top1 if acc else None,
                    power_w=at.power_w if at else None,
                    images_per_s_per_w=at.images_per_s_per_w if at else None,
                )
            )
    return Fleet(fleet_batch, batches, tuple(devices), tuple(rows), tuple(_differences(loaded)))


def _opt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render_fleet(fleet: Fleet, *, image: str | None = None) -> str:
    power = any(r.power_w is not None for r in fleet.rows)
    header = ["device", "artifact", "backend", "precision", *(f"img/s @{b}" for b in fleet.batches)]
    header += [f"p50 ms @{fleet.batch}", "top-1 %"]
    if power:
        header += [f"W @{fleet.batch}", "img/s/W"]
    body = []
    for r in fleet.rows:
        row: list[object] = [r.device, r.artifact, r.backend, r.precision]
        row += [
            fmt_throughput(r.throughput[b]) if b in r.throughput else "—" for b in fleet.batches
        ]
        row += [fmt_ms(r.p50_ms) if r.p50_ms is not None else "—", _opt(r.top1, ".2f")]
        if power:
            row += [_opt(r.power_w, ".1f"), _opt(r.images_per_s_per_w, ".1f")]
        body.append(row)
    lines = [
        f"## resnet-opt fleet: {len(fleet.devices)} devices",
        "",
        *(
            f"- **{d.label}**: {d.describe} ({d.hostname}; {Path(d.source).name})"
            for d in fleet.devices
        ),
        "",
        table(header, body, right=len(header) - 4),
    ]
    locked = [d.label for d in fleet.devices if d.clocks_locked is False]
    if locked:
        lines += ["", f"Clocks not locked (numbers vary run to run): {', '.join(locked)}."]
    if image:
        lines += ["", f"![throughput per device at batch {fleet.batch}]({image})"]
    if fleet.notes:
        lines += ["", *(f"- {n}" for n in fleet.notes)]
    return "\n".join(lines) + "\n"


def plot_fleet(fleet: Fleet, path: Path) -> Path:
    """Throughput at the fleet batch, one bar per device in each artifact × backend group."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    groups: list[tuple[str, str]] = []
    for r in fleet.rows:
        if (r.artifact, r.backend) not in groups:
            groups.append((r.artifact, r.backend))
    labels = [d.label for d in fleet.devices]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.5 * len(groups) * len(labels)), dpi=100)
    try:
        for i, label in enumerate(labels):
            ys, xs = [], []
            for g, (artifact, backend) in enumerate(groups):
                row = next(
                    (
                        r
                        for r in fleet.rows
                        if (r.device, r.artifact, r.backend) == (label, artifact, backend)
                    ),
                    None,
                )
                if row is not None and fleet.batch in row.throughput:
                    ys.append(g + i * width)
                    xs.append(row.throughput[fleet.batch])
            ax.barh(ys, xs, height=width, label=label)
        ax.set_yticks([g + 0.4 - width / 2 for g in range(len(groups))])
        ax.set_yticklabels([f"{a}\n{b}" for a, b in groups], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"throughput at batch {fleet.batch} (images/s)")
        ax.set_title("resnet-opt fleet", fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def write_fleet(fleet: Fleet, folder: Path, *, force: bool = False) -> tuple[Path, Path, Path]:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ResnetOptError(f"{folder}: exists and is not a folder")
    files = (folder / JSON_NAME, folder / MARKDOWN_NAME, folder / PLOT_NAME)
    with staged_outputs(force=force) as staged:
        json_tmp, md_tmp, png_tmp = (staged.add(f) for f in files)
        json_tmp.write_text(json.dumps(fleet.to_dict(), indent=2) + "\n", encoding="utf-8")
        md_tmp.write_text(render_fleet(fleet, image=PLOT_NAME), encoding="utf-8")
        plot_fleet(fleet, png_tmp)
    return files
