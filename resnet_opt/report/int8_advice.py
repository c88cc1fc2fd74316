"""What INT8 buys on the CPU a report was measured on: per backend, the fastest artifact and its
speed against the fastest FP32 one, read from the report's own measurements and CPU int8 family.

Why: what INT8 buys depends on the CPU's int8 instructions far more than on the model. With VNNI
or AMX a CPU-layout INT8 ResNet runs several times its FP32; on AVX2 the same file gains a few
percent, and with full 8-bit weights it also loses accuracy (the int16 pair sums saturate). A
report says which case it measured instead of leaving a reader to carry a ratio to another CPU.
"""

from __future__ import annotations

from resnet_opt.report.schema import Measurement, Report

INT8 = ("int8", "mixed")
LITTLE = 1.2  # an INT8 speed-up below this hardly pays for its accuracy risk


def _fastest(points: list[Measurement]) -> Measurement | None:
    return max(points, key=lambda m: m.throughput, default=None)


def advice_lines(report: Report) -> list[str]:
    """Markdown bullet lines (empty when no backend measured both an FP32 and an INT8 file)."""
    from resnet_opt.core.cpu_int8 import Int8Family

    family_value = report.machine.cpu_int8_family
    try:
        family = Int8Family(family_value) if family_value else Int8Family.UNKNOWN
    except ValueError:
        family = Int8Family.UNKNOWN
    batch = report.settings.plot_batch
    lines = []
    for backend in dict.fromkeys(m.backend for m in report.measurements):
        on = [m for m in report.measurements if m.backend == backend and m.device.lower() == "cpu"]
        at = [m for m in on if m.batch == batch]
        fp32 = _fastest([m for m in at if m.precision == "fp32"])
        int8 = _fastest([m for m in at if m.precision in INT8])
        if fp32 is None or int8 is None:
            continue
        ratio = int8.throughput / fp32.throughput
        per_batch = []
        for b in report.settings.batches:
            f = _fastest([m for m in on if m.batch == b and m.precision == "fp32"])
            i = _fastest([m for m in on if m.batch == b and m.precision in INT8])
            if f is not None and i is not None:
                per_batch.append(f"{i.throughput / f.throughput:.2f}× (batch {b})")
        fastest = int8 if ratio >= 1.0 else fp32
        text = (
            f"- **{backend}**: fastest at batch {batch} is {fastest.artifact} "
            f"({fastest.precision}, {fastest.throughput:,.1f} img/s); the best INT8 "
            f"({int8.artifact}) runs at {', '.join(per_batch)} the throughput of the best FP32 "
            f"({fp32.artifact})."
        )
        if ratio < LITTLE:
            text += " INT8 buys little here: FP32 may be the better choice on this CPU."
        lines.append(text)
    if not lines:
        return []
    head = f"CPU int8 instructions: {family.label}"
    if family.saturates_u8s8:
        head += (
            " (u8×s8 sums saturate in int16: only 7-bit-weight CPU artifacts, the `--target "
            "cpu` default, keep their accuracy here)"
        )
    elif family is not Int8Family.UNKNOWN:
        head += " (int32 accumulation: no saturation)"
    return [head + ". Ratios are throughputs measured in this report.", "", *lines]
