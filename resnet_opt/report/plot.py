"""The report's picture: throughput against top-1 accuracy, with the Pareto front.

One point per artifact × backend at one batch size (the largest measured, or the one asked
for). A point is on the Pareto front when no other point is at least as fast and at least as
accurate, and better in one of the two: those are the only sensible choices, and the step line
through them shows what each extra image per second costs in accuracy. Without accuracy the
plot falls back to throughput bars, so a report folder always has its picture.

matplotlib is imported inside the functions, with the Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_opt.errors import ResnetOptError
from resnet_opt.report.schema import Report

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 6.5, 100
LOG_SCALE_RATIO = 20.0  # throughputs spanning more than this use a log axis


@dataclass(frozen=True)
class Point:
    artifact: str
    backend: str
    precision: str
    throughput: float
    top1: float | None
    per_watt: float | None = None  # images/s per watt (Jetson power rails), None elsewhere


def points(report: Report, batch: int) -> list[Point]:
    found = []
    for m in report.measurements:
        if m.batch != batch:
            continue
        acc = report.accuracy_of(m.artifact, m.backend)
        found.append(
            Point(
                m.artifact,
                m.backend,
                m.precision_run,
                m.throughput,
                acc.top1 if acc else None,
                m.images_per_s_per_w,
            )
        )
    return found


def pareto_front(xy: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points (maximising both), by increasing x.

    Ties: of identical points, the first is kept.
    """
    order = sorted(range(len(xy)), key=lambda i: (-xy[i][0], -xy[i][1], i))
    front: list[int] = []
    best_y = float("-inf")
    for i in order:
        if xy[i][1] > best_y:
            front.append(i)
            best_y = xy[i][1]
    return front[::-1]


def plot_report(report: Report, path: Path, *, batch: int | None = None) -> Path:
    """Draw the report's plot into `path` (PNG, whatever the file name ends with)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    batch = batch if batch is not None else report.settings.plot_batch
    pts = points(report, batch)
    if not pts:
        raise ResnetOptError(f"no measurement at batch {batch} to plot")
    accuracy = all(p.top1 is not None for p in pts)
    watts = accuracy and all(p.per_watt is not None for p in pts)
    # with power readings, a second panel: accuracy against images/s per watt
    fig, axes = plt.subplots(
        1, 2 if watts else 1, figsize=(WIDTH_IN * (1.8 if watts else 1), HEIGHT_IN), dpi=DPI
    )
    ax = axes[0] if watts else axes
    try:
        if accuracy:
            _scatter(ax, pts, report, batch)
            if watts:
                _scatter(axes[1], pts, report, batch, per_watt=True)
        else:
            _bars(ax, pts, batch)
        title = f"resnet-opt bench at batch {batch}\n{report.machine.describe()}"
        if watts:
            fig.suptitle(title, fontsize=10)
        else:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def _backend_colours() -> dict[str, str]:
    """Each bench target's colour, as its backend unit declares it."""
    from resnet_opt.backends.registry import Target

    return {target.value: target.spec.colour for target in Target}


_PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^", "mixed": "v"}


def _scatter(
    ax: Any, pts: Sequence[Point], report: Report, batch: int, *, per_watt: bool = False
) -> None:
    xy = [
        (float(p.per_watt or 0.0) if per_watt else p.throughput, float(p.top1 or 0.0)) for p in pts
    ]
    seen: set[str] = set()
    colours = _backend_colours()
    for p, (x, y) in zip(pts, xy, strict=True):
        colour = colours.get(p.backend, "tab:gray")
        label = p.backend if p.backend not in seen else None
        seen.add(p.backend)
        marker = _PRECISION_MARKERS.get(p.precision.lower(), "o")
        ax.scatter([x], [y], s=60, color=colour, marker=marker, label=label, zorder=3)
    front = pareto_front(xy)
    fx = [xy[i][0] for i in front]
    fy = [xy[i][1] for i in front]
    ax.step(
        fx,
        fy,
        where="pre",
        color="black",
        linestyle="--",
        linewidth=1,
        zorder=2,
        label="Pareto front",
    )
    ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", zorder=4)
    xs = [x for x, _ in xy]
    if min(xs) > 0 and max(xs) / min(xs) > LOG_SCALE_RATIO:
        ax.set_xscale("log")
    if per_watt:
        ax.set_xlabel(f"efficiency at batch {batch} (images/s per watt, module power)")
    else:
        ax.set_xlabel(f"throughput at batch {batch} (images/s)")
    data = report.settings.data or "evaluation data"
    ax.set_ylabel(f"top-1 accuracy (%)\n{_shorten(data, 60)}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.margins(x=0.15, y=0.15)
    low, high = ax.get_ylim()  # accuracy is a percentage: never draw an axis past 0 or 100
    ax.set_ylim(max(low, -0.5), min(high, 100.5))
    _label(ax, [f"{p.artifact}\n{p.backend} {p.precision}" for p in pts], xy)


# label offsets tried in turn (points from the marker), the first free one wins
_OFFSETS = ((6, 4), (6, -22), (-6, 4), (-6, -22), (6, 20), (6, -38), (-6, 20), (-6, -38))
_FONT_SIZE = 7


def _label(ax: Any, texts: Sequence[str], xy: Sequence[tuple[float, float]]) -> None:
    """Place each label beside its point where it overlaps no earlier label or point.

    Boxes are estimated in display pixels from the character count (good enough for 7-point
    labels); when every place is taken the first one is used.
    """
    ax.autoscale_view()
    scale = ax.figure.dpi / 72.0  # points → pixels
    char_w, line_h = 0.6 * _FONT_SIZE * scale, 1.25 * _FONT_SIZE * scale
    anchors = [tuple(ax.transData.transform(p)) for p in xy]
    taken: list[tuple[float, float, float, float]] = [
        (px - 5, py - 5, px + 5, py + 5) for px, py in anchors
    ]
    for text, (px, py), data in zip(texts, anchors, xy, strict=True):
        lines = text.split("\n")
        w = max(len(line) for line in lines) * char_w
        h = len(lines) * line_h
        chosen = _OFFSETS[0]
        for dx, dy in _OFFSETS:
            left = px + dx * scale if dx >= 0 else px + dx * scale - w
            bottom = py + dy * scale
            box = (left, bottom, left + w, bottom + h)
            if not any(_overlap(box, other) for other in taken):
                chosen = (dx, dy)
                taken.append(box)
                break
        dx, dy = chosen
        ax.annotate(
            text,
            data,
            textcoords="offset points",
            xytext=(dx, dy),
            ha="left" if dx >= 0 else "right",
            va="bottom",
            fontsize=_FONT_SIZE,
        )


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _bars(ax: Any, pts: Sequence[Point], batch: int) -> None:
    labels = [f"{p.artifact}\n{p.backend} {p.precision}" for p in pts]
    colours = [_backend_colours().get(p.backend, "tab:gray") for p in pts]
    ax.barh(range(len(pts)), [p.throughput for p in pts], color=colours)
    ax.set_yticks(range(len(pts)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"throughput at batch {batch} (images/s)")
    ax.set_ylabel("artifact and backend (accuracy not measured)")
    ax.grid(True, axis="x", alpha=0.3)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
