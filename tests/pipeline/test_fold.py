"""The `fold` stage and command: verification, manifests, bad input, and a real BN-keeping
torchvision ResNet-18 from two exporters."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.cli.params import parse_shape
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import (
    InputRef,
    Precision,
    Stage,
    manifest_path,
    new_manifest,
    read_manifest,
    write_manifest,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.graph import count_ops
from resnet_opt.pipeline import fold as fold_module
from resnet_opt.pipeline.fold import FoldOptions, fold
from resnet_opt.transforms.bn_fold import FoldResult
from tests.transforms.test_bn_fold import bn_node, bn_params, value

runner = CliRunner()


def make_bn_cnn(
    path: Path, *, dims: tuple[int | str, ...] = ("N", 3, 8, 8), relu_bn: bool = False
) -> Path:
    """Conv→BN→Relu[→BN]→GlobalAveragePool→Flatten→Gemm→BN: one BN per kind of producer."""
    rng = np.random.default_rng(0)
    channels = int(dims[1])
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (6, channels, 3, 3)).astype("f4"), "w"),
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 6)).astype("f4"), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4).astype("f4"), "fc_b"),
        *bn_params(rng, 6, "bn_conv"),
        *bn_params(rng, 4, "bn_fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        bn_node("c", "c_bn", prefix="bn_conv"),
        helper.make_node("Relu", ["c_bn"], ["r"], name="relu"),
    ]
    pooled = "r"
    if relu_bn:
        inits += bn_params(rng, 6, "bn_relu")
        nodes.append(bn_node("r", "r_bn", prefix="bn_relu"))
        pooled = "r_bn"
    nodes += [
        helper.make_node("GlobalAveragePool", [pooled], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], transB=1, name="fc"),
        bn_node("g", "logits", prefix="bn_fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "bn_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
        [value("logits", 2)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def one_error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return str(lines[0])


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---------------------------------------------------------------- the stage


def test_fold_writes_verified_model_and_manifest_for_a_foreign_onnx(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "in.onnx", relu_bn=True)
    out = tmp_path / "out.onnx"
    manifest = fold(source, out)
    assert out.is_file() and manifest_path(out).is_file()
    assert read_manifest(out) == manifest
    assert manifest.stage is Stage.FOLD and manifest.precision is Precision.FP32
    assert manifest.preprocessing is None and manifest.lineage == ()
    assert manifest.inputs[0].role == "model" and manifest.inputs[0].path == str(source)
    batchnorm = manifest.details["batchnorm"]
    assert batchnorm["folded"] == 2 and batchnorm["folded_by"] == {"fold": 2}
    assert batchnorm["left"] == [
        {"node": "bn_relu", "reason": "input comes from Relu, not Conv/Gemm"}
    ]
    check = manifest.verification
    assert check["passed"] and check["samples"] == 8 and check["max_abs_error"] < 1e-4
    assert check["input_shape"] == [4, 3, 8, 8] and check["graph_optimization"] == "disabled"
    assert count_ops(onnx.load(str(out)), ["BatchNormalization"]) == {"BatchNormalization": 1}


def test_fold_keeps_contract_and_lineage_and_adds_to_earlier_counts(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    """A manifest's contract also sizes symbolic spatial dims for the verification inputs."""
    source = make_bn_cnn(tmp_path / "model.onnx", dims=("N", 3, "H", "W"))
    parent = new_manifest(
        stage=Stage.EXPORT,
        artifact=source,
        precision=Precision.FP32,
        inputs=(InputRef.of("model", source),),
        preprocessing=tiny_contract,
        details={"batchnorm": {"folded_by": {"torch.onnx": 18}}},
    )
    write_manifest(manifest_path(source), parent)
    manifest = fold(source, tmp_path / "folded.onnx", FoldOptions(samples=3))
    assert manifest.preprocessing == tiny_contract
    assert [entry["stage"] for entry in manifest.lineage] == ["export"]
    assert manifest.details["batchnorm"]["folded_by"] == {"torch.onnx": 18, "fold": 2}
    assert manifest.verification["input_shape"] == [3, 3, 8, 8]

    again = fold(tmp_path / "folded.onnx", tmp_path / "twice.onnx")  # nothing left to fold
    assert again.details["batchnorm"]["folded"] == 0
    assert again.details["batchnorm"]["folded_by"] == {"torch.onnx": 18, "fold": 2}
    assert [entry["stage"] for entry in again.lineage] == ["export", "fold"]


