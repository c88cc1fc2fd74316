"""The thin layer of TensorRT calls that builds a plan from a `BuildSpec`.

Nothing is decided here: `plan.plan_build` chose every flag. This module executes the spec in
TensorRT's order (builder, network, parser, config, profile, calibrator, DLA, timing cache,
build, inspector) and turns TensorRT's failures into one-line errors. mypy checks it against
the tensorrt-stubs package (TensorRT 10.13's API); tests run it against a recording double, and
`gpu`-marked tests against the real TensorRT.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resnet_opt.calibration.tensorrt_cache import CalibrationAlgorithm
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line
from resnet_opt.tensorrt.dla import CalibrationCache
from resnet_opt.tensorrt.inspector import LayerReport, summarize_layers
from resnet_opt.tensorrt.logger import Recorder, process_logger
from resnet_opt.tensorrt.plan import BuildSpec
from resnet_opt.tensorrt.versions import HardwareCompat

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger("resnet_opt.tensorrt")


@dataclass(frozen=True)
class BuildOutput:
    plan: bytes
    timing_cache: bytes | None
    layers: LayerReport
    seconds: float


def make_cache_calibrator(cache: CalibrationCache) -> trt.IInt8EntropyCalibrator2:
    """An IInt8EntropyCalibrator2 that only replays `cache` (TensorRT 10, implicit INT8 for DLA).

    DLA takes this calibrator kind only (`dla.check_dla_calibrator` refused other caches), and
    TensorRT reads a cache only through a calibrator of the algorithm its header names. It
    implements exactly the four methods IInt8EntropyCalibrator2 leaves to Python (the legacy
    calibrator's quantile and histogram methods do not apply). It never hands out batches: with
    a matching cache TensorRT does not ask, and if it did (a cache it rejected) the build fails
    instead of calibrating on nothing.
    """
    import tensorrt as trt

    if cache.algorithm is not CalibrationAlgorithm.ENTROPY_2:
        raise ResnetOptError(f"{cache.path}: not an EntropyCalibration2 cache")
    raw = cache.raw

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.asked_for_batches = False

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int]:
            self.asked_for_batches = True
            return []

        def read_calibration_cache(self) -> bytes:
            return raw

        def write_calibration_cache(self, cache: bytes) -> None:
            return None

    return CacheCalibrator()


def _parser_error(parser: trt.OnnxParser, onnx_name: str) -> ResnetOptError:
    parts = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = err.node_name() or str(err.node())
        parts.append(f"{err.desc()} (node {node})" if node not in ("", "-1") else err.desc())
    detail = "; ".join(parts[:2]) + ("; …" if len(parts) > 2 else "")
    return ResnetOptError(
        f"{onnx_name}: TensorRT's ONNX parser refused it: {detail or 'no detail'}"
    )


def _use_timing_cache(
    config: trt.IBuilderConfig, data: bytes, recorder: Recorder, since: int
) -> trt.ITimingCache:
    """Load `--timing-cache` into `config`, or refuse it with the reason, leaving the file as is.

    A cache from another TensorRT version or a damaged file makes `create_timing_cache` raise
    or return None (Polygraphy guards both); one from another GPU loads, and
    `set_timing_cache(cache, ignore_mismatch=False)` refuses it. None of these may turn into an
    empty cache that the build would then write over the user's file.
    """
    what = "the file" if data else "a new timing cache"
    try:
        cache = config.create_timing_cache(data)
    except Exception as exc:  # the Python bindings raise for some unreadable caches
        cache, why = None, first_line(exc)
    else:
        why = recorder.last("no message", since)
    if cache is None:
        if not data:
            raise ResnetOptError(f"--timing-cache: TensorRT could not create {what} ({why})")
        raise ResnetOptError(
            f"--timing-cache: TensorRT could not read {what} ({why}): it was written by another "
            "TensorRT version or is damaged; it was left unchanged: delete it or give another path"
        )
    if not config.set_timing_cache(cache, False):
        raise ResnetOptError(
            "--timing-cache: TensorRT rejected the file (made on another GPU or TensorRT "
            "version?): delete it or give another path"
        )
    return cache


def _updated_timing_cache(config: trt.IBuilderConfig) -> bytes | None:
    """The timing cache after the build, or None (not written back) when TensorRT has none."""
    cache = config.get_timing_cache()
    if cache is None:
        log.warning("TensorRT returned no timing cache after the build; the file is not updated")
        return None
    data = bytes(cache.serialize())
    return data or None


def build_engine(spec: BuildSpec) -> BuildOutput:
    """Run TensorRT's builder on `spec.network` as `spec` says; return the serialized plan."""
    require("tensorrt")
    import tensorrt as trt

    logger, recorder = process_logger()
    since = recorder.mark()
    builder = trt.Builder(logger)
    flags = 0
    for name in spec.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.network)):
        raise _parser_error(parser, spec.network.name)

    config = builder.create_builder_config()
    if spec.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_bytes)
    if spec.opt_level is not None:
        config.builder_optimization_level = spec.opt_level
    for name in spec.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    level = trt.HardwareCompatibilityLevel
    if spec.hardware_compat is HardwareCompat.AMPERE_PLUS:
        config.hardware_compatibility_level = level.AMPERE_PLUS
    elif spec.hardware_compat is HardwareCompat.SAME_COMPUTE_CAPABILITY:
        # TensorRT 10.9+ only: plan_build refuses it on older versions
        config.hardware_compatibility_level = level.SAME_COMPUTE_CAPABILITY
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED

    profile = builder.create_optimization_profile()
    lo, opt, hi = spec.shapes
    profile.set_shape(spec.input_name, trt.Dims(list(lo)), trt.Dims(list(opt)), trt.Dims(list(hi)))
    if config.add_optimization_profile(profile) < 0:
        raise ResnetOptError(
            f"TensorRT refused the profile {lo}..{hi} for input {spec.input_name!r}: "
            + recorder.last("invalid profile", since)
        )
    calibrator = None
    if spec.calibration is not None:
        # TensorRT 10 only (implicit INT8 for DLA); the plan never asks for it on 11.x
        calibrator = make_cache_calibrator(spec.calibration)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    if spec.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = spec.dla_core

    cache = None
    if spec.timing_cache is not None:
        cache = _use_timing_cache(config, spec.timing_cache, recorder, since)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        if calibrator is not None and getattr(calibrator, "asked_for_batches", False):
            raise ResnetOptError(
                f"{spec.calibration.path if spec.calibration else 'calibration cache'}: TensorRT "
                "did not accept the calibration cache and asked for calibration data"
            )
        raise ResnetOptError(
            "TensorRT could not build the engine: " + recorder.last("no error message", since)
        )
    plan = bytes(serialized)
    updated = _updated_timing_cache(config) if cache is not None else None
    layers = inspect_plan(plan, logger, spec)
    return BuildOutput(
        plan=plan,
        timing_cache=updated,
        layers=layers,
        seconds=seconds,
    )


def inspect_plan(plan: bytes, logger: trt.ILogger, spec: BuildSpec) -> LayerReport:
    """Layer precisions of the fresh plan; a failure here never fails the build."""
    import tensorrt as trt

    try:
        runtime = trt.Runtime(logger)
        if spec.version_compatible:
            runtime.engine_host_code_allowed = True
        if spec.dla_core is not None:
            runtime.DLA_core = spec.dla_core
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            return LayerReport(False, "the plan did not deserialize for inspection")
        inspector = engine.create_engine_inspector()
        text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    except Exception as exc:  # inspection is a report, not a requirement
        return LayerReport(False, f"inspector failed ({type(exc).__name__}: {exc})")
    return summarize_layers(text)
