"""Artifact manifests: how stages hand over work (ARCHITECTURE.md, "The artifact contract").

Every artifact `X` gets a sidecar `X.json` that says what it is, what it was made from (with
content hashes), the preprocessing contract, the verification figures and the tool versions.
A later stage reads the manifest instead of asking the user again, and `run` compares content
hashes to skip unchanged stages. Writing them atomically is `resnet_opt.core.atomic`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.details import MANIFEST_SUFFIX as MANIFEST_SUFFIX
from resnet_opt.core.details import DetailsT, StageDetails, TypedDetails
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.readers import check_fields, describe_input, read_json
from resnet_opt.core.stage_details import (
    ExportDetails,
    FoldDetails,
    Fp16QuantizeDetails,
    ImportDetails,
    Int8QuantizeDetails,
)
from resnet_opt.core.validation import check_all_finite
from resnet_opt.errors import ResnetOptError

MANIFEST_SCHEMA = 1

# the JSON type of each top-level field (read_manifest refuses another with one line)
MANIFEST_FIELDS: Mapping[str, tuple[type, ...]] = {
    "stage": (str,),
    "artifact": (str,),
    "sha256": (str,),
    "precision": (str,),
    "inputs": (list,),
    "preprocessing": (dict, type(None)),
    "options": (dict,),
    "verification": (dict,),
    "details": (dict,),
    "lineage": (list,),
    "tools": (dict,),
    "created_at": (str,),
    "schema": (int,),
}


# distributions whose versions every manifest records (read from metadata: importing torch just
# to learn its version would break the no-torch promise on a Jetson): the tool's own, then each
# backend unit's `tools`
def _tools() -> tuple[str, ...]:
    from resnet_opt.backends.registry import units

    return ("resnet-opt", "numpy", "onnx", *(tool for unit in units() for tool in unit.tools))


class Stage(str, Enum):
    EXPORT = "export"
    IMPORT = "import"  # a foreign ONNX given its contract and labels (`resnet-opt import`)
    FOLD = "fold"
    QUANTIZE = "quantize"
    BUILD = "build"


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    MIXED = "mixed"  # int8 with some layers kept in higher precision


def details_type(stage: Stage, precision: Precision) -> type[TypedDetails] | None:
    """The typed details class a manifest of `stage` and `precision` carries (None: a build's,
    whose details each backend types beside its runner)."""
    if stage is Stage.QUANTIZE:
        return Fp16QuantizeDetails if precision is Precision.FP16 else Int8QuantizeDetails
    return _DETAILS_BY_STAGE.get(stage)


_DETAILS_BY_STAGE: Mapping[Stage, type[TypedDetails]] = {
    Stage.EXPORT: ExportDetails,
    Stage.IMPORT: ImportDetails,
    Stage.FOLD: FoldDetails,
}


@dataclass(frozen=True)
class InputRef:
    """One file a stage read, by content: `run` re-runs a stage only when a hash changed."""

    role: str
    path: str
    sha256: str

    @classmethod
    def of(cls, role: str, path: Path) -> InputRef:
        return cls(role=role, path=str(path), sha256=sha256_file(path))


@dataclass(frozen=True)
class Manifest:
    """The sidecar of one artifact.

    `details` holds the stage's own facts (fold counts, calibration method, build profile) as
    the JSON written; a reader takes them through the stage's typed details, which validate
    them (`manifest.read_details(FoldDetails)`, `core/stage_details.py`);
    `lineage` carries the earlier stages' manifests in short form so that the last artifact
    alone tells its whole history (e.g. how many BN nodes each step folded).
    """

    stage: Stage
    artifact: str
    sha256: str
    precision: Precision
    inputs: tuple[InputRef, ...]
    preprocessing: PreprocessContract | None
    options: Mapping[str, Any] = field(default_factory=dict)
    verification: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    lineage: tuple[Mapping[str, Any], ...] = ()
    tools: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage"] = self.stage.value
        data["precision"] = self.precision.value
        data["preprocessing"] = self.preprocessing.to_dict() if self.preprocessing else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        try:
            check_fields(data, MANIFEST_FIELDS, source)
            if data.get("schema") != MANIFEST_SCHEMA:
                raise ResnetOptError(
                    f"{source}: manifest schema {data.get('schema')!r} is not the supported "
                    f"{MANIFEST_SCHEMA}: re-run the stage that wrote it"
                )
            pre = data.get("preprocessing")
            return cls(
                stage=Stage(data["stage"]),
                artifact=str(data["artifact"]),
                sha256=str(data["sha256"]),
                precision=Precision(data["precision"]),
                inputs=tuple(InputRef(**ref) for ref in data.get("inputs", ())),
                preprocessing=PreprocessContract.from_dict(pre) if pre else None,
                options=dict(data.get("options", {})),
                verification=dict(data.get("verification", {})),
                details=dict(data.get("details", {})),
                lineage=tuple(dict(x) for x in data.get("lineage", ())),
                tools=dict(data.get("tools", {})),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResnetOptError(f"{source}: not a valid resnet-opt manifest ({exc})") from exc
        except ResnetOptError as exc:  # a value the contract refuses: say which file holds it
            if str(exc).startswith(source):
                raise
            raise ResnetOptError(f"{source}: {exc}") from exc

    def read_details(self, typed: type[DetailsT]) -> DetailsT:
        """This manifest's details as the stage's typed details (`core/stage_details.py`),
        validated: a wrong or missing value is one line naming the file and the key."""
        try:
            return typed.from_dict(self.details)
        except ResnetOptError as exc:
            raise ResnetOptError(f"{self.artifact}{MANIFEST_SUFFIX}: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        """The short form carried in a later stage's lineage."""
        return {
            "stage": self.stage.value,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "precision": self.precision.value,
            "details": dict(self.details),
            "verification": dict(self.verification),
        }

    def history(self) -> tuple[Mapping[str, Any], ...]:
        """Every step that made this artifact in short form, oldest first, this one last."""
        return (*self.lineage, self.summary())


