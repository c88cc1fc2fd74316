"""`build --backend onnxruntime`: the CPU deployment artifact, an ORT-optimized model.

ONNX Runtime optimizes a graph every time it loads one. Doing that once, offline, and saving the
result (SessionOptions.optimized_model_filepath) gives a file that loads with optimization off:
quicker start-up, and the graph that runs is the graph that was verified. Saved as ONNX or in
ORT's own flatbuffer format (.ort, what minimal/mobile builds load); either way it holds ORT's
own fused (com.microsoft) ops, so it is for ONNX Runtime only, not for OpenVINO or TensorRT.

The catch, which ORT itself warns about: level "all" adds the NCHWc memory layout, whose channel
block is 16 with AVX-512F and 8 without, so that artifact is tied to the CPU family it was built
on, like a TensorRT engine to its GPU. The default is still "all", because it is the level ORT
applies to the source at load time: anything less saved offline and loaded with optimization off
runs slower than simply loading the source (ResNet-50 saved at "extended": 1.7× the source's
median latency at batch 8 in a first, noisy measurement here).
The manifest records the CPU's flags and layout family, and the runner refuses the artifact on
another family. `portable=True` saves level "all" without the NCHWc layout (as ORT's own
convert_onnx_models_to_ort does for non-amd64 targets) and has the runner apply the layout at load
on whatever CPU runs it.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.build_details import CpuFacts
from resnet_opt.core.fields import take_choices
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    stage_manifest,
    write_manifest,
)
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, UsageError, first_line
from resnet_opt.graph import precision_of
from resnet_opt.jetson.facts import manifest_facts
from resnet_opt.pipeline.verify import (
    Comparison,
    Feed,
    check_verify_options,
    compare_on_random_inputs,
)
from resnet_opt.runners.base import Backend
from resnet_opt.runners.loaders import open_stage_input
from resnet_opt.runners.onnxruntime import (
    CPU,
    GraphOptimization,
    OnnxRuntimeRunner,
    OrtBuildDetails,
    OrtFormat,
    OrtProvider,
    OrtRunnerDetails,
    OrtSettings,
    SessionFromOnnx,
    cpu_layout,
    resolve_providers,
    session_options,
)

if TYPE_CHECKING:
    from resnet_opt.core.contract import PreprocessContract
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

NCHWC_TRANSFORMER = "NchwcTransformer"
SUFFIXES = {OrtFormat.ONNX: ".onnx", OrtFormat.ORT: ".ort"}


@dataclass(frozen=True)
class OrtBuildOptions:
    """How to build the ORT artifact and check it against its source."""

    optimization: GraphOptimization = GraphOptimization.ALL
    format: OrtFormat | None = None  # None: from the output's suffix (.onnx or .ort)
    threads: int | None = None  # intra-op threads the runner uses by default (None: ORT's)
    provider: OrtProvider = OrtProvider.CPU
    portable: bool = False  # level "all" without the CPU-family-specific NCHWc layout
    input_shape: tuple[int, ...] | None = None  # one sample, for symbolic input dims
    samples: int = 8  # random inputs compared against the source
    batch_size: int = 4
    seed: int = 0
    tolerance: float = 1e-3  # largest max-abs output difference accepted

    def __post_init__(self) -> None:
        take_choices(self)  # optimization="all" from Python, as --optimization all


def build_onnxruntime(
    source: Path, output: Path, options: OrtBuildOptions, *, force: bool = False
) -> Manifest:
    """Save `source` as an ORT-optimized model at `output`, verified against the source."""
    from resnet_opt.graph import load_onnx

    source, output = Path(source), Path(output)
    fmt = check_options(output, options)
    opened = open_stage_input(source, output)  # its sha256 is the manifest's input
    parent = opened.manifest
    model = load_onnx(source)
    providers = resolve_providers([options.provider])
    contract = parent.preprocessing if parent else None
    ort = require("onnxruntime")
    level = options.optimization
    hardware_specific = level is GraphOptimization.ALL and not options.portable
    # how SessionFromArtifact loads the artifact as built
    runner = OrtRunnerDetails(
        # the saved graph is final, except that a portable "all" build gets its layout at load
        optimization=(
            GraphOptimization.ALL
            if level is GraphOptimization.ALL and options.portable
            else GraphOptimization.DISABLED
        ),
        providers=tuple(providers),
        threads=options.threads,
        model_format=fmt,
    )
    with staged_outputs(force=force) as staged:
        tmp, tmp_manifest = staged.add_with_manifest(output)
        started = time.perf_counter()
        opts = session_options(
            threads=options.threads,
            optimization=level,
            optimized_model_path=tmp,
            saved_format=fmt,
        )
        disabled = [NCHWC_TRANSFORMER] if options.portable else []
        try:
            ort.InferenceSession(
                str(source), sess_options=opts, providers=providers, disabled_optimizers=disabled
            )
        except Exception as exc:  # ORT's own untyped errors: unsupported ops, bad graphs
            raise ResnetOptError(
                f"{source}: ONNX Runtime cannot optimize it ({first_line(exc)})"
            ) from exc
        build_seconds = time.perf_counter() - started
        if tmp.stat().st_size == 0:
            raise ResnetOptError(f"{source}: ONNX Runtime wrote no optimized model")
        comparison, feed = _verify(source, tmp, options, runner, contract)
        if not comparison.passed:
            raise ResnetOptError(
                f"{output.name}: outputs differ from {source.name} by up to "
                f"{comparison.max_abs_error:.3g} (tolerance {options.tolerance:g}); not written"
            )
        details = OrtBuildDetails(
            backend=Backend.ONNXRUNTIME.value,
            jetson_facts=manifest_facts(),  # module, power mode, clocks (None off a Jetson)
            format=fmt,
            provider=providers[0],
            providers=tuple(providers),
            optimization=level,
            portable=not hardware_specific,
            hardware_specific=hardware_specific,
            threads=options.threads,
            onnxruntime=str(ort.__version__),
            cpu=cpu_description(layout=cpu_layout()),
            build_seconds=round(build_seconds, 3),
            size_bytes=tmp.stat().st_size,
            runner=runner.to_dict(),
        )
        verification = {
            **comparison.to_dict(),
            "reference": f"{source.name} through ONNX Runtime at optimization {level.value}",
            "input_shape": [feed.batch, *feed.sample_shape],
        }
        recorded_options = {
            "optimization": level.value,
            "format": fmt.value,
            "threads": options.threads,
            "provider": options.provider.value,
            "portable": options.portable,
            "tolerance": options.tolerance,
            "samples": options.samples,
            "seed": options.seed,
        }
        manifest = stage_manifest(
            parent,
            stage=Stage.BUILD,
            artifact=output,
            content=tmp,
            precision=parent.precision if parent else precision_of(model)[0],
            inputs=(InputRef("source", str(source), opened.sha256),),
            options=recorded_options,
            verification=verification,
            details=details,
        )
        write_manifest(tmp_manifest, manifest)
    return manifest


def check_options(output: Path, options: OrtBuildOptions) -> OrtFormat:
    """Refuse contradictory or impossible options before anything is read or written (`run`
    checks its [build.onnxruntime] table with it before its first stage)."""
    by_suffix = {suffix: fmt for fmt, suffix in SUFFIXES.items()}.get(output.suffix.lower())
    if options.format is None and by_suffix is None:
        raise ResnetOptError(
            f"{output}: an ONNX Runtime artifact ends in .onnx (ORT-optimized ONNX) or .ort "
            "(ORT format)"
        )
    fmt = options.format or by_suffix
    assert fmt is not None
    if by_suffix is not fmt:
        raise ResnetOptError(
            f"{output}: the {fmt.value} format is written to a {SUFFIXES[fmt]} file (ONNX "
            "Runtime tells the formats apart by the suffix)"
        )
    if options.optimization is GraphOptimization.DISABLED:  # a choice it refuses: usage
        raise UsageError(
            "optimization 'disabled' saves the source unchanged; choose basic, extended or all"
        )
    if options.provider is OrtProvider.TENSORRT:
        raise ResnetOptError(
            "the TensorRT provider compiles the graph at load and ONNX Runtime cannot save that; "
            "build a TensorRT engine with --backend tensorrt, or load the ONNX with --provider "
            "tensorrt in bench"
        )
    if fmt is OrtFormat.ORT and options.provider is not OrtProvider.CPU:
        raise ResnetOptError("the .ort format is built for the CPU provider only")
    check_verify_options(
        threads=options.threads,
        samples=options.samples,
        batch_size=options.batch_size,
        tolerance=options.tolerance,
    )
    return fmt


def _verify(
    source: Path,
    artifact: Path,
    options: OrtBuildOptions,
    runner: OrtRunnerDetails,
    contract: PreprocessContract | None,
) -> tuple[Comparison, Feed]:
    """The artifact, loaded as the runner will load it, against the source as ORT runs it."""
    with (
        OnnxRuntimeRunner(
            SessionFromOnnx(
                source,
                OrtSettings(
                    threads=options.threads,
                    providers=runner.providers,
                    optimization=options.optimization,
                    model_format=OrtFormat.of(source),
                ),
            )
        ) as reference,
        OnnxRuntimeRunner(
            SessionFromOnnx(
                artifact,
                OrtSettings(
                    threads=options.threads,
                    providers=runner.providers,
                    optimization=runner.optimization or GraphOptimization.DISABLED,
                    model_format=runner.model_format or OrtFormat.of(artifact),
                ),
            )
        ) as candidate,
    ):
        return compare_on_random_inputs(
            reference,
            candidate,
            source,
            contract,
            input_shape=options.input_shape,
            samples=options.samples,
            batch_size=options.batch_size,
            seed=options.seed,
            tolerance=options.tolerance,
        )


def cpu_description(*, layout: str | None) -> CpuFacts:
    """The CPU facts a CPU artifact's speed and portability depend on, for its manifest."""
    from resnet_opt.environment import cpu_int8_family, cpu_model, relevant_cpu_flags

    return CpuFacts(
        model=cpu_model(),
        arch=platform.machine(),
        flags=tuple(relevant_cpu_flags()),
        layout=layout,
        int8_family=cpu_int8_family().value,
    )


