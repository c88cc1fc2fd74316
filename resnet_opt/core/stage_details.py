"""The typed `details` of the export, import, fold and quantize stages (schema v1).

Each `to_dict()` is exactly the JSON those stages wrote before the details were typed (same keys,
same order, same values; tests/data/manifests_v1 holds manifests written then), and each
`from_dict()` validates what it reads through `core.details.Fields`. They live in `core`, the
bottom layer, because readers in every layer use them (a runner rebuilding the PyTorch model of
an export, the CLI summaries, the fold stage counting earlier folds). A build's details are
typed beside its backend (`core/build_details.py` says where), the int8
`details["quantization"]` in `core/quantization_details.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from resnet_opt.core.details import DescribedArtifact, Fields, detail_of
from resnet_opt.core.quantization_details import QuantizationDetails

EXPORT_STAGE = "export"  # core.manifest.Stage.EXPORT's value (that module imports this one)

# -- shared parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptBatchNorm:
    """A BatchNormalization a fold pass kept, and why."""

    node: str  # the BN node's name (or its output tensor name if unnamed)
    reason: str  # e.g. "input comes from Relu, not Conv/Gemm"

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "reason": self.reason}

    @classmethod
    def read(cls, fields: Fields) -> KeptBatchNorm:
        return cls(node=fields.text("node"), reason=fields.text("reason"))


def _left(fields: Fields) -> tuple[KeptBatchNorm, ...]:
    return tuple(KeptBatchNorm.read(item) for item in fields.sections("left"))


@dataclass(frozen=True)
class TensorDescription:
    """An exported graph input or output: its name and shape (a symbolic batch is text)."""

    name: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape)}

    @classmethod
    def read(cls, fields: Fields) -> TensorDescription:
        return cls(name=fields.text("name"), shape=fields.items("shape", int, str))


# -- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportBatchNorm:
    """How many BatchNorms the model had, which step folded how many, and what was left."""

    in_model: int
    in_export: int
    folded_by: Mapping[str, int]  # {"exporter": n, "fold": n}
    fold_pass: str  # "ran" or "skipped (--no-fold)"
    left: tuple[KeptBatchNorm, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "in_model": self.in_model,
            "in_export": self.in_export,
            "folded_by": dict(self.folded_by),
            "fold_pass": self.fold_pass,
            "left": [b.to_dict() for b in self.left],
        }

    @classmethod
    def read(cls, fields: Fields) -> ExportBatchNorm:
        return cls(
            in_model=fields.integer("in_model"),
            in_export=fields.integer("in_export"),
            folded_by=fields.counts("folded_by"),
            fold_pass=fields.text("fold_pass"),
            left=_left(fields),
        )


@dataclass(frozen=True)
class DefaultModelNote:
    """The bundled default model's recorded test accuracy (only for that model)."""

    metadata: str
    trained_test_top1: float
    trained_test_count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "metadata": self.metadata,
            "trained_test_top1": self.trained_test_top1,
            "trained_test_count": self.trained_test_count,
        }

    @classmethod
    def read(cls, fields: Fields) -> DefaultModelNote:
        return cls(
            metadata=fields.text("metadata"),
            trained_test_top1=fields.number("trained_test_top1"),
            trained_test_count=fields.integer("trained_test_count"),
        )


