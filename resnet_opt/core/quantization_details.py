"""`details["quantization"]` of an int8 quantize manifest, typed (ARCHITECTURE.md, "The artifact
contract").

`QuantizationDetails.to_dict()` is exactly the JSON `quantize --precision int8` writes (schema
v1, key order included); `from_dict()` validates it on read. Readers (the summary
`quantization/report.py`, the saturation warning `quantization/saturation.py`) read its fields,
never the JSON by key.

Old manifests load: every key but `target` was added over time (the weight range, saturation-safe
pairs, bias correction ...), and the tests write minimal ones (`{"target": "cpu"}`), so each
other field reads as None when absent, and `to_dict()` leaves it out again (`saturation_safe`,
null for tensorrt today, keeps whether it was there apart), so a record reads back to the same
JSON. A value of the wrong type is one `ResnetOptError` naming the manifest
and the key, exit 1, as for any other malformed manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from resnet_opt.core.details import MANIFEST_SUFFIX, DescribedArtifact, Fields, invalid
from resnet_opt.core.readers import is_json_type
from resnet_opt.errors import ResnetOptError

KEY = "quantization"


@dataclass(frozen=True)
class QdqCounts:
    """What `qdq.apply_plan` wrote (written between "bias" and "layers"; None: not recorded)."""

    quantize_linear: int | None = None
    dequantize_linear: int | None = None
    quantized_tensors: int | None = None  # activation Q/DQ pairs
    int8_weights: int | None = None
    int32_biases: int | None = None
    int8_layers: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, object], where: str = "counts") -> QdqCounts:
        read = Fields(data, where)
        return cls(**{f.name: read.maybe(f.name, int) for f in fields(cls)})


@dataclass(frozen=True)
class BiasCorrection:
    """What bias correction did: whether it was on, layers corrected, those without input means,
    the mean |shift| removed per layer."""

    enabled: bool
    layers: int
    uncorrected: tuple[str, ...]
    mean_abs_shift: float

    def to_dict(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "layers": self.layers,
            "uncorrected": list(self.uncorrected),
            "mean_abs_shift": self.mean_abs_shift,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], where: str = "bias_correction"
    ) -> BiasCorrection:
        read = Fields(data, where)
        return cls(
            enabled=read.flag("enabled"),
            layers=read.integer("layers"),
            uncorrected=read.texts("uncorrected"),
            mean_abs_shift=read.number("mean_abs_shift"),
        )


@dataclass(frozen=True)
class QuantizationDetails:
    """How an int8 artifact was quantized: layout, number formats, what was written, per layer.

    The descriptive texts (`activation_zero_point`, `weight_storage` ...) are the layout's own
    words; `counts` are the graph counts (`COUNT_KEYS`); `left_float` is (node, why) for each
    node the layout could not quantize.
    """

    target: str
    format: str | None = None
    activation_type: str | None = None
    activation_zero_point: str | None = None
    activation_scales: str | None = None
    weight_type: str | None = None
    weight_range: tuple[int, int] | None = None
    reduce_range: bool | None = None
    safe_pairs: bool | None = None
    saturation_safe: bool | None = None  # None: tensorrt (GPUs accumulate in int32)
    # whether the record has the key at all (a null is meaningful, so absence is kept apart)
    saturation_safe_recorded: bool = True
    seven_bit_layers: tuple[str, ...] | None = None
    pairs_moved: int | None = None
    bias_correction: BiasCorrection | None = None
    weight_storage: str | None = None
    per_channel_weights: bool | None = None
    weight_axis: str | None = None
    bias: str | None = None
    counts: QdqCounts = QdqCounts()
    layers: tuple[str, ...] | None = None
    excluded: tuple[str, ...] | None = None
    kept_for_budget: tuple[str, ...] | None = None
    left_float: tuple[tuple[str, str], ...] | None = None

    @property
    def weight_max(self) -> int | None:
        """The largest int8 weight magnitude written (None: not recorded, an old manifest)."""
        if self.weight_range is None:
            return None
        return max(abs(self.weight_range[0]), abs(self.weight_range[1]))

    def to_dict(self) -> dict[str, object]:
        bias_correction = self.bias_correction.to_dict() if self.bias_correction else None
        head: list[tuple[str, object]] = [
            ("target", self.target),
            ("format", self.format),
            ("activation_type", self.activation_type),
            ("activation_zero_point", self.activation_zero_point),
            ("activation_scales", self.activation_scales),
            ("weight_type", self.weight_type),
            ("weight_range", None if self.weight_range is None else list(self.weight_range)),
            ("reduce_range", self.reduce_range),
            ("safe_pairs", self.safe_pairs),
        ]
        data = {k: v for k, v in head if v is not None}
        if self.saturation_safe_recorded:
            data["saturation_safe"] = self.saturation_safe
        tail: list[tuple[str, object]] = [
            ("seven_bit_layers", _listed(self.seven_bit_layers)),
            ("pairs_moved", self.pairs_moved),
            ("bias_correction", bias_correction),
            ("weight_storage", self.weight_storage),
            ("per_channel_weights", self.per_channel_weights),
            ("weight_axis", self.weight_axis),
            ("bias", self.bias),
            *self.counts.to_dict().items(),
            ("layers", _listed(self.layers)),
            ("excluded", _listed(self.excluded)),
            ("kept_for_budget", _listed(self.kept_for_budget)),
            (
                "left_float",
                None
                if self.left_float is None
                else [{"node": n, "reason": r} for n, r in self.left_float],
            ),
        ]
        data.update((k, v) for k, v in tail if v is not None)
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], where: str = f"details.{KEY}"
    ) -> QuantizationDetails:
        read = Fields(data, where)
        weight_range = read.maybe("weight_range", list)
        if weight_range is not None:
            if len(weight_range) != 2 or not all(is_json_type(v, (int,)) for v in weight_range):
                raise invalid(f"{where}.weight_range", "a list of two integers", weight_range)
            weight_range = (int(weight_range[0]), int(weight_range[1]))
        bias_correction = read.maybe_section("bias_correction")
        left_float = read.maybe("left_float", list)
        if left_float is not None:
            left_float = tuple(
                (item.text("node"), item.text("reason")) for item in read.sections("left_float")
            )
        return cls(
            target=read.text("target"),
            format=read.maybe("format", str),
            activation_type=read.maybe("activation_type", str),
            activation_zero_point=read.maybe("activation_zero_point", str),
            activation_scales=read.maybe("activation_scales", str),
            weight_type=read.maybe("weight_type", str),
            weight_range=weight_range,
            reduce_range=read.maybe("reduce_range", bool),
            safe_pairs=read.maybe("safe_pairs", bool),
            saturation_safe=read.maybe("saturation_safe", bool),
            saturation_safe_recorded="saturation_safe" in data,
            seven_bit_layers=read.maybe_texts("seven_bit_layers"),
            pairs_moved=read.maybe("pairs_moved", int),
            bias_correction=(
                None
                if bias_correction is None
                else BiasCorrection.from_dict(bias_correction.data, bias_correction.where)
            ),
            weight_storage=read.maybe("weight_storage", str),
            per_channel_weights=read.maybe("per_channel_weights", bool),
            weight_axis=read.maybe("weight_axis", str),
            bias=read.maybe("bias", str),
            counts=QdqCounts.from_dict(data, where),
            layers=read.maybe_texts("layers"),
            excluded=read.maybe_texts("excluded"),
            kept_for_budget=read.maybe_texts("kept_for_budget"),
            left_float=left_float,
        )


def quantization_in(manifest: DescribedArtifact) -> QuantizationDetails | None:
    """`quantization_of` a manifest's own details, naming its file in an error."""
    return quantization_of(manifest.details, f"{manifest.artifact}{MANIFEST_SUFFIX}")


def quantization_of(details: Mapping[str, Any], source: str) -> QuantizationDetails | None:
    """The typed `details["quantization"]` of a manifest (None: not an int8 quantize step, e.g.
    fp16, or another stage). `source` names the manifest in the error of a malformed one."""
    data = details.get(KEY)
    if data is None:
        return None
    try:
        if not isinstance(data, Mapping):
            raise invalid(f"details.{KEY}", "an object", data)
        return QuantizationDetails.from_dict(data)
    except ResnetOptError as exc:
        raise ResnetOptError(f"{source}: {exc}") from exc


def _listed(items: tuple[str, ...] | None) -> list[str] | None:
    return None if items is None else list(items)
