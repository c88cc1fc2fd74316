"""ONNX Runtime runner: the reference for every artifact's numbers on the CPU.

Threads are fixed and intra-op spinning is off by default: when two sessions alternate (parity
checks, benchmarks that compare two models) spinning pools fight over the cores and distort the
comparison (DESIGN §8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.base import Backend, Dim, RunnerInfo, TensorSpec

CPU = "CPUExecutionProvider"

# ORT element type strings -> numpy dtypes
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class GraphOptimization(str, Enum):
    DISABLED = "disabled"
    BASIC = "basic"
    EXTENDED = "extended"
    ALL = "all"

    def ort(self) -> Any:
        ort = require("onnxruntime")
        level = ort.GraphOptimizationLevel
        return {
            GraphOptimization.DISABLED: level.ORT_DISABLE_ALL,
            GraphOptimization.BASIC: level.ORT_ENABLE_BASIC,
            GraphOptimization.EXTENDED: level.ORT_ENABLE_EXTENDED,
            GraphOptimization.ALL: level.ORT_ENABLE_ALL,
        }[self]


def session_options(
    *,
    threads: int | None,
    spinning: bool = False,
    optimization: GraphOptimization = GraphOptimization.ALL,
    optimized_model_path: Path | None = None,
) -> Any:
    """SessionOptions with fixed threads and explicit spinning (used by runner and build)."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ResnetOptError(f"threads must be positive, not {threads}")
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.graph_optimization_level = optimization.ort()
    if optimized_model_path is not None:
        opts.optimized_model_filepath = str(optimized_model_path)
    opts.log_severity_level = 3  # errors only: warnings go through our own messages
    return opts


def resolve_providers(requested: Sequence[str] | None) -> list[str]:
    """The providers to ask for: the requested ones (refused when absent), else CPU."""
    ort = require("onnxruntime")
    available = list(ort.get_available_providers())
    if not requested:
        return [CPU]
    missing = [p for p in requested if p not in available]
    if missing:
        raise ResnetOptError(
            f"ONNX Runtime provider {', '.join(missing)} is not available in this onnxruntime "
            f"(available: {', '.join(available)})"
        )
    return [*requested, CPU] if CPU not in requested else list(requested)


class OnnxRuntimeRunner:
    """Runs an .onnx or .ort file with ONNX Runtime."""

    backend = Backend.ONNXRUNTIME

    def __init__(
        self,
        artifact: Path,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        spinning: bool = False,
        optimization: GraphOptimization = GraphOptimization.ALL,
    ) -> None:
        self.artifact = Path(artifact)
        self.threads = threads
        self.providers = resolve_providers(providers)
        self.spinning = spinning
        self.optimization = optimization
        self._session: Any = None
        self._output_names: list[str] = []

    def __enter__(self) -> OnnxRuntimeRunner:
        ort = require("onnxruntime")
        if not self.artifact.is_file():
            raise ResnetOptError(f"{self.artifact}: no such file")
        opts = session_options(
            threads=self.threads, spinning=self.spinning, optimization=self.optimization
        )
        try:
            self._session = ort.InferenceSession(
                str(self.artifact), sess_options=opts, providers=self.providers
            )
        except Exception as exc:  # ORT raises its own untyped errors (Fail, InvalidGraph, …)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ResnetOptError(f"{self.artifact}: ONNX Runtime cannot load it ({first})") from exc
        self._output_names = [out.name for out in self._session.get_outputs()]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._session = None

    @property
    def session(self) -> Any:
        if self._session is None:
            raise RuntimeError("runner used outside its `with` block")
        return self._session

    @staticmethod
    def _specs(args: Any) -> tuple[TensorSpec, ...]:
        specs = []
        for arg in args:
            shape: tuple[Dim, ...] = tuple(
                d if isinstance(d, int | str) else None for d in arg.shape
            )
            specs.append(TensorSpec(arg.name, shape, np.dtype(_ORT_DTYPES.get(arg.type, object))))
        return tuple(specs)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._specs(self.session.get_inputs())

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._specs(self.session.get_outputs())

    @property
    def info(self) -> RunnerInfo:
        provider = self.session.get_providers()[0]
        return RunnerInfo(
            backend=self.backend,
            device="cpu" if provider == CPU else provider.removesuffix("ExecutionProvider"),
            threads=self.threads,
            details={
                "provider": provider,
                "providers": list(self.session.get_providers()),
                "optimization": self.optimization.value,
                "spinning": self.spinning,
            },
        )

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self._output_names
        try:
            values = self.session.run(names, feed)
        except Exception as exc:  # shape/type mismatches surface as ORT's own exceptions
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ResnetOptError(f"{self.artifact}: inference failed ({first})") from exc
        return dict(zip(names, values, strict=True))
