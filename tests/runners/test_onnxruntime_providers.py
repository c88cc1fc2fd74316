"""ONNX Runtime execution providers: choice, refusal of absent ones, and what actually ran.

There is no GPU here: the selection logic runs with the CPU provider, an absent provider is
refused, and a provider ORT would silently drop is caught by the check on the session's list.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_opt.core.manifest import manifest_path
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions, build_onnxruntime
from resnet_opt.runners.base import Backend, open_runner
from resnet_opt.runners.onnxruntime import (
    CPU,
    OrtProvider,
    check_providers_ran,
    open_onnxruntime,
    provider_names,
    resolve_providers,
)

CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"


def _available() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def test_choices_map_to_ort_names() -> None:
    assert provider_names([OrtProvider.CPU, OrtProvider.CUDA, OrtProvider.TENSORRT]) == [
        CPU,
        CUDA,
        TRT,
    ]
    assert provider_names(["CUDAExecutionProvider"]) == [CUDA]
    assert provider_names(None) == []


def test_cpu_is_the_default_and_the_fallback_at_the_end() -> None:
    assert resolve_providers(None) == [CPU]
    assert resolve_providers([OrtProvider.CPU]) == [CPU]
    for provider in (CUDA, TRT):
        if provider in _available():
            assert resolve_providers([provider]) == [provider, CPU]


@pytest.mark.parametrize("choice", [OrtProvider.CUDA, OrtProvider.TENSORRT])
def test_an_absent_provider_is_refused_with_what_is_available(
    tiny_onnx: Path, choice: OrtProvider
) -> None:
    if choice.ort_name in _available():
        pytest.skip(f"this onnxruntime has {choice.ort_name}")
    with pytest.raises(ResnetOptError, match=rf"{choice.ort_name} is not available .*CPU"):
        open_onnxruntime(tiny_onnx, providers=[choice])


def test_the_provider_that_ran_is_recorded(tiny_onnx: Path) -> None:
    with open_runner(Backend.ONNXRUNTIME, tiny_onnx, providers=[OrtProvider.CPU]) as runner:
        info = runner.info
    assert info.device == "cpu"
    assert info.details["provider"] == CPU and info.details["providers"] == [CPU]


def test_a_provider_ort_dropped_is_refused(tiny_onnx: Path) -> None:
    # what ORT does when CUDA's libraries fail to load: it registers CPU alone and carries on
    with pytest.raises(ResnetOptError, match="did not register CUDAExecutionProvider"):
        check_providers_ran(tiny_onnx, [CUDA, CPU], [CPU])
    with pytest.raises(ResnetOptError, match="did not register TensorrtExecutionProvider"):
        check_providers_ran(tiny_onnx, [TRT, CUDA, CPU], [CUDA, CPU])
    check_providers_ran(tiny_onnx, [CUDA, CPU], [CUDA, CPU])
    check_providers_ran(tiny_onnx, [CPU], [CPU])


def test_the_build_provider_flows_to_the_runner(tmp_path: Path, tiny_onnx: Path) -> None:
    artifact = tmp_path / "tiny.opt.onnx"
    manifest = build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions(provider=OrtProvider.CPU))
    assert manifest.details["runner"]["providers"] == [CPU]
    with open_runner(Backend.ONNXRUNTIME, artifact) as runner:
        assert runner.info.details["provider"] == CPU


def test_a_built_provider_missing_here_is_refused(tmp_path: Path, tiny_onnx: Path) -> None:
    if CUDA in _available():
        pytest.skip("this onnxruntime has the CUDA provider")
    artifact = tmp_path / "tiny.opt.onnx"
    build_onnxruntime(tiny_onnx, artifact, OrtBuildOptions())
    data = json.loads(manifest_path(artifact).read_text())
    data["details"]["runner"]["providers"] = [CUDA]  # as if built on a GPU machine
    manifest_path(artifact).write_text(json.dumps(data))
    with (
        pytest.raises(ResnetOptError, match="CUDAExecutionProvider is not available"),
        open_runner(Backend.ONNXRUNTIME, artifact),
    ):
        pass
