"""OpenVINO: runs every ONNX artifact on the CPU and builds OpenVINO IR or a compiled blob
(`build openvino`)."""

from __future__ import annotations

from types import MappingProxyType

from resnet_opt.backends.spec import BackendUnit, BuildSpec, Natural, TargetSpec

_BUILD = "resnet_opt.pipeline.build_openvino"

UNIT = BackendUnit(
    name="openvino",
    title="OpenVINO",
    runner="resnet_opt.runners.openvino:open_openvino",
    targets=(
        TargetSpec(
            "openvino",
            colour="tab:orange",
            natural=Natural.ONNX,
            requires=(
                ("openvino", "openvino is not installed: pip install 'resnet-opt[openvino]'"),
            ),
        ),
    ),
    tools=("openvino",),
    extras=MappingProxyType({"openvino": "openvino"}),
    build=BuildSpec(
        options=f"{_BUILD}:OpenVinoBuildOptions",
        build=f"{_BUILD}:build_openvino",
        command="resnet_opt.cli.build_openvino",
        output_help=".xml/.blob (OpenVINO)",
        run_suffix=".xml",
        run_companions=(".bin",),
        run_builds=f"{_BUILD}:builds_for",
        listed=2,
        unavailable=f"{_BUILD}:why_cannot_build",
        check=f"{_BUILD}:check_options",
        run_refused=MappingProxyType(
            {
                "form": "run writes each artifact as OpenVINO IR (<model>.xml + .bin), and the "
                "form follows from the suffix",
            }
        ),
    ),
    runner_details="resnet_opt.runners.openvino:OvRunnerDetails",
    build_details="resnet_opt.runners.openvino:OvBuildDetails",
)
