"""`resnet-opt run`: every stage from one config into one folder, skipping what is unchanged.

The stages are the same functions the single commands call (export, quantize, build, bench);
`run` only decides names, order and what can be skipped. A stage is skipped when its key (the
stage's options plus the content hashes of everything it reads) equals the key recorded in the
folder's `run-state.json` and its outputs are still there, unmodified. So a second run with the
same config and inputs does no work, and changing one input re-runs exactly what depends on it.

A failed quality gate (a quantized artifact losing more top-1 than `gates.max_drop`) does not
stop the pipeline: every stage still runs and the report is written, then `run` raises
QualityGateError (exit 3) naming each failure, also on a re-run that skipped the stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from resnet_opt.backends.registry import Backend, build_backends, build_part
from resnet_opt.backends.spec import resolve
from resnet_opt.console import counting_bar, say
from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.hashing import sha256_file, sha256_json
from resnet_opt.core.manifest import dump_json
from resnet_opt.core.naming import OptionError
from resnet_opt.core.readers import read_json
from resnet_opt.core.version import __version__
from resnet_opt.errors import QualityGateError, ResnetOptError, UsageError
from resnet_opt.pipeline.run_config import RunConfig, VariantConfig

if TYPE_CHECKING:
    from resnet_opt.core.contract import PreprocessContract

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("resnet-opt-out")
STATE_FILE = "run-state.json"
STATE_VERSION = 1
MODEL_STEM = "model"
REPORT_DIR = "report"

E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class StageOutcome:
    name: str
    status: str  # "done", "unchanged", or "skipped: <why>"
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0
    gate_failure: str | None = None


@dataclass(frozen=True)
class RunResult:
    output: Path
    stages: tuple[StageOutcome, ...]
    report: Path | None
    markdown: str
    gate_failures: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "stages": [asdict(s) for s in self.stages],
            "report": str(self.report) if self.report else None,
            "gate_failures": list(self.gate_failures),
        }


class _State:
    """run-state.json: per stage, the key it ran with and the hashes of what it wrote."""

    def __init__(self, folder: Path, *, force: bool) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.stages: dict[str, dict[str, Any]] = {} if force else self._load()
        self._digests: dict[Path, tuple[tuple[int, int], str]] = {}

    def digest(self, path: Path) -> str:
        """sha256 of `path`, hashed once per run: a stage's output is the next stages' input
        (the FP32 model is read by every quantize, build and bench key), and it is hashed again
        only when its size or modification time changed since."""
        try:
            stat = path.stat()
        except OSError:
            return sha256_file(path)  # says why the file cannot be read
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._digests.get(path)
        if known is None or known[0] != stamp:
            known = (stamp, sha256_file(path))
            self._digests[path] = known
        return known[1]

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:  # bounded: a 200k-deep array or a 5000-digit number is one warning, not a crash
            data = read_json(self.path, what="run state")
        except ResnetOptError as exc:
            say(f"warning: {exc}; running every stage again")
            return {}
        if data.get("version") != STATE_VERSION:
            return {}
        stages = data.get("stages")
        return stages if isinstance(stages, dict) else {}

    @staticmethod
    def _seal(name: str, record: Mapping[str, Any]) -> str:
        """The hash of a stage's record: a record edited by hand (a failed gate's
        `gate_failure` set to null) no longer matches it, so the stage runs again and its gate
        is measured again instead of passing."""
        fields = {k: record.get(k) for k in ("key", "outputs", "gate_failure")}
        return sha256_json({"stage": name, **fields})

    def unchanged(self, name: str, key: str) -> dict[str, Any] | None:
        """The stage's record when it ran with `key`, is sealed and its outputs are intact."""
        record = self.stages.get(name)
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        if record.get("seal") != self._seal(name, record):
            say(f"{name}: its record in {STATE_FILE} was changed by hand; running it again")
            return None
        outputs = record.get("outputs", {})
        if not isinstance(outputs, dict):
            return None
        for rel, digest in outputs.items():
            path = self.folder / rel
            if not path.is_file() or self.digest(path) != digest:
                return None
        return record

    def record(
        self, name: str, key: str, outputs: Sequence[Path], gate_failure: str | None = None
    ) -> None:
        record: dict[str, Any] = {
            "key": key,
            "outputs": {str(p.relative_to(self.folder)): self.digest(p) for p in outputs},
            "gate_failure": gate_failure,
        }
        record["seal"] = self._seal(name, record)
        self.stages[name] = record
        with staged_outputs(force=True) as staged:
            tmp = staged.add(self.path)
            tmp.write_text(
                dump_json({"version": STATE_VERSION, "stages": self.stages}), encoding="utf-8"
            )


