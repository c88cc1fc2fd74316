"""A fake `tensorrt` module with the API surface of one TensorRT version (10.x or 11.x).

Members that a version does not have are absent (TensorRT 11 has no BuilderFlag.FP16, no
IInt8Calibrator, ...), so code that touches them on 11.x fails here as it would there. It
refuses what TensorRT refuses, logging an error and returning None (or raising) where TensorRT
does:
- parser: ops without an importer; Q/DQ that onnx-tensorrt refuses (uint8 or non-zero zero
  points, non-constant or non-positive scales, per-channel scale counts other than the axis
  size, DequantizeLinear of int32 data);
- builder: a dynamic input without a profile, precision flags on a strongly typed network, Q/DQ
  on a weakly typed network without the INT8 flag, implicit INT8 without a calibrator, a
  calibrator missing a pure-virtual method, a calibration cache of another algorithm than its
  calibrator's, a DLA build without FP16/INT8 (10.x) or with an FP32 network (11.x), a DLA
  core out of range, DLA with a dynamic profile, a DLA calibrator other than
  IInt8EntropyCalibrator2, a hardware-compatibility level below its GPU floor (Ampere+: sm 8.0,
  same compute capability: sm 7.5);
- timing caches: a damaged file raises, one of another TensorRT version gives None (logged),
  one of another GPU loads and `set_timing_cache(.., False)` refuses it;
- one logger per process: the first logger given to a Builder, Runtime or parser gets every
  message, a later one only a warning;
- runtime: plans of another TensorRT (unless version-compatible), of another CPU platform, or
  of another DLA core; an execution context enqueued under CUDA graph capture right after an
  input shape change (TensorRT's setup is not capturable), or holding uncapturable work
  (`FakeGpu.uncapturable`), fails and invalidates the capture; a graph replayed after its
  context's shape changed is an error (the real one would compute with stale state).

Deliberate differences: a built "plan" is a JSON header plus the ONNX bytes, and its engine runs
that ONNX with ONNX Runtime, so the runner's data path (pinned copies, addresses, shapes) is
checked against real outputs; a timing cache is a text header plus lines; the inspector JSON has
the real keys and layer kinds (a Myelin `{ForeignNode[...]}` on the GPU, a DLA subgraph of type
"DLA") but invented layer lists; error messages paraphrase TensorRT's.
"""

from __future__ import annotations

import importlib.machinery
import json
import types
from pathlib import Path
from typing import Any

import numpy as np

from tests.fakes.fake_gpu import FakeGpu

ACTIVATION_BYTES = 1 << 16  # the double's engines' activation memory (device_memory_size_v2)

PLAN_MAGIC = b"FAKE-TRT-PLAN\n"
SUPPORTED_OPS = frozenset(
    {
        "Conv",
        "Relu",
        "Add",
        "GlobalAveragePool",
        "AveragePool",
        "MaxPool",
        "Flatten",
        "Gemm",
        "MatMul",
        "QuantizeLinear",
        "DequantizeLinear",
        "Cast",
        "Reshape",
        "Identity",
        "BatchNormalization",
        "Constant",
        "Concat",
        "Mul",
        "Sub",
        "Div",
        "Softmax",
        "Clip",
    }
)


# the algorithm each calibrator base reports, as it appears in a calibration cache's header
CALIBRATOR_ALGORITHMS = {
    "IInt8EntropyCalibrator2": "EntropyCalibration2",
    "IInt8EntropyCalibrator": "EntropyCalibration",
    "IInt8MinMaxCalibrator": "MinMaxCalibration",
    "IInt8LegacyCalibrator": "LegacyCalibration",
}
_CALIBRATOR_METHODS = (
    "get_batch_size",
    "get_batch",
    "read_calibration_cache",
    "write_calibration_cache",
)
# the methods a Python calibrator must implement (pure virtual in TensorRT's C++ classes)
PURE_VIRTUAL = {
    **dict.fromkeys(CALIBRATOR_ALGORITHMS, _CALIBRATOR_METHODS),
    "IInt8LegacyCalibrator": (
        *_CALIBRATOR_METHODS,
        "get_quantile",
        "get_regression_cutoff",
        "read_histogram_cache",
        "write_histogram_cache",
    ),
}


def _version(text: str) -> tuple[int, int, int]:
    parts = [*(int(p) for p in text.split(".")[:3]), 0, 0, 0]
    return parts[0], parts[1], parts[2]


