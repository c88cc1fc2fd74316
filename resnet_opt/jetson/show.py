"""Jetson facts as `resnet-opt info` lines (the same 13-column layout as its other lines)."""

from __future__ import annotations

from resnet_opt.jetson.facts import Frequency, JetsonFacts


def _freq(value: Frequency | None) -> str:
    if value is None:
        return "—"
    now = f"{value.current_mhz:g}" if value.current_mhz is not None else "?"
    low = f"{value.min_mhz:g}" if value.min_mhz is not None else "?"
    high = f"{value.max_mhz:g}" if value.max_mhz is not None else "?"
    return f"{now} MHz (range {low}–{high})"


def info_lines(facts: JetsonFacts) -> list[str]:
    module = facts.module_or_model
    if facts.part_number:
        module += f" ({facts.part_number}{', ' + facts.soc if facts.soc else ''})"
    release = f"JetPack {facts.jetpack or 'unknown'}, L4T {facts.l4t or 'unknown'}"
    if facts.l4t_source:
        release += f" (from {facts.l4t_source})"
    mode = facts.power_mode or "unknown"
    if facts.power_mode_id is not None:
        mode += f" (nvpmodel {facts.power_mode_id})"
    locked = "unknown"
    if facts.clocks_locked is not None:
        locked = "locked (min = max)" if facts.clocks_locked else "not locked: sudo jetson_clocks"
    lines = [
        f"module        {module}",
        f"L4T           {release}",
        f"power mode    {mode}",
        f"clocks        {locked}",
        f"CPU clock     {_freq(facts.cpu_mhz)}",
        f"GPU clock     {_freq(facts.gpu_mhz)}",
        f"EMC clock     {_freq(facts.emc_mhz)}",
    ]
    if facts.temperatures_c:
        temps = ", ".join(f"{k} {v:g}" for k, v in facts.temperatures_c.items())
        lines.append(f"temperatures  {temps} °C")
    if facts.power_w:
        rails = ", ".join(f"{p.rail} {p.watts:.2f}" for p in facts.power_w)
        total = "" if facts.total_power_w is None else f" (total {facts.total_power_w:.2f} W"
        total += f" from {facts.total_power_from})" if total else ""
        lines.append(f"power         {rails} W{total}")
    lines += [f"jetson note   {problem}" for problem in facts.problems]
    return lines
