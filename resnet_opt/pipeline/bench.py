"""`bench`: throughput, latency and accuracy of artifacts × backends × batch sizes → a Report.

Everything that can be refused is checked before the first measurement (files, manifests,
backends, engine compatibility and profiles, evaluation classes, the reference), so a bad input
costs no measuring time. Then, per artifact × backend, one runner is opened, scored once on the
evaluation set (accuracy does not depend on the batch size, but it can on the backend, e.g.
OpenVINO's bf16) and timed at each batch size on a fixed, pre-built input batch.

The FP32 source an artifact's accuracy drop is measured against is, unless `reference` is given,
the first FP32 artifact of its lineage (the export): found among the benched artifacts by
sha256, else beside the artifact under its recorded name with a matching sha256. The source is
always scored with ONNX Runtime on the CPU, the reference runtime (ARCHITECTURE.md, "Facts the
design rests on").
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.calibration.data import (
    BatchStream,
    DataSource,
    Split,
    label_map,
    open_source,
    report_conversions,
    select_indices,
)
from resnet_opt.core.build_details import built_backend
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.fields import take_choices
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    Manifest,
    Precision,
    check_artifact_hash,
    read_manifest,
    tool_versions,
)
from resnet_opt.core.naming import OptionUsageError
from resnet_opt.core.progress import ProgressCallback, StepCounter, no_progress
from resnet_opt.core.stage_details import exports_in
from resnet_opt.core.validation import check_fits, positive_count, thread_count
from resnet_opt.core.version import __version__
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.jetson.power import module_rails, power_figures, sample_power
from resnet_opt.measure.accuracy import ReplayStream, Scored, agreement, score
from resnet_opt.measure.jetson_budget import BudgetRequest
from resnet_opt.measure.machine import load_average, machine_info, usable_cores
from resnet_opt.measure.targets import Target, TargetPlan, plan_targets
from resnet_opt.measure.timing import Budget, Clock, measure
from resnet_opt.pipeline.bundle import verify_if_bundled
from resnet_opt.pipeline.evaluate import DEFAULT_EVAL_BATCH
from resnet_opt.report.schema import (
    AccuracyResult,
    ArtifactInfo,
    LoadAverage,
    Measurement,
    Report,
    Settings,
    Skip,
)
from resnet_opt.runners.base import Backend, Runner, RunnerInfo, open_runner, single_input
from resnet_opt.runners.loaders import build_details

DEFAULT_BATCHES = (1, 8, 32)


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and how; every field lands in the report's settings.

    backends: None = auto (every natural backend installed here, see measure/targets.py).
    budget: a BudgetRequest (the default) leaves what it does not say to this host, longer on a
    Jetson (`measure/jetson_budget.py`); a Budget is measured exactly as given.
    threads: None = every core this process may use; the number is fixed and recorded.
    data: the evaluation set (image folder, .npy/.npz, 'default' = bundled test split); None =
    no accuracy, and a seeded random input batch for timing.
    """

    backends: tuple[Target, ...] | None = None
    batches: tuple[int, ...] = DEFAULT_BATCHES
    budget: Budget | BudgetRequest = field(default_factory=BudgetRequest)
    threads: int | None = None
    data: str | None = "default"
    data_labels: Path | None = None  # a FILE LABEL list: `data` is a flat folder of its images
    samples: int | None = None
    seed: int = 0
    reference: Path | None = None
    no_data_transfers: bool = False
    cuda_graph: bool = False
    plot_batch: int | None = None
    strict: bool = False
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        take_choices(self)  # backends=("onnxruntime",) from Python, as --backend onnxruntime
        if not self.batches:
            raise UsageError("give at least one batch size")
        for batch in self.batches:
            positive_count(batch, "batch sizes")
        if len(set(self.batches)) != len(self.batches):
            raise UsageError(f"batch sizes repeat: {', '.join(map(str, self.batches))}")
        thread_count(self.threads)
        if self.samples is not None:
            positive_count(self.samples, "the number of samples")
        if self.plot_batch is not None and self.plot_batch not in self.batches:
            raise OptionUsageError(
                "plot_batch",
                f" {self.plot_batch} is not one of the measured batch sizes "
                f"({', '.join(map(str, self.batches))})",
            )
        if self.reference is not None and self.data is None:
            raise UsageError("a reference needs evaluation data (accuracy is off)")

    @property
    def timing(self) -> Budget:
        """The budget measured with, once `for_this_host` has resolved a request."""
        if not isinstance(self.budget, Budget):
            raise AssertionError("a BudgetRequest is resolved by for_this_host before measuring")
        return self.budget

    @property
    def chosen_plot_batch(self) -> int:
        return self.plot_batch if self.plot_batch is not None else max(self.batches)