class _Enum:
    """An enum-like member with .name/.value as TensorRT's pybind enums have."""

    def __init__(self, owner: str, name: str, value: int) -> None:
        self.name, self.value, self._owner = name, value, owner

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"<{self._owner}.{self.name}: {self.value}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Enum) and (other._owner, other.value) == (self._owner, self.value)

    def __hash__(self) -> int:
        return hash((self._owner, self.value))


def _enum(owner: str, names: list[str] | dict[str, int]) -> Any:
    values = names if isinstance(names, dict) else {n: i for i, n in enumerate(names)}
    members = {n: _Enum(owner, n, v) for n, v in values.items()}
    cls = type(owner, (), dict(members))
    cls.__members__ = members  # type: ignore[attr-defined]
    return cls


def make_module(gpu: FakeGpu) -> types.ModuleType:
    version = _version(gpu.tensorrt_version)
    ten = version[0] == 10
    trt = types.ModuleType("tensorrt")
    trt.__file__ = __file__
    # a spec as an installed module has, so that find_spec-based checks see TensorRT
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin=__file__)
    trt.__version__ = gpu.tensorrt_version  # type: ignore[attr-defined]

    severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    class ILogger:
        Severity = severity
        ERROR = severity.ERROR
        WARNING = severity.WARNING
        INFO = severity.INFO

        def __init__(self, min_severity: Any = None) -> None:
            self.initialized = True

        def log(self, severity: Any, msg: str) -> None:  # overridden by users
            pass

    class Logger(ILogger):
        pass

    # TensorRT keeps ONE logger per process: the first one handed to a Builder, Runtime or
    # parser. A later, different logger is ignored with a warning, and every message keeps
    # going to the first (here: for the life of this fake module, i.e. one test's "process").
    first_logger: list[Any] = []

    def adopt(logger: Any) -> None:
        assert getattr(logger, "initialized", False), "ILogger.__init__ was not called"
        if not first_logger:
            first_logger.append(logger)
        elif logger is not first_logger[0]:
            first_logger[0].log(
                severity.WARNING,
                "The logger passed into createInferRuntime differs from one already provided "
                "for an existing builder, runtime, or refitter. Uses of the global logger, "
                "returned by nvinfer1::getLogger(), will return the existing value.",
            )

    def emit(logger: Any, sev: str, msg: str) -> None:
        first_logger[0].log(getattr(severity, sev), msg)

    flag_names = [
        "GPU_FALLBACK",
        "REFIT",
        "DEBUG",
        "DISABLE_TIMING_CACHE",
        "TF32",
        "VERSION_COMPATIBLE",
        "EXCLUDE_LEAN_RUNTIME",
        "STRICT_NANS",
    ]
    if ten:
        flag_names += [
            "FP16",
            "INT8",
            "BF16",
            "FP8",
            "OBEY_PRECISION_CONSTRAINTS",
            "PREFER_PRECISION_CONSTRAINTS",
            "DIRECT_IO",
        ]
    builder_flag = _enum("BuilderFlag", flag_names)
    net_flags = {"STRONGLY_TYPED": 1} if not ten else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    network_flag = _enum("NetworkDefinitionCreationFlag", net_flags)
    levels = ["NONE", "AMPERE_PLUS"] + (
        ["SAME_COMPUTE_CAPABILITY"] if version >= (10, 9, 0) else []
    )
    hw_level = _enum("HardwareCompatibilityLevel", levels)
    memory_pool = _enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM"])
    device_type = _enum("DeviceType", ["GPU", "DLA"])
    verbosity = _enum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"])
    info_format = _enum("LayerInformationFormat", ["ONELINE", "JSON"])
    io_mode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    allocation = _enum(
        "ExecutionContextAllocationStrategy", ["STATIC", "ON_PROFILE_CHANGE", "USER_MANAGED"]
    )
    data_type = _enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "INT64"])

    class Dims(tuple[int, ...]):  # the real Dims behaves like a tuple
        def __new__(cls, shape: list[int] | tuple[int, ...] = ()) -> Dims:
            return super().__new__(cls, (int(d) for d in shape))

    def as_dims(value: Any) -> Dims:
        return value if isinstance(value, Dims) else Dims(list(value))

    # ----- network and parser ------------------------------------------------------------
    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.strongly_typed = (not ten) or bool(flags & (1 << 1))
            self.inputs: list[tuple[str, tuple[int, ...], str]] = []
            self.outputs: list[tuple[str, tuple[int, ...], str]] = []
            self.num_layers = 0
            self.qdq = False
            self.fp16 = False
            self.onnx: bytes = b""

    class ParserError:
        def __init__(self, desc: str, node: int, node_name: str) -> None:
            self._desc, self._node, self._name = desc, node, node_name

        def desc(self) -> str:
            return self._desc

        def node(self) -> int:
            return self._node

        def node_name(self) -> str:
            return self._name

    def qdq_errors(proto: Any) -> list[ParserError]:
        """What onnx-tensorrt's QuantizeLinear/DequantizeLinear importer refuses (messages
        paraphrased from its assertions): a zero point that is not INT8 (u8 Q/DQ) or not all
        zeros, a scale that is not a constant or not all positive, a per-channel scale whose
        count is not the size of the quantized axis, and a DequantizeLinear of INT32 data
        (the CPU layout's bias)."""
        from onnx import numpy_helper

        consts = {t.name: t for t in proto.graph.initializer}
        for node in proto.graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        consts[node.output[0]] = attr.t
        shapes = {
            v.name: [
                d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim
            ]
            for v in [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]
        }
        errors: list[ParserError] = []
        for i, node in enumerate(proto.graph.node):
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                continue

            def refuse(msg: str, i: int = i, node: Any = node) -> None:
                errors.append(ParserError(f"{node.op_type}: {msg}", i, node.name))

            data, scale_name = node.input[0], node.input[1]
            int32 = data in consts and consts[data].data_type == 6
            if node.op_type == "DequantizeLinear" and int32:
                refuse("INT32 input is not supported (only INT8/FP8/INT4 are dequantized)")
                continue
            if scale_name not in consts:
                refuse("the scale must be an initializer or a Constant (non-constant scale)")
                continue
            scale = numpy_helper.to_array(consts[scale_name]).astype("float64").reshape(-1)
            if not (scale > 0).all() or not np.isfinite(scale).all():
                refuse("Scale coefficients must all be positive")
            if len(node.input) > 2 and node.input[2]:
                zp = consts.get(node.input[2])
                if zp is None:
                    refuse("the zero point must be a constant")
                elif zp.data_type != 3:  # INT8
                    refuse("TensorRT only supports INT8 zero points (got a UINT8 zero point)")
                elif numpy_helper.to_array(zp).any():
                    refuse(
                        "TensorRT only supports symmetric quantization: the zero point must be "
                        "all zeros"
                    )
            if scale.size > 1:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                dims = list(consts[data].dims) if data in consts else shapes.get(data) or []
                known = bool(dims) and -len(dims) <= axis < len(dims) and dims[axis] > 0
                if known and scale.size != dims[axis]:
                    refuse(
                        f"The number of scales ({scale.size}) is not equal to the number "
                        f"of channels ({dims[axis]}) of axis {axis}"
                    )
        return errors

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            gpu.record("OnnxParser", network=id(network))
            adopt(logger)
            self.network, self.logger = network, logger
            self.errors: list[ParserError] = []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> ParserError:
            return self.errors[index]

        def parse_from_file(self, model: str) -> bool:
            import onnx

            gpu.record("OnnxParser.parse_from_file", path=model)
            try:
                proto = onnx.load(model)
            except Exception as exc:
                self.errors.append(ParserError(f"failed to parse ONNX: {exc}", -1, ""))
                return False
            for i, node in enumerate(proto.graph.node):
                if node.op_type not in SUPPORTED_OPS:
                    self.errors.append(
                        ParserError(f"No importer registered for op: {node.op_type}", i, node.name)
                    )
            if self.errors:
                return False
            self.errors = qdq_errors(proto)
            if self.errors:
                return False
            inits = {t.name for t in proto.graph.initializer}

            def info(v: Any) -> tuple[str, tuple[int, ...], str]:
                dims = tuple(
                    d.dim_value if d.HasField("dim_value") else -1
                    for d in v.type.tensor_type.shape.dim
                )
                dt = "HALF" if v.type.tensor_type.elem_type == 10 else "FLOAT"
                return v.name, dims, dt

            net = self.network
            net.inputs = [info(v) for v in proto.graph.input if v.name not in inits]
            net.outputs = [info(v) for v in proto.graph.output]
            net.num_layers = len(proto.graph.node)
            net.qdq = any(
                n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node
            )
            net.fp16 = any(t.data_type == 10 for t in proto.graph.initializer) or any(
                dt == "HALF" for _, _, dt in net.inputs
            )
            net.onnx = Path(model).read_bytes()
            return True

    # ----- config, profile, timing cache -------------------------------------------------
    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[Dims, Dims, Dims]] = {}

        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            assert all(isinstance(d, Dims) for d in (min, opt, max)), "set_shape takes Dims"
            gpu.record(
                "IOptimizationProfile.set_shape",
                input=input,
                min=tuple(min),
                opt=tuple(opt),
                max=tuple(max),
            )
            if not all(a <= b <= c for a, b, c in zip(min, opt, max, strict=True)):
                raise ValueError("min <= opt <= max violated")
            self.shapes[input] = (as_dims(min), as_dims(opt), as_dims(max))

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.entries: list[str] = []
            self.foreign = False
            if data:
                text = data.decode("utf-8", "replace")
                head, _, rest = text.partition("\n")
                # another GPU, same TensorRT: loads; set_timing_cache(.., False) refuses it
                self.foreign = head != f"FAKE-TIMING {gpu.tensorrt_version} {gpu.gpu_name}"
                self.entries = [e for e in rest.split("\n") if e]

        def serialize(self) -> bytes:
            head = f"FAKE-TIMING {gpu.tensorrt_version} {gpu.gpu_name}"
            return "\n".join([head, *self.entries]).encode()

    def _prop(name: str, attr: str) -> property:
        """A recorded IBuilderConfig attribute."""

        def get(self: Any) -> Any:
            return getattr(self, attr)

        def set_(self: Any, value: Any) -> None:
            gpu.record(f"IBuilderConfig.{name}", value=getattr(value, "name", value))
            setattr(self, attr, value)

        return property(get, set_)

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags: set[str] = set()
            self.pools: dict[str, int] = {}
            self.profiles: list[OptimizationProfile] = []
            self.timing_cache: TimingCache | None = None
            self._default_device = device_type.GPU
            self._dla_core = -1
            self._opt_level = 3
            self._hw = hw_level.NONE
            self._verbosity = verbosity.LAYER_NAMES_ONLY
            self.calibrator: Any = None
            self.calibration_profile: Any = None

        def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
            gpu.record("IBuilderConfig.set_memory_pool_limit", pool=pool.name, size=pool_size)
            self.pools[pool.name] = pool_size

        def set_flag(self, flag: Any) -> None:
            gpu.record("IBuilderConfig.set_flag", flag=flag.name)
            self.flags.add(flag.name)

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            gpu.record("IBuilderConfig.add_optimization_profile")
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, serialized_timing_cache: bytes) -> TimingCache | None:
            """TensorRT's failure modes, as Polygraphy guards them: a damaged file makes the
            binding raise; a cache of another TensorRT version is logged and gives None."""
            data = bytes(serialized_timing_cache)
            gpu.record("IBuilderConfig.create_timing_cache", nbytes=len(data))
            if data and not data.startswith(b"FAKE-TIMING "):
                raise RuntimeError("Deserialization of the timing cache failed: invalid magic tag")
            if data:
                version = data.split(b"\n", 1)[0].split(b" ")[1].decode()
                if version != gpu.tensorrt_version:
                    emit(
                        first_logger[0],
                        "ERROR",
                        f"Timing cache version mismatch: file {version}, "
                        f"TensorRT {gpu.tensorrt_version}",
                    )
                    return None
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            gpu.record("IBuilderConfig.set_timing_cache", ignore_mismatch=ignore_mismatch)
            if cache.foreign and not ignore_mismatch:
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            gpu.record("IBuilderConfig.get_timing_cache")
            assert self.timing_cache is not None
            return self.timing_cache

        default_device_type = _prop("default_device_type", "_default_device")
        DLA_core = _prop("DLA_core", "_dla_core")
        builder_optimization_level = _prop("builder_optimization_level", "_opt_level")
        hardware_compatibility_level = _prop("hardware_compatibility_level", "_hw")
        profiling_verbosity = _prop("profiling_verbosity", "_verbosity")

    if ten:

        def _int8_calibrator_get(self: Any) -> Any:
            return self.calibrator

        def _int8_calibrator_set(self: Any, value: Any) -> None:
            gpu.record("IBuilderConfig.int8_calibrator", value=type(value).__mro__[1].__name__)
            self.calibrator = value

        def set_calibration_profile(self: Any, profile: Any) -> bool:
            gpu.record("IBuilderConfig.set_calibration_profile")
            self.calibration_profile = profile
            return True

        BuilderConfig.int8_calibrator = property(_int8_calibrator_get, _int8_calibrator_set)  # type: ignore[attr-defined]
        BuilderConfig.set_calibration_profile = set_calibration_profile  # type: ignore[attr-defined]

    class HostMemory:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __bytes__(self) -> bytes:
            return self.data

        @property
        def nbytes(self) -> int:
            return len(self.data)

    # ----- builder ----------------------------------------------------------------------
    class Builder:
        def __init__(self, logger: Any) -> None:
            gpu.record("Builder", logger=type(logger).__name__)
            adopt(logger)
            self.logger = logger

        @property
        def num_DLA_cores(self) -> int:  # noqa: N802
            return gpu.dla_cores

        def create_network(self, flags: int = 0) -> Network:
            gpu.record("Builder.create_network", flags=flags)
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            gpu.record("Builder.create_builder_config")
            return BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            gpu.record("Builder.create_optimization_profile")
            return OptimizationProfile()

        def _fail(self, msg: str) -> None:
            emit(self.logger, "ERROR", msg)

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> Any:
            gpu.record("Builder.build_serialized_network", flags=sorted(config.flags))
            if not network.inputs:
                self._fail("network has no inputs (was it parsed?)")
                return None
            precision_flags = {"FP16", "INT8", "BF16", "FP8"} & config.flags
            if network.strongly_typed and precision_flags:
                self._fail(f"precision flags {sorted(precision_flags)} on a strongly typed network")
                return None
            if not network.strongly_typed and network.qdq and "INT8" not in config.flags:
                self._fail("Q/DQ nodes in a weakly typed network need BuilderFlag.INT8")
                return None
            implicit = "INT8" in config.flags and not network.qdq
            if implicit and config.calibrator is None:
                self._fail("INT8 without Q/DQ needs a calibrator (no dynamic ranges)")
                return None
            for name, dims, _ in network.inputs:
                if any(d < 0 for d in dims):
                    covering = [p for p in config.profiles if name in p.shapes]
                    if not covering:
                        self._fail(f"input {name} has dynamic dims {dims} and no profile")
                        return None
                    lo, _, hi = covering[0].shapes[name]
                    fixed_ok = all(d < 0 or (lo[i] == d == hi[i]) for i, d in enumerate(dims))
                    if not fixed_ok:
                        self._fail(f"profile {lo}..{hi} contradicts the fixed dims {dims}")
                        return None
            floors = {"AMPERE_PLUS": (8, 0), "SAME_COMPUTE_CAPABILITY": (7, 5)}
            hw = config.hardware_compatibility_level.name
            if hw in floors and gpu.compute_capability < floors[hw]:
                self._fail(
                    f"hardware compatibility level {hw} needs sm >= "
                    f"{floors[hw][0]}.{floors[hw][1]}; this GPU is sm "
                    f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}"
                )
                return None
            dla = config.default_device_type == device_type.DLA
            if dla:
                if not 0 <= config.DLA_core < gpu.dla_cores:
                    self._fail(f"DLA core {config.DLA_core} of {gpu.dla_cores}")
                    return None
                for name, (lo, _, hi) in (
                    config.profiles[0].shapes.items() if config.profiles else []
                ):
                    if tuple(lo) != tuple(hi):
                        self._fail(f"DLA supports only static shapes: {name} has {lo}..{hi}")
                        return None
                if ten and not ({"FP16", "INT8"} & config.flags):
                    self._fail("DLA needs FP16 or INT8 (TensorRT 10)")
                    return None
                if not ten and not (network.qdq or network.fp16):
                    self._fail("DLA has no FP32 (strongly typed network is FP32)")
                    return None
                if implicit and config.calibration_profile is None:
                    self._fail("implicit INT8 with a dynamic profile needs a calibration profile")
                    return None
            if implicit:
                calibrator = config.calibrator
                kind = next(
                    k for k in type(calibrator).__mro__ if k.__name__ in CALIBRATOR_ALGORITHMS
                ).__name__
                missing = [
                    m for m in PURE_VIRTUAL[kind] if not callable(getattr(calibrator, m, None))
                ]
                if missing:  # pybind11: "Tried to call pure virtual function"
                    raise RuntimeError(
                        f'Tried to call pure virtual function "{kind}::{missing[0]}"'
                    )
                if dla and kind != "IInt8EntropyCalibrator2":
                    self._fail(f"DLA INT8 calibration needs IInt8EntropyCalibrator2, not {kind}")
                    return None
                raw = bytes(calibrator.read_calibration_cache())
                head = raw.split(b"\n", 1)[0].decode("ascii", "replace")
                if not (head.startswith("TRT-") and head.endswith(CALIBRATOR_ALGORITHMS[kind])):
                    # TensorRT ignores a cache of another algorithm and asks for data
                    calibrator.get_batch(["input"])
                    self._fail("calibration cache not usable and no calibration data")
                    return None
            if config.timing_cache is not None:
                config.timing_cache.entries.append(f"tactics for {network.num_layers} layers")
            profile = config.profiles[0].shapes if config.profiles else {}
            header = {
                "version": gpu.tensorrt_version,
                "gpu": gpu.gpu_name,
                "host_arch": gpu.host_arch,
                "version_compatible": "VERSION_COMPATIBLE" in config.flags,
                "dla_core": config.DLA_core if dla else None,
                "inputs": network.inputs,
                "outputs": network.outputs,
                "profile": {k: [list(d) for d in v] for k, v in profile.items()},
                "detailed": config.profiling_verbosity == verbosity.DETAILED,
                "int8": bool(network.qdq or implicit),
                "fp16": bool(network.fp16 or "FP16" in config.flags),
            }
            blob = json.dumps(header).encode()
            plan = PLAN_MAGIC + len(blob).to_bytes(4, "little") + blob + network.onnx
            gpu.plans.append(plan)
            return HostMemory(plan)

    # ----- runtime, engine, context ------------------------------------------------------
    class Inspector:
        def __init__(self, header: dict[str, Any]) -> None:
            self.header = header

        def get_engine_information(self, format: Any) -> str:
            gpu.record("EngineInspector.get_engine_information", format=format.name)
            if not self.header["detailed"]:
                return json.dumps({"Layers": ["layer0", "layer1"], "Bindings": []})
            kind = "Int8" if self.header["int8"] else "Half" if self.header["fp16"] else "Float"
            if ten:
                out = {"Format/Datatype": f"Channel major {kind} format"}
                fp32 = {"Format/Datatype": "Row major linear FP32"}
            else:
                out = {"Format": "Channel major", "DataType": kind}
                fp32 = {"Format": "Row major linear", "DataType": "FP32"}
            if self.header["dla_core"] is not None:
                # a DLA engine: one DLA subgraph between the reformats to and from its memory
                # (`Layer(DLA): {ForeignNode[...]}` in TensorRT's build log)
                layers = [
                    {"Name": "input to nvm", "LayerType": "Reformat", "Outputs": [out]},
                    {"Name": "{ForeignNode[conv...fc]}", "LayerType": "DLA", "Outputs": [out]},
                    {"Name": "logits from nvm", "LayerType": "Reformat", "Outputs": [fp32]},
                ]
            else:
                # a GPU engine; Myelin compiles the head into a subgraph named like a DLA one
                layers = [
                    {"Name": "conv + relu", "LayerType": "CaskConvolution", "Outputs": [out]},
                    {"Name": "pool", "LayerType": "CaskPooling", "Outputs": [out]},
                    {
                        "Name": "{ForeignNode[/flatten/Flatten.../fc/Gemm]}",
                        "LayerType": "Myelin",
                        "Outputs": [fp32],
                    },
                ]
            if ten:
                return json.dumps({"Layers": layers, "Bindings": ["input", "logits"]})
            # TensorRT 11: objects, not names
            io = [
                {
                    "Name": name,
                    "Location": "Device",
                    "Dimensions": list(dims),
                    "Format": "Row major linear",
                    "DataType": "FP16" if dt == "HALF" else "FP32",
                }
                for name, dims, dt in self.header["inputs"] + self.header["outputs"]
            ]
            return json.dumps({"Layers": layers, "I/O Tensors": io})

    class ExecutionContext:
        user_memory: int | None  # USER_MANAGED: set_device_memory's buffer

        def __init__(self, engine: Engine, *, user_managed: bool = False) -> None:
            self.engine = engine
            self.user_managed = user_managed
            self.user_memory = None
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.sessions: dict[str, Any] = {}
            self.shape_version = 0
            self.flushed = False

        def set_input_shape(self, name: str, shape: Any) -> bool:
            gpu.record("IExecutionContext.set_input_shape", name=name, shape=tuple(shape))
            lo, _, hi = self.engine.profile_dims(name)
            ok = len(shape) == len(lo) and all(
                a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)
            )
            if not ok:
                emit(self.engine.logger, "ERROR", f"shape {tuple(shape)} outside {lo}..{hi}")
                return False
            new = tuple(int(s) for s in shape)
            if self.shapes.get(name) != new:
                self.shapes[name] = new
                self.shape_version += 1  # the next enqueue does host-side setup: not capturable
                self.flushed = False
            return True

        def get_tensor_shape(self, name: str) -> Dims:
            if name in self.shapes:
                return Dims(list(self.shapes[name]))
            batch = next(iter(self.shapes.values()), (-1,))[0]
            _, dims, _ = self.engine.tensor(name)
            return Dims([batch if d < 0 else d for d in dims])

        def set_tensor_address(self, name: str, memory: int) -> bool:
            gpu.record("IExecutionContext.set_tensor_address", name=name, address=memory)
            self.engine.tensor(name)
            assert memory in gpu.memory, "address is not a device allocation"
            self.addresses[name] = memory
            return True

        def set_device_memory(self, memory: int, size: int) -> None:
            gpu.record("IExecutionContext.set_device_memory", memory=memory, size=size)
            assert self.user_managed, "set_device_memory on a context TensorRT allocates for"
            assert memory in gpu.memory, "set_device_memory: not a device allocation"
            assert size >= ACTIVATION_BYTES and len(gpu.memory[memory]) >= size, "too small"
            self.user_memory = memory

        def execute_async_v3(self, stream_handle: int) -> bool:
            stream = gpu.streams.get(stream_handle)
            if self.user_managed and self.user_memory is None:
                emit(self.engine.logger, "ERROR", "USER_MANAGED context without device memory")
                return False
            captured = gpu.capturing.get(stream_handle)
            gpu.record(
                "IExecutionContext.execute_async_v3",
                stream=stream_handle,
                capturing=captured is not None,
                context=id(self),
            )
            assert stream is not None, "execute_async_v3 on an unknown stream"
            if gpu.execute_error is not None:
                emit(self.engine.logger, "ERROR", gpu.execute_error)
                return False
            if captured is not None and (gpu.uncapturable or not self.flushed):
                # TensorRT fails the enqueue, and the capture is invalidated
                why = (
                    "the engine holds operations not permitted under CUDA graph capture"
                    if gpu.uncapturable
                    else "the first enqueue after an input shape change cannot be captured"
                )
                emit(self.engine.logger, "ERROR", why)
                gpu.capture_invalidated.add(stream_handle)
                from cuda.bindings import runtime as real

                gpu.cuda_error = real.cudaError_t.cudaErrorStreamCaptureInvalidated
                return False
            names = [n for n, _, _ in self.engine.inputs + self.engine.outputs]
            if set(names) - set(self.addresses):
                emit(self.engine.logger, "ERROR", "tensor address not set")
                return False
            if {n for n, _, _ in self.engine.inputs} - set(self.shapes):
                emit(self.engine.logger, "ERROR", "input shape not set")
                return False
            shapes = dict(self.shapes)
            version = self.shape_version
            self.flushed = True

            def run() -> None:
                import onnxruntime as ort

                # a graph replays the context state it captured: a context whose shapes
                # changed since then would compute with stale state
                assert self.shape_version == version, (
                    "a CUDA graph replayed after its execution context's input shape changed"
                )

                if "ort" not in self.sessions:
                    self.sessions["ort"] = ort.InferenceSession(
                        self.engine.onnx, providers=["CPUExecutionProvider"]
                    )
                feed = {}
                for name, _, dt in self.engine.inputs:
                    dtype = np.float16 if dt == "HALF" else np.float32
                    count = int(np.prod(shapes[name]))
                    raw = bytes(
                        gpu.memory[self.addresses[name]][: count * np.dtype(dtype).itemsize]
                    )
                    feed[name] = np.frombuffer(raw, dtype).reshape(shapes[name])
                results = self.sessions["ort"].run([n for n, _, _ in self.engine.outputs], feed)
                for (name, _, _), value in zip(self.engine.outputs, results, strict=True):
                    data = np.ascontiguousarray(value).tobytes()
                    gpu.memory[self.addresses[name]][: len(data)] = data

            if captured is not None:
                captured.append(run)
            else:
                if gpu.execute_hook is not None:
                    gpu.execute_hook(self.engine.header["dla_core"])
                run()
            return True

    class Engine:
        def __init__(self, header: dict[str, Any], onnx: bytes, logger: Any) -> None:
            self.header, self.onnx, self.logger = header, onnx, logger
            self.inputs = [tuple(x) for x in header["inputs"]]
            self.outputs = [tuple(x) for x in header["outputs"]]

        def tensor(self, name: str) -> tuple[Any, ...]:
            for t in self.inputs + self.outputs:
                if t[0] == name:
                    return t
            raise KeyError(f"no tensor {name!r}")

        def profile_dims(self, name: str) -> list[Dims]:
            if name in self.header["profile"]:
                return [Dims(d) for d in self.header["profile"][name]]
            _, dims, _ = self.tensor(name)
            return [Dims(list(dims))] * 3

        @property
        def num_io_tensors(self) -> int:
            return len(self.inputs) + len(self.outputs)

        def get_tensor_name(self, index: int) -> str:
            return str((self.inputs + self.outputs)[index][0])

        def get_tensor_mode(self, name: str) -> Any:
            is_input = any(t[0] == name for t in self.inputs)
            return io_mode.INPUT if is_input else io_mode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(data_type, self.tensor(name)[2])

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
            assert profile_index == 0
            return self.profile_dims(name)

        @property
        def device_memory_size_v2(self) -> int:
            if not gpu.tensorrt_version.startswith("10.") or gpu.tensorrt_version.startswith(
                "10.0."
            ):
                raise AttributeError("device_memory_size_v2: TensorRT 10.1+ (V2 memory APIs)")
            return ACTIVATION_BYTES

        def create_execution_context(self, strategy: Any = None) -> ExecutionContext:
            name = "STATIC" if strategy is None else strategy.name
            gpu.record("ICudaEngine.create_execution_context", strategy=name)
            return ExecutionContext(self, user_managed=name == "USER_MANAGED")

        def create_engine_inspector(self) -> Inspector:
            gpu.record("ICudaEngine.create_engine_inspector")
            return Inspector(self.header)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            gpu.record("Runtime", logger=type(logger).__name__)
            adopt(logger)
            self.logger = logger
            self.engine_host_code_allowed = False
            self.DLA_core = -1

        @property
        def num_DLA_cores(self) -> int:  # noqa: N802
            return gpu.dla_cores

        def deserialize_cuda_engine(self, serialized_engine: bytes) -> Engine | None:
            data = bytes(serialized_engine)
            gpu.record(
                "Runtime.deserialize_cuda_engine",
                nbytes=len(data),
                host_code=self.engine_host_code_allowed,
                dla_core=self.DLA_core,
            )
            if not data.startswith(PLAN_MAGIC):
                emit(self.logger, "ERROR", "Serialization assertion: magic tag does not match")
                return None
            size = int.from_bytes(data[len(PLAN_MAGIC) : len(PLAN_MAGIC) + 4], "little")
            start = len(PLAN_MAGIC) + 4
            header = json.loads(data[start : start + size])
            if header.get("host_arch", gpu.host_arch) != gpu.host_arch:
                emit(
                    self.logger,
                    "ERROR",
                    "The engine plan file is generated on an incompatible device/platform",
                )
                return None
            if header["version"] != gpu.tensorrt_version and not header["version_compatible"]:
                emit(
                    self.logger, "ERROR", "The engine plan file is not compatible with this version"
                )
                return None
            if header["version_compatible"] and not self.engine_host_code_allowed:
                emit(
                    self.logger, "ERROR", "engine has host code; engine_host_code_allowed is False"
                )
                return None
            if header["dla_core"] is not None and self.DLA_core != header["dla_core"]:
                emit(self.logger, "ERROR", f"engine built for DLA core {header['dla_core']}")
                return None
            return Engine(header, data[start + size :], self.logger)

    # ----- calibrators (TensorRT 10 only) ---------------------------------------------
    members: dict[str, Any] = {
        "ILogger": ILogger,
        "Logger": Logger,
        "Builder": Builder,
        "OnnxParser": OnnxParser,
        "Runtime": Runtime,
        "Dims": Dims,
        "BuilderFlag": builder_flag,
        "NetworkDefinitionCreationFlag": network_flag,
        "HardwareCompatibilityLevel": hw_level,
        "MemoryPoolType": memory_pool,
        "DeviceType": device_type,
        "ProfilingVerbosity": verbosity,
        "LayerInformationFormat": info_format,
        "TensorIOMode": io_mode,
        "DataType": data_type,
        "ExecutionContextAllocationStrategy": allocation,
    }
    if ten:

        class IInt8Calibrator:
            def __init__(self) -> None:
                gpu.record("IInt8Calibrator.__init__", kind=type(self).__mro__[1].__name__)

        for kind in (
            "IInt8EntropyCalibrator2",
            "IInt8EntropyCalibrator",
            "IInt8MinMaxCalibrator",
            "IInt8LegacyCalibrator",
        ):
            members[kind] = type(kind, (IInt8Calibrator,), {})
        members["IInt8Calibrator"] = IInt8Calibrator
    for name, value in members.items():
        setattr(trt, name, value)
    return trt
