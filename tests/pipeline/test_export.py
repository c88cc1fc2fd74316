"""The export stage: ONNX from every model source, verified against PyTorch in ONNX Runtime."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resnet_opt.calibration import preprocess
from resnet_opt.calibration.data import Split, load_bundled_split
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import manifest_path, read_manifest
from resnet_opt.core.naming import FLAGS, OptionError
from resnet_opt.errors import ResnetOptError
from resnet_opt.graph import count_ops, load_onnx
from resnet_opt.models import default_model
from resnet_opt.models.contract import ContractOptions
from resnet_opt.pipeline.export import Exporter, ExportOptions, default_output, export
from resnet_opt.runners.base import Backend, open_runner, run_batch

torch = pytest.importorskip("torch")

BN_FACTORY = '''
import torch
from torch import nn


class Net(nn.Module):
    """conv→BN (the exporter folds it) → ReLU → BN (foldable by nobody) → pool → fc → BN1d
    (left by the TorchScript exporter, folded into the Gemm by our pass)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.bn3 = nn.BatchNorm1d(5)

    def forward(self, x):
        x = self.bn2(self.relu(self.bn1(self.conv(x))))
        return self.bn3(self.fc(torch.flatten(self.pool(x), 1)))


def build():
    net = Net()
    for bn in (net.bn1, net.bn2, net.bn3):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return net