def for_this_host(options: BenchOptions) -> BenchOptions:
    """The options as this host measures them, and the warning it needs, said once.

    Why in the stage: on a Jetson the timing budget a request leaves open is trtexec's and
    clocks left to scale are worth a line, whether the CLI, `run` or Python asked.
    """
    from resnet_opt.console import say
    from resnet_opt.jetson.facts import read_facts
    from resnet_opt.measure.jetson_budget import clock_warning

    jetson = read_facts()
    if (warning := clock_warning(jetson)) is not None:
        say(warning)
    if isinstance(options.budget, BudgetRequest):
        options = replace(options, budget=options.budget.for_host(jetson))
    return options


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8,32' → (1, 8, 32), refusing anything else with the reason: an empty item (`1,,2`)
    and digits other than ASCII (Python's int() reads '٣' as 3; no other flag does)."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise UsageError("--batch: give at least one batch size")
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise UsageError(f"--batch: expected comma-separated integers such as 1,8,32, got {text!r}")
    return tuple(int(part) for part in parts)


# -- planning: everything checked before the first measurement -----------------------------------


@dataclass(frozen=True)
class _Planned:
    path: Path
    manifest: Manifest
    contract: PreprocessContract
    plan: TargetPlan
    info: ArtifactInfo
    reference: tuple[Path, str] | None  # the FP32 source: path, sha256


def _contract(path: Path, manifest: Manifest) -> PreprocessContract:
    if manifest.preprocessing is None:
        raise ResnetOptError(
            f"{path}: its manifest has no preprocessing contract; produce it with resnet-opt "
            "export, or describe an ONNX from elsewhere with resnet-opt import"
        )
    return manifest.preprocessing


def _weights_note(manifest: Manifest) -> str | None:
    """What the export says of the weights: 'bundled', a checkpoint, or random initialisation."""
    for export in exports_in(manifest.history()):
        source = export.source
        weights = source.get("weights")
        if weights in (None, "none", "random"):
            seed = source.get("seed")
            return "random initialisation" + (f" (seed {seed})" if seed is not None else "")
        return str(weights)
    return None


def _size_on_disk(path: Path, manifest: Manifest) -> int:
    """The artifact's bytes, with the weights file a build keeps beside it (OpenVINO's .bin)."""
    size = path.stat().st_size
    built = build_details(manifest)
    weights = built.weights_file if built is not None else None
    if weights is not None and weights.file:
        companion = path.parent / weights.file
        if companion != path and companion.is_file():
            size += companion.stat().st_size
    return size


def _source_entry(manifest: Manifest) -> Mapping[str, Any] | None:
    return next((e for e in manifest.history() if e.get("precision") == Precision.FP32.value), None)


def _find_source(
    path: Path, manifest: Manifest, by_sha: Mapping[str, Path]
) -> tuple[Path, str] | None:
    """(path, sha256) of the artifact's FP32 source, when it can be found (module docstring)."""
    entry = _source_entry(manifest)
    if entry is None:
        return None
    sha = str(entry.get("sha256"))
    if sha in by_sha:
        return by_sha[sha], sha
    beside = path.parent / str(entry.get("artifact"))
    if beside.is_file() and sha256_file(beside) == sha:
        return beside, sha
    return None


def _same_preprocessing(reference: Path, contract: PreprocessContract) -> bool:
    manifest = read_manifest(reference, required=False)
    if manifest is None or manifest.preprocessing is None:
        return False
    return manifest.preprocessing.fingerprint() == contract.fingerprint()


def _engine_min_batch(manifest: Manifest) -> int | None:
    """The smallest batch a TensorRT engine's profile takes (None: not an engine)."""
    if built_backend(manifest) != Backend.TENSORRT.value:
        return None
    from resnet_opt.tensorrt.profiles import profile_of

    return profile_of(manifest).min


def _check_engine(manifest: Manifest, batches: Sequence[int]) -> None:
    """An engine's profile must take every batch size, and it must have been built for this GPU
    and TensorRT: both read from the manifest, before the engine is opened (the batch first, so
    that a wrong `--batch` is named even on a machine that could not run the engine anyway)."""
    from resnet_opt.tensorrt.compat import check_engine_compatible
    from resnet_opt.tensorrt.device import probe_device
    from resnet_opt.tensorrt.profiles import check_batch_in_profile

    for batch in batches:
        check_batch_in_profile(manifest, batch)
    check_engine_compatible(manifest, probe_device())


def _plan(
    artifacts: Sequence[Path], options: BenchOptions
) -> tuple[list[_Planned], list[Skip], DataSource | None]:
    if not artifacts:
        raise ResnetOptError("give at least one artifact to bench")
    manifests: list[tuple[Path, Manifest]] = []
    names: set[str] = set()
    for raw in artifacts:
        path = Path(raw)
        if not path.exists():
            raise ResnetOptError(f"{path}: no such file")
        if path.name in names:
            raise ResnetOptError(
                f"{path}: two artifacts named {path.name}; reports key results by file name"
            )
        names.add(path.name)
        verify_if_bundled(path)  # a bundled artifact: its files against bundle.json first
        manifest = read_manifest(path)
        assert manifest is not None
        check_artifact_hash(path, manifest)
        manifests.append((path, manifest))

    source = None
    if options.data is not None:
        source = open_source(
            options.data,
            default_split=Split.TEST,
            strict=options.strict,
            labels=options.data_labels,
        )
    elif options.data_labels is not None:
        raise UsageError("--data-labels needs evaluation data (accuracy is off)")
    given: tuple[Path, str] | None = None
    if options.reference is not None:
        ref_manifest = read_manifest(options.reference)
        assert ref_manifest is not None
        _contract(options.reference, ref_manifest)
        check_artifact_hash(options.reference, ref_manifest)
        given = (options.reference, ref_manifest.sha256)

    by_sha = {m.sha256: p for p, m in manifests}
    planned: list[_Planned] = []
    skips: list[Skip] = []
    for path, manifest in manifests:
        contract = _contract(path, manifest)
        if built_backend(manifest) == Backend.TENSORRT.value:
            _check_engine(manifest, options.batches)
        if source is not None:
            label_map(source, contract)  # classes that do not fit the model: refused now
        largest = max(options.batches)  # an input batch that cannot exist: refused now
        check_fits((largest, *contract.input_shape), f"{path.name}: --batch {largest}")
        plan = plan_targets(path.name, manifest, options.backends)
        skips += [Skip(path.name, t.value, reason) for t, reason in plan.skipped]
        reference: tuple[Path, str] | None = None
        if given is not None:
            reference = given
            if not _same_preprocessing(given[0], contract):
                raise ResnetOptError(
                    f"{given[0]}: its preprocessing differs from {path.name}'s; they cannot be "
                    "compared on the same images"
                )
        elif source is not None:
            found = _find_source(path, manifest, by_sha)
            if found is not None and _same_preprocessing(found[0], contract):
                reference = found
        lineage = tuple(str(e.get("artifact")) for e in manifest.lineage)
        info = ArtifactInfo(
            name=path.name,
            path=str(path),
            sha256=manifest.sha256,
            size_bytes=_size_on_disk(path, manifest),
            stage=manifest.stage.value,
            precision=manifest.precision.value,
            source=reference[0].name if reference is not None else None,
            lineage=lineage,
            weights=_weights_note(manifest),
        )
        planned.append(_Planned(path, manifest, contract, plan, info, reference))

    uses_trt = any(Target.TENSORRT in p.plan.targets for p in planned)
    if (options.no_data_transfers or options.cuda_graph) and not uses_trt:
        flag = "--no-data-transfers" if options.no_data_transfers else "--cuda-graph"
        raise ResnetOptError(f"{flag} applies to TensorRT engines only, and none is benched")
    if uses_trt:
        check_tensorrt_flags(options)
    return planned, skips, source


_TRT_FLAGS = {"no_data_transfers": "--no-data-transfers", "cuda_graph": "--cuda-graph"}


def check_tensorrt_flags(options: BenchOptions) -> None:
    """Refuse a TensorRT timing option the TensorRT runner does not take (before measuring)."""
    import inspect

    from resnet_opt.runners.base import Backend, runner_opener

    accepted = inspect.signature(runner_opener(Backend.TENSORRT)).parameters
    for field_name, flag in _TRT_FLAGS.items():
        if getattr(options, field_name) and field_name not in accepted:
            raise ResnetOptError(
                f"{flag}: this resnet-opt's TensorRT runner does not support it; leave the "
                "option out"
            )
    if options.cuda_graph:  # before any measuring: CUDA graphs need cuda-python
        from resnet_opt.cuda.graphs import load_cuda_driver

        load_cuda_driver()


# -- measuring -----------------------------------------------------------------------------------


def _stream(
    source: DataSource, contract: PreprocessContract, options: BenchOptions, batch_size: int
) -> BatchStream:
    indices = select_indices(len(source), options.samples, options.seed)
    return BatchStream(source, contract, indices, batch_size, options.strict)


class _EvalStreams:
    """The evaluation stream per preprocessing contract: replayed from memory when it fits."""

    def __init__(self, source: DataSource, options: BenchOptions) -> None:
        self.source = source
        self.options = options
        self.batch_size = min(DEFAULT_EVAL_BATCH, max(options.batches))
        self._kept: dict[str, BatchStream] = {}

    def get(self, contract: PreprocessContract) -> BatchStream:
        key = contract.fingerprint()
        if key in self._kept:
            return self._kept[key]
        indices = select_indices(len(self.source), self.options.samples, self.options.seed)
        if not ReplayStream.fits(len(indices), contract):
            return BatchStream(self.source, contract, indices, self.batch_size, self.options.strict)
        stream = ReplayStream(self.source, contract, indices, self.batch_size, self.options.strict)
        self._kept[key] = stream
        return stream


class InputKind(str, Enum):
    EVAL_DATA = "eval-data"
    RANDOM = "random"


def input_batch(
    contract: PreprocessContract, size: int, source: DataSource | None, options: BenchOptions
) -> np.ndarray:
    """The batch every timed run is fed: real preprocessed images from the evaluation data
    (repeated when it has fewer), else seeded normal noise in the network's input range."""
    shape = (size, *contract.input_shape)
    if source is None:
        rng = np.random.default_rng(options.seed)
        return rng.standard_normal(shape, dtype=np.float32)
    first = next(iter(_stream(source, contract, options, size)))
    return np.ascontiguousarray(np.resize(first.x, shape), dtype=np.float32)


def _check_batch_dim(path: Path, runner: Runner, batches: Sequence[int]) -> None:
    spec = single_input(runner)
    fixed = spec.shape[0] if spec.shape else None
    if isinstance(fixed, int):
        wrong = [b for b in batches if b != fixed]
        if wrong:
            raise ResnetOptError(
                f"{path.name}: its input takes batch {fixed} only, not {wrong[0]}; re-export "
                f"with a dynamic batch or bench with --batch {fixed}"
            )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _runner_options(target: Target, threads: int, options: BenchOptions) -> dict[str, Any]:
    """Threads (fixed) and what the target adds; a build artifact's own runner options (its
    manifest's "runner") are applied by its loader, so it loads as it was built."""
    chosen: dict[str, Any] = {"threads": threads}
    if target.provider is not None:
        chosen["providers"] = [target.provider]
    if target is Target.TENSORRT:
        if options.no_data_transfers:
            chosen["no_data_transfers"] = True
        if options.cuda_graph:
            chosen["cuda_graph"] = True
    return chosen


@dataclass
class _Results:
    measurements: list[Measurement] = field(default_factory=list)
    scores: dict[tuple[str, Target], Scored] = field(default_factory=dict)
    reference_scores: dict[str, Scored] = field(default_factory=dict)  # by sha256


def _measure_target(
    item: _Planned,
    target: Target,
    *,
    threads: int,
    options: BenchOptions,
    streams: _EvalStreams | None,
    inputs: np.ndarray,
    results: _Results,
    progress: StepCounter,
    clock: Clock,
) -> None:
    name = item.path.name
    runner_options = _runner_options(target, threads, options)
    progress.task(f"{name} · {target.value} · loading")
    with open_runner(target.backend, item.path, **runner_options) as runner:
        _check_batch_dim(item.path, runner, options.batches)
        info = runner.info
        if streams is not None:
            progress.task(f"{name} · {target.value} · accuracy")
            source = streams.source
            scored = score(
                runner,
                streams.get(item.contract),
                label_map(source, item.contract),
                min_batch=_engine_min_batch(item.manifest),
            )
            results.scores[(name, target)] = scored
            if target is Target.ONNXRUNTIME:
                results.reference_scores[item.manifest.sha256] = scored
        progress.done()
        spec = single_input(runner)
        dtype = spec.dtype if spec.dtype != np.dtype(object) else np.dtype(np.float32)
        recorded = _jsonable({**runner_options, **dict(info.details)})
        ran_as = _float_precision_run(item, target, info)
        rails = module_rails()
        for batch in options.batches:
            progress.task(f"{name} · {target.value} · batch {batch}")
            feed = {spec.name: np.ascontiguousarray(inputs[:batch], dtype=dtype)}
            with sample_power(rails) as power:  # a Jetson's INA3221 rails; nothing elsewhere
                timing = measure(functools.partial(runner.infer, feed), options.timing, clock=clock)
            stats = timing.stats()
            energy = power_figures(power.mean_watts, timing.throughput(batch))
            results.measurements.append(
                Measurement(
                    artifact=name,
                    sha256=item.manifest.sha256,
                    precision=item.manifest.precision.value,
                    backend=target.value,
                    device=info.device,
                    provider=_provider(info.details),
                    precision_run=precision_run(item.manifest.precision, ran_as),
                    batch=batch,
                    threads=info.threads if info.threads is not None else threads,
                    iterations=timing.iterations,
                    warmup_iterations=timing.warmup_iterations,
                    warmup_s=timing.warmup_s,
                    total_s=timing.total_s,
                    latency_ms=stats,
                    throughput=timing.throughput(batch),
                    options=recorded,
                    power_w=energy.power_w,
                    energy_per_image_j=energy.energy_per_image_j,
                    images_per_s_per_w=energy.images_per_s_per_w,
                )
            )
            progress.done()


def _float_precision_run(item: _Planned, target: Target, info: RunnerInfo) -> str | None:
    """The float precision the runner computed in, when it differs from the artifact's.

    ONNX Runtime's x86 CPU provider has no fp16 kernels for these models' ops: it runs an fp16
    artifact's ops in fp32 between inserted Casts, so the report must not call that fp16.
    """
    if (
        item.manifest.precision is Precision.FP16
        and target is Target.ONNXRUNTIME
        and _provider(info.details) in (None, "CPUExecutionProvider")
    ):
        from resnet_opt.quantization.fp16 import cpu_fp32_fallback

        if cpu_fp32_fallback(item.path):
            return "fp32"
    return info.precision


_FLOAT_NAMES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "fp32": "fp32", "fp16": "fp16"}


