"""TensorRT: builds a plan for one GPU (or DLA core) and TensorRT version and runs it
(`build tensorrt`; the runner takes the engine from `EngineFromPlan`)."""

from __future__ import annotations

from types import MappingProxyType

from resnet_opt.backends.spec import BackendUnit, BuildSpec, Natural, TargetSpec

_BUILD = "resnet_opt.pipeline.build_tensorrt"
_EXTRA = "tensorrt-cu12"  # jetson/install.py says which fits the driver, or JetPack's

UNIT = BackendUnit(
    name="tensorrt",
    title="TensorRT",
    runner="resnet_opt.runners.tensorrt:open_tensorrt",
    targets=(
        TargetSpec(
            "tensorrt",
            colour="tab:green",
            natural=Natural.NONE,
            requires=(
                ("tensorrt", "TensorRT is not installed: pip install 'resnet-opt[tensorrt]'"),
            ),
            not_applicable="TensorRT runs engines: build one with resnet-opt build --backend "
            "tensorrt",
        ),
    ),
    tools=("tensorrt",),
    extras=MappingProxyType(
        {
            "tensorrt": _EXTRA,
            "pycuda": _EXTRA,
            "pycuda.driver": _EXTRA,
            "cuda": _EXTRA,  # cuda-python's cuda-bindings, for CUDA graphs
            "cuda.bindings.driver": _EXTRA,
        }
    ),
    build=BuildSpec(
        options="resnet_opt.tensorrt.options:TensorRtBuildOptions",
        build=f"{_BUILD}:build_tensorrt",
        command="resnet_opt.cli.build_tensorrt",
        output_help=".plan (TensorRT)",
        run_suffix=".plan",
        run_builds=f"{_BUILD}:builds_for",
        listed=0,
        unavailable=f"{_BUILD}:why_cannot_build",
        run_refused=MappingProxyType(
            {
                "dla_core": "run builds the FP32 model for TensorRT too, which a DLA does not "
                "run; build DLA engines with `resnet-opt build tensorrt --dla-core`",
                "calib_cache": "run builds each INT8 engine from its own [[quantize]] variant, "
                "whose manifest names the cache",
            }
        ),
    ),
    runner_details="resnet_opt.runners.tensorrt:TensorRtRunnerDetails",
    build_details="resnet_opt.tensorrt.build_details:TensorRtBuildDetails",
)
