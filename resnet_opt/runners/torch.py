"""PyTorch eager runner: the baseline every exported artifact is measured against.

Given an artifact, it rebuilds the source model from the export manifest (the artifact's own, or
the export entry in its lineage, so an INT8 file finds its FP32 PyTorch origin) and refuses it
unless weights, code and every tensor match what was exported. Export's own parity check hands
it the in-memory module instead. Inference runs in eval mode under torch.inference_mode; thread
count is set on enter and restored on exit (torch's setting is process-wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from resnet_opt.calibration.preprocess import PreprocessContract
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, UsageError, first_line
from resnet_opt.pipeline.artifacts import Manifest, Stage, read_manifest
from resnet_opt.runners.base import Backend, Dim, RunnerInfo, TensorSpec

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_details(manifest: Manifest) -> Mapping[str, Any] | None:
    """The export step's details: the artifact's own, else the newest export in its lineage."""
    for entry in reversed(manifest.history()):
        details = entry.get("details")
        if (
            entry.get("stage") == Stage.EXPORT.value
            and isinstance(details, Mapping)
            and isinstance(details.get("source"), Mapping)
        ):
            return details
    return None


class TorchRunner:
    """Runs the PyTorch model an artifact was exported from (or a module given in memory)."""

    backend = Backend.TORCH

    def __init__(
        self,
        artifact: Path,
        *,
        threads: int | None = None,
        module: Any = None,
        contract: PreprocessContract | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be positive, not {threads}")
        self.artifact = Path(artifact)
        self.threads = threads
        self._given = module
        self._module: Any = None
        self._contract = contract
        self._batch: int | None = None
        self._num_classes: int | None = contract.num_classes if contract else None
        self._source_kind = "in-memory module"
        self._saved_threads: int | None = None

    def __enter__(self) -> TorchRunner:
        torch = require("torch")
        module = self._given if self._given is not None else self._rebuild()
        if self.threads is not None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        module.eval()
        self._module = module
        return self

    def _rebuild(self) -> Any:
        from resnet_opt.models.sources import ModelSource, rebuild

        manifest = read_manifest(self.artifact)
        assert manifest is not None
        details = export_details(manifest)
        if details is None:
            raise ResnetOptError(
                f"{self.artifact}: its manifest does not say which PyTorch model it came from "
                "(no export step); the torch backend needs an artifact made by resnet-opt export"
            )
        source = ModelSource.from_dict(details["source"])
        loaded = rebuild(source)
        self._contract = self._contract or manifest.preprocessing
        batch = details.get("batch")
        self._batch = int(batch) if isinstance(batch, int) else None
        classes = details.get("num_classes")
        self._num_classes = int(classes) if isinstance(classes, int) else self._num_classes
        self._source_kind = source.kind.value
        return loaded.module

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._saved_threads is not None:
            require("torch").set_num_threads(self._saved_threads)
            self._saved_threads = None
        self._module = None

    @property
    def module(self) -> Any:
        if self._module is None:
            raise RuntimeError("runner used outside its `with` block")
        return self._module

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        batch: Dim = self._batch if self._batch is not None else "batch"
        shape: tuple[Dim, ...] = (
            (batch, *self._contract.input_shape) if self._contract else (batch, None, None, None)
        )
        return (TensorSpec(INPUT_NAME, shape, np.dtype(np.float32)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        batch: Dim = self._batch if self._batch is not None else "batch"
        return (TensorSpec(OUTPUT_NAME, (batch, self._num_classes), np.dtype(np.float32)),)

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
                "source": self._source_kind,
                "mode": "eager, eval, inference_mode",
            },
        )

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = require("torch")
        if set(feed) != {INPUT_NAME}:
            raise ResnetOptError(f"torch runner takes one input {INPUT_NAME!r}, got {sorted(feed)}")
        x = np.ascontiguousarray(feed[INPUT_NAME], dtype=np.float32)
        try:
            with torch.inference_mode():
                out = self.module(torch.from_numpy(x))
        except Exception as exc:  # shape mismatches etc. from the model's own code
            raise ResnetOptError(
                f"{self.artifact}: PyTorch inference failed ({first_line(exc)})"
            ) from exc
        return {OUTPUT_NAME: out.detach().float().numpy()}