@dataclass(frozen=True)
class ExportDetails:
    """What `export` made and from what: `source` (a `models.sources.ModelSource` as JSON) is
    what the torch backend rebuilds the PyTorch model from."""

    model: str
    source: Mapping[str, Any]
    contract_origin: str
    exporter: str
    opset: int
    batch: int | None  # None: dynamic batch
    dynamic_batch: bool
    input: TensorDescription
    output: TensorDescription
    num_classes: int
    parameters: int
    batchnorm: ExportBatchNorm
    shared_initializers_copied: int
    seconds: Mapping[str, float]
    default_model: DefaultModelNote | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "model": self.model,
            "source": dict(self.source),
            "contract_origin": self.contract_origin,
            "exporter": self.exporter,
            "opset": self.opset,
            "batch": self.batch,
            "dynamic_batch": self.dynamic_batch,
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "num_classes": self.num_classes,
            "parameters": self.parameters,
            "batchnorm": self.batchnorm.to_dict(),
            "shared_initializers_copied": self.shared_initializers_copied,
            "seconds": dict(self.seconds),
        }
        if self.default_model is not None:
            data["default_model"] = self.default_model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ExportDetails:
        f = Fields(data)
        note = f.section("default_model") if f.has("default_model") else None
        return cls(
            model=f.text("model"),
            source=f.mapping("source"),
            contract_origin=f.text("contract_origin"),
            exporter=f.text("exporter"),
            opset=f.integer("opset"),
            batch=f.optional_integer("batch"),
            dynamic_batch=f.flag("dynamic_batch"),
            input=TensorDescription.read(f.section("input")),
            output=TensorDescription.read(f.section("output")),
            num_classes=f.integer("num_classes"),
            parameters=f.integer("parameters"),
            batchnorm=ExportBatchNorm.read(f.section("batchnorm")),
            shared_initializers_copied=f.integer("shared_initializers_copied"),
            seconds=f.numbers("seconds"),
            default_model=DefaultModelNote.read(note) if note is not None else None,
        )


@dataclass(frozen=True)
class HistoryStep:
    """One step of a manifest's history (`Manifest.history()`), its details section still as
    written: the step's typed reader (`batchnorm_folded_by`, `quantization_of` ...) reads it."""

    stage: str | None
    artifact: str | None
    details: Mapping[str, object]  # {} where the step recorded none


def steps_of(history: Sequence[Mapping[str, object]]) -> tuple[HistoryStep, ...]:
    """The steps of a manifest's history, oldest first."""
    found = []
    for entry in history:
        stage, artifact, details = entry.get("stage"), entry.get("artifact"), entry.get("details")
        found.append(
            HistoryStep(
                stage=stage if isinstance(stage, str) else None,
                artifact=artifact if isinstance(artifact, str) else None,
                details=details if isinstance(details, Mapping) else {},
            )
        )
    return tuple(found)


def exports_in(history: Sequence[Mapping[str, object]]) -> Iterator[ExportDetails]:
    """The export steps of a manifest's history (`Manifest.history()`, oldest first) that say
    which model they came from; a stand-in export entry without a source is passed over."""
    for entry in history:
        details = entry.get("details")
        if entry.get("stage") != EXPORT_STAGE or not isinstance(details, Mapping):
            continue
        if isinstance(details.get("source"), Mapping):
            yield ExportDetails.from_dict(details)


# -- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportDetails:
    """The foreign ONNX `import` described: where it was, who made it, its I/O names."""

    source: str
    producer: str
    opset: int | None
    input: str | None
    output: str | None
    num_classes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "producer": self.producer,
            "opset": self.opset,
            "input": self.input,
            "output": self.output,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ImportDetails:
        f = Fields(data)
        return cls(
            source=f.text("source"),
            producer=f.text("producer"),
            opset=f.optional_integer("opset"),
            input=f.optional_text("input"),
            output=f.optional_text("output"),
            num_classes=f.integer("num_classes"),
        )


# -- fold --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldBatchNorm:
    folded: int  # by this run; folded_by holds every step's total
    folded_by: Mapping[str, int]
    left: tuple[KeptBatchNorm, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "folded": self.folded,
            "folded_by": dict(self.folded_by),
            "left": [b.to_dict() for b in self.left],
        }

    @classmethod
    def read(cls, fields: Fields) -> FoldBatchNorm:
        return cls(
            folded=fields.integer("folded"),
            folded_by=fields.counts("folded_by"),
            left=_left(fields),
        )


@dataclass(frozen=True)
class ConstantsFolded:
    """Constant-only nodes folded into initializers before the BN fold."""

    folded: int
    by_op: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"folded": self.folded, "by_op": dict(sorted(self.by_op.items()))}

    @classmethod
    def read(cls, fields: Fields) -> ConstantsFolded:
        return cls(folded=fields.integer("folded"), by_op=fields.counts("by_op"))


