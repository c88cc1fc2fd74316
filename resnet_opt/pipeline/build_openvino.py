"""`build --backend openvino` (optional extra `openvino`): an OpenVINO artifact and its manifest.

Two forms, chosen by the output's suffix:
- `.xml`: the OpenVINO IR (graph .xml + weights .bin, written side by side). Portable: any device,
  any later OpenVINO; compiled when loaded (about a second for ResNet-50). The default choice.
- `.blob`: the compiled model exported (`CompiledModel.export_model`). Loads without compiling,
  but only on the same device type and the same OpenVINO version; the manifest records both and
  the runner refuses a mismatch before OpenVINO sees the file.

The weights are saved as they are in the ONNX (no FP16 compression, which `save_model` does by
default): the ONNX carries the precision. The precision the float parts compute in is the
INFERENCE_PRECISION_HINT, f32 unless asked (OpenVINO's own default on bf16-capable CPUs is bf16);
the manifest records the hint and the precision the compiled model reported, and the runner loads
the artifact with the same hint. The build is verified against ONNX Runtime on the source:
max error and top-1 agreement on random inputs, gated by a tolerance where f32 ran an unquantized
model, and by top-1 agreement otherwise (bf16 and int8 kernels legitimately move the logits).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.build_details import WeightsFile
from resnet_opt.core.fields import take_choices
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    stage_manifest,
    write_manifest,
)
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.graph import precision_of
from resnet_opt.jetson.facts import manifest_facts
from resnet_opt.pipeline.build_onnxruntime import cpu_description
from resnet_opt.pipeline.verify import (
    Comparison,
    ComparisonAccumulator,
    Feed,
    check_verify_options,
    random_batches,
    verification_feed,
)
from resnet_opt.runners.base import Backend, run_batch, single_input
from resnet_opt.runners.loaders import open_stage_input
from resnet_opt.runners.onnxruntime import (
    OnnxRuntimeRunner,
    OrtFormat,
    OrtSettings,
    SessionFromOnnx,
)
from resnet_opt.runners.openvino import (
    DEFAULT_DEVICE,
    ModelFromFile,
    OpenVinoRunner,
    OvBuildDetails,
    OvKind,
    OvPrecision,
    OvRunnerDetails,
    OvSettings,
    compile_config,
    ov_message,
)
from resnet_opt.runners.openvino import (
    OvForm as OvForm,  # the form choice, named here too (`OpenVinoBuildOptions.form`)
)

if TYPE_CHECKING:
    from resnet_opt.pipeline.quantize_options import QuantizeOptions


@dataclass(frozen=True)
class OpenVinoBuildOptions:
    """How to build the OpenVINO artifact and check it against ONNX Runtime on the source."""

    device: str = DEFAULT_DEVICE
    precision: OvPrecision = OvPrecision.F32
    threads: int | None = None  # INFERENCE_NUM_THREADS the runner uses by default
    form: OvForm | None = None  # None: from the output's suffix (.xml or .blob)
    batch: int | None = None  # fix a symbolic batch to this size in the artifact
    input_shape: tuple[int, ...] | None = None  # one sample, for symbolic input dims
    samples: int = 8
    batch_size: int = 4
    seed: int = 0
    tolerance: float = 1e-3  # max-abs gate when f32 runs an unquantized model
    min_agreement: float = 90.0  # top-1 agreement gate (percent) otherwise

    def __post_init__(self) -> None:
        take_choices(self)


def build_openvino(
    source: Path, output: Path, options: OpenVinoBuildOptions, *, force: bool = False
) -> Manifest:
    """Write `source` as an OpenVINO IR or compiled blob at `output`, verified against ORT."""
    from resnet_opt.graph import load_onnx

    source, output = Path(source), Path(output)
    form = check_options(output, options)
    opened = open_stage_input(source, output)  # its sha256 is the manifest's input
    parent = opened.manifest
    onnx_model = load_onnx(source)
    ov = require("openvino")
    core = ov.Core()
    precision = parent.precision if parent else precision_of(onnx_model)[0]
    model = _read(core, source)
    if options.batch is not None:
        _fix_batch(model, options.batch, source)
    weights_final = output.with_suffix(".bin")
    with staged_outputs(force=force) as staged:
        tmp, tmp_manifest = staged.add_with_manifest(output)
        tmp_weights = staged.add(weights_final) if form is OvForm.IR else None
        started = time.perf_counter()
        if form is OvForm.IR:
            assert tmp_weights is not None
            _save_ir(ov, model, tmp, tmp_weights)
        else:
            _save_blob(core, model, tmp, options)
        build_seconds = time.perf_counter() - started
        candidate = OpenVinoRunner(
            ModelFromFile(
                tmp,
                OvSettings(
                    kind=OvKind.IR if form is OvForm.IR else OvKind.COMPILED,
                    device=options.device,
                    precision=options.precision,
                    threads=options.threads,
                    batch=options.batch,
                    weights=tmp_weights,
                ),
            )
        )
        comparison, feed, ran, info_details = _verify(
            source, candidate, options, precision, parent.preprocessing if parent else None
        )
        version = str(ov.__version__)
        # how ModelFromArtifact loads the artifact as built
        runner = OvRunnerDetails(options.device, options.precision, options.threads)
        details = OvBuildDetails(
            backend=Backend.OPENVINO.value,
            jetson_facts=manifest_facts(),  # module, power mode, clocks (None off a Jetson)
            form=form,
            portable=form is OvForm.IR,
            device=options.device,
            device_name=info_details.get("device_name"),  # the runner's info, not a manifest
            precision_hint=options.precision,
            inference_precision=ran,
            threads=options.threads,
            batch=options.batch,
            openvino=version,
            weights_compressed_to_fp16=False,
            cpu=cpu_description(layout=None),
            build_seconds=round(build_seconds, 3),
            size_bytes=tmp.stat().st_size,
            runner=runner.to_dict(),
            weights=(
                None
                if tmp_weights is None
                else WeightsFile(
                    file=weights_final.name,
                    sha256=sha256_file(tmp_weights),
                    size_bytes=tmp_weights.stat().st_size,
                )
            ),
            absent=frozenset() if tmp_weights is not None else frozenset({"weights"}),
        )
        verification = {
            **comparison.to_dict(),
            "min_agreement": options.min_agreement,
            "gate": _gate(ran, precision),
            "reference": f"{source.name} through ONNX Runtime (CPU)",
            "input_shape": [feed.batch, *feed.sample_shape],
        }
        recorded = {
            "device": options.device,
            "precision": options.precision.value,
            "threads": options.threads,
            "form": form.value,
            "batch": options.batch,
            "tolerance": options.tolerance,
            "min_agreement": options.min_agreement,
            "samples": options.samples,
            "seed": options.seed,
        }
        manifest = stage_manifest(
            parent,
            stage=Stage.BUILD,
            artifact=output,
            content=tmp,
            precision=precision,
            inputs=(InputRef("source", str(source), opened.sha256),),
            options=recorded,
            verification=verification,
            details=details,
        )
        write_manifest(tmp_manifest, manifest)
    return manifest


def check_options(output: Path, options: OpenVinoBuildOptions) -> OvForm:
    """Refuse contradictory or impossible options before anything is read or written (`run`
    checks its [build.openvino] table with it before its first stage)."""
    by_suffix = {form.suffix: form for form in OvForm}.get(output.suffix.lower())
    if options.form is None and by_suffix is None:
        raise ResnetOptError(
            f"{output}: an OpenVINO artifact ends in .xml (IR, with its .bin beside it) or .blob "
            "(compiled model)"
        )
    form = options.form or by_suffix
    assert form is not None
    if by_suffix is not form:
        raise ResnetOptError(f"{output}: the {form.value} form is written to a {form.suffix} file")
    check_verify_options(
        threads=options.threads,
        samples=options.samples,
        batch_size=options.batch_size,
        tolerance=options.tolerance,
    )
    if options.batch is not None and options.batch < 1:
        raise UsageError(f"batch must be positive, not {options.batch}")
    if not 0 <= options.min_agreement <= 100:
        raise ResnetOptError(f"min agreement is a percentage, not {options.min_agreement}")
    return form


def _read(core: Any, source: Path) -> Any:
    try:
        return core.read_model(str(source))
    except Exception as exc:  # unsupported ops and the like surface here
        raise ResnetOptError(f"{source}: OpenVINO cannot read it ({ov_message(exc)})") from exc


def _fix_batch(model: Any, batch: int, source: Path) -> None:
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_dynamic or len(shape) == 0:
            raise ResnetOptError(f"{source}: input {port.get_any_name()!r} has no batch axis")
        first = shape[0]
        if first.is_static and first.get_length() != batch:
            raise ResnetOptError(
                f"{source}: input {port.get_any_name()!r} has a fixed batch of "
                f"{first.get_length()}, not {batch}"
            )
        dims = [batch, *(-1 if d.is_dynamic else d.get_length() for d in list(shape)[1:])]
        shapes[port.get_any_name()] = dims
    try:
        model.reshape(shapes)
    except Exception as exc:
        raise ResnetOptError(
            f"{source}: cannot fix the batch to {batch} ({ov_message(exc)})"
        ) from exc


def _save_ir(ov: Any, model: Any, xml: Path, weights: Path) -> None:
    """save_model names the .bin after the .xml: save in a scratch folder, move into place."""
    with tempfile.TemporaryDirectory(prefix=".ov-", dir=xml.parent) as scratch:
        path = Path(scratch) / "model.xml"
        try:
            ov.save_model(model, str(path), compress_to_fp16=False)
        except Exception as exc:
            raise ResnetOptError(f"{xml.parent}: cannot save the IR ({ov_message(exc)})") from exc
        path.replace(xml)
        path.with_suffix(".bin").replace(weights)


def _save_blob(core: Any, model: Any, blob: Path, options: OpenVinoBuildOptions) -> None:
    config = compile_config(options.threads, options.precision)
    try:
        compiled = core.compile_model(model, options.device, config)
        blob.write_bytes(compiled.export_model().getvalue())
    except Exception as exc:
        raise ResnetOptError(
            f"cannot compile for OpenVINO {options.device} ({ov_message(exc)})"
        ) from exc


def _gate(ran: str | None, precision: Precision) -> str:
    """Which check applies: exact-ish outputs only where f32 runs an unquantized model."""
    return "tolerance" if ran == "f32" and precision is Precision.FP32 else "top1_agreement"


def _verify(
    source: Path,
    candidate: OpenVinoRunner,
    options: OpenVinoBuildOptions,
    precision: Precision,
    contract: Any,
) -> tuple[Comparison, Feed, str | None, dict[str, Any]]:
    settings = OrtSettings(threads=options.threads, model_format=OrtFormat.of(source))
    with OnnxRuntimeRunner(SessionFromOnnx(source, settings)) as reference:
        feed = verification_feed(
            single_input(reference),
            source,
            contract,
            options.input_shape,
            options.samples,
            options.batch_size,
        )
        if options.batch is not None:  # the artifact takes whole batches of this size only
            whole = options.batch * math.ceil(feed.samples / options.batch)
            feed = Feed(options.batch, feed.sample_shape, whole)
        with candidate:
            acc = ComparisonAccumulator()
            for x in random_batches(feed.sample_shape, feed.samples, feed.batch, options.seed):
                acc.update(run_batch(reference, x), run_batch(candidate, x))
            info = candidate.info
    ran = info.precision
    gate = _gate(ran, precision)
    comparison = acc.result(options.tolerance if gate == "tolerance" else None)
    if not comparison.passed:
        raise ResnetOptError(
            f"{source.name}: OpenVINO ({ran}) differs from ONNX Runtime by up to "
            f"{comparison.max_abs_error:.3g} (tolerance {options.tolerance:g}); not written"
        )
    if gate == "top1_agreement" and comparison.top1_agreement < options.min_agreement:
        raise ResnetOptError(
            f"{source.name}: OpenVINO ({ran}) agrees with ONNX Runtime on top-1 for only "
            f"{comparison.top1_agreement:.1f}% of {comparison.samples} random inputs (minimum "
            f"{options.min_agreement:g}%; mean abs error {comparison.mean_abs_error:.3g}); not "
            "written (near-tied logits on random inputs: more --samples, or --min-agreement)"
        )
    return comparison, feed, ran, dict(info.details)


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """What `build` tells a person about an OpenVINO artifact (stderr)."""
    d, check = manifest.read_details(OvBuildDetails), manifest.verification
    form = (
        "IR (.xml + .bin, portable)"
        if d.form is OvForm.IR
        else "compiled blob (this device type and OpenVINO version only)"
    )
    hint = d.precision_hint.value if d.precision_hint is not None else "?"
    return [
        f"{output}: OpenVINO {form} for {d.device}, {manifest.precision.value} model, "
        f"float parts run in {d.inference_precision} (hint {hint})",
        f"  vs {check['reference']}: max abs error {check['max_abs_error']:.2e}, top-1 "
        f"agreement {check['top1_agreement']:.1f}% on {check['samples']} random inputs",
    ]


# -- what `run` asks of this backend (its unit names these) -----------------------------------


def builds_for(variant: QuantizeOptions | None) -> bool:
    """Whether `run` builds OpenVINO IR of the FP32 model (None) or of a [[quantize]] variant:
    the FP32 and the INT8 in TensorRT's Q/DQ layout (one INT8 file serves GPU and CPU)."""
    from resnet_opt.quantization.plan import QdqTarget

    if variant is None:
        return True
    tensorrt_layout = variant.target in (None, QdqTarget.TENSORRT)
    return variant.precision is Precision.INT8 and tensorrt_layout


def why_cannot_build() -> str | None:
    """Why this machine cannot build OpenVINO IR (None: it can), for `run` to skip the stage."""
    from resnet_opt.deps import probe

    version, why = probe("openvino")
    if version is None:
        return f"no OpenVINO ({why}); install resnet-opt[openvino]"
    return None