def test_symbolic_input_without_manifest_needs_an_input_shape(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "model.onnx", dims=("N", 3, "H", "W"))
    with pytest.raises(ResnetOptError, match="pass --input-shape"):
        fold(source, tmp_path / "out.onnx")
    assert leftovers(tmp_path, {"model.onnx"}) == []
    with pytest.raises(ResnetOptError, match=r"\[1, 8, 8\] from --input-shape does not fit"):
        fold(source, tmp_path / "out.onnx", FoldOptions(input_shape=(1, 8, 8)))
    manifest = fold(source, tmp_path / "out.onnx", FoldOptions(input_shape=(3, 10, 12)))
    assert manifest.verification["input_shape"] == [4, 3, 10, 12]
    assert manifest.options["input_shape"] == [3, 10, 12]


def test_fixed_batch_is_verified_in_whole_batches(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "model.onnx", dims=(3, 3, 8, 8))
    manifest = fold(source, tmp_path / "out.onnx", FoldOptions(samples=4))
    assert manifest.verification["input_shape"] == [3, 3, 8, 8]
    assert manifest.verification["samples"] == 6


def test_a_wrong_fold_fails_verification_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verification is what guards users against a bug in the pass: prove that it bites."""
    real = fold_module.fold_batchnorm

    def off_by_a_bit(model: onnx.ModelProto) -> FoldResult:
        result = real(model)
        weight = next(t for t in result.model.graph.initializer if t.name == "fc_w")
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.01, "fc_w"))
        return result

    monkeypatch.setattr(fold_module, "fold_batchnorm", off_by_a_bit)
    source = make_bn_cnn(tmp_path / "model.onnx")
    with pytest.raises(ResnetOptError, match=r"over the tolerance 0\.001; nothing written"):
        fold(source, tmp_path / "out.onnx")
    assert leftovers(tmp_path, {"model.onnx"}) == []


def test_an_input_changed_after_its_manifest_is_refused(
    tmp_path: Path, tiny_contract: PreprocessContract
) -> None:
    source = make_bn_cnn(tmp_path / "model.onnx")
    manifest = new_manifest(
        stage=Stage.EXPORT,
        artifact=source,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=tiny_contract,
    )
    write_manifest(manifest_path(source), manifest)
    make_bn_cnn(source, relu_bn=True)
    with pytest.raises(ResnetOptError, match="does not match its manifest"):
        fold(source, tmp_path / "out.onnx")


@pytest.mark.parametrize(
    ("text", "shape"), [("3,224,224", (3, 224, 224)), ("3x32x32", (3, 32, 32)), (" 8 ", (8,))]
)
def test_parse_shape(text: str, shape: tuple[int, ...]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "3,a,4", "3,0,4", "-1"])
def test_parse_shape_refuses_nonsense(text: str) -> None:
    with pytest.raises(ResnetOptError, match="not a list of positive integers"):
        parse_shape(text)


# ---------------------------------------------------------------- the command


def test_cli_fold_reports_counts_and_left_batchnorms(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "in.onnx", relu_bn=True)
    result = runner.invoke(app, ["fold", str(source), "-o", str(tmp_path / "out.onnx")])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "folded 2 BatchNormalization, left 1" in result.stderr
    assert "left bn_relu: input comes from Relu, not Conv/Gemm" in result.stderr
    assert (tmp_path / "out.onnx").is_file()


def test_cli_fold_json(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "in.onnx")
    out = tmp_path / "out.onnx"
    result = runner.invoke(app, ["fold", str(source), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and data["stage"] == "fold"
    assert data["details"]["batchnorm"]["folded_by"] == {"fold": 2}
    assert data["verification"]["passed"] is True


def test_cli_fold_input_shape_option(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "in.onnx", dims=("N", 3, "H", "W"))
    out = tmp_path / "out.onnx"
    args = ["fold", str(source), "-o", str(out), "--input-shape", "3,16,16", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verification"]["input_shape"] == [4, 3, 16, 16]


def test_cli_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    line = one_error_line(runner.invoke(app, ["fold", str(tmp_path / "no.onnx"), "-o", str(out)]))
    assert "no such file" in line
    assert leftovers(tmp_path, set()) == []


def test_cli_not_onnx(tmp_path: Path) -> None:
    source = tmp_path / "notes.onnx"
    source.write_text("this is not a model\n")
    out = tmp_path / "out.onnx"
    line = one_error_line(runner.invoke(app, ["fold", str(source), "-o", str(out)]))
    assert "not an ONNX model" in line
    assert leftovers(tmp_path, {"notes.onnx"}) == []


def test_cli_truncated_onnx(tmp_path: Path) -> None:
    good = make_bn_cnn(tmp_path / "good.onnx").read_bytes()
    source = tmp_path / "cut.onnx"
    source.write_bytes(good[: len(good) // 2])
    line = one_error_line(runner.invoke(app, ["fold", str(source), "-o", str(tmp_path / "o.onnx")]))
    assert "cut.onnx" in line and "ONNX model" in line
    assert leftovers(tmp_path, {"good.onnx", "cut.onnx"}) == []


def test_cli_onnx_that_fails_the_checker(tmp_path: Path) -> None:
    model = onnx.load(str(make_bn_cnn(tmp_path / "good.onnx")))
    model.graph.node[0].input[1] = "missing_weight"  # reads a tensor nothing produces
    source = tmp_path / "broken.onnx"
    onnx.save(model, str(source))
    line = one_error_line(runner.invoke(app, ["fold", str(source), "-o", str(tmp_path / "o.onnx")]))
    assert "invalid ONNX model" in line
    assert leftovers(tmp_path, {"good.onnx", "broken.onnx"}) == []


def test_cli_existing_output_needs_force(tmp_path: Path) -> None:
    source = make_bn_cnn(tmp_path / "in.onnx")
    out = tmp_path / "out.onnx"
    out.write_bytes(b"keep me")
    line = one_error_line(runner.invoke(app, ["fold", str(source), "-o", str(out)]))
    assert "exists; pass --force" in line
    assert out.read_bytes() == b"keep me"
    assert leftovers(tmp_path, {"in.onnx", "out.onnx"}) == []
    result = runner.invoke(app, ["fold", str(source), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert count_ops(onnx.load(str(out)), ["BatchNormalization"]) == {"BatchNormalization": 0}


# ---------------------------------------------------------------- torchvision ResNet-18


def _randomize_batchnorm(model: Any, seed: int) -> None:
    """Fresh torchvision BNs are the identity (γ=1, β=0, μ=0, σ²=1): give them real statistics.

    The ranges keep the logits at a trained classifier's scale (max |logit| ≈ 14 here), so that the
    < 1e-4 acceptance figure means what it would mean on real weights: float32 rounding of the
    fold grows with the output's magnitude.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                assert module.running_mean is not None and module.running_var is not None
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


