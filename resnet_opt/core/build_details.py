"""What every build stage's details share (ARCHITECTURE.md, "The artifact contract").

A build manifest's `details` are typed per backend, beside the backend's own code:
`runners/onnxruntime.OrtBuildDetails`, `runners/openvino.OvBuildDetails` and
`tensorrt/build_details.TensorRtBuildDetails` (in `tensorrt/`, below the runners, because the
engine checks in `tensorrt/compat.py` and `tensorrt/profiles.py` read it); each backend unit names
its class (`BackendUnit.build_details`) and `runners/loaders.build_details` reads a manifest
through it. This module holds what they have in common: the backend a build names, the CPU facts
the CPU builds record, the weights file a build keeps beside its artifact, and `BuildDetails`,
what generic readers (bench, bundle) ask of any of them.

Every key of a build's details reads as None when it is absent (keys were added over time, and
tests write partial manifests); the record keeps which were absent (`absent`) and `to_dict`
leaves them out again, so a manifest reads back to the same JSON, byte for byte. A value of the
wrong type is one line naming the manifest and the key, exit 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from resnet_opt.core.details import Fields, TypedDetails, detail_of, written

if TYPE_CHECKING:
    from resnet_opt.core.manifest import Manifest

BACKEND_KEY = "backend"


def built_backend(manifest: Manifest) -> str | None:
    """The backend a build manifest names (None: another stage, or a build naming none)."""
    from resnet_opt.core.manifest import Stage

    if manifest.stage is not Stage.BUILD:
        return None
    backend: str | None = detail_of(manifest, BACKEND_KEY, str)
    return backend


@dataclass(frozen=True)
class CpuFacts:
    """The CPU a CPU artifact was built on: what its speed and portability depend on."""

    model: str | None
    arch: str | None
    flags: tuple[str, ...] | None
    layout: str | None  # ORT's NCHWc layout family (None: no layout, or not ORT)
    int8_family: str | None  # `core.cpu_int8` family (absent before it was recorded)
    absent: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return written(
            [
                ("model", self.model),
                ("arch", self.arch),
                ("flags", None if self.flags is None else list(self.flags)),
                ("layout", self.layout),
                ("int8_family", self.int8_family),
            ],
            self.absent,
        )

    @classmethod
    def read(cls, f: Fields) -> CpuFacts:
        return cls(
            model=f.maybe("model", str),
            arch=f.maybe("arch", str),
            flags=f.maybe_texts("flags"),
            layout=f.maybe("layout", str),
            int8_family=f.maybe("int8_family", str),
            absent=f.absent("model", "arch", "flags", "layout", "int8_family"),
        )


@dataclass(frozen=True)
class WeightsFile:
    """A file a build writes beside its artifact (OpenVINO's .bin), by name and content."""

    file: str
    sha256: str | None
    size_bytes: int | None
    absent: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return written(
            [("file", self.file), ("sha256", self.sha256), ("size_bytes", self.size_bytes)],
            self.absent,
        )

    @classmethod
    def read(cls, f: Fields) -> WeightsFile:
        return cls(
            file=f.text("file"),
            sha256=f.maybe("sha256", str),
            size_bytes=f.maybe("size_bytes", int),
            absent=f.absent("sha256", "size_bytes"),
        )


class BuildDetails(TypedDetails, Protocol):
    """What bench, bundle and the target rule ask of any backend's build details."""

    @property
    def backend(self) -> str | None: ...

    @property
    def runner(self) -> Mapping[str, Any] | None:
        """`details["runner"]` as written: its runner's own typed class reads it
        (`runners/loaders.runner_details`)."""
        ...

    @property
    def weights_file(self) -> WeightsFile | None:
        """The file the artifact needs beside it (None: none)."""
        ...