@dataclass(frozen=True)
class _Artifact:
    """An ONNX the pipeline made: the FP32 model (variant None) or a quantized variant."""

    path: Path
    variant: VariantConfig | None

    @property
    def label(self) -> str:
        return self.variant.name if self.variant else "fp32"

    @property
    def stem(self) -> str:
        return self.path.name.removesuffix(".onnx")


def run(
    config: RunConfig,
    output: Path | None = None,
    *,
    force: bool = False,
    progress: Callable[[], Any] | None = None,
) -> RunResult:
    """Run every stage of `config` into `output` (or config.output, or ./resnet-opt-out)."""
    from resnet_opt.models.sources import is_onnx
    from resnet_opt.pipeline.run_checks import check_run_config

    onnx_source = is_onnx(config.model.source)
    if onnx_source:
        _refuse_export_keys(config.model)
    check_run_config(config)  # every value, by its TOML key, before the folder is made
    _check_choices(config)
    contract = _contract_options(config)
    if onnx_source:
        _import_options(config.model, contract)  # the contract it needs, before any stage
    folder = Path(output or config.output or DEFAULT_OUTPUT)
    if folder.exists() and not folder.is_dir():
        raise ResnetOptError(f"{folder}: is a file; give a folder for the run's outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResnetOptError(f"{folder}: cannot create folder ({exc.strerror or exc})") from exc
    state = _State(folder, force=force)
    return _Orchestrator(config, folder, state, progress).run(contract)


class _Orchestrator:
    """Runs the config's stages in order (export, quantize, build, bench), each skipped when its
    key (options and input hashes) matches the one `state` recorded for the last run."""

    def __init__(
        self,
        config: RunConfig,
        folder: Path,
        state: _State,
        progress: Callable[[], Any] | None,
    ) -> None:
        self.config = config
        self.folder = folder
        self.state = state
        self.progress = progress
        self.outcomes: list[StageOutcome] = []
        self._data_keys: dict[str | None, str] = {}
        self._gate_warned = False

    # -- the pipeline ----------------------------------------------------------------------

    def run(self, contract: Any) -> RunResult:
        """`contract`: the model options `run` parsed from the config (ContractOptions)."""
        fp32 = self.export(contract)
        variants = [self.quantize(fp32, v, i) for i, v in enumerate(self.config.quantize)]
        onnx_artifacts = [fp32, *variants]
        built = self.build(onnx_artifacts)
        report, markdown = self.bench([a.path for a in onnx_artifacts] + built)
        from resnet_opt.quantization.saturation import warning_for

        saturating = warning_for([a.path for a in onnx_artifacts] + built)
        if saturating is not None:
            say(f"warning: {saturating}")
        failures = tuple(o.gate_failure for o in self.outcomes if o.gate_failure)
        return RunResult(self.folder, tuple(self.outcomes), report, markdown, failures)

    def _stage(
        self,
        name: str,
        key_parts: Mapping[str, Any],
        work: Callable[[], tuple[list[Path], str | None]],
    ) -> StageOutcome:
        """Run `work` unless the stage is unchanged; record and announce the outcome."""
        key = sha256_json({"stage": name, "resnet-opt": __version__, **key_parts})
        record = self.state.unchanged(name, key)
        if record is not None:
            outcome = StageOutcome(
                name,
                "unchanged",
                tuple(record.get("outputs", {})),
                gate_failure=record.get("gate_failure"),
            )
            say(f"{name}: unchanged, skipped")
        else:
            start = time.perf_counter()
            outputs, gate_failure = work()
            seconds = time.perf_counter() - start
            self.state.record(name, key, outputs, gate_failure)
            rel = tuple(str(p.relative_to(self.folder)) for p in outputs)
            outcome = StageOutcome(name, "done", rel, round(seconds, 2), gate_failure)
            say(f"{name}: done in {seconds:.1f} s → {', '.join(rel[:1])}")
        if outcome.gate_failure:
            say(f"{name}: quality gate failed: {outcome.gate_failure}")
        self.outcomes.append(outcome)
        return outcome

    def _skip(self, name: str, why: str) -> None:
        say(f"{name}: skipped: {why}")
        self.outcomes.append(StageOutcome(name, f"skipped: {why}"))

    # -- export ----------------------------------------------------------------------------

    def export(self, contract: Any) -> _Artifact:
        from resnet_opt.models.sources import is_onnx
        from resnet_opt.pipeline.export import ExportOptions, model_spec

        out = self.folder / f"{MODEL_STEM}.onnx"
        model = self.config.model
        if is_onnx(model.source):
            return self.import_and_fold(contract)
        source = None if model.source == "default" else model.source
        options = ExportOptions(
            weights=model.weights,
            trust_pickle=model.trust_pickle,
            num_classes=model.num_classes,
            contract=contract,
            batch=model.batch,
            opset=model.opset,
        )
        options.validate()
        model_spec(source)  # an ONNX model.source is refused before any stage runs

        def work() -> tuple[list[Path], str | None]:
            from resnet_opt.pipeline.export import export

            export(source, out, options, force=True)
            return [out, _manifest(out)], None

        self._stage("export", {"model": asdict(model), "files": _model_files(model)}, work)
        return _Artifact(out, None)

    def import_and_fold(self, contract: Any) -> _Artifact:
        """An ONNX model.source: imported with [model]'s preprocessing and labels (its own
        stage), then folded into model.onnx, where export would have written it."""
        model = self.config.model
        source = Path(model.source)
        options = _import_options(model, contract)
        imported = self.folder / f"{MODEL_STEM}.imported.onnx"
        out = self.folder / f"{MODEL_STEM}.onnx"
        if not source.is_file():
            raise ResnetOptError(f"config: model.source: {source}: no such file")

        def work_import() -> tuple[list[Path], str | None]:
            from resnet_opt.pipeline.import_model import import_model

            import_model(source, imported, options, force=True)
            return [imported, _manifest(imported)], None

        def work_fold() -> tuple[list[Path], str | None]:
            from resnet_opt.pipeline.fold import FoldOptions, fold

            fold(imported, out, FoldOptions(), force=True)
            return [out, _manifest(out)], None

        key = {"model": asdict(model), "files": _model_files(model)}
        self._stage("import", {**key, "source": self.state.digest(source)}, work_import)
        self._stage("fold", {"input": self.state.digest(imported)}, work_fold)
        return _Artifact(out, None)

    # -- quantize --------------------------------------------------------------------------

    def quantize(self, source: _Artifact, variant: VariantConfig, index: int) -> _Artifact:
        from resnet_opt.pipeline.quantize_options import check_gates_measurable, evaluation_spec
        from resnet_opt.pipeline.run_config import VariantKeys

        out = self.folder / f"{MODEL_STEM}.{variant.name}.onnx"
        options = self.config.quantize_options(variant)
        eval_spec = evaluation_spec(options, _contract_of(source.path))
        options = replace(options, max_drop=self._gate(eval_spec))
        try:
            check_gates_measurable(options, eval_spec)
        except OptionError as exc:  # by its key, not a flag
            raise exc.reworded(VariantKeys(index)) from None

        def work() -> tuple[list[Path], str | None]:
            from resnet_opt.pipeline.quantize import QuantizeGateError, quantize

            gate_failure = None
            try:
                with counting_bar(f"calibrating for {variant.name}") as progress:
                    result = quantize(source.path, out, options, force=True, progress=progress)
            except QuantizeGateError as exc:
                result, gate_failure = exc.result, str(exc).split(" (")[0]
            except OptionError as exc:  # what only the model shows (--exclude, no --calib)
                raise exc.reworded(VariantKeys(index, prefix="")) from exc
            files = [out, _manifest(out)]
            if result.tensorrt_cache is not None:
                files.append(result.tensorrt_cache)
            return files, gate_failure

        key = {
            "variant": variant.name,
            "options": options.to_manifest(),
            "input": self.state.digest(source.path),
            "calibration": self._data_key(options.calib),
            "evaluation": self._data_key(options.eval_data),
            "evaluation_labels": _file_key(options.eval_labels),
        }
        self._stage(f"quantize {variant.name}", key, work)
        return _Artifact(out, variant)

    def _gate(self, eval_spec: str | None) -> float | None:
        """gates.max_drop where it can be measured (`eval_spec`, the variant's evaluation data,
        is not None); said once, not dropped silently, where not."""
        max_drop = self.config.gates.max_drop
        if max_drop is None or eval_spec is not None:
            return max_drop
        if not self._gate_warned:
            say(
                f"gates: max_drop {max_drop:g} not applied: no evaluation data "
                "(set data.evaluation to a labelled folder or .npz)"
            )
            self._gate_warned = True
        return None

    def _data_key(self, spec: str | None) -> str:
        """Content hash of DATA (None and 'default…' are the bundled split file)."""
        if spec not in self._data_keys:
            self._data_keys[spec] = _data_fingerprint(spec)
        return self._data_keys[spec]

    # -- build -----------------------------------------------------------------------------

    def build(self, artifacts: Sequence[_Artifact]) -> list[Path]:
        built: list[Path] = []
        for name in self.config.build.backends:
            backend = Backend(name)
            why = _unavailable(backend)
            builds_for = resolve(build_part(backend).run_builds)
            chosen = [a for a in artifacts if builds_for(a.variant.options if a.variant else None)]
            if why is not None:
                self._skip(f"build {backend.value}", why)
                continue
            for artifact in chosen:
                built.extend(self._build_one(backend, artifact))
        return built

    def _build_one(self, backend: Backend, artifact: _Artifact) -> list[Path]:
        spec = build_part(backend)
        out = self.folder / f"{artifact.stem}{spec.run_suffix}"
        options = self.config.build.options(backend.value)

        def work() -> tuple[list[Path], str | None]:
            from resnet_opt.pipeline.build import build

            build(artifact.path, out, options, force=True)
            files = [out, _manifest(out)]
            files.extend(out.with_suffix(suffix) for suffix in spec.run_companions)
            return files, None

        key = {
            "backend": backend.value,
            "options": repr(options),
            "input": self.state.digest(artifact.path),
        }
        self._stage(f"build {backend.value} {artifact.label}", key, work)
        return [out]

    # -- bench -----------------------------------------------------------------------------

    def bench(self, artifacts: Sequence[Path]) -> tuple[Path | None, str]:
        from resnet_opt.core.manifest import read_manifest
        from resnet_opt.measure.targets import parse_targets, with_built_targets

        cfg = self.config.bench
        data = self._evaluation_data(artifacts[0])
        report_dir = self.folder / REPORT_DIR
        targets = parse_targets(cfg.backends)
        if targets is not None:  # the artifacts built here run on their own backend
            targets = with_built_targets(targets, [(p.name, read_manifest(p)) for p in artifacts])

        def work() -> tuple[list[Path], str | None]:
            files = self._bench(artifacts, targets, data, report_dir)
            return files, None

        key = {
            "bench": asdict(cfg),
            "artifacts": {str(p.name): self.state.digest(p) for p in artifacts},
            "evaluation": self._data_key(data) if data is not None else None,
            "evaluation_labels": _file_key(self.config.data.evaluation_labels),
            "samples": self.config.data.eval_samples,
        }
        outcome = self._stage("bench", key, work)
        report = self.folder / outcome.outputs[0] if outcome.outputs else None
        markdown_path = report_dir / "report.md"
        markdown = markdown_path.read_text(encoding="utf-8") if markdown_path.is_file() else ""
        return report, markdown

    def _evaluation_data(self, fp32: Path) -> str | None:
        """The data bench scores on: what the quantize stages score on (data.evaluation, else
        the bundled test split for the bundled model; "none": no accuracy)."""
        from resnet_opt.pipeline.quantize_options import QuantizeOptions, evaluation_spec

        wanted = QuantizeOptions(eval_data=self.config.data.evaluation)
        return evaluation_spec(wanted, _contract_of(fp32))

    def _bench(
        self,
        artifacts: Sequence[Path],
        targets: Any,
        data: str | None,
        report_dir: Path,
    ) -> list[Path]:
        from resnet_opt.measure.jetson_budget import BudgetRequest
        from resnet_opt.pipeline.bench import BenchOptions, bench
        from resnet_opt.report import write_report

        cfg = self.config.bench
        options = BenchOptions(
            backends=targets,
            batches=cfg.batches,
            # the config's defaults are HostDefaults: a Jetson gets its budget (bench stage)
            budget=BudgetRequest(
                iterations=cfg.iterations,
                duration_s=cfg.duration if cfg.iterations is None else None,
                warmup_s=cfg.warmup,
            ),
            threads=cfg.threads,
            data=data,
            data_labels=_labels_path(self.config.data.evaluation_labels),
            samples=self.config.data.eval_samples,
            seed=self.config.data.seed,
            plot_batch=cfg.plot_batch,
            notes=("made by resnet-opt run",),
        )
        if self.progress is not None:
            with self.progress() as progress:
                report = bench(artifacts, options=options, progress=progress)
        else:
            report = bench(artifacts, options=options)
        for skip in report.skipped:
            say(f"bench: skipped {skip.artifact} · {skip.backend}: {skip.reason}")
        files = write_report(report, report_dir, force=True)
        return [files.json, files.markdown, files.plot]


# -- pure helpers -----------------------------------------------------------------------------


def _manifest(path: Path) -> Path:
    from resnet_opt.core.manifest import manifest_path

    return manifest_path(path)


def _check_choices(config: RunConfig) -> None:
    """Refuse unknown enum values in the config before any work, naming the key (the quantize
    variants' and the build options' are decoded as enums by `run_config`)."""
    from resnet_opt.measure.targets import parse_targets

    for i, name in enumerate(config.build.backends):
        _check_value(f"build.backends[{i}]", name, [b.value for b in build_backends()])
    parse_targets(config.bench.backends)


def _check_value(where: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UsageError(f"config: {where} = {value!r} (choose {', '.join(choices)})")


def _choice(enum: type[E], value: str, where: str) -> E:
    """The enum member a config value names, or an error naming the key and the choices."""
    _check_value(where, value, [str(member.value) for member in enum])
    return enum(value)


def _contract_options(config: RunConfig) -> Any:
    from resnet_opt.core.contract import Interpolation
    from resnet_opt.models.contract import ContractOptions, parse_size
    from resnet_opt.models.labels import parse_class_labels

    m = config.model

    def size(value: int | str | None, key: str) -> Any:
        if value is None:
            return None
        return parse_size(str(value), f"config: model.{key}")

    interpolation = None
    if m.interpolation is not None:
        interpolation = _choice(Interpolation, m.interpolation, "model.interpolation")
    classes = parse_class_labels(m.labels) if m.labels is not None else None
    return ContractOptions(
        input_size=m.input_size,
        channels=m.channels,
        mean=m.mean,
        std=m.std,
        resize=size(m.resize, "resize"),
        crop=size(m.crop, "crop"),
        interpolation=interpolation,
        labels=classes.names if classes is not None else None,
        class_ids=classes.ids if classes is not None else None,
    )


# [model] keys that only export reads: refused with an ONNX model.source
_EXPORT_ONLY = ("weights", "num_classes", "channels", "batch", "opset")


def _refuse_export_keys(model: Any) -> None:
    """[model] keys that only export reads, refused with an ONNX model.source."""
    given = [k for k in _EXPORT_ONLY if getattr(model, k) is not None] + (
        ["trust_pickle"] if model.trust_pickle else []
    )
    if given:
        raise UsageError(
            f"config: model.{given[0]} applies to export; model.source is an ONNX file, which "
            "run imports and folds instead of exporting"
        )


def _import_options(model: Any, contract: Any) -> Any:
    """[model]'s preprocessing and labels for an ONNX model.source, as `import` takes them."""
    from resnet_opt.pipeline.import_model import ImportOptions

    missing = [k for k in ("input_size", "mean", "std") if getattr(contract, k) is None]
    if missing:
        raise UsageError(
            f"config: model.source is an ONNX file without a manifest of its own: set "
            f"{', '.join('model.' + k for k in missing)} (and resize, crop, interpolation, "
            "labels as it was trained), which run writes into its manifest"
        )
    return ImportOptions(
        input_size=contract.input_size,
        mean=contract.mean,
        std=contract.std,
        resize=contract.resize,
        crop=contract.crop,
        interpolation=contract.interpolation or ImportOptions().interpolation,
        labels=contract.labels,
        class_ids=contract.class_ids,
    )


def _model_files(model: Any) -> dict[str, str]:
    """Content hashes of the files export reads: weights, a model file, the bundled weights."""
    files: dict[str, str] = {}
    candidates = [model.weights, model.labels, model.source.rpartition(":")[0] or model.source]
    for text in candidates:
        if text and Path(text).is_file():
            files[text] = sha256_file(Path(text))
    if model.source == "default":
        from resnet_opt.models.default import default_model

        files["bundled"] = default_model().weights_sha256
    return files


def _labels_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _file_key(path: str | Path | None) -> str | None:
    """Content hash of a label list (None: none given)."""
    if not path:
        return None
    return sha256_file(Path(path)) if Path(path).is_file() else str(path)


def _data_fingerprint(spec: str | None) -> str:
    from resnet_opt.calibration.data import DEFAULT_SPEC, Split, open_source

    if spec is None or spec == "none" or spec.startswith(DEFAULT_SPEC):
        source = open_source(DEFAULT_SPEC, default_split=Split.TEST)
        return sha256_json({"spec": spec, "content": source.fingerprint([])})
    path = Path(spec)
    if path.is_file():
        return sha256_json({"spec": spec, "content": sha256_file(path)})
    source = open_source(spec, default_split=Split.CALIB)
    return sha256_json({"spec": spec, "content": source.fingerprint(range(len(source)))})


def _contract_of(model: Path) -> PreprocessContract | None:
    """The preprocessing contract in `model`'s manifest (None: no manifest, or none in it)."""
    from resnet_opt.core.manifest import read_manifest

    manifest = read_manifest(model)
    return manifest.preprocessing if manifest else None


def _unavailable(backend: Backend) -> str | None:
    """Why `backend` cannot build on this machine (None: it can), by its unit's rule."""
    check = build_part(backend).unavailable
    if check is None:
        return None
    why: str | None = resolve(check)()
    return why


def gate_error(result: RunResult) -> QualityGateError | None:
    """The exit-3 error for a run whose quality gates failed (None when all passed)."""
    if not result.gate_failures:
        return None
    return QualityGateError("quality gate failed: " + "; ".join(result.gate_failures))
