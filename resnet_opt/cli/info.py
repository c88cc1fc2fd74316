"""`resnet-opt info`: what this machine has, and why a backend cannot run here."""

from __future__ import annotations

from typing import Any

import typer

from resnet_opt.cli.app import command
from resnet_opt.cli.params import JsonOption
from resnet_opt.console import emit_json


@command()
def info(json_output: JsonOption = False) -> None:
    """Versions, ONNX Runtime providers, and whether TensorRT / CUDA / pycuda work (or why not)."""
    from resnet_opt.environment import collect

    env = collect()
    if json_output:
        emit_json(env.to_dict())
        return
    typer.echo("\n".join(_lines(env)))


def _lines(env: Any) -> list[str]:
    from resnet_opt.core.cpu_int8 import Int8Family, describe
    from resnet_opt.environment import onnxruntime_distributions

    lines = [f"python        {env.python}"]
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.packages]
    lines.append(f"ORT providers {', '.join(env.onnxruntime_providers) or '—'}")
    if len(ort := onnxruntime_distributions()) > 1:
        lines.append(f"ORT warning   {' and '.join(ort)} are both installed: keep one")
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.accelerators]
    lines += [
        f"OpenVINO {d.name:<4} {d.full_name} ({', '.join(d.capabilities)})"
        for d in env.openvino_devices
    ]
    m = env.machine
    lines.append(f"machine       {m.cpu_model}, {m.cpu_cores} cores, {m.memory_gb} GB")
    if m.cpu_flags:
        lines.append(f"CPU flags     {', '.join(m.cpu_flags)}")
    lines.append(f"CPU int8      {describe(Int8Family(m.cpu_int8_family))}")
    if m.jetpack:
        lines.append(f"jetson        {m.jetpack}")
    if env.jetson is not None:
        from resnet_opt.jetson.show import info_lines

        lines += info_lines(env.jetson)
    return lines
