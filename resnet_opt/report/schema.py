"""The bench report: what was measured, on what, with which settings (schema version 1).

The JSON form is the contract between `bench`, `compare` and whoever reads the reports (CI,
people, the committed reference reports), so it is versioned and checked against a JSON Schema
(resnet_opt/schemas/report.v1.json) both when written and when read. A report of another
version is refused rather than guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from resnet_opt.core.cpu_int8 import recorded_label
from resnet_opt.core.readers import parse_json, read_text
from resnet_opt.core.validation import check_all_finite
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson.facts import JetsonFacts

SCHEMA_VERSION = 1
REPORT_KIND = "resnet-opt-bench-report"
SCHEMA_FILE = f"report.v{SCHEMA_VERSION}.json"


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: str | None = None
    memory_gb: float | None = None


@dataclass(frozen=True)
class MachineInfo:
    """The host. `identity` is what two reports must share for their numbers to compare."""

    hostname: str
    system: str
    arch: str
    cpu_model: str
    cpu_cores: int
    memory_gb: float | None
    gpus: tuple[Gpu, ...]
    cuda_driver: str | None
    jetpack: str | None
    # the CPU's int8 instruction family (cpu_int8.Int8Family); None in reports made before it
    # was recorded. CPU int8 accuracy and speed hold for one family, so it is part of identity.
    cpu_int8_family: str | None = None
    jetson: JetsonFacts | None = None  # module, power mode, clocks, power (absent off a Jetson)

    def identity(self) -> dict[str, Any]:
        return {
            "CPU model": self.cpu_model,
            "CPU cores": self.cpu_cores,
            "GPU": ", ".join(g.name for g in self.gpus) or "none",
            "JetPack": self.jetpack or "none",
            **({"CPU int8 family": self.cpu_int8_family} if self.cpu_int8_family else {}),
            # every Orin's GPU is "Orin": the module and nvpmodel mode tell them apart (absent
            # in reports made off a Jetson or before they were recorded)
            **(
                {
                    "Jetson module": self.jetson.module_or_model,
                    "power mode": self.jetson.power_mode or "unknown",
                }
                if self.jetson
                else {}
            ),
        }

    def describe(self) -> str:
        """One line for titles: CPU, cores, GPUs."""
        text = f"{self.cpu_model}, {self.cpu_cores} cores"
        if self.gpus:
            text += ", " + ", ".join(g.name for g in self.gpus)
        if self.jetpack:
            text += f", {self.jetpack}"
        if self.cpu_int8_family:
            text += f", CPU int8: {recorded_label(self.cpu_int8_family)}"
        if self.jetson:
            text += f", {self.jetson.describe()}"
        return text


@dataclass(frozen=True)
class Settings:
    """How every point was measured (per-point facts live in the measurements)."""

    batches: tuple[int, ...]
    mode: str  # "iterations" | "duration"
    iterations: int | None
    duration_s: float | None
    warmup_s: float
    min_iterations: int
    threads: int
    input: str  # "eval-data" (real preprocessed images) | "random" (seeded)
    seed: int
    data: str | None  # evaluation data (description), None when accuracy was not measured
    samples: int | None  # the seeded subset size asked for, None = all
    plot_batch: int
    no_data_transfers: bool = False
    cuda_graph: bool = False

    def comparable(self) -> dict[str, Any]:
        """The settings that change what a number means: a difference refuses `compare`.

        Threads change the work per core; data-transfer and graph options change what is timed;
        the evaluation data and subset change what accuracy means. The budget (iterations,
        duration, warm-up) only changes the noise, so it does not refuse a comparison.
        """
        return {
            "threads": self.threads,
            "no_data_transfers": self.no_data_transfers,
            "cuda_graph": self.cuda_graph,
            "evaluation data": self.data,
            "evaluation samples": self.samples,
        }


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    path: str
    sha256: str
    size_bytes: int
    stage: str
    precision: str
    source: str | None  # the FP32 source accuracy drops are measured against (file name)
    lineage: tuple[str, ...] = ()  # earlier artifacts, oldest first (file names)
    weights: str | None = None  # what the export manifest says of the weights (e.g. "random")


@dataclass(frozen=True)
class Latency:
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    std: float


@dataclass(frozen=True)
class Measurement:
    """One point: artifact × backend × batch."""

    artifact: str
    sha256: str
    precision: str  # of the artifact
    backend: str  # the bench target: onnxruntime, openvino, torch, tensorrt, …
    device: str
    provider: str | None  # ONNX Runtime's execution provider that ran it
    precision_run: str  # what actually ran (e.g. OpenVINO's bf16 on a bf16-capable CPU)
    batch: int
    threads: int | None
    iterations: int
    warmup_iterations: int
    warmup_s: float
    total_s: float
    latency_ms: Latency
    throughput: float  # images per second
    options: Mapping[str, Any] = field(default_factory=dict)  # runner options as passed
    # Jetson with INA3221 rails: mean module power over the timed runs, and what it buys
    power_w: float | None = None
    energy_per_image_j: float | None = None
    images_per_s_per_w: float | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.artifact, self.precision, self.backend, self.batch)


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy of one artifact × backend (evaluated once, not per batch size)."""

    artifact: str
    backend: str
    top1: float  # percent
    top5: float  # percent
    count: int
    skipped: int
    reference: str | None  # artifact name of the FP32 source (scored with ONNX Runtime)
    reference_top1: float | None
    drop_points: float | None  # reference top-1 minus this top-1
    top1_agreement: float | None  # percent of images with the reference's top-1

    @property
    def key(self) -> tuple[str, str]:
        return (self.artifact, self.backend)


