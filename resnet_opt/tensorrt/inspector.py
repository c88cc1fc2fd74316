"""Layer precisions of a built engine, read from IEngineInspector's JSON.

The build asks for detailed profiling verbosity so the inspector can tell, per fused layer,
which types it reads and writes. This module turns that JSON (TensorRT 10's `Format/Datatype`
strings, TensorRT 11's split `Format` and `DataType` fields) into counts per precision for the
manifest. When the inspector cannot tell (names only), the report says so instead of guessing.

Which layers run on a DLA comes from the layer's type (TensorRT reports a DLA subgraph as
LayerType "DLA", e.g. `Layer(DLA): {ForeignNode[conv1...relu]}` in its build log) or an explicit
device field, never from the name: `{ForeignNode[…]}` only says "a subgraph compiled by another
backend", and Myelin's GPU subgraphs (LayerType "Myelin") carry the same name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_TYPES = (
    (re.compile(r"\bint8\b", re.I), "int8"),
    (re.compile(r"\b(fp16|half)\b", re.I), "fp16"),
    (re.compile(r"\bbf16\b", re.I), "bf16"),
    (re.compile(r"\bfp8\b", re.I), "fp8"),
    (re.compile(r"\b(fp32|float)\b", re.I), "fp32"),
    (re.compile(r"\bint32\b", re.I), "int32"),
    (re.compile(r"\bint64\b", re.I), "int64"),
    (re.compile(r"\bbool\b", re.I), "bool"),
)


def precision_token(text: str) -> str | None:
    """The data type named in an inspector format string ('Row major linear FP32' -> fp32)."""
    for pattern, name in _TYPES:
        if pattern.search(text):
            return name
    return None


@dataclass(frozen=True)
class LayerReport:
    available: bool
    reason: str | None = None
    count: int = 0
    precisions: dict[str, int] = field(default_factory=dict)
    on_dla: int = 0
    layers: tuple[dict[str, str], ...] = ()
    io_tensors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"available": self.available, "count": self.count}
        if self.reason:
            data["reason"] = self.reason
        if self.available:
            data["precisions"] = dict(self.precisions)
            data["on_dla"] = self.on_dla
            data["layers"] = [dict(layer) for layer in self.layers]
            data["io_tensors"] = list(self.io_tensors)
        return data


def on_dla(layer: dict[str, Any]) -> bool:
    """Whether the inspector says this layer runs on a DLA core (by type or device, not name)."""
    kind = str(layer.get("LayerType", "")).strip().lower()
    if kind in ("dla", "dlalayer") or kind.startswith("dla "):
        return True
    device = layer.get("Device") or layer.get("DeviceType")
    return isinstance(device, str) and device.strip().upper().startswith("DLA")


def io_tensor_names(data: dict[str, Any]) -> tuple[str, ...]:
    """The engine's I/O tensor names: TensorRT 10's `Bindings` (names) or 11's `I/O Tensors`
    (objects with a `Name`, as well as location, dimensions and type)."""
    entries = data.get("I/O Tensors", data.get("Bindings"))
    if not isinstance(entries, list):
        return ()
    names = []
    for entry in entries:
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("Name"), str):
            names.append(entry["Name"])
    return tuple(names)


def _tensor_type(tensor: Any) -> str | None:
    if not isinstance(tensor, dict):
        return None
    for key in ("DataType", "Format/Datatype", "Format/DataType", "Format"):
        value = tensor.get(key)
        if isinstance(value, str) and (token := precision_token(value)):
            return token
    return None


def summarize_layers(text: str) -> LayerReport:
    """Counts of layers per output precision from `get_engine_information(JSON)`."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        return LayerReport(False, f"inspector output is not JSON ({exc})")
    layers = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        return LayerReport(False, "inspector output has no Layers list")
    if layers and all(isinstance(layer, str) for layer in layers):
        return LayerReport(
            False,
            "the engine records layer names only (not built with detailed verbosity)",
            count=len(layers),
        )
    counts: Counter[str] = Counter()
    rows: list[dict[str, str]] = []
    dla_layers = 0
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        outputs = layer.get("Outputs") or []
        inputs = layer.get("Inputs") or []
        precision = next(
            (t for t in map(_tensor_type, [*outputs, *inputs]) if t is not None), "unknown"
        )
        kind = str(layer.get("LayerType", ""))
        name = str(layer.get("Name", ""))
        dla = on_dla(layer)
        dla_layers += dla
        counts[precision] += 1
        rows.append(
            {"name": name, "type": kind, "precision": precision, "device": "dla" if dla else "gpu"}
        )
    return LayerReport(
        True,
        count=len(rows),
        precisions=dict(sorted(counts.items())),
        on_dla=dla_layers,
        layers=tuple(rows),
        io_tensors=io_tensor_names(data),
    )
