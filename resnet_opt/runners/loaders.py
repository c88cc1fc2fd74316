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
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from resnet_opt.core.build_details import BuildDetails, built_backend
from resnet_opt.core.fields import choice_text, member_of
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import Manifest, check_artifact_hash, read_manifest
from resnet_opt.core.readers import describe_input, is_json_type, json_type_of, json_types
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Backend

T_co = TypeVar("T_co", covariant=True)
E = TypeVar("E", bound=Enum)
B = TypeVar("B")


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
    # the typed details of a `build --backend <backend>` manifest (None: not its build)
    built: BuildDetails | None = None

    @property
    def recorded(self) -> Mapping[str, Any]:
        """The runner keyword arguments the build recorded ("runner" in its details), else {}."""
        options: Mapping[str, Any] = (self.built.runner if self.built is not None else None) or {}
        return options

    def built_as(self, typed: type[B]) -> B | None:
        """The build details as the backend's own class (None: not its build)."""
        return self.built if isinstance(self.built, typed) else None


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
    return OpenedArtifact(path, backend, manifest, _built_details(backend, manifest))


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


def _built_details(backend: Backend, manifest: Manifest | None) -> BuildDetails | None:
    """The typed details of a `build --backend <backend>` manifest, else None.

    Its `runner` holds that runner's keyword arguments (bench passes them as they are), so a
    built artifact loads as it was built; the rest says what it is tied to (a CPU family, an
    OpenVINO version).
    """
    if manifest is None or backend_of(manifest) is not backend:
        return None
    return build_details(manifest)


def backend_of(manifest: Manifest) -> Backend | None:
    """The backend a build manifest names (None: not a build, or a name this tool does not
    know)."""
    return cast(Backend | None, member_of(Backend, built_backend(manifest)))


def build_details(manifest: Manifest) -> BuildDetails | None:
    """A build manifest's details, read and validated through its backend's class (the unit's
    `build_details`); None: not a build, or a backend this tool does not know."""
    from resnet_opt.backends.registry import unit
    from resnet_opt.backends.spec import resolve

    backend = backend_of(manifest)
    if backend is None or unit(backend).build_details is None:
        return None
    typed: type[BuildDetails] = resolve(str(unit(backend).build_details))
    return manifest.read_details(typed)


# -- a build manifest's details["runner"], typed per backend ------------------------------------

RUNNER_KEY = "details.runner"


class RunnerDetails(Protocol):
    """A build manifest's `details["runner"]`: how the backend's loader opens the artifact as
    built. One frozen dataclass per backend (its unit's `runner_details`), written with
    `to_dict` (the JSON of schema v1) and read with `from_dict(data, source=...)`, which refuses
    a value of the wrong type naming the manifest and the key (exit 1)."""

    @property
    def providers(self) -> tuple[str, ...]:
        """The ONNX Runtime execution providers it loads with (empty: not ONNX Runtime)."""
        ...

    def to_dict(self) -> dict[str, object]: ...


def runner_details(manifest: Manifest, source: str) -> RunnerDetails | None:
    """The typed `details["runner"]` of a build manifest, by its backend's unit (None: not a
    build, or a backend whose unit declares none)."""
    from resnet_opt.backends.registry import unit
    from resnet_opt.backends.spec import resolve

    backend = backend_of(manifest)
    if backend is None or unit(backend).runner_details is None:
        return None
    built = build_details(manifest)
    raw = (built.runner if built is not None else None) or {}
    details: RunnerDetails = resolve(str(unit(backend).runner_details)).from_dict(
        raw, source=source
    )
    return details


def detail(data: Mapping[str, object], key: str, kind: type, source: str) -> Any:
    """`data[key]` when it is of JSON type `kind` (bool is not an int), None when absent or
    null (a manifest older than the key); else the one-line manifest error naming the key."""
    value = data.get(key)
    if value is None:
        return None
    if not is_json_type(value, (kind,)):
        want, got = json_types((kind,)), json_type_of(value)
        raise ResnetOptError(f"{source}: {RUNNER_KEY}.{key} must be {want}, not {got}")
    return value


def detail_choice(data: Mapping[str, object], key: str, enum: type[E], source: str) -> E | None:
    """`data[key]` as a member of `enum` (None when absent), else the manifest error."""
    text = detail(data, key, str, source)
    if text is None:
        return None
    member = member_of(enum, text)
    if member is not None:
        return cast(E, member)
    choices = choice_text(tuple(enum))
    raise ResnetOptError(f"{source}: {RUNNER_KEY}.{key} = {text!r} (one of {choices})")


def detail_names(data: Mapping[str, object], key: str, source: str) -> tuple[str, ...] | None:
    """`data[key]` as a list of strings (None when absent), else the manifest error."""
    values = detail(data, key, list, source)
    if values is None:
        return None
    if not all(isinstance(v, str) for v in values):
        raise ResnetOptError(f"{source}: {RUNNER_KEY}.{key} must be a list of strings")
    return tuple(values)