__all__ = [
    "CPU",
    "OrtBuildOptions",
    "OrtFormat",
    "OrtProvider",
    "build_onnxruntime",
    "cpu_description",
]


def builds_for(variant: QuantizeOptions | None) -> bool:
    """Whether `run` builds an ORT artifact of the FP32 model (None) or of a [[quantize]]
    variant: the FP32 and the INT8 in the CPU's Q/DQ layout (its unit names this rule)."""
    from resnet_opt.quantization.plan import QdqTarget

    if variant is None:
        return True
    return variant.precision is Precision.INT8 and variant.target is QdqTarget.CPU


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """What `build` tells a person about an ONNX Runtime artifact (stderr)."""
    d, check = manifest.read_details(OrtBuildDetails), manifest.verification
    runner = OrtRunnerDetails.from_dict(d.runner or {}, source=output.name)
    loads = runner.optimization.value if runner.optimization else GraphOptimization.ALL.value
    layout = d.cpu.layout if d.cpu is not None else None
    tied = f"NCHWc layout for {layout} CPUs only" if d.hardware_specific else "portable"
    size = d.size_bytes or 0
    return [
        f"{output}: ONNX Runtime {_value(d.format)} artifact, {manifest.precision.value}, "
        f"optimization {_value(d.optimization)} ({tied}), {d.provider}, "
        f"{size / 1e6:.1f} MB; loads with optimization {loads}",
        f"  vs {check['reference']}: max abs error {check['max_abs_error']:.2e}, top-1 "
        f"agreement {check['top1_agreement']:.1f}% on {check['samples']} random inputs",
    ]


def _value(choice: OrtFormat | GraphOptimization | None) -> str:
    return "?" if choice is None else choice.value
