"""`compare`: two bench reports → a Markdown diff and a verdict for CI.

Measurements are matched by artifact file name, precision, backend and batch size; accuracy by
artifact and backend. A regression is a throughput drop, a latency rise (p50 by default: the
tail percentiles of a short CI run are mostly noise) or a top-1 drop beyond its threshold.
Rows only in one report are listed as new or missing and do not fail the gate unless asked.

Numbers from different machines, or measured with settings that change what they mean
(threads, data-transfer and graph options, evaluation data), are not comparable: `compare`
refuses them, saying what differs, unless told to compare anyway.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.report.markdown import fmt_ms, fmt_throughput, table
from resnet_opt.report.schema import AccuracyResult, Measurement, Report


class LatencyStat(str, Enum):
    MEAN = "mean"
    P50 = "p50"
    P90 = "p90"
    P99 = "p99"


def parse_percent(text: str | float, what: str) -> float:
    """'5%', '5 %' or '5' → 5.0 (percent); refuses negatives and anything else."""
    raw = str(text).strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"{what}: expected a percentage like 5% or 5, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{what}: must be zero or more, got {raw!r}")
    return value


@dataclass(frozen=True)
class Thresholds:
    max_throughput_drop_pct: float = 5.0
    max_latency_rise_pct: float | None = 10.0  # None: latency is not gated
    max_accuracy_drop_points: float = 0.2
    latency_stat: LatencyStat = LatencyStat.P50
    fail_on_missing: bool = False

    def __post_init__(self) -> None:
        """A NaN limit would pass every comparison: refused for library callers too."""
        from resnet_opt.core.validation import at_least

        at_least(self.max_throughput_drop_pct, 0, "max throughput drop")
        if self.max_latency_rise_pct is not None:
            at_least(self.max_latency_rise_pct, 0, "max latency rise")
        at_least(self.max_accuracy_drop_points, 0, "max accuracy drop")


class Status(str, Enum):
    OK = "ok"
    IMPROVED = "improved"
    REGRESSION = "REGRESSION"
    NEW = "new"
    MISSING = "missing"


@dataclass(frozen=True)
class PointDiff:
    key: tuple[str, str, str, int]  # artifact, precision, backend, batch
    base: Measurement | None
    new: Measurement | None
    throughput_change_pct: float | None
    latency_change_pct: float | None
    status: Status
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccuracyDiff:
    key: tuple[str, str]  # artifact, backend
    base: AccuracyResult | None
    new: AccuracyResult | None
    change_points: float | None  # new top-1 minus base top-1
    status: Status
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    points: tuple[PointDiff, ...]
    accuracy: tuple[AccuracyDiff, ...]
    thresholds: Thresholds
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[str]:
        found = [p for d in self.points for p in d.problems]
        found += [p for d in self.accuracy for p in d.problems]
        return found

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


# -- comparability -------------------------------------------------------------------------------


def _differences(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    # a fact only one report records (an older report lacks the CPU int8 family) is not known
    # to differ; every other identity key is in every report
    return [f"{k} {base[k]!r} vs {new[k]!r}" for k in base if k in new and base[k] != new[k]]


def check_comparable(base: Report, new: Report, *, allow_different_hardware: bool) -> list[str]:
    """Refuse reports from different machines or settings (unless allowed): notes otherwise."""
    hardware = _differences(base.machine.identity(), new.machine.identity())
    settings = _differences(base.settings.comparable(), new.settings.comparable())
    notes: list[str] = []
    if hardware or settings:
        what = []
        if hardware:
            what.append("different machines (" + "; ".join(hardware) + ")")
        if settings:
            what.append("different settings (" + "; ".join(settings) + ")")
        if not allow_different_hardware:
            raise ResnetOptError(
                f"the reports come from {' and '.join(what)}: their numbers do not compare; "
                "pass --allow-different-hardware to compare anyway"
            )
        notes.append(f"compared despite {' and '.join(what)} (--allow-different-hardware)")
    b, n = base.settings, new.settings
    budget_b = (b.mode, b.iterations, b.duration_s, b.warmup_s)
    budget_n = (n.mode, n.iterations, n.duration_s, n.warmup_s)
    if budget_b != budget_n:
        notes.append(
            "the measuring budgets differ (iterations/duration/warm-up): noise levels differ"
        )
    changed = sorted(
        k
        for k in set(base.versions) | set(new.versions)
        if base.versions.get(k) != new.versions.get(k)
    )
    if changed:
        notes.append(
            "versions changed: "
            + ", ".join(
                f"{k} {base.versions.get(k, '—')} → {new.versions.get(k, '—')}" for k in changed
            )
        )
    return notes


# -- the diff ------------------------------------------------------------------------------------


def _change_pct(base: float, new: float, what: str = "") -> float:
    """The change from `base` to `new` in percent of `base`; a base of 0 (a latency under the
    timer's resolution) has no relative change: refused, not called "inf% higher"."""
    if base > 0:
        return (new - base) / base * 100.0
    if new == base:
        return 0.0
    raise ResnetOptError(
        f"{what}: the base report's value is {base:g}, so a change in percent means nothing "
        "(re-run the base bench with more iterations or a larger batch)"
    )


def _latency(m: Measurement, stat: LatencyStat) -> float:
    value: float = getattr(m.latency_ms, stat.value)
    return value


def _point(
    key: tuple[str, str, str, int],
    base: Measurement | None,
    new: Measurement | None,
    t: Thresholds,
) -> PointDiff:
    name = f"{key[0]} {key[2]} batch {key[3]}"
    if base is None or new is None:
        status = Status.NEW if base is None else Status.MISSING
        gate = status is Status.MISSING and t.fail_on_missing
        missing = (f"{name}: missing from the new report",) if gate else ()
        return PointDiff(key, base, new, None, None, status, missing)
    thr = _change_pct(base.throughput, new.throughput, f"{name}: throughput")
    stat = t.latency_stat.value
    lat = _change_pct(
        _latency(base, t.latency_stat), _latency(new, t.latency_stat), f"{name}: {stat} latency"
    )
    problems = []
    if -thr > t.max_throughput_drop_pct:
        problems.append(
            f"{name}: throughput {-thr:.1f}% lower (limit {t.max_throughput_drop_pct:g}%)"
        )
    if t.max_latency_rise_pct is not None and lat > t.max_latency_rise_pct:
        problems.append(
            f"{name}: {t.latency_stat.value} latency {lat:.1f}% higher "
            f"(limit {t.max_latency_rise_pct:g}%)"
        )
    if problems:
        status = Status.REGRESSION
    elif thr > t.max_throughput_drop_pct:
        status = Status.IMPROVED
    else:
        status = Status.OK
    return PointDiff(key, base, new, thr, lat, status, tuple(problems))


def _accuracy(
    key: tuple[str, str], base: AccuracyResult | None, new: AccuracyResult | None, t: Thresholds
) -> AccuracyDiff:
    if base is None or new is None:
        status = Status.NEW if base is None else Status.MISSING
        gate = status is Status.MISSING and t.fail_on_missing
        missing = (f"{key[0]} {key[1]}: accuracy missing from the new report",) if gate else ()
        return AccuracyDiff(key, base, new, None, status, missing)
    change = new.top1 - base.top1
    if -change > t.max_accuracy_drop_points:
        problem = (
            f"{key[0]} {key[1]}: top-1 {-change:.2f} points lower "
            f"(limit {t.max_accuracy_drop_points:g})"
        )
        return AccuracyDiff(key, base, new, change, Status.REGRESSION, (problem,))
    status = Status.IMPROVED if change > t.max_accuracy_drop_points else Status.OK
    return AccuracyDiff(key, base, new, change, status)


def _ordered_keys(base: Sequence[Any], new: Sequence[Any]) -> list[Any]:
    keys = list(base)
    keys += [x for x in new if x not in keys]
    return keys


def compare_reports(
    base: Report,
    new: Report,
    thresholds: Thresholds | None = None,
    *,
    allow_different_hardware: bool = False,
) -> Comparison:
    """Diff two reports (refusing incomparable ones); `Comparison.regressed` is the verdict."""
    t = thresholds or Thresholds()
    notes = check_comparable(base, new, allow_different_hardware=allow_different_hardware)
    base_points = {m.key: m for m in base.measurements}
    new_points = {m.key: m for m in new.measurements}
    points = tuple(
        _point(k, base_points.get(k), new_points.get(k), t)
        for k in _ordered_keys(list(base_points), list(new_points))
    )
    base_acc = {a.key: a for a in base.accuracy}
    new_acc = {a.key: a for a in new.accuracy}
    accuracy = tuple(
        _accuracy(k, base_acc.get(k), new_acc.get(k), t)
        for k in _ordered_keys(list(base_acc), list(new_acc))
    )
    compared = [d for d in points if d.base and d.new] + [d for d in accuracy if d.base and d.new]
    missing_fails = any(d.problems for d in points) or any(d.problems for d in accuracy)
    if not compared and not missing_fails:  # "no regression" would be a verdict on nothing
        raise ResnetOptError(
            "the reports have no measurement or accuracy row in common (same artifact, "
            "precision, backend, batch): there is nothing to compare"
        )
    return Comparison(points, accuracy, t, tuple(notes))


# -- Markdown ------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    if value is None:
        return "—"
    return "inf" if math.isinf(value) else f"{value:+.1f}%"


def render_comparison(c: Comparison) -> str:
    t = c.thresholds
    stat = t.latency_stat.value
    lat_limit = "not gated" if t.max_latency_rise_pct is None else f"+{t.max_latency_rise_pct:g}%"
    lines = [
        "## resnet-opt compare",
        "",
        f"Limits: throughput −{t.max_throughput_drop_pct:g}%, {stat} latency {lat_limit}, "
        f"top-1 −{t.max_accuracy_drop_points:g} points.",
    ]
    lines += [f"Note: {note}." for note in c.notes]
    rows = []
    for d in c.points:
        artifact, precision, backend, batch = d.key
        b, n = d.base, d.new
        rows.append(
            [
                artifact,
                precision,
                backend,
                batch,
                fmt_throughput(b.throughput) if b else "—",
                fmt_throughput(n.throughput) if n else "—",
                _pct(d.throughput_change_pct),
                fmt_ms(_latency(b, t.latency_stat)) if b else "—",
                fmt_ms(_latency(n, t.latency_stat)) if n else "—",
                _pct(d.latency_change_pct),
                d.status.value,
            ]
        )
    header = [
        "artifact",
        "precision",
        "backend",
        "batch",
        "img/s base",
        "img/s new",
        "Δ img/s",
        f"{stat} ms base",
        f"{stat} ms new",
        f"Δ {stat}",
        "verdict",
    ]
    lines += ["", table(header, rows, right=7) if rows else "_No measurements._"]
    if c.accuracy:
        acc_rows = [
            [
                d.key[0],
                d.key[1],
                f"{d.base.top1:.2f}" if d.base else "—",
                f"{d.new.top1:.2f}" if d.new else "—",
                "—" if d.change_points is None else f"{d.change_points:+.2f}",
                d.status.value,
            ]
            for d in c.accuracy
        ]
        acc_header = ["artifact", "backend", "top-1 base %", "top-1 new %", "Δ pts", "verdict"]
        lines += ["", table(acc_header, acc_rows, right=4)]
    regressions = c.regressions
    lines += [""]
    if regressions:
        lines += [f"**{len(regressions)} regression(s):**", ""]
        lines += [f"- {r}" for r in regressions]
    else:
        lines += ["No regression."]
    return "\n".join(lines) + "\n"


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """The comparison as JSON (for `compare --json`)."""

    def point(d: PointDiff) -> dict[str, Any]:
        artifact, precision, backend, batch = d.key
        stat = c.thresholds.latency_stat
        return {
            "artifact": artifact,
            "precision": precision,
            "backend": backend,
            "batch": batch,
            "throughput_base": d.base.throughput if d.base else None,
            "throughput_new": d.new.throughput if d.new else None,
            "throughput_change_pct": d.throughput_change_pct,
            f"latency_{stat.value}_ms_base": _latency(d.base, stat) if d.base else None,
            f"latency_{stat.value}_ms_new": _latency(d.new, stat) if d.new else None,
            "latency_change_pct": d.latency_change_pct,
            "status": d.status.value,
        }

    def accuracy(d: AccuracyDiff) -> dict[str, Any]:
        return {
            "artifact": d.key[0],
            "backend": d.key[1],
            "top1_base": d.base.top1 if d.base else None,
            "top1_new": d.new.top1 if d.new else None,
            "change_points": d.change_points,
            "status": d.status.value,
        }

    t = c.thresholds
    return {
        "regressed": c.regressed,
        "regressions": c.regressions,
        "thresholds": {
            "max_throughput_drop_pct": t.max_throughput_drop_pct,
            "max_latency_rise_pct": t.max_latency_rise_pct,
            "latency_stat": t.latency_stat.value,
            "max_accuracy_drop_points": t.max_accuracy_drop_points,
            "fail_on_missing": t.fail_on_missing,
        },
        "notes": list(c.notes),
        "points": [point(d) for d in c.points],
        "accuracy": [accuracy(d) for d in c.accuracy],
    }
