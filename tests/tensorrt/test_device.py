"""Device probes (fake libcuda, Jetson files) and the inspector's layer precisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_opt.tensorrt.device import jetpack_version, l4t_release, probe_gpu
from resnet_opt.tensorrt.inspector import precision_token, summarize_layers
from tests.fakes.fake_gpu import FakeGpu, FakeLibCuda


def test_probe_gpu_reads_the_driver() -> None:
    gpu = FakeGpu(gpu_name="NVIDIA Orin", compute_capability=(8, 7), integrated=True)
    probe = probe_gpu(FakeLibCuda(gpu))
    assert probe.name == "NVIDIA Orin" and probe.compute_capability == (8, 7)
    assert probe.integrated is True and probe.driver == "12.4" and probe.problem is None


def test_probe_gpu_without_driver_or_with_a_broken_one() -> None:
    class Broken(FakeLibCuda):
        def cuInit(self, flags: int) -> int:  # noqa: N802
            return 100  # CUDA_ERROR_NO_DEVICE

    class Raising(FakeLibCuda):
        def cuDeviceGetName(self, *args: object) -> int:  # noqa: N802
            raise OSError("symbol not found")

    assert probe_gpu(Broken(FakeGpu())).problem == "cuInit failed (CUDA error 100)"
    assert "symbol not found" in (probe_gpu(Raising(FakeGpu())).problem or "")


def test_l4t_and_jetpack(tmp_path: Path) -> None:
    tegra = tmp_path / "nv_tegra_release"
    tegra.write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
    )
    assert l4t_release(tegra) == "36.4.3"
    assert l4t_release(tmp_path / "absent") is None
    status = tmp_path / "status"
    status.write_text(
        "Package: nvidia-l4t-core\nVersion: 36.4.3-20250107\n\n"
        "Package: nvidia-jetpack\nStatus: install ok installed\nVersion: 6.2+b77\n\n"
    )
    assert jetpack_version(status) == "6.2+b77"
    assert jetpack_version(tmp_path / "absent") is None


def test_precision_tokens() -> None:
    assert precision_token("Row major linear FP32") == "fp32"
    assert precision_token("Channel major FP16 format where channel % 8 == 0") == "fp16"
    assert precision_token("Four wide channel vectorized row major Int8 format") == "int8"
    assert precision_token("Half") == "fp16"
    assert precision_token("Float") == "fp32"
    assert precision_token("Row major linear") is None


def test_summarize_tensorrt10_and_11_json() -> None:
    ten = {
        "Layers": [
            {
                "Name": "conv1 + relu",
                "LayerType": "CaskConvolution",
                "Outputs": [{"Format/Datatype": "Channel major Int8 format"}],
            },
            {
                "Name": "fc",
                "LayerType": "CaskGemm",
                "Outputs": [{"Format/Datatype": "Row major linear FP32"}],
            },
            {
                "Name": "{ForeignNode[conv2...relu2]}",
                "LayerType": "DLA",
                "Outputs": [{"Format/Datatype": "Half"}],
            },
        ],
        "Bindings": ["input", "logits"],
    }
    report = summarize_layers(json.dumps(ten))
    assert report.available and report.count == 3 and report.on_dla == 1
    assert report.precisions == {"fp16": 1, "fp32": 1, "int8": 1}
    eleven = {
        "Layers": [
            {
                "Name": "c",
                "LayerType": "Conv",
                "Outputs": [{"Format": "Row major", "DataType": "FP16"}],
            }
        ],
        "I/O Tensors": ["input", "logits"],
    }
    assert summarize_layers(json.dumps(eleven)).precisions == {"fp16": 1}


def test_summarize_says_when_it_cannot_tell() -> None:
    names_only = summarize_layers(json.dumps({"Layers": ["a", "b"], "Bindings": []}))
    assert not names_only.available and names_only.count == 2
    assert "names only" in (names_only.reason or "")
    assert not summarize_layers("not json").available
    assert summarize_layers(json.dumps({"x": 1})).reason == "inspector output has no Layers list"


def test_info_reports_gpu_dla_and_jetpack(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from resnet_opt.cli import app
    from tests.fakes.fake_gpu import install

    gpu = FakeGpu(
        tensorrt_version="10.3.0.30",
        gpu_name="Orin",
        compute_capability=(8, 7),
        integrated=True,
        dla_cores=2,
    )
    install(monkeypatch, gpu)
    monkeypatch.setattr("resnet_opt.tensorrt.device.l4t_release", lambda: "36.4.3")
    monkeypatch.setattr("resnet_opt.tensorrt.device.jetpack_version", lambda: "6.2+b77")
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    probes = {p["name"]: p for p in json.loads(result.stdout)["accelerators"]}
    assert probes["tensorrt"]["version"] == "10.3.0.30"
    assert probes["gpu"]["version"] == "Orin (sm 8.7, integrated)"
    assert probes["dla"]["version"] == "2 cores"
    assert probes["jetpack"]["version"] == "6.2+b77 (L4T 36.4.3)"


def test_info_without_nvidia_says_why() -> None:
    from resnet_opt.tensorrt.device import nvidia_probes

    rows = {name: (value, problem) for name, value, problem in nvidia_probes()}
    assert set(rows) == {"gpu", "dla", "pip extra", "jetpack"}
    for value, problem in rows.values():
        assert value is not None or problem