def new_manifest(
    *,
    stage: Stage,
    artifact: Path,
    content: Path | None = None,
    precision: Precision,
    inputs: tuple[InputRef, ...],
    preprocessing: PreprocessContract | None,
    options: Mapping[str, Any] | None = None,
    verification: Mapping[str, Any] | None = None,
    details: StageDetails | Mapping[str, Any] | None = None,
    lineage: tuple[Mapping[str, Any], ...] = (),
) -> Manifest:
    """A manifest for `artifact`, named by its final path and hashed from `content`.

    `content` is the file as written (normally the temporary path from StagedOutputs, which is
    renamed to `artifact` on success); it defaults to `artifact` itself.
    """
    return Manifest(
        stage=stage,
        artifact=artifact.name,
        sha256=sha256_file(content or artifact),
        precision=precision,
        inputs=inputs,
        preprocessing=preprocessing,
        options=dict(options or {}),
        verification=dict(verification or {}),
        details=_details_json(details),
        lineage=lineage,
        tools=tool_versions(),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )


def stage_manifest(
    parent: Manifest | None,
    *,
    stage: Stage,
    artifact: Path,
    content: Path,
    precision: Precision,
    inputs: tuple[InputRef, ...],
    options: Mapping[str, Any],
    verification: Mapping[str, Any],
    details: StageDetails | Mapping[str, Any],
    preprocessing: PreprocessContract | None = None,
) -> Manifest:
    """The manifest of a stage's output made from an artifact with manifest `parent` (or None).

    The parent's contract and history carry over; `preprocessing` is the contract to use when
    the parent has none (a foreign ONNX quantized with preprocessing options), else None.
    """
    return new_manifest(
        stage=stage,
        artifact=artifact,
        content=content,
        precision=precision,
        inputs=inputs,
        preprocessing=parent.preprocessing if parent and parent.preprocessing else preprocessing,
        options=options,
        verification=verification,
        details=details,
        lineage=parent.history() if parent is not None else (),
    )


def _details_json(details: StageDetails | Mapping[str, Any] | None) -> dict[str, Any]:
    """A stage's details as the JSON written (a typed details object, or a backend's mapping)."""
    if details is None:
        return {}
    return dict(details) if isinstance(details, Mapping) else details.to_dict()


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def read_manifest(artifact: Path, *, required: bool = True) -> Manifest | None:
    """The manifest beside `artifact`, or None when absent and not required."""
    problem = describe_input(artifact)  # every artifact is a regular file
    if problem is not None:
        problem = "is a folder, not an artifact file" if artifact.is_dir() else problem
        raise ResnetOptError(f"{artifact}: {problem}")
    path = manifest_path(artifact)
    if describe_input(path) == "no such file":
        if required:
            raise ResnetOptError(
                f"{artifact}: no manifest {path.name} beside it; for an ONNX from elsewhere, "
                "describe its preprocessing and labels once with `resnet-opt import "
                f"{artifact.name} --input-size N --mean R,G,B --std R,G,B [--resize N --crop N] "
                "[--labels FILE]`, or produce the file with resnet-opt (export/fold/quantize)"
            )
        return None
    data = read_json(path, what="resnet-opt manifest", fields=MANIFEST_FIELDS)
    check_all_finite(data, str(path))  # NaN would switch later checks off
    manifest = Manifest.from_dict(data, source=str(path))
    if manifest.artifact != artifact.name:
        raise ResnetOptError(
            f"{path}: manifest describes {manifest.artifact!r}, not {artifact.name!r}"
        )
    return manifest


def check_artifact_hash(artifact: Path, manifest: Manifest) -> str:
    """Refuse an artifact that was changed after its manifest was written; its sha256 (for the
    next stage's InputRef, so the file is not hashed twice)."""
    actual = sha256_file(artifact)
    if actual != manifest.sha256:
        raise ResnetOptError(
            f"{artifact}: content does not match its manifest (sha256 {actual[:12]}… vs "
            f"{manifest.sha256[:12]}…); it was modified after resnet-opt wrote it"
        )
    return actual


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in _tools():
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str) + "\n"


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write a manifest to `path` (normally a temporary path from StagedOutputs)."""
    path.write_text(dump_json(manifest.to_dict()), encoding="utf-8")
