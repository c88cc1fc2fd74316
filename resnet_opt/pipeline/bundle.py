"""`bundle`: the hand-off from the workstation to the device, verified by hash on arrival.

A device needs more than the ONNX: its manifest (the preprocessing contract, the lineage the
report names), the TensorRT calibration cache and the FP32 source that TensorRT 10 needs for
INT8 on a DLA (implicit INT8 from the FP32 network + cache), OpenVINO's weights file, and the
class labels. `bundle` copies all of it flat into one folder (the DLA build finds the cache and
the source beside the INT8 ONNX by name) with `bundle.json`: every file's sha256, size, role and
the artifact it serves. On the device `build` and `bench` check a bundled artifact's files
against bundle.json before using them (a truncated scp or a changed file is named, not
discovered as a wrong number), and `bundle-verify DIR` checks the whole folder.
Nothing here imports torch: the device needs none.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.build_details import WeightsFile
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    Manifest,
    Stage,
    check_artifact_hash,
    manifest_path,
    read_manifest,
)
from resnet_opt.core.readers import read_json
from resnet_opt.core.stage_details import calibration_cache_named
from resnet_opt.core.version import __version__
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.loaders import build_details

BUNDLE_FILE = "bundle.json"
BUNDLE_KIND = "resnet-opt-bundle"
BUNDLE_SCHEMA = 1


class Role(str, Enum):
    ARTIFACT = "artifact"
    MANIFEST = "manifest"
    CALIBRATION_CACHE = "calibration cache"
    FP32_SOURCE = "fp32 source"
    SOURCE_MANIFEST = "fp32 source's manifest"
    WEIGHTS = "weights"
    LABELS = "labels"


@dataclass(frozen=True)
class BundleFile:
    path: str  # file name inside the bundle (flat)
    sha256: str
    size_bytes: int
    role: str
    serves: str  # the artifact (file name) this file is there for


@dataclass(frozen=True)
class Bundle:
    folder: Path
    artifacts: tuple[str, ...]
    files: tuple[BundleFile, ...]
    created_at: str
    tool_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": BUNDLE_KIND,
            "schema": BUNDLE_SCHEMA,
            "created_at": self.created_at,
            "tool_version": self.tool_version,
            "artifacts": list(self.artifacts),
            "files": [asdict(f) for f in self.files],
        }

    def files_for(self, artifact: str) -> tuple[BundleFile, ...]:
        return tuple(f for f in self.files if f.serves == artifact)


@dataclass(frozen=True)
class _Source:
    src: Path
    role: Role
    serves: str
    sha256: str


def _inside(candidate: Path, folder: Path) -> bool:
    """Whether `candidate` (symlinks followed) lies in `folder`."""
    try:
        return candidate.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop, a name too long: not a file we copy
        return False


def _resolve_beside(recorded: str, beside: Path, artifact: Path) -> Path | None:
    """A file a manifest recorded: as written, else by name beside the artifact, and only
    inside the artifact's folder: a manifest is a file anyone may edit, and an absolute path
    or `../../etc/passwd` there must not put a host file into a bundle."""
    outside = None
    for candidate in (Path(recorded), beside / recorded, beside / Path(recorded).name):
        if not candidate.is_file():
            continue
        if _inside(candidate, beside):
            return candidate
        outside = outside or candidate
    if outside is not None:
        raise ResnetOptError(
            f"{artifact}: its manifest names {recorded}, which is outside the artifact's folder "
            f"{beside}; a bundle takes only files beside the artifact: copy it there"
        )
    return None


def _fp32_source(path: Path, manifest: Manifest) -> tuple[Path, str] | None:
    """The FP32 ONNX an INT8/FP16 ONNX was quantized from (what TensorRT 10 DLA builds parse)."""
    if manifest.stage is not Stage.QUANTIZE:
        return None
    refs = [
        r for r in manifest.inputs if r.path.endswith(".onnx") and Path(r.path).name != path.name
    ]
    refs.sort(key=lambda r: r.role not in ("model", "source"))
    if not refs:
        return None
    found = _resolve_beside(refs[0].path, path.parent, path)
    if found is None:
        raise ResnetOptError(
            f"{path}: its FP32 source {refs[0].path} is not found (as recorded, nor beside it); "
            "the device needs it for a DLA build: put it beside the artifact"
        )
    if sha256_file(found) != refs[0].sha256:
        raise ResnetOptError(
            f"{found}: changed since {path.name} was quantized from it (sha256 differs): "
            "re-run quantize"
        )
    return found, refs[0].sha256


def _companions(path: Path, manifest: Manifest) -> list[_Source]:
    """Everything besides the artifact and its manifest that the device needs for it."""
    name = path.name
    found: list[_Source] = []
    cache = calibration_cache_named(manifest)
    if cache:
        cache_path = _resolve_beside(str(cache), path.parent, path)
        if cache_path is None:
            raise ResnetOptError(
                f"{path}: its calibration cache {cache} is not beside it (DLA INT8 on TensorRT 10 "
                "needs it); put it back or re-run quantize"
            )
        found.append(_Source(cache_path, Role.CALIBRATION_CACHE, name, sha256_file(cache_path)))
    source = _fp32_source(path, manifest)
    if source is not None:
        src, sha = source
        found.append(_Source(src, Role.FP32_SOURCE, name, sha))
        if manifest_path(src).is_file():
            side = manifest_path(src)
            found.append(_Source(side, Role.SOURCE_MANIFEST, name, sha256_file(side)))
    weights = _weights_file(manifest)
    if weights is not None and weights.file:
        companion = path.parent / weights.file
        if not _inside(companion, path.parent) and companion.is_file():
            raise ResnetOptError(
                f"{path}: its manifest names the weights file {weights.file}, which is outside "
                f"the artifact's folder {path.parent}"
            )
        if companion != path:
            if not companion.is_file():
                raise ResnetOptError(f"{path}: its weights file {companion.name} is missing")
            found.append(_Source(companion, Role.WEIGHTS, name, sha256_file(companion)))
    return found


def _labels_text(manifest: Manifest) -> str | None:
    labels = manifest.preprocessing.labels if manifest.preprocessing else None
    return "".join(f"{label}\n" for label in labels) if labels else None


def bundle(artifacts: Sequence[Path], output: Path, *, force: bool = False) -> Bundle:
    """Copy `artifacts` and everything they need into `output`, with bundle.json."""
    if not artifacts:
        raise ResnetOptError("give at least one artifact to bundle")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ResnetOptError(f"{output}: exists and is not a folder")
    if (output / BUNDLE_FILE).exists() and not force:
        raise ResnetOptError(f"{output}: already holds a bundle; pass --force to overwrite it")
    sources: list[_Source] = []
    labels: dict[str, str] = {}
    names: list[str] = []
    for raw in artifacts:
        path = Path(raw)
        manifest = read_manifest(path)
        assert manifest is not None
        sha = check_artifact_hash(path, manifest)
        if path.name in names:
            raise ResnetOptError(f"{path}: two artifacts named {path.name}; a bundle is flat")
        names.append(path.name)
        side = manifest_path(path)
        sources += [
            _Source(path, Role.ARTIFACT, path.name, sha),
            _Source(side, Role.MANIFEST, path.name, sha256_file(side)),
            *_companions(path, manifest),
        ]
        text = _labels_text(manifest)
        if text is not None:
            labels[path.name] = text
    planned = _dedupe(sources)
    label_files = _label_files(labels)
    taken = {p.src.name for p in planned}
    clash = sorted(taken & set(label_files))
    if clash:
        raise ResnetOptError(f"{clash[0]}: an artifact's file has the name of the labels file")

    entries: list[BundleFile] = []
    with staged_outputs(force=force) as staged:
        sizes: dict[str, int] = {}
        for item in planned:
            name = item.src.name
            if name not in sizes:  # a file serving two artifacts is copied once
                tmp = staged.add(output / name)
                shutil.copyfile(item.src, tmp)
                sizes[name] = tmp.stat().st_size
            entries.append(BundleFile(name, item.sha256, sizes[name], item.role.value, item.serves))
        for file_name, (text, serves) in label_files.items():
            tmp = staged.add(output / file_name)
            tmp.write_text(text, encoding="utf-8")
            for artifact in serves:
                entries.append(
                    BundleFile(
                        file_name, sha256_file(tmp), tmp.stat().st_size, Role.LABELS.value, artifact
                    )
                )
        result = Bundle(
            folder=output,
            artifacts=tuple(names),
            files=tuple(entries),
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            tool_version=__version__,
        )
        tmp = staged.add(output / BUNDLE_FILE)
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def _dedupe(sources: Iterable[_Source]) -> list[_Source]:
    """One copy per file name; the same name with other content is refused (a flat folder)."""
    by_name: dict[str, _Source] = {}
    kept: list[_Source] = []
    for item in sources:
        seen = by_name.get(item.src.name)
        if seen is None:
            by_name[item.src.name] = item
            kept.append(item)
        elif seen.sha256 != item.sha256:
            raise ResnetOptError(
                f"{item.src}: another file named {item.src.name} ({seen.src}) differs; a bundle "
                "is one flat folder: rename one of them"
            )
        elif seen.serves != item.serves:
            kept.append(_Source(item.src, item.role, item.serves, item.sha256))
    return kept


def _label_files(labels: Mapping[str, str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """labels.txt when every artifact has the same labels, else <artifact>.labels.txt each."""
    if not labels:
        return {}
    if len(set(labels.values())) == 1:
        return {"labels.txt": (next(iter(labels.values())), tuple(labels))}
    return {f"{name}.labels.txt": (text, (name,)) for name, text in labels.items()}


# -- on arrival ----------------------------------------------------------------------------------


_BUNDLE_FIELDS: Mapping[str, tuple[type, ...]] = {
    "kind": (str,),
    "schema": (int,),
    "created_at": (str,),
    "tool_version": (str,),
    "artifacts": (list,),
    "files": (list,),
}


def read_bundle(folder: Path) -> Bundle:
    path = Path(folder) / BUNDLE_FILE
    if not path.exists():
        raise ResnetOptError(f"{folder}: no {BUNDLE_FILE}; not a resnet-opt bundle")
    data = read_json(path, what="bundle manifest", fields=_BUNDLE_FIELDS)
    if data.get("kind") != BUNDLE_KIND:
        raise ResnetOptError(f"{path}: not a resnet-opt bundle manifest")
    if data.get("schema") != BUNDLE_SCHEMA:
        raise ResnetOptError(
            f"{path}: bundle schema {data.get('schema')!r}; this resnet-opt reads {BUNDLE_SCHEMA}"
        )
    try:
        files = tuple(BundleFile(**f) for f in data["files"])
        for f in files:
            if (
                not isinstance(f.path, str)
                or Path(f.path).name != f.path
                or f.path in ("", ".", "..")
            ):
                raise ResnetOptError(f"{path}: file {f.path!r} is not a plain name in the bundle")
        for a in data["artifacts"]:
            if not isinstance(a, str) or Path(a).name != a or a in ("", ".", ".."):
                raise ResnetOptError(f"{path}: artifact {a!r} is not a plain name in the bundle")
        return Bundle(
            folder=Path(folder),
            artifacts=tuple(str(a) for a in data["artifacts"]),
            files=files,
            created_at=str(data.get("created_at", "")),
            tool_version=str(data.get("tool_version", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ResnetOptError(f"{path}: not a valid bundle manifest ({exc})") from exc


def _check(folder: Path, files: Iterable[BundleFile]) -> int:
    checked: set[str] = set()
    for f in files:
        if f.path in checked:
            continue
        path = folder / f.path
        if not path.is_file():
            raise ResnetOptError(
                f"{path}: listed in {BUNDLE_FILE} ({f.role} of {f.serves}) but missing: copy the "
                "bundle again"
            )
        if sha256_file(path) != f.sha256:
            raise ResnetOptError(
                f"{path}: sha256 differs from {BUNDLE_FILE} ({f.role} of {f.serves}): damaged or "
                "changed after bundling; copy the bundle again"
            )
        checked.add(f.path)
    return len(checked)


def verify_bundle(folder: Path) -> tuple[Bundle, int]:
    """Check every file of the bundle in `folder`; (the bundle, files checked).

    Not only the entries bundle.json lists: each artifact's own manifest says what the device
    needs for it (its cache, FP32 source, weights, labels), and a bundle.json whose entries for
    any of that were removed is refused (it would otherwise check "0 files" and pass).
    """
    found = read_bundle(folder)
    checked = _check(Path(folder), found.files)
    _check_complete(Path(folder), found)
    return found, checked


def _weights_file(manifest: Manifest) -> WeightsFile | None:
    """The file a build keeps beside its artifact (OpenVINO's .bin), from its typed details."""
    built = build_details(manifest)
    return built.weights_file if built is not None else None


def _needed_roles(artifact: Path, manifest: Manifest) -> set[Role]:
    """The roles of the files a bundle must hold for `artifact`, from its manifest."""
    roles = {Role.ARTIFACT, Role.MANIFEST}
    if calibration_cache_named(manifest):
        roles.add(Role.CALIBRATION_CACHE)
    if manifest.stage is Stage.QUANTIZE and any(
        r.path.endswith(".onnx") and Path(r.path).name != artifact.name for r in manifest.inputs
    ):
        roles.add(Role.FP32_SOURCE)
    weights = _weights_file(manifest)
    if weights is not None and weights.file and weights.file != artifact.name:
        roles.add(Role.WEIGHTS)
    if _labels_text(manifest) is not None:
        roles.add(Role.LABELS)
    return roles


def _check_complete(folder: Path, found: Bundle) -> None:
    source = folder / BUNDLE_FILE
    if not found.artifacts:
        raise ResnetOptError(f"{source}: lists no artifacts; not a usable bundle")
    for f in found.files:
        if f.serves not in found.artifacts:
            raise ResnetOptError(f"{source}: {f.path} serves {f.serves!r}, not a listed artifact")
    for name in found.artifacts:
        artifact = folder / str(name)
        listed = {f.role for f in found.files_for(str(name))}
        for role in (Role.ARTIFACT, Role.MANIFEST):
            if role.value not in listed:
                raise ResnetOptError(f"{source}: no {role.value} entry for {name}: copy it again")
        manifest = read_manifest(artifact)
        assert manifest is not None
        missing = sorted(
            r.value for r in _needed_roles(artifact, manifest) if r.value not in listed
        )
        if missing:
            raise ResnetOptError(
                f"{source}: {name}'s manifest needs its {', '.join(missing)}, which bundle.json "
                "does not list: bundle it again"
            )


def verify_if_bundled(artifact: Path) -> bool:
    """Before `build`/`bench` use an artifact: when its folder is a bundle that lists it, check
    its files (artifact, manifest, cache, FP32 source, labels). True when it was checked."""
    folder = Path(artifact).parent
    if not (folder / BUNDLE_FILE).is_file():
        return False
    found = read_bundle(folder)
    mine = found.files_for(Path(artifact).name)
    if not mine:
        return False  # e.g. an engine built on the device beside the bundled ONNX
    _check(folder, mine)
    return True
