"""The Python API: one function per stage, running the same code as the command line.

    from resnet_opt import export, fold, quantize, build, evaluate, bench

Every function has the same shape, `stage(source, output, options, *, force, ...) -> result`:
`source` is what the stage reads (a model name or file for `export`, an artifact otherwise, a
list of artifacts for `bench`), `output` where it writes (a file, or a report folder for
`bench`; optional for `evaluate` and `bench`, which can also just return their result),
`options` the stage's frozen options dataclass (None: the defaults), `force` whether an
existing output may be replaced. `quantize` and `bench` also take `progress`, the callback or
sink their CLI commands use for their progress bars. Results are the stage's own types: the
manifest written, `QuantizeResult`, `Evaluation`, `Report`.

Errors are `resnet_opt.errors.ResnetOptError` (a `QualityGateError` when a gate such as
`QuantizeOptions.max_drop` failed); nothing here exits or prints. The option classes are
re-exported here so a script imports everything from one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from resnet_opt.calibration.collect import ProgressCallback
from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.manifest import Manifest, dump_json
from resnet_opt.measure.progress import ProgressSink
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline import bench as _bench
from resnet_opt.pipeline import build as _build
from resnet_opt.pipeline import evaluate as _evaluate
from resnet_opt.pipeline import export as _export
from resnet_opt.pipeline import fold as _fold
from resnet_opt.pipeline import quantize as _quantize
from resnet_opt.pipeline.bench import BenchOptions
from resnet_opt.pipeline.build import BuildBackend, BuildOptions
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions
from resnet_opt.pipeline.evaluate import EvalOptions, Evaluation
from resnet_opt.pipeline.export import ExportOptions
from resnet_opt.pipeline.fold import FoldOptions
from resnet_opt.pipeline.quantize_artifact import QuantizeResult
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization.plan import QdqTarget
from resnet_opt.report.schema import Report
from resnet_opt.tensorrt.options import TensorRtBuildOptions

__all__ = [
    "BenchOptions",
    "Budget",
    "EvalOptions",
    "Evaluation",
    "ExportOptions",
    "FoldOptions",
    "Manifest",
    "OpenVinoBuildOptions",
    "OrtBuildOptions",
    "QdqTarget",
    "QuantizeOptions",
    "QuantizeResult",
    "Report",
    "Target",
    "TensorRtBuildOptions",
    "bench",
    "build",
    "evaluate",
    "export",
    "fold",
    "quantize",
]

Source = str | Path


def export(
    source: Source | None,
    output: Source,
    options: ExportOptions | None = None,
    *,
    force: bool = False,
) -> Manifest:
    """A trained ResNet → ONNX (BatchNorm folded and checked against PyTorch unless
    `options.fold` is off). `source` is what `export --model` takes: a registry name
    ('resnet50'), 'default' or None (the bundled model), `file.py:factory`,
    `package.module:factory` or a TorchScript file. Needs the `export` extra (torch)."""
    options = options or ExportOptions()
    model = None if source is None else str(source)
    return _export.export(replace(options, model=model, force=force), Path(output))


def fold(
    source: Source,
    output: Source,
    options: FoldOptions | None = None,
    *,
    force: bool = False,
) -> Manifest:
    """Fold BatchNormalization into the preceding Conv/Gemm of an ONNX file and prove the outputs
    unchanged (within `options.tolerance`); nothing is written when they are not."""
    o = options or FoldOptions()
    return _fold.fold(
        Path(source),
        Path(output),
        force=force,
        tolerance=o.tolerance,
        samples=o.samples,
        batch_size=o.batch_size,
        seed=o.seed,
        input_shape=o.input_shape,
        threads=o.threads,
    )


def quantize(
    source: Source,
    output: Source,
    options: QuantizeOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> QuantizeResult:
    """An FP32 ONNX → INT8 (explicit Q/DQ, for `options.target`) or FP16, calibrated and scored.

    `progress(consumed, total)` is called as calibration samples stream through. Raises
    QuantizeGateError (a QualityGateError) after writing when the accuracy drop exceeds
    `options.max_drop`.
    """
    return _quantize.quantize(Path(source), Path(output), options, force=force, progress=progress)


def build(
    source: Source,
    output: Source,
    options: BuildOptions,
    *,
    force: bool = False,
) -> Manifest:
    """A typed ONNX → the artifact a device runs; the backend is the options' type:
    TensorRtBuildOptions (a TensorRT plan), OrtBuildOptions (an ONNX Runtime artifact) or
    OpenVinoBuildOptions (OpenVINO IR or a compiled blob)."""
    backends: dict[type, BuildBackend] = {
        TensorRtBuildOptions: BuildBackend.TENSORRT,
        OrtBuildOptions: BuildBackend.ONNXRUNTIME,
        OpenVinoBuildOptions: BuildBackend.OPENVINO,
    }
    backend = backends.get(type(options))
    if backend is None:
        raise TypeError(
            "build options must be TensorRtBuildOptions, OrtBuildOptions or "
            f"OpenVinoBuildOptions, not {type(options).__name__}"
        )
    return _build.build(Path(source), Path(output), backend, options, force=force)


def evaluate(
    source: Source,
    output: Source | None = None,
    options: EvalOptions | None = None,
    *,
    force: bool = False,
) -> Evaluation:
    """Top-1 / top-5 of an artifact on labelled data (and its drop against `options.reference`).

    With `output`, the result is also written there, as the JSON object `eval --json` prints;
    it is checked before anything is evaluated.
    """
    o = options or EvalOptions()
    with staged_outputs(force=force) as staged:
        target = None if output is None else staged.add(Path(output))
        result = _evaluate.evaluate(
            Path(source),
            o.data,
            reference=o.reference,
            contract=o.contract,
            samples=o.samples,
            seed=o.seed,
            batch_size=o.batch_size,
            threads=o.threads,
            strict=o.strict,
            backend=o.backend,
        )
        if target is not None:
            target.write_text(dump_json(result.to_dict()), encoding="utf-8")
    return result


def bench(
    source: Source | Sequence[Source],
    output: Source | None = None,
    options: BenchOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressSink | None = None,
) -> Report:
    """Throughput, latency and accuracy of artifacts × backends × batch sizes.

    With `output`, the report folder (report.json, report.md, report.png) is written there; it is
    checked before anything is measured.
    """
    from resnet_opt.report import check_report_folder, write_report

    artifacts = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    if output is not None:
        check_report_folder(Path(output), force=force)
    report = _bench.bench(artifacts, options, progress=progress)
    if output is not None:
        write_report(report, Path(output), force=force)
    return report
