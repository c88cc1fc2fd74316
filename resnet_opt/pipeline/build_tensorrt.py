"""`build --backend tensorrt`: a typed ONNX -> a plain TensorRT plan + its manifest.

The plan file is exactly what TensorRT serialized (trtexec --loadEngine reads it; no header of
ours in front); everything else about it goes into `<plan>.json`: TensorRT version, GPU and
compute capability, Jetson release, profile, precision read from the ONNX, the ONNX's sha256,
build options and the flags they became, build time, engine size, layer precisions, and the
`runner` options the TensorRT runner needs. Decisions are made by plain functions in
`resnet_opt.tensorrt` before TensorRT is called; a failure anywhere leaves no plan behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.manifest import (
    InputRef,
    Manifest,
    Precision,
    Stage,
    stage_manifest,
    write_manifest,
)
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError
from resnet_opt.jetson.facts import manifest_facts
from resnet_opt.runners.base import Backend
from resnet_opt.runners.loaders import open_stage_input
from resnet_opt.tensorrt.build_details import (
    EnginePrecision,
    EngineProfile,
    GpuIdentity,
    JetsonRelease,
    TensorRtBuildDetails,
    TimingCacheUse,
)
from resnet_opt.tensorrt.device import DeviceInfo, probe_device
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.profiles import derive_profile, profile_shapes

if TYPE_CHECKING:
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

log = logging.getLogger("resnet_opt.build")

VERIFY_SAMPLES = 16


def build_tensorrt(
    source: Path,
    output: Path,
    options: TensorRtBuildOptions,
    *,
    force: bool = False,
) -> Manifest:
    """Build a TensorRT plan of `source` at `output` (+ `output.json`) and return its manifest;
    the engine is run against the source unless `options.verify` is off."""
    from resnet_opt.runners.tensorrt import TensorRtRunnerDetails
    from resnet_opt.tensorrt.compat import host_arch
    from resnet_opt.tensorrt.dla import check_cache_matches, plan_dla
    from resnet_opt.tensorrt.network import read_network
    from resnet_opt.tensorrt.plan import plan_build
    from resnet_opt.tensorrt.timing_cache import open_timing_cache, save_timing_cache
    from resnet_opt.tensorrt.versions import capabilities

    source, output = Path(source), Path(output)
    manifest = open_stage_input(source, output, require_manifest=True).manifest
    assert manifest is not None
    facts = read_network(source, declared=manifest.precision)
    facts.check_tensorrt_layout()  # before TensorRT: its parser would not say why
    image = facts.image_input
    profile = derive_profile(image, options.batch)
    timing = (
        open_timing_cache(options.timing_cache, outputs=(output,))
        if options.timing_cache is not None
        else None
    )

    # from here on TensorRT is needed
    require("tensorrt")
    import tensorrt as trt

    caps = capabilities(trt.__version__)
    device = probe_device()
    if device.gpu_name is None:
        raise ResnetOptError(
            f"TensorRT builds on a CUDA GPU and this machine has none ({device.gpu_problem}): "
            "build on the target device"
        )
    dla = None
    network = facts
    if options.dla_core is not None:
        dla = plan_dla(
            caps,
            core=options.dla_core,
            onnx=source,
            precision=facts.precision,
            profile=profile,
            manifest=manifest,
            calib_cache=options.calib_cache,
            available_cores=device.dla_cores,
        )
        if dla.network != source:
            network = read_network(dla.network)
            if network.image_input != image:
                raise ResnetOptError(
                    f"{dla.network}: its input {network.image_input} differs from "
                    f"{source.name}'s {image}: not the source of this INT8 model"
                )
        if dla.calibration is not None:
            check_cache_matches(dla.calibration, image.name, network.tensor_names)
    spec = plan_build(
        caps,
        device=device,
        network=network.path,
        input_name=image.name,
        shapes=profile_shapes(image, profile),
        options=options,
        dla=dla,
        timing_cache=None if timing is None else timing.data,
    )

    from resnet_opt.tensorrt.builder import build_engine

    precision = dla.precision if dla is not None else facts.precision
    with staged_outputs(force=force) as staged:
        plan_tmp, manifest_tmp = staged.add_with_manifest(output)
        result = build_engine(spec)
        plan_tmp.write_bytes(result.plan)
        # its content was checked against the manifest above: no need to hash it again
        inputs = [InputRef("onnx", str(source), manifest.sha256)]
        if network.path != source:
            inputs.append(InputRef.of("network", network.path))
        if dla is not None and dla.calibration is not None:
            inputs.append(InputRef.of("calibration_cache", dla.calibration.path))
        if timing is not None and timing.existed:
            inputs.append(InputRef("timing_cache", str(timing.path), timing.sha256 or ""))
        details = TensorRtBuildDetails(
            backend=Backend.TENSORRT.value,
            tensorrt_version=str(caps.version),
            host_arch=host_arch(),  # plans do not move across CPU platforms
            gpu=GpuIdentity(
                name=device.gpu_name,
                compute_capability=device.sm,
                integrated=device.integrated,
                cuda_driver=device.cuda_driver,
                sm_count=device.sm_count,
                module=device.jetson_module,  # a Jetson's part number, e.g. p3701-0005
                power_mode=device.power_mode,  # nvpmodel's mode the tactics were timed at
            ),
            jetson=JetsonRelease(device.l4t, device.jetpack) if device.is_jetson else None,
            jetson_facts=manifest_facts(),  # module, power mode, clocks (None off a Jetson)
            profile=EngineProfile(
                input=image.name,
                batch=profile.to_dict(),
                min=tuple(spec.shapes[0]),
                opt=tuple(spec.shapes[1]),
                max=tuple(spec.shapes[2]),
            ),
            precision=EnginePrecision(
                onnx=facts.precision.value,
                qdq_nodes=facts.qdq_nodes,
                fp16_tensors=facts.fp16_tensors,
                engine=precision.value,
            ),
            build_options={**options.to_dict(), **spec.to_dict()},
            build_seconds=round(result.seconds, 3),
            engine_bytes=len(result.plan),
            layers=result.layers.to_dict(),
            dla=None if dla is None else dla.to_dict(),
            timing_cache=None
            if timing is None
            else TimingCacheUse(
                path=str(timing.path),
                existed=timing.existed,
                sha256_before=timing.sha256,
                sha256_after=None
                if result.timing_cache is None
                else hashlib.sha256(result.timing_cache).hexdigest(),
            ),
            runner=TensorRtRunnerDetails(
                input=image.name,
                outputs=tuple(o.name for o in facts.outputs),
                batch=profile.to_dict(),
                version_compatible=spec.version_compatible,
                dla_core=spec.dla_core,
            ).to_dict(),
            absent=frozenset({"engine_cache"}),  # pipeline/engine_cache adds it
        )
        built = stage_manifest(
            manifest,
            stage=Stage.BUILD,
            artifact=output,
            content=plan_tmp,
            precision=precision,
            inputs=tuple(inputs),
            options=options.to_dict(),
            verification={},
            details=details,
        )
        verification = (
            _verify(source, plan_tmp, built, device, profile.opt)
            if options.verify
            else {"skipped": "--no-verify"}
        )
        built = dataclasses.replace(built, verification=verification)
        write_manifest(manifest_tmp, built)
    if timing is not None and result.timing_cache is not None:
        try:
            save_timing_cache(timing.path, result.timing_cache)
        except ResnetOptError as exc:
            raise ResnetOptError(
                f"{output} was built, but the timing cache was not updated: {exc}"
            ) from exc
    return built


def _verify(
    source: Path, plan: Path, manifest: Manifest, device: DeviceInfo, batch: int
) -> dict[str, Any]:
    """The engine's outputs against ONNX Runtime's run of the source ONNX on random inputs.

    A report, not a gate: reduced precision on the GPU differs from the CPU by design, so the
    figures (max / mean error, top-1 agreement) are recorded for the reader and for `bench`.
    Without pycuda the engine cannot run here; the manifest says so.
    """
    from resnet_opt.deps import probe
    from resnet_opt.pipeline.verify import compare_runners, random_batches
    from resnet_opt.runners.onnxruntime import open_onnxruntime
    from resnet_opt.runners.tensorrt import open_tensorrt

    version, problem = probe("pycuda.driver")
    if version is None:
        return {"skipped": f"pycuda is not available ({problem}); the engine was not run"}
    with (
        open_onnxruntime(source) as reference,
        open_tensorrt(plan, manifest=manifest, device=device) as engine,
    ):
        spec = engine.inputs[0]
        shape = tuple(int(d) for d in spec.shape[1:] if isinstance(d, int))
        # whole batches only: a fixed profile runs no other size
        samples = batch * -(-VERIFY_SAMPLES // batch)
        comparison = compare_runners(
            reference, engine, random_batches(shape, samples, batch, seed=0)
        )
    return {"reference": "onnxruntime (source ONNX, CPU)", **comparison.to_dict()}


def summary_lines(manifest: Manifest, output: Path) -> list[str]:
    """What `build` tells a person about a TensorRT engine (stderr)."""
    details, check = manifest.read_details(TensorRtBuildDetails), manifest.verification
    gpu = details.gpu or GpuIdentity()
    batch = details.profile.batch if details.profile is not None else None
    batch_range = "?" if not batch else f"{batch['min']}:{batch['opt']}:{batch['max']}"
    core = details.dla_core
    where = f"DLA core {core} of " if core is not None else ""
    lines = [
        f"{output}: TensorRT {details.tensorrt_version} engine for {where}{gpu.name} "
        f"(sm {gpu.compute_capability}), {manifest.precision.value}, batch {batch_range}, "
        f"{(details.engine_bytes or 0) / 1e6:.1f} MB, "
        f"built in {details.build_seconds or 0:.1f} s"
    ]
    layers = details.layer_summary
    if layers is not None:
        counts = ", ".join(f"{n} {p}" for p, n in layers.precisions.items())
        dla = f" ({layers.on_dla} on DLA)" if layers.on_dla else ""
        lines.append(f"  layers: {counts}{dla}")
    if "max_abs_error" in check:
        lines.append(
            f"  vs {check['reference']}: max abs error {check['max_abs_error']:.2e}, top-1 "
            f"agreement {check['top1_agreement']:.1f}% on {check['samples']} random inputs"
        )
    elif check.get("skipped"):
        lines.append(f"  engine not run: {check['skipped']}")
    return lines


# -- what `run` asks of this backend (its unit names these) -----------------------------------


def builds_for(variant: QuantizeOptions | None) -> bool:
    """Whether `run` builds an engine of the FP32 model (None) or of a [[quantize]] variant:
    the FP32, the FP16 and the INT8 in TensorRT's Q/DQ layout."""
    from resnet_opt.quantization.plan import QdqTarget

    if variant is None:
        return True
    tensorrt_layout = variant.target in (None, QdqTarget.TENSORRT)
    return variant.precision is Precision.FP16 or tensorrt_layout


def why_cannot_build() -> str | None:
    """Why this machine cannot build an engine (None: it can), for `run` to skip the stage."""
    from resnet_opt.deps import probe
    from resnet_opt.tensorrt.device import probe_gpu

    version, why = probe("tensorrt")
    if version is None:
        return f"no TensorRT ({why}); install resnet-opt[tensorrt] on a machine with a GPU"
    gpu = probe_gpu()  # the probe build_tensorrt refuses a GPU-less machine by
    if gpu.name is None:
        return f"no CUDA GPU ({gpu.problem})"
    return None