@dataclass(frozen=True)
class FoldDetails:
    batchnorm: FoldBatchNorm
    constants: ConstantsFolded | None  # None: a manifest from before constant folding
    seconds: Mapping[str, float]

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"batchnorm": self.batchnorm.to_dict()}
        if self.constants is not None:
            data["constants"] = self.constants.to_dict()
        data["seconds"] = dict(self.seconds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FoldDetails:
        f = Fields(data)
        return cls(
            batchnorm=FoldBatchNorm.read(f.section("batchnorm")),
            constants=ConstantsFolded.read(f.section("constants")) if f.has("constants") else None,
            seconds=f.numbers("seconds"),
        )


CALIBRATION_CACHE_KEY = "tensorrt_calibration_cache"  # Int8QuantizeDetails' field of that name


def calibration_cache_named(manifest: DescribedArtifact) -> str | None:
    """The TensorRT calibration cache an int8 quantize manifest names
    (`Int8QuantizeDetails.tensorrt_calibration_cache`), read alone: a DLA build and a bundle need
    only it (None: none named, or a manifest of another stage)."""
    named: str | None = detail_of(manifest, CALIBRATION_CACHE_KEY, str)
    return named


def records_model_source(manifest: DescribedArtifact) -> bool:
    """Whether an export's details record the model it came from (`ExportDetails.source`), which
    the torch backend rebuilds; a stand-in export without one does not."""
    return detail_of(manifest, "source", dict) is not None


def batchnorm_folded_by(details: Mapping[str, object]) -> dict[str, int] | None:
    """The per-step BN fold counts an export's or a fold's details record (None: neither)."""
    batchnorm = details.get("batchnorm")
    if not isinstance(batchnorm, Mapping) or not isinstance(batchnorm.get("folded_by"), Mapping):
        return None
    return Fields(batchnorm, "details.batchnorm").counts("folded_by")


# -- quantize ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationCacheUse:
    file: str
    reused: bool

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "reused": self.reused}


@dataclass(frozen=True)
class CalibrationRun:
    """One calibration pass (or its statistics read back from a cache)."""

    data: str  # the data source, described
    data_hash: str
    preprocessing_hash: str
    samples: int
    requested: int | None
    available: int
    seed: int
    skipped: int
    converted: Mapping[str, int] | None  # image modes converted; None: written before counted
    tensors: int
    cache: CalibrationCacheUse | None
    seconds: float

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "data": self.data,
            "data_hash": self.data_hash,
            "preprocessing_hash": self.preprocessing_hash,
            "samples": self.samples,
            "requested": self.requested,
            "available": self.available,
            "seed": self.seed,
            "skipped": self.skipped,
        }
        if self.converted is not None:
            data["converted"] = dict(self.converted)
        data["tensors"] = self.tensors
        data["cache"] = self.cache.to_dict() if self.cache is not None else None
        data["seconds"] = self.seconds
        return data

    @classmethod
    def read(cls, f: Fields) -> CalibrationRun:
        cache = f.optional_section("cache")
        return cls(
            data=f.text("data"),
            data_hash=f.text("data_hash"),
            preprocessing_hash=f.text("preprocessing_hash"),
            samples=f.integer("samples"),
            requested=f.optional_integer("requested"),
            available=f.integer("available"),
            seed=f.integer("seed"),
            skipped=f.integer("skipped"),
            converted=f.counts("converted") if f.has("converted") else None,
            tensors=f.integer("tensors"),
            cache=(
                CalibrationCacheUse(cache.text("file"), cache.flag("reused"))
                if cache is not None
                else None
            ),
            seconds=f.number("seconds"),
        )


@dataclass(frozen=True)
class Int8Calibration:
    """The int8 quantize's calibration: the range method on top of the pass it ran."""

    method: str
    percentile: float | None
    run: CalibrationRun

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "percentile": self.percentile, **self.run.to_dict()}

    @classmethod
    def read(cls, f: Fields) -> Int8Calibration:
        return cls(
            method=f.text("method"),
            percentile=f.optional_number("percentile"),
            run=CalibrationRun.read(f),
        )