def precision_run(artifact: Precision, reported: str | None) -> str:
    """What actually ran: the artifact's precision, unless the runner computed its float parts
    in another one (OpenVINO's bf16 on a bf16-capable CPU): an FP32 artifact that ran in bf16 is
    'bf16', an INT8 artifact whose float parts ran in bf16 is 'int8+bf16'."""
    if reported is None:
        return artifact.value
    ran = _FLOAT_NAMES.get(reported.lower(), reported.lower())
    if artifact in (Precision.INT8, Precision.MIXED):
        return artifact.value if ran in ("fp32", artifact.value) else f"{artifact.value}+{ran}"
    return ran


def _provider(details: Mapping[str, Any]) -> str | None:
    provider = details.get("provider")
    return None if provider is None else str(provider)


def _score_reference(
    reference: Path, streams: _EvalStreams, threads: int, progress: StepCounter
) -> Scored:
    manifest = read_manifest(reference)
    assert manifest is not None
    contract = _contract(reference, manifest)
    progress.task(f"{reference.name} · onnxruntime · accuracy (reference)")
    with open_runner(Target.ONNXRUNTIME.backend, reference, threads=threads) as runner:
        scored = score(runner, streams.get(contract), label_map(streams.source, contract))
    progress.done()
    return scored


def _accuracy(planned: Sequence[_Planned], results: _Results) -> list[AccuracyResult]:
    rows = []
    for item in planned:
        ref = results.reference_scores.get(item.reference[1]) if item.reference else None
        for target in item.plan.targets:
            scored = results.scores.get((item.path.name, target))
            if scored is None:
                continue
            acc = scored.accuracy
            rows.append(
                AccuracyResult(
                    artifact=item.path.name,
                    backend=target.value,
                    top1=acc.top1,
                    top5=acc.top5,
                    count=acc.count,
                    skipped=scored.skipped,
                    reference=item.reference[0].name if item.reference is not None else None,
                    reference_top1=ref.accuracy.top1 if ref is not None else None,
                    drop_points=ref.accuracy.top1 - acc.top1 if ref is not None else None,
                    top1_agreement=agreement(scored.top1, ref.top1) if ref is not None else None,
                )
            )
    return rows


