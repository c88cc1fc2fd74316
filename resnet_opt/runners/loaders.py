"""Opening an artifact file for a runner: the one place that reads what its manifest says.

Polygraphy keeps loaders (`SessionFromOnnx`) apart from runners (`OnnxrtRunner`), which take
what a loader built. Here, `open_artifact` is the common first step of every backend's loader:
the file must exist; its manifest is read (required for a TensorRT plan, optional otherwise);
its content is checked against the manifest's sha256 where asked; and when it was made by
`build --backend <this backend>` the manifest's details and recorded runner options come back,
so that the backend's loader can apply them (a built artifact loads as it was built) and check
what it is tied to (a CPU family, an OpenVINO version, a GPU and TensorRT version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import Manifest, Stage, check_artifact_hash, read_manifest
from resnet_opt.core.readers import describe_input
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Backend

T_co = TypeVar("T_co", covariant=True)


class Loader(Protocol[T_co]):
    """What a runner takes: the artifact it names (for messages) and a call that builds the
    loaded object, made on the runner's enter (so loading errors surface there)."""

    @property
    def artifact(self) -> Path: ...

    def __call__(self) -> T_co: ...


@dataclass(frozen=True)
class OpenedArtifact:
    """An artifact file and what its manifest says about loading it on one backend."""

    path: Path
    backend: Backend
    manifest: Manifest | None
    # the details of a `build --backend <backend>` manifest, else empty
    built: Mapping[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> Mapping[str, Any]:
        """The runner keyword arguments the build recorded ("runner" in its details), else {}."""
        options: Mapping[str, Any] = self.built.get("runner") or {}
        return options


def open_artifact(
    path: Path,
    backend: Backend,
    *,
    manifest: Manifest | None = None,
    require_manifest: bool = False,
    verify_hash: bool = False,
) -> OpenedArtifact:
    """Open `path` for `backend`: its manifest (given, or read beside it) and its build details.

    `verify_hash` refuses a file changed since its manifest was written (the manifest is then
    required).
    """
    path = Path(path)
    if manifest is None:
        _check_file(path, "an artifact file")
        manifest = read_manifest(path, required=require_manifest or verify_hash)
    if verify_hash:
        assert manifest is not None
        check_artifact_hash(path, manifest)
    return OpenedArtifact(path, backend, manifest, _built_details(path, backend, manifest))


@dataclass(frozen=True)
class StageInput:
    """The ONNX a stage reads, opened: its manifest (None: a model from elsewhere) and sha256."""

    path: Path
    manifest: Manifest | None
    sha256: str


def open_stage_input(source: Path, output: Path, *, require_manifest: bool = False) -> StageInput:
    """The preamble of every stage that reads one ONNX and writes another (the three builds,
    fold, quantize), in one wording: the output is not the source, the source is a file, its
    manifest is read (required for a TensorRT build) and the file is checked against it, so a
    stage never works from a file its manifest does not describe.
    """
    source, output = Path(source), Path(output)
    if output.resolve() == source.resolve():
        raise ResnetOptError(f"{output}: is the source model; write the output to another file")
    _check_file(source, "an ONNX file")
    manifest = read_manifest(source, required=require_manifest)
    sha256 = sha256_file(source) if manifest is None else check_artifact_hash(source, manifest)
    return StageInput(source, manifest, sha256)


def _check_file(path: Path, kind: str) -> None:
    """Refuse a missing file, a folder, a FIFO, /dev/null or a symlink loop in one line."""
    problem = describe_input(path)
    if problem is not None:
        problem = f"is a folder, not {kind}" if path.is_dir() else problem
        raise ResnetOptError(f"{path}: {problem}")


def _built_details(path: Path, backend: Backend, manifest: Manifest | None) -> Mapping[str, Any]:
    """The details of a `build --backend <backend>` manifest, else {}.

    Its "runner" entry holds that runner's keyword arguments (bench passes them as they are), so
    a built artifact loads as it was built; the rest says what it is tied to (a CPU family, an
    OpenVINO version).
    """
    if manifest is None or manifest.stage != Stage.BUILD:
        return {}
    if manifest.details.get("backend") != backend.value:
        return {}
    if not isinstance(manifest.details.get("runner", {}), Mapping):
        raise ResnetOptError(f"{path}: its manifest's runner options are not an object")
    return manifest.details