@dataclass(frozen=True)
class Fp16OverflowCheck:
    """Whether calibration data showed tensors beyond fp16's range (kept fp32), or why not."""

    checked: bool
    reason: str | None = None  # when not checked
    limit: float | None = None
    largest_abs: float | None = None
    kept_fp32: tuple[str, ...] = ()
    calibration: CalibrationRun | None = None

    def to_dict(self) -> dict[str, object]:
        if not self.checked:
            return {"checked": False, "reason": self.reason}
        return {
            "checked": True,
            "limit": self.limit,
            "largest_abs": self.largest_abs,
            "kept_fp32": list(self.kept_fp32),
            "calibration": self.calibration.to_dict() if self.calibration else None,
        }

    @classmethod
    def read(cls, f: Fields) -> Fp16OverflowCheck:
        if not f.flag("checked"):
            return cls(checked=False, reason=f.text("reason"))
        return cls(
            checked=True,
            limit=f.number("limit"),
            largest_abs=f.number("largest_abs"),
            kept_fp32=f.texts("kept_fp32"),
            calibration=CalibrationRun.read(f.section("calibration")),
        )


@dataclass(frozen=True)
class Fp16Conversion:
    converter: str
    keep_io_types: bool
    fp16_nodes: int
    nodes: int
    kept_fp32: tuple[str, ...]
    excluded: tuple[str, ...]
    overflow_check: Fp16OverflowCheck

    def to_dict(self) -> dict[str, object]:
        return {
            "converter": self.converter,
            "keep_io_types": self.keep_io_types,
            "fp16_nodes": self.fp16_nodes,
            "nodes": self.nodes,
            "kept_fp32": list(self.kept_fp32),
            "excluded": list(self.excluded),
            "overflow_check": self.overflow_check.to_dict(),
        }

    @classmethod
    def read(cls, f: Fields) -> Fp16Conversion:
        return cls(
            converter=f.text("converter"),
            keep_io_types=f.flag("keep_io_types"),
            fp16_nodes=f.integer("fp16_nodes"),
            nodes=f.integer("nodes"),
            kept_fp32=f.texts("kept_fp32"),
            excluded=f.texts("excluded"),
            overflow_check=Fp16OverflowCheck.read(f.section("overflow_check")),
        )


@dataclass(frozen=True)
class Fp16QuantizeDetails:
    fp16: Fp16Conversion
    seconds: Mapping[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"fp16": self.fp16.to_dict(), "seconds": dict(self.seconds)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Fp16QuantizeDetails:
        f = Fields(data)
        return cls(fp16=Fp16Conversion.read(f.section("fp16")), seconds=f.numbers("seconds"))


@dataclass(frozen=True)
class Int8QuantizeDetails:
    """The int8 quantize's details: `quantization` (the layout and its counts) is
    `core/quantization_details.py`'s; `accuracy_budget` (the search's trials) is carried as
    `pipeline/accuracy_budget.py` writes it."""

    calibration: Int8Calibration
    quantization: QuantizationDetails
    accuracy_budget: Mapping[str, Any] | None
    tensorrt_calibration_cache: str | None
    tensorrt_calibration_cache_version: str | None
    seconds: Mapping[str, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "calibration": self.calibration.to_dict(),
            "quantization": self.quantization.to_dict(),
            "accuracy_budget": (
                dict(self.accuracy_budget) if self.accuracy_budget is not None else None
            ),
            "tensorrt_calibration_cache": self.tensorrt_calibration_cache,
            "tensorrt_calibration_cache_version": self.tensorrt_calibration_cache_version,
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Int8QuantizeDetails:
        f = Fields(data)
        return cls(
            calibration=Int8Calibration.read(f.section("calibration")),
            quantization=QuantizationDetails.from_dict(f.value("quantization", dict)),
            accuracy_budget=f.optional_mapping("accuracy_budget"),
            tensorrt_calibration_cache=f.optional_text("tensorrt_calibration_cache"),
            tensorrt_calibration_cache_version=f.optional_text(
                "tensorrt_calibration_cache_version"
            ),
            seconds=f.numbers("seconds"),
        )
