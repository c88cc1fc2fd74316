"""ONNX Runtime: runs every ONNX artifact (CPU, and its CUDA / TensorRT execution providers) and
builds the ORT-optimized CPU artifact (`build onnxruntime`)."""

from __future__ import annotations

from types import MappingProxyType

from resnet_opt.backends.spec import BackendUnit, BuildSpec, Natural, TargetSpec

CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"

_BUILD = "resnet_opt.pipeline.build_onnxruntime"

UNIT = BackendUnit(
    name="onnxruntime",
    title="ONNX Runtime",
    runner="resnet_opt.runners.onnxruntime:open_onnxruntime",
    # a build recording one of these providers runs on its target; the later one wins
    targets=(
        TargetSpec("onnxruntime", colour="tab:blue", natural=Natural.ONNX),
        TargetSpec("onnxruntime-cuda", colour="tab:cyan", provider=CUDA_PROVIDER),
        TargetSpec("onnxruntime-tensorrt", colour="tab:purple", provider=TENSORRT_PROVIDER),
    ),
    tools=("onnxruntime", "onnxruntime-gpu"),
    build=BuildSpec(
        options=f"{_BUILD}:OrtBuildOptions",
        build=f"{_BUILD}:build_onnxruntime",
        command="resnet_opt.cli.build_onnxruntime",
        output_help=".onnx/.ort (ONNX Runtime)",
        run_suffix=".optimized.onnx",
        run_builds=f"{_BUILD}:builds_for",
        listed=1,
        check=f"{_BUILD}:check_options",
        run_refused=MappingProxyType(
            {
                "format": "run writes each ORT-optimized artifact as <model>.optimized.onnx, "
                "and the format follows from the suffix",
            }
        ),
    ),
    runner_details="resnet_opt.runners.onnxruntime:OrtRunnerDetails",
    build_details="resnet_opt.runners.onnxruntime:OrtBuildDetails",
)