def report_settings(options: BenchOptions, threads: int, source: DataSource | None) -> Settings:
    """What a report says was asked and ran; bench and bench --concurrent both record it here."""
    budget = options.timing
    return Settings(
        batches=tuple(options.batches),
        mode=budget.mode.value,
        iterations=budget.iterations,
        duration_s=budget.duration_s,
        warmup_s=budget.warmup_s,
        min_iterations=budget.min_iterations,
        threads=threads,
        input=(InputKind.EVAL_DATA if source is not None else InputKind.RANDOM).value,
        seed=options.seed,
        data=source.description if source is not None else None,
        samples=options.samples,
        plot_batch=options.chosen_plot_batch,
        no_data_transfers=options.no_data_transfers,
        cuda_graph=options.cuda_graph,
    )


def bench(
    source: str | Path | Sequence[str | Path],
    output: str | Path | None = None,
    options: BenchOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    clock: Clock | None = None,
) -> Report:
    """Measure every artifact of `source` (one or a list) × backend × batch size, score
    accuracy, return the Report.

    With `output`, the report folder (report.json, report.md, report.png) is written there; it is
    checked before anything is measured. `clock` replaces `time.perf_counter` (tests).
    """
    import time

    from resnet_opt.report import check_report_folder, write_report

    artifacts = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    if output is not None:
        check_report_folder(Path(output), force=force)
    report = _bench(
        artifacts,
        options or BenchOptions(),
        progress or no_progress,
        clock or time.perf_counter,
    )
    if output is not None:
        write_report(report, Path(output), force=force)
    return report


