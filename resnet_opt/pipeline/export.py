"""The `export` stage: a trained PyTorch ResNet → one verified ONNX file with its manifest.

Steps: load the model from any source (`resnet_opt.models.sources`); settle the preprocessing
contract (the source's defaults, the user's options on top, the class count from a dry forward
pass); export with a named input `input`, output `logits`, a dynamic batch axis unless --batch
fixes one, and the weights inside the file; tidy the graph; fold what BatchNorm the exporter left
(`--no-fold` keeps it); then prove it: the ONNX runs in ONNX Runtime next to the PyTorch model on
random inputs and, when given, real images. Beyond the tolerance nothing is written.

Exporter: the TorchScript-based `torch.onnx.export(dynamo=False)` by default. It is the only one
that takes every source users have (TorchScript files cannot go through torch.export), it writes
exactly the requested opset (the dynamo exporter starts at 18 and version-converts below that),
it folds BatchNorm in eval mode, and it is about 3× faster (resnet18: 1.6 s vs 4.9 s here), which
matters for the quickstart. `--exporter dynamo` is there for models the tracer cannot handle and
for the day the TorchScript exporter is removed from torch.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_opt.calibration.data import (
    BatchStream,
    BundledDigitsSource,
    Split,
    converted_modes,
    label_map,
    open_source,
    report_conversions,
    select_indices,
)
from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.fields import take_choices
from resnet_opt.core.manifest import Manifest, Precision, Stage, new_manifest, write_manifest
from resnet_opt.core.naming import Option, OptionUsageError
from resnet_opt.core.stage_details import (
    DefaultModelNote,
    ExportBatchNorm,
    ExportDetails,
    KeptBatchNorm,
    TensorDescription,
)
from resnet_opt.core.validation import check_fits, positive_count
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.graph import count_ops, drop_unused_initializers, save_onnx
from resnet_opt.measure.scoring import Tally
from resnet_opt.models.contract import ContractOptions, resolve_contract
from resnet_opt.pipeline.verify import Comparison, ComparisonAccumulator, random_batches

# the graph's names are the ones the PyTorch runner speaks (it imports torch only when it runs)
from resnet_opt.runners.torch import INPUT_NAME, OUTPUT_NAME, ModuleInMemory, TorchRunner
from resnet_opt.transforms.bn_fold import FoldResult, LeftBatchNorm, fold_batchnorm

if TYPE_CHECKING:
    import onnx

    from resnet_opt.core.progress import ProgressCallback
    from resnet_opt.models.sources import LoadedModel
    from resnet_opt.runners.base import Runner

BATCH_DIM = "batch"
DEFAULT_TOLERANCE = 1e-3  # max abs error, relative to the logits' scale (max |logit|, at least 1)
RANDOM_SAMPLES = 8
DATA_SAMPLES = 256  # real images compared by default (the bundled split: all of it)
DATA_BATCH = 32
BATCHNORM = "BatchNormalization"


class Exporter(str, Enum):
    TORCHSCRIPT = "torchscript"
    DYNAMO = "dynamo"

    @property
    def default_opset(self) -> int:
        return 17 if self is Exporter.TORCHSCRIPT else 18

    @property
    def opsets(self) -> range:
        return range(9, 21) if self is Exporter.TORCHSCRIPT else range(18, 24)


@dataclass(frozen=True)
class ExportOptions:
    """How `export` takes its model (the source, given apart) to ONNX; None fields take the
    model's defaults."""

    weights: str | None = None
    trust_pickle: bool = False
    num_classes: int | None = None
    contract: ContractOptions = field(default_factory=ContractOptions)
    batch: int | None = None  # None: dynamic batch axis
    opset: int | None = None  # None: the exporter's default (17 TorchScript, 18 dynamo)
    exporter: Exporter = Exporter.TORCHSCRIPT
    tolerance: float = DEFAULT_TOLERANCE
    data: str | None = None  # real images for the parity check (default model: its test split)
    data_samples: int | None = None  # None: all of the bundled split, else DATA_SAMPLES
    fold: bool = True
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        take_choices(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exporter"] = self.exporter.value
        data["contract"] = self.contract.given()
        data["opset"] = self.resolved_opset
        return data

    @property
    def resolved_opset(self) -> int:
        return self.opset if self.opset is not None else self.exporter.default_opset

    def validate(self) -> None:
        """Refuse impossible options before any work (never silently adjusted)."""
        opset = self.resolved_opset
        if opset not in self.exporter.opsets:
            span = self.exporter.opsets
            raise OptionUsageError(
                "opset",
                f" {opset}: the {self.exporter.value} exporter writes opsets "
                f"{span.start}–{span.stop - 1}",
            )
        if not (math.isfinite(self.tolerance) and self.tolerance > 0):
            raise OptionUsageError("tolerance", f" must be a positive number, not {self.tolerance}")
        for name in ("batch", "data_samples", "num_classes"):
            value = getattr(self, name)
            if value is not None:
                positive_count(value, Option(name))


def model_spec(source: str | Path | None) -> str | None:
    """`export`'s source as `--model` takes it (None: the bundled default model); an ONNX file is
    refused, before any output name is taken: it has been exported already."""
    from resnet_opt.models.sources import already_onnx, is_onnx

    model = None if source is None else str(source)
    if model is not None and is_onnx(model):
        raise already_onnx(model)
    return model


def default_output(model: str | None) -> Path:
    """`<model name>.onnx` in the current folder: registry name, factory name or file stem."""
    from resnet_opt.models.default import DEFAULT_ALIAS, DEFAULT_MODEL

    spec = model or DEFAULT_ALIAS
    if spec == DEFAULT_ALIAS:
        return Path(f"{DEFAULT_MODEL}.onnx")
    _, sep, right = spec.rpartition(":")
    if sep and right and not Path(spec).exists():
        return Path(f"{right}.onnx")
    return Path(f"{Path(spec).stem}.onnx")


def export(
    source: str | Path | None,
    output: str | Path,
    options: ExportOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Export, fold, verify; write `output` and its manifest, or nothing at all.

    `source` is what `export --model` takes: a registry name ('resnet50'), 'default' or None (the
    bundled model), `file.py:factory`, `package.module:factory` or a TorchScript file. Needs the
    `export` extra (torch). `progress` is taken for the shape every stage shares and not called:
    its steps are single calls into torch and ONNX Runtime.
    """
    from resnet_opt.models.probe import check_input_size, count_batchnorm, count_parameters, dry_run
    from resnet_opt.models.sources import ModelRequest, SourceKind, WeightsKind, load_model

    options = options or ExportOptions()
    options.validate()
    model = model_spec(source)
    output = Path(output)
    seconds: dict[str, float] = {}
    with staged_outputs(force=force) as staged:
        onnx_tmp, manifest_tmp = staged.add_with_manifest(output)

        with _timed(seconds, "load"):
            loaded = load_model(
                ModelRequest(
                    model=model,
                    weights=options.weights,
                    trust_pickle=options.trust_pickle,
                    num_classes=options.num_classes,
                    in_channels=options.contract.channels,
                    seed=options.seed,
                )
            )
            if options.exporter is Exporter.DYNAMO and loaded.source.kind is SourceKind.TORCHSCRIPT:
                raise ResnetOptError(
                    f"{loaded.name}: the dynamo exporter cannot take a TorchScript module; "
                    "use --exporter torchscript"
                )
            probe = resolve_contract(
                replace(loaded.template, labels=None), replace(options.contract, labels=None), 1
            )
            check_input_size(loaded.name, probe.input_size, loaded.min_input_size)
            num_classes = dry_run(loaded.module, probe.input_shape, loaded.name)
            contract = resolve_contract(loaded.template, options.contract, num_classes)
            bn_in_model = count_batchnorm(loaded.module)

        with (
            tempfile.TemporaryDirectory(prefix="resnet-opt-export-") as tmp,
            _timed(seconds, "export"),
        ):
            raw = _to_onnx(loaded, contract, options, Path(tmp) / "raw.onnx")
        bn_raw = count_ops(raw, [BATCHNORM])[BATCHNORM]
        raw, materialized = _tidy(raw, loaded.name)

        with _timed(seconds, "fold"):
            onnx_model, batchnorm = _fold(raw, options.fold, bn_in_model, bn_raw)
        save_onnx(onnx_model, onnx_tmp)

        with _timed(seconds, "verify"):
            verification = _verify(loaded, contract, onnx_tmp, options)
        if not verification["passed"]:
            raise ResnetOptError(_failure(loaded.name, verification))

        default_note = None
        if loaded.source.weights is WeightsKind.BUNDLED:
            from resnet_opt.models.default import METADATA_FILE, default_model

            bundled = default_model()
            default_note = DefaultModelNote(
                metadata=METADATA_FILE,
                trained_test_top1=bundled.test_top1,
                trained_test_count=bundled.test_count,
            )
        details = ExportDetails(
            model=loaded.name,
            source=loaded.source.to_dict(),
            contract_origin=loaded.template.origin,
            exporter=options.exporter.value,
            opset=options.resolved_opset,
            batch=options.batch,
            dynamic_batch=options.batch is None,
            input=TensorDescription(INPUT_NAME, (_batch_dim(options), *contract.input_shape)),
            output=TensorDescription(OUTPUT_NAME, (_batch_dim(options), num_classes)),
            num_classes=num_classes,
            parameters=count_parameters(loaded.module),
            batchnorm=batchnorm,
            shared_initializers_copied=materialized,
            seconds={k: round(v, 3) for k, v in seconds.items()},
            default_model=default_note,
        )
        manifest = new_manifest(
            stage=Stage.EXPORT,
            artifact=output,
            content=onnx_tmp,
            precision=Precision.FP32,
            inputs=loaded.inputs,
            preprocessing=contract,
            options={"model": model, **options.to_dict(), "force": force},
            verification=verification,
            details=details,
        )
        write_manifest(manifest_tmp, manifest)
    return manifest


@contextlib.contextmanager
def _timed(seconds: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[key] = time.perf_counter() - start


def _batch_dim(options: ExportOptions) -> int | str:
    return options.batch if options.batch is not None else BATCH_DIM


# -- the export itself -------------------------------------------------------------------------


def _to_onnx(
    loaded: LoadedModel, contract: PreprocessContract, options: ExportOptions, path: Path
) -> onnx.ModelProto:
    """torch.onnx.export to `path`, read back; exporter chatter goes to stderr, not stdout."""
    import onnx

    torch = require("torch")
    example_batch = options.batch or 2  # ≥ 2 so that no exporter specializes the batch to 1
    what = f"--batch {options.batch}" if options.batch else "the example input"
    check_fits((example_batch, *contract.input_shape), what)
    generator = torch.Generator().manual_seed(options.seed)
    example = torch.randn((example_batch, *contract.input_shape), generator=generator)
    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [OUTPUT_NAME],
        "opset_version": options.resolved_opset,
    }
    if options.exporter is Exporter.TORCHSCRIPT:
        kwargs["dynamo"] = False
        kwargs["do_constant_folding"] = True
        if options.batch is None:
            kwargs["dynamic_axes"] = {INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}}
    else:
        kwargs["dynamo"] = True
        kwargs["external_data"] = False
        kwargs["optimize"] = True
        kwargs["verbose"] = False
        if options.batch is None:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim(BATCH_DIM)},)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")  # the exporters' deprecation/tracer notices
            torch.onnx.export(loaded.module, (example,), str(path), **kwargs)
    except Exception as exc:  # the exporters raise many types; the first line says what failed
        raise ResnetOptError(
            f"{loaded.name}: torch.onnx.export ({options.exporter.value}) failed: {first_line(exc)}"
        ) from exc
    model = onnx.load(str(path))  # external data, if any, is read in and saved inline later
    graph = model.graph
    inputs = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    outputs = [o.name for o in graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise ResnetOptError(
            f"{loaded.name}: the exported graph has inputs {inputs} and outputs {outputs}; "
            f"expected one {INPUT_NAME!r} and one {OUTPUT_NAME!r}"
        )
    graph.name = loaded.name
    return model


def _tidy(model: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, int]:
    """Give every weight its own initializer.

    The TorchScript exporter deduplicates equal initializers (e.g. the zero biases of freshly
    initialized BatchNorms) and feeds them through Identity nodes. A Conv whose bias arrives
    through an Identity is not "Conv with initializer bias" to a quantizer or to the fold pass,
    and a shared bias cannot take per-layer int32 scales, so each Identity of an initializer
    becomes an initializer of its own (a few KB).
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    keep = []
    copied = 0
    for node in graph.node:
        if (
            node.op_type == "Identity"
            and node.domain in ("", "ai.onnx")
            and node.input[0] in initializers
            and node.output[0] not in outputs
        ):
            array = numpy_helper.to_array(initializers[node.input[0]])
            graph.initializer.append(numpy_helper.from_array(np.array(array), node.output[0]))
            copied += 1
        else:
            keep.append(node)
    if copied:
        del graph.node[:]
        graph.node.extend(keep)
        drop_unused_initializers(graph)  # originals that only the Identity nodes read
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError: our tidy step or the exporter
        raise RuntimeError(f"{name}: the exported graph is invalid ({exc})") from exc
    return model, copied


def _fold(
    raw: onnx.ModelProto, fold: bool, bn_in_model: int, bn_raw: int
) -> tuple[onnx.ModelProto, ExportBatchNorm]:
    """Run the fold pass (unless --no-fold) and say which step folded how many BatchNorms."""
    if fold:
        result, fold_pass = fold_batchnorm(raw), "ran"
    else:
        kept = tuple(
            LeftBatchNorm(n.name or n.output[0], "kept: --no-fold")
            for n in raw.graph.node
            if n.op_type == BATCHNORM
        )
        result, fold_pass = FoldResult(raw, 0, kept), "skipped (--no-fold)"
    return result.model, ExportBatchNorm(
        in_model=bn_in_model,
        in_export=bn_raw,
        folded_by={"exporter": max(0, bn_in_model - bn_raw), "fold": result.folded},
        fold_pass=fold_pass,
        left=tuple(KeptBatchNorm(b.node, b.reason) for b in result.left),
    )


# -- verification ------------------------------------------------------------------------------


class _Parity:
    """One comparison stream, with the reference's logit scale for the relative tolerance."""

    def __init__(self) -> None:
        self.acc = ComparisonAccumulator()
        self.scale = 0.0

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        self.acc.update(reference, candidate)
        if reference.size:
            self.scale = max(self.scale, float(np.abs(reference).max()))

    def result(self, relative: float) -> tuple[Comparison, float]:
        scale = self.scale if math.isfinite(self.scale) else float("inf")
        return self.acc.result(relative * max(1.0, scale)), scale


def _infer(runner: Runner, x: np.ndarray, batch: int | None) -> np.ndarray:
    """Logits of `x`; a fixed-batch model gets the last partial batch padded with zeros."""
    from resnet_opt.runners.base import run_batch

    n = len(x)
    if batch is None or n == batch:
        return run_batch(runner, x)
    if n > batch:
        return np.concatenate([_infer(runner, x[i : i + batch], batch) for i in range(0, n, batch)])
    padded = np.zeros((batch, *x.shape[1:]), dtype=x.dtype)
    padded[:n] = x
    return run_batch(runner, padded)[:n]


def _verify(
    loaded: LoadedModel, contract: PreprocessContract, onnx_path: Path, options: ExportOptions
) -> dict[str, Any]:
    """PyTorch vs ONNX Runtime on random inputs and (when given) real images, with accuracy."""
    from resnet_opt.models.sources import WeightsKind
    from resnet_opt.runners.onnxruntime import open_onnxruntime

    batch = options.batch
    random_parity = _Parity()
    result: dict[str, Any] = {
        "reference": "pytorch",
        "runtime": "onnxruntime",
        "relative_tolerance": options.tolerance,
    }
    with (
        TorchRunner(
            ModuleInMemory(loaded.module, onnx_path, contract), threads=options.threads
        ) as reference,
        open_onnxruntime(onnx_path, threads=options.threads) as candidate,
    ):
        # odd batch sizes (3, 3, 2) prove the dynamic axis; a fixed batch gets whole batches
        samples = 2 * batch if batch else RANDOM_SAMPLES
        for x in random_batches(contract.input_shape, samples, batch or 3, options.seed):
            random_parity.update(_infer(reference, x, batch), _infer(candidate, x, batch))
        comparison, scale = random_parity.result(options.tolerance)
        result.update(comparison.to_dict())
        result["logit_scale"] = scale
        result["input"] = "standard normal, seeded"
        passed = comparison.passed

        data = options.data
        if data is None and loaded.source.weights is WeightsKind.BUNDLED:
            data = "default"  # the bundled model is always scored on its test split
        if data is not None:
            data_result = _verify_data(reference, candidate, contract, data, options)
            result["data"] = data_result["comparison"]
            result["accuracy"] = data_result["accuracy"]
            passed = passed and bool(data_result["comparison"]["passed"])
    result["passed"] = passed
    return result


def _verify_data(
    reference: Runner,
    candidate: Runner,
    contract: PreprocessContract,
    data: str,
    options: ExportOptions,
) -> dict[str, Any]:
    source = open_source(data, default_split=Split.TEST)
    if options.data_samples is None and isinstance(source, BundledDigitsSource):
        requested = None  # the whole bundled split: the figure the README quotes
    else:
        requested = options.data_samples or DATA_SAMPLES
    indices = select_indices(len(source), requested, options.seed)
    mapping: np.ndarray | None
    skipped_reason = None
    try:
        mapping = label_map(source, contract)
    except ResnetOptError as exc:  # unlabelled data, or classes that are not the model's
        mapping, skipped_reason = None, str(exc)
    stream = BatchStream(source, contract, indices, options.batch or DATA_BATCH)
    parity = _Parity()
    ref_hits, cand_hits = Tally(), Tally()
    for b in stream:
        ref = _infer(reference, b.x, options.batch)
        cand = _infer(candidate, b.x, options.batch)
        parity.update(ref, cand)
        if mapping is not None and b.labels is not None:
            labels = mapping[b.labels]
            ref_hits.update(ref, labels)
            cand_hits.update(cand, labels)
    comparison, scale = parity.result(options.tolerance)
    report_conversions(source, contract, "export")
    accuracy: dict[str, Any] | None = None
    if cand_hits.count:
        accuracy = {
            "data": source.description,
            "count": cand_hits.count,
            "pytorch_top1": ref_hits.result().top1,
            "onnxruntime_top1": cand_hits.result().top1,
            "top1_agreement": comparison.top1_agreement,
        }
    return {
        "comparison": {
            **comparison.to_dict(),
            "logit_scale": scale,
            "data": source.description,
            "fingerprint": source.fingerprint(indices.tolist()),
            "skipped": len(stream.skipped),
            "converted": converted_modes(source),
        },
        "accuracy": accuracy if accuracy else {"skipped": skipped_reason or "no labels"},
    }


def _failure(name: str, verification: dict[str, Any]) -> str:
    worst = verification
    data = verification.get("data")
    if data and not data.get("passed", True):
        worst = data
    return (
        f"{name}: ONNX Runtime's outputs differ from PyTorch's by {worst['max_abs_error']:.3g} "
        f"(max abs), over the tolerance {worst['tolerance']:.3g} "
        f"({verification['relative_tolerance']:g} × logit scale); nothing written"
    )