'''


@pytest.fixture
def bn_factory(tmp_path: Path) -> str:
    path = tmp_path / "bnnet.py"
    path.write_text(BN_FACTORY)
    return f"{path}:build"


def _graph_io(path: Path) -> tuple[list[tuple[str, list[Any]]], list[tuple[str, list[Any]]]]:
    model = load_onnx(path)

    def dims(value: Any) -> list[Any]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return (
        [(i.name, dims(i)) for i in model.graph.input],
        [(o.name, dims(o)) for o in model.graph.output],
    )


# -- the bundled default -----------------------------------------------------------------------


def test_default_export_scores_the_same_top1_in_ort_as_in_pytorch(default_onnx: Path) -> None:
    from resnet_opt.pipeline.evaluate import evaluate

    manifest = read_manifest(default_onnx)
    assert manifest is not None
    accuracy = manifest.verification["accuracy"]
    assert accuracy["count"] == 539
    assert accuracy["pytorch_top1"] == accuracy["onnxruntime_top1"]
    assert accuracy["pytorch_top1"] == pytest.approx(default_model().test_top1, abs=0.01)
    assert manifest.verification["passed"] and manifest.verification["data"]["passed"]
    # scored again from the file alone, through the eval stage
    assert evaluate(default_onnx).accuracy.top1 == pytest.approx(accuracy["onnxruntime_top1"])


def test_default_export_graph_and_manifest(default_onnx: Path) -> None:
    assert _graph_io(default_onnx) == (
        [("input", ["batch", 1, 32, 32])],
        [("logits", ["batch", 10])],
    )
    model = load_onnx(default_onnx)
    assert count_ops(model, ["BatchNormalization"]) == {"BatchNormalization": 0}
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert not list(default_onnx.parent.glob("*.data"))  # weights inside the file
    manifest = read_manifest(default_onnx)
    assert manifest is not None
    assert manifest.sha256 == sha256_file(default_onnx)
    assert manifest.preprocessing == default_model().contract
    details = manifest.details
    assert details["batchnorm"]["folded_by"] == {"exporter": 21, "fold": 0}
    assert details["batchnorm"]["left"] == []
    assert details["opset"] == 17 and details["dynamic_batch"] is True
    assert details["source"]["weights"] == "bundled"
    assert {ref.role for ref in manifest.inputs} == {"weights"}
    assert manifest.tools["torch"]


def test_exported_default_runs_any_batch_in_ort(default_onnx: Path) -> None:
    pixels, _ = load_bundled_split(Split.TEST)
    contract = default_model().contract
    x = np.stack([preprocess.apply_pixels(contract, p) for p in pixels[:5]])
    with open_runner(Backend.ONNXRUNTIME, default_onnx) as ort:
        five = run_batch(ort, x)
        one = run_batch(ort, x[:1])
    np.testing.assert_allclose(five[:1], one, atol=1e-5)


# -- torchvision sources -------------------------------------------------------------------------


def test_resnet18_from_a_state_dict_checkpoint(torchvision_onnx: Callable[[str], Path]) -> None:
    path = torchvision_onnx("resnet18")
    manifest = read_manifest(path)
    assert manifest is not None
    source = manifest.details["source"]
    assert source["kind"] == "torchvision" and source["weights"] == "file"
    assert source["weights_sha256"] == sha256_file(Path(source["weights_path"]))
    check = manifest.verification
    assert check["passed"] and check["samples"] == 8
    assert check["max_abs_error"] <= check["tolerance"]
    assert check["top1_agreement"] == 100.0
    assert manifest.details["batchnorm"]["folded_by"] == {"exporter": 20, "fold": 0}
    contract = manifest.preprocessing
    assert contract is not None
    assert (contract.input_size, contract.resize, contract.crop) == (224, 256, 224)
    assert _graph_io(path)[0] == [("input", ["batch", 3, 224, 224])]
    with open_runner(Backend.ONNXRUNTIME, path) as ort:
        x = np.random.default_rng(1).standard_normal((2, 3, 224, 224), dtype=np.float32)
        assert run_batch(ort, x).shape == (2, 1000)


# -- options -----------------------------------------------------------------------------------


def test_fixed_batch_opset_and_contract_options(tmp_path: Path) -> None:
    out = tmp_path / "r20.onnx"
    manifest = export(
        "resnet20",
        out,
        ExportOptions(
            weights="none",
            batch=4,
            opset=13,
            num_classes=3,
            contract=ContractOptions(input_size=24, channels=1, labels=("a", "b", "c")),
            data="default",
            data_samples=10,
            seed=3,
        ),
    )
    assert _graph_io(out) == ([("input", [4, 1, 24, 24])], [("logits", [4, 3])])
    assert manifest.details["opset"] == 13
    assert manifest.preprocessing is not None
    assert manifest.preprocessing.labels == ("a", "b", "c")
    assert manifest.options["contract"] == {
        "input_size": 24,
        "channels": 1,
        "labels": ("a", "b", "c"),
    }
    assert manifest.details["source"]["in_channels"] == 1
    # real images went through too (10, padded to whole batches); the digits are not its classes
    assert manifest.verification["data"]["samples"] == 10
    assert "skipped" in manifest.verification["accuracy"]


def test_batchnorm_counts_per_step_and_no_fold(tmp_path: Path, bn_factory: str) -> None:
    folded = export(bn_factory, tmp_path / "folded.onnx",
                    ExportOptions(contract=ContractOptions(input_size=16)))  # fmt: skip
    bn = folded.details["batchnorm"]
    assert bn["in_model"] == 3 and bn["in_export"] == 2
    assert bn["folded_by"] == {"exporter": 1, "fold": 1}
    assert [entry["reason"] for entry in bn["left"]] == ["input comes from Relu, not Conv/Gemm"]
    assert count_ops(load_onnx(tmp_path / "folded.onnx"), ["BatchNormalization"]) == {
        "BatchNormalization": 1
    }
    kept = export(
        bn_factory,
        tmp_path / "kept.onnx",
        ExportOptions(contract=ContractOptions(input_size=16), fold=False),
    )
    assert kept.details["batchnorm"]["folded_by"] == {"exporter": 1, "fold": 0}
    assert len(kept.details["batchnorm"]["left"]) == 2
    assert kept.verification["passed"]


def test_over_tolerance_fails_and_writes_nothing(tmp_path: Path, bn_factory: str) -> None:
    out = tmp_path / "sub" / "net.onnx"
    options = ExportOptions(contract=ContractOptions(input_size=16), tolerance=1e-12)
    with pytest.raises(ResnetOptError, match=r"differ from PyTorch's .* nothing written"):
        export(bn_factory, out, options)
    assert not (tmp_path / "sub").exists()


def test_torchscript_source_and_dynamo_refusal(tmp_path: Path, bn_factory: str) -> None:
    from resnet_opt.models.sources import ModelRequest, load_model

    module = load_model(ModelRequest(model=bn_factory)).module
    ts = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(module), str(ts))
    manifest = export(
        str(ts), tmp_path / "ts.onnx", ExportOptions(contract=ContractOptions(input_size=16))
    )
    assert manifest.details["source"]["kind"] == "torchscript"
    assert manifest.details["batchnorm"]["in_model"] == 3
    assert manifest.verification["passed"]
    with pytest.raises(ResnetOptError, match="dynamo exporter cannot take a TorchScript"):
        export(str(ts), tmp_path / "dyn.onnx", ExportOptions(exporter=Exporter.DYNAMO))


@pytest.mark.slow  # the dynamo exporter alone takes ~5 s on a toy model
def test_dynamo_exporter(tmp_path: Path, bn_factory: str) -> None:
    out = tmp_path / "dyn.onnx"
    manifest = export(
        bn_factory,
        out,
        ExportOptions(exporter=Exporter.DYNAMO, contract=ContractOptions(input_size=16)),
    )
    assert manifest.details["opset"] == 18
    inputs, outputs = _graph_io(out)
    assert inputs[0][0] == "input" and outputs[0][0] == "logits"
    assert isinstance(inputs[0][1][0], str)  # dynamic batch
    assert manifest.verification["passed"]


def test_options_are_validated_up_front(tmp_path: Path) -> None:
    for options, message in (
        (ExportOptions(opset=21), "writes opsets 9–20"),
        (ExportOptions(exporter=Exporter.DYNAMO, opset=17), "writes opsets 18–23"),
        (ExportOptions(tolerance=0.0), "positive number"),
        (ExportOptions(batch=0), "^batch must be positive"),  # from Python: the field
    ):
        with pytest.raises(ResnetOptError, match=message):
            export(None, tmp_path / "x.onnx", options)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OptionError) as error:  # the CLI words the field as its flag
        export(None, tmp_path / "x.onnx", ExportOptions(batch=0))
    assert error.value.worded(FLAGS) == "--batch must be positive, not 0"


def test_default_output_names() -> None:
    assert default_output(None) == Path("resnet20-digits.onnx")
    assert default_output("resnet50") == Path("resnet50.onnx")
    assert default_output("nets/my.py:build_net") == Path("build_net.onnx")
    assert default_output("pkg.mod:factory") == Path("factory.onnx")
    assert default_output("exported/model.ts") == Path("model.onnx")


def test_manifest_is_json_with_the_parity_figures(default_onnx: Path) -> None:
    data = json.loads(manifest_path(default_onnx).read_text())
    for key in ("max_abs_error", "mean_abs_error", "top1_agreement", "tolerance", "passed"):
        assert key in data["verification"]
    assert data["verification"]["relative_tolerance"] == 1e-3