def _bench(
    artifacts: Sequence[Path],
    options: BenchOptions,
    progress: ProgressCallback,
    clock: Clock,
) -> Report:
    """The measuring itself, apart from `bench`'s report folder."""
    options = for_this_host(options)
    planned, skips, source = _plan(artifacts, options)
    threads = options.threads or usable_cores()

    references = dict(p.reference for p in planned if p.reference is not None)
    scored_by_ort = {p.manifest.sha256 for p in planned if Target.ONNXRUNTIME in p.plan.targets}
    extra_references = {sha: ref for ref, sha in references.items() if sha not in scored_by_ort}
    steps = sum(len(p.plan.targets) * (1 + len(options.batches)) for p in planned)
    counter = StepCounter(progress, steps + (len(extra_references) if source is not None else 0))

    machine = machine_info()
    load_before = load_average()
    results = _Results()
    streams = _EvalStreams(source, options) if source is not None else None
    inputs_by_contract: dict[str, np.ndarray] = {}
    for item in planned:
        key = item.contract.fingerprint()
        if key not in inputs_by_contract:
            inputs_by_contract[key] = input_batch(
                item.contract, max(options.batches), source, options
            )
        for target in item.plan.targets:
            _measure_target(
                item,
                target,
                threads=threads,
                options=options,
                streams=streams,
                inputs=inputs_by_contract[key],
                results=results,
                progress=counter,
                clock=clock,
            )
    if streams is not None:
        for sha, reference in extra_references.items():
            results.reference_scores[sha] = _score_reference(reference, streams, threads, counter)
    load_after = load_average()

    settings = report_settings(options, threads, source)
    notes = list(options.notes)
    from resnet_opt.quantization.saturation import warning_for

    saturating = warning_for([p.path for p in planned if Target.ONNXRUNTIME in p.plan.targets])
    if saturating is not None:
        notes.append(f"warning: {saturating}")
    if source is not None and planned:
        converted = report_conversions(source, planned[0].contract, "bench")
        if converted is not None:
            notes.append(f"data: {converted}")
    weights = sorted({p.info.weights for p in planned if p.info.weights})
    notes += [f"weights: {w}" for w in weights if f"weights: {w}" not in notes]
    return Report(
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        machine=machine,
        versions=tool_versions(),
        load_average=LoadAverage(load_before, load_after),
        settings=settings,
        artifacts=tuple(p.info for p in planned),
        measurements=tuple(results.measurements),
        accuracy=tuple(_accuracy(planned, results)),
        skipped=tuple(skips),
        notes=tuple(notes),
    )