@pytest.fixture(scope="module", params=["torchscript-preserve", "dynamo-unoptimized"])
def resnet18_with_bn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """ResNet-18 exported so that its 20 BatchNormalization nodes stay in the ONNX, eval mode."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None).eval()
    _randomize_batchnorm(model, seed=0)
    path = tmp_path_factory.mktemp("resnet18") / f"{request.param}.onnx"
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        _export(torch, model, x, path, request.param)
    assert count_ops(onnx.load(str(path)), ["BatchNormalization"]) == {"BatchNormalization": 20}
    return path


def _export(torch: Any, model: Any, x: Any, path: Path, exporter: str) -> None:
    if exporter == "torchscript-preserve":
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter says it is
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,  # the module is in eval: BN stays, eval
            do_constant_folding=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )
    else:  # the weights go to a .onnx.data side file: exercises external data too
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=True,
            optimize=False,
            input_names=["input"],
            output_names=["logits"],
            verbose=False,
        )


def test_resnet18_with_batchnorm_folds_all_20(resnet18_with_bn: Path, tmp_path: Path) -> None:
    out = tmp_path / "folded.onnx"
    started = time.perf_counter()
    manifest = fold(resnet18_with_bn, out)  # the command's defaults: 8 random inputs
    seconds = time.perf_counter() - started
    batchnorm = manifest.details["batchnorm"]
    assert (batchnorm["folded"], batchnorm["left"]) == (20, [])
    assert manifest.verification["max_abs_error"] < 1e-4
    assert manifest.verification["top1_agreement"] == 100.0
    folded = onnx.load(str(out))
    assert count_ops(folded, ["BatchNormalization", "Conv"]) == {
        "BatchNormalization": 0,
        "Conv": 20,
    }
    assert not (tmp_path / "folded.onnx.data").exists()  # weights inside the one file
    print(
        f"{resnet18_with_bn.name}: 20 folded, max abs error "
        f"{manifest.verification['max_abs_error']:.2e}, fold+verify {seconds:.2f} s"
    )
