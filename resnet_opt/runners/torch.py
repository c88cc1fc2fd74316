"""PyTorch eager runner: the baseline every exported artifact is measured against.

Given an artifact, its loader (ModuleFromArtifact) rebuilds the source model from the export
manifest (the artifact's own, or the export entry in its lineage, so an INT8 file finds its FP32
PyTorch origin) and refuses it unless weights, code and every tensor match what was exported.
Export's own parity check hands it the in-memory module instead (ModuleInMemory). Inference runs
in eval mode under torch.inference_mode; thread count is set on enter and restored on exit
(torch's setting is process-wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import MANIFEST_SUFFIX, Manifest
from resnet_opt.core.stage_details import ExportDetails, exports_in
from resnet_opt.core.validation import thread_count
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.runners.base import Backend, Dim, RunnerBase, RunnerInfo, TensorSpec
from resnet_opt.runners.loaders import Loader, open_artifact

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_details(manifest: Manifest) -> ExportDetails | None:
    """The export step's details: the artifact's own, else the newest export in its lineage."""
    try:
        return next(reversed(list(exports_in(manifest.history()))), None)
    except ResnetOptError as exc:
        raise ResnetOptError(f"{manifest.artifact}{MANIFEST_SUFFIX}: {exc}") from exc


@dataclass(frozen=True)
class TorchModel:
    """A module to run and what its input and output look like."""

    module: Any
    contract: PreprocessContract | None
    batch: int | None = None  # a fixed batch from the export, else None (any batch)
    num_classes: int | None = None
    source_kind: str = "in-memory module"


@dataclass(frozen=True)
class ModuleInMemory:
    """A module already built (export's own parity check hands over the model it exported)."""

    module: Any
    artifact: Path
    contract: PreprocessContract | None = None

    def __call__(self) -> TorchModel:
        classes = self.contract.num_classes if self.contract else None
        return TorchModel(self.module, self.contract, num_classes=classes)


@dataclass(frozen=True)
class ModuleFromArtifact:
    """The PyTorch model an artifact was exported from, rebuilt from its manifest's export step
    (the artifact's own, or the newest in its lineage) and refused unless weights, code and
    every tensor match what was exported."""

    artifact: Path
    contract: PreprocessContract | None = None

    def __call__(self) -> TorchModel:
        require("torch")
        from resnet_opt.models.sources import ModelSource, rebuild

        opened = open_artifact(self.artifact, Backend.TORCH, require_manifest=True)
        manifest = opened.manifest
        assert manifest is not None
        details = export_details(manifest)
        if details is None:
            raise ResnetOptError(
                f"{self.artifact}: its manifest does not say which PyTorch model it came from "
                "(no export step); the torch backend needs an artifact made by resnet-opt export"
            )
        source = ModelSource.from_dict(details.source)
        loaded = rebuild(source)
        contract = self.contract or manifest.preprocessing
        return TorchModel(
            module=loaded.module,
            contract=contract,
            batch=details.batch,
            num_classes=details.num_classes,
            source_kind=source.kind.value,
        )


def open_torch(
    artifact: Path,
    *,
    threads: int | None = None,
    contract: PreprocessContract | None = None,
) -> TorchRunner:
    """A runner for the PyTorch model `artifact` was exported from, rebuilt on enter."""
    return TorchRunner(ModuleFromArtifact(Path(artifact), contract), threads=threads)


class TorchRunner(RunnerBase):
    """Runs the module its loader gives (ModuleFromArtifact, ModuleInMemory)."""

    backend = Backend.TORCH

    def __init__(self, loader: Loader[TorchModel], *, threads: int | None = None) -> None:
        thread_count(threads)
        super().__init__(loader.artifact)
        self.threads = threads
        self._loader = loader
        self._loaded: TorchModel | None = None
        self._saved_threads: int | None = None

    def _open(self) -> None:
        torch = require("torch")
        loaded = self._loader()
        if self.threads is not None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        loaded.module.eval()
        self._loaded = loaded

    def _close(self) -> None:
        if self._saved_threads is not None:
            require("torch").set_num_threads(self._saved_threads)
            self._saved_threads = None
        self._loaded = None

    @property
    def loaded(self) -> TorchModel:
        self._require_open()
        assert self._loaded is not None
        return self._loaded

    @property
    def module(self) -> Any:
        return self.loaded.module

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        loaded = self.loaded
        batch: Dim = loaded.batch if loaded.batch is not None else "batch"
        shape: tuple[Dim, ...] = (
            (batch, *loaded.contract.input_shape) if loaded.contract else (batch, None, None, None)
        )
        return (TensorSpec(INPUT_NAME, shape, np.dtype(np.float32)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        loaded = self.loaded
        batch: Dim = loaded.batch if loaded.batch is not None else "batch"
        return (TensorSpec(OUTPUT_NAME, (batch, loaded.num_classes), np.dtype(np.float32)),)

    @property
    def info(self) -> RunnerInfo:
        torch = require("torch")
        return RunnerInfo(
            backend=self.backend,
            device="cpu",
            precision="fp32",
            threads=torch.get_num_threads(),
            details={
                "torch": str(torch.__version__),
                "source": self.loaded.source_kind,
                "mode": "eager, eval, inference_mode",
            },
        )

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require("torch")
        module = self.module
        self.check_feed(feed, (INPUT_NAME,))
        x = np.ascontiguousarray(feed[INPUT_NAME], dtype=np.float32)
        try:
            with torch.inference_mode():
                out = module(torch.from_numpy(x))
        except Exception as exc:  # shape mismatches etc. from the model's own code
            raise ResnetOptError(
                f"{self.artifact}: PyTorch inference failed ({first_line(exc)})"
            ) from exc
        return {OUTPUT_NAME: out.detach().float().numpy()}