@dataclass(frozen=True)
class Skip:
    artifact: str
    backend: str
    reason: str


@dataclass(frozen=True)
class EngineShare:
    artifact: str
    device: str
    throughput: float  # images per second of this engine while the others ran


@dataclass(frozen=True)
class ConcurrentResult:
    """Engines run at the same time (GPU + DLA0 + DLA1), one batch size: the aggregate."""

    batch: int
    engines: tuple[EngineShare, ...]
    total_throughput: float  # the engines' throughputs added up (jetson_benchmarks' aggregate)
    power_w: float | None = None
    energy_per_image_j: float | None = None
    images_per_s_per_w: float | None = None
    # seconds all engines ran at once (latest start to earliest end): the throughputs and power
    # are read inside it; None in reports written before it was recorded
    window_s: float | None = None


@dataclass(frozen=True)
class LoadAverage:
    before: tuple[float, float, float] | None
    after: tuple[float, float, float] | None


@dataclass(frozen=True)
class Report:
    created_at: str
    tool_version: str
    machine: MachineInfo
    versions: Mapping[str, str]
    load_average: LoadAverage
    settings: Settings
    artifacts: tuple[ArtifactInfo, ...]
    measurements: tuple[Measurement, ...]
    accuracy: tuple[AccuracyResult, ...]
    skipped: tuple[Skip, ...] = ()
    notes: tuple[str, ...] = ()
    concurrent: tuple[ConcurrentResult, ...] = ()  # bench --concurrent (optional in the JSON)
    schema_version: int = SCHEMA_VERSION
    kind: str = REPORT_KIND

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        ordered = {"schema_version": data.pop("schema_version"), "kind": data.pop("kind"), **data}
        # tuples → lists, exactly as a reader of the file sees it (and as jsonschema expects)
        plain: dict[str, Any] = json.loads(json.dumps(ordered))
        return plain

    def accuracy_of(self, artifact: str, backend: str) -> AccuracyResult | None:
        return next((a for a in self.accuracy if a.key == (artifact, backend)), None)

    def artifact(self, name: str) -> ArtifactInfo | None:
        return next((a for a in self.artifacts if a.name == name), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """A report from its (already schema-validated) JSON form."""
        m = data["machine"]
        s = data["settings"]
        load = data["load_average"]
        return cls(
            schema_version=int(data["schema_version"]),
            kind=str(data["kind"]),
            created_at=str(data["created_at"]),
            tool_version=str(data["tool_version"]),
            machine=MachineInfo(
                hostname=m["hostname"],
                system=m["system"],
                arch=m["arch"],
                cpu_model=m["cpu_model"],
                cpu_cores=int(m["cpu_cores"]),
                memory_gb=m.get("memory_gb"),
                gpus=tuple(Gpu(**g) for g in m.get("gpus", ())),
                cuda_driver=m.get("cuda_driver"),
                jetpack=m.get("jetpack"),
                cpu_int8_family=m.get("cpu_int8_family"),
                jetson=JetsonFacts.from_dict(m["jetson"]) if m.get("jetson") else None,
            ),
            versions={str(k): str(v) for k, v in data["versions"].items()},
            load_average=LoadAverage(_triple(load.get("before")), _triple(load.get("after"))),
            settings=Settings(**{**s, "batches": tuple(s["batches"])}),
            artifacts=tuple(
                ArtifactInfo(**{**a, "lineage": tuple(a.get("lineage", ()))})
                for a in data["artifacts"]
            ),
            measurements=tuple(
                Measurement(**{**x, "latency_ms": Latency(**x["latency_ms"])})
                for x in data["measurements"]
            ),
            accuracy=tuple(AccuracyResult(**a) for a in data["accuracy"]),
            skipped=tuple(Skip(**x) for x in data.get("skipped", ())),
            notes=tuple(data.get("notes", ())),
            concurrent=tuple(
                ConcurrentResult(**{**c, "engines": tuple(EngineShare(**e) for e in c["engines"])})
                for c in data.get("concurrent", ())
            ),
        )


def _triple(value: Sequence[float] | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    a, b, c = (float(v) for v in value)
    return (a, b, c)


# -- the JSON Schema -----------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema of this report version (package data), its bench targets those of the
    backend registry: the file lists the targets v1 shipped with, and a backend added since
    (its unit's targets) is a valid `backend` without an edit to the file."""
    from resnet_opt.backends.registry import Target

    text = resources.files("resnet_opt").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    listed: list[str] = schema["$defs"]["backend"]["enum"]
    schema["$defs"]["backend"]["enum"] = [
        *listed,
        *(t.value for t in Target if t.value not in listed),
    ]
    return schema


def validate(data: Any, source: str = "report") -> None:
    """Refuse anything that is not a version-1 report, with one line saying why."""
    if not isinstance(data, dict):
        raise ResnetOptError(f"{source}: not a resnet-opt bench report (not a JSON object)")
    if data.get("kind") != REPORT_KIND:
        raise ResnetOptError(f"{source}: not a resnet-opt bench report (kind {data.get('kind')!r})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResnetOptError(
            f"{source}: report schema version {version!r}; this resnet-opt reads version "
            f"{SCHEMA_VERSION} (re-run bench with this version to compare)"
        )
    check_all_finite(data, source)  # JSON Schema's "number" admits NaN and Infinity
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResnetOptError(f"{source}: invalid report at {where}: {error.message}")


def load_report(path: Path) -> Report:
    """Read and validate a report file."""
    if Path(path).is_dir():
        raise ResnetOptError(f"{path}: is a folder; give a report.json")
    data = parse_json(read_text(Path(path)), str(path))  # bounded: depth, digits, a FIFO
    validate(data, str(path))
    check_unique_rows(data, str(path))
    return Report.from_dict(data)


def check_unique_rows(data: Mapping[str, Any], source: str) -> None:
    """Refuse a report holding two rows for one point (artifact, backend, batch) or two accuracy
    rows for one (artifact, backend): `compare` and `report merge` would silently keep one of
    them, and a row that lost 90 % of its throughput could be the one dropped."""
    for table, fields in (
        ("measurements", ("artifact", "backend", "batch")),
        ("accuracy", ("artifact", "backend")),
    ):
        seen: dict[tuple[Any, ...], int] = {}
        for i, row in enumerate(data.get(table, ())):
            key = tuple(row.get(f) for f in fields)
            if key in seen:
                what = " ".join(f"{f} {v}" for f, v in zip(fields, key, strict=True))
                raise ResnetOptError(
                    f"{source}: {table}/{i} repeats {table}/{seen[key]} ({what}); a report "
                    "holds one row per point"
                )
            seen[key] = i


def report_json(report: Report) -> str:
    """The report as written to report.json (validated first: never write an invalid one)."""
    data = report.to_dict()
    validate(data, "report")
    return json.dumps(data, indent=2) + "\n"
