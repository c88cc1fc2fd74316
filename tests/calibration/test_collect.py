"""Collecting statistics with ONNX Runtime over streamed calibration batches."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from resnet_opt.calibration.collect import (
    activation_bytes_per_sample,
    calibration_tensors,
    collect_statistics,
    run_batch_size,
)
from resnet_opt.calibration.data import BatchStream, Split, open_source, select_indices
from resnet_opt.calibration.histogram import TensorStats
from resnet_opt.calibration.ranges import Method, compute_ranges
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.core.naming import FLAGS, worded
from resnet_opt.errors import ResnetOptError
from tests.conftest import make_tiny_cnn, write_image_folder

DIGITS = PreprocessContract(
    input_size=8,
    channels=1,
    mean=(0.5,),
    std=(0.25,),
    resize=None,
    crop=None,
    interpolation=Interpolation.BILINEAR,
    num_classes=10,
)
TINY_TENSORS = ["input", "c", "r", "p", "f", "logits"]


@pytest.fixture
def digits_model(tmp_path: Path) -> Path:
    return make_tiny_cnn(tmp_path / "digits.onnx", channels=1, size=8, classes=10)


def _stream(count: int | None, batch_size: int = 32, seed: int = 0) -> BatchStream:
    source = open_source("default", default_split=Split.CALIB)
    indices = select_indices(len(source), count, seed)
    return BatchStream(source, DIGITS, indices, batch_size)


def _one_shot(model_path: Path, x: np.ndarray, tensors: list[str]) -> dict[str, TensorStats]:
    """Reference: one ORT run over all the data at once, statistics of the whole arrays."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    outputs = {o.name for o in model.graph.output}
    for name in tensors[1:]:
        if name not in outputs:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip(tensors[1:], session.run(tensors[1:], {"input": x}), strict=True))
    values["input"] = x
    return {name: TensorStats.of(name, values[name]) for name in tensors}


def test_calibration_tensors_of_a_small_cnn(digits_model: Path) -> None:
    import onnx

    assert calibration_tensors(onnx.load(str(digits_model))) == TINY_TENSORS


def test_weights_are_never_calibration_tensors(tmp_path: Path) -> None:
    """Weights reached through Identity or Constant nodes are not activations, nor are the
    int64 shape inputs of Reshape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [
        helper.make_node("Identity", ["w"], ["w_copy"]),
        helper.make_node("MatMul", ["x", "w_copy"], ["mm"]),
        helper.make_node(
            "Constant", [], ["bias"], value=numpy_helper.from_array(np.ones(4, np.float32))
        ),
        helper.make_node("Add", ["mm", "bias"], ["sum"]),
        helper.make_node(
            "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([-1], np.int64))
        ),
        helper.make_node("Reshape", ["sum", "shape"], ["flat"]),
        helper.make_node("Relu", ["flat"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    assert calibration_tensors(model) == ["x", "mm", "sum", "flat", "y"]


@pytest.mark.parametrize("threads", [1, 2])  # 2: histograms folded on a thread pool
def test_streamed_collection_equals_one_shot_statistics(digits_model: Path, threads: int) -> None:
    stream = _stream(100, batch_size=7)
    stats = collect_statistics(digits_model, stream, TINY_TENSORS, run_batch=3, threads=threads)
    everything = np.concatenate([b.x for b in _stream(100, batch_size=100)])
    reference = _one_shot(digits_model, everything, TINY_TENSORS)
    assert list(stats.tensors) == TINY_TENSORS
    for name in TINY_TENSORS:
        assert stats[name].equals(reference[name]), name
    assert stats.samples == stats.requested == 100
    assert stats.inputs == ("input",)
    assert stats.summary()["tensors"] == len(TINY_TENSORS)


def test_fixed_batch_model_runs_leftover_samples_exactly(tmp_path: Path) -> None:
    model = make_tiny_cnn(tmp_path / "fixed.onnx", channels=1, size=8, classes=10, batch=4)
    stats = collect_statistics(model, _stream(10, batch_size=10), TINY_TENSORS, threads=1)
    dynamic = collect_statistics(
        make_tiny_cnn(tmp_path / "dyn.onnx", channels=1, size=8, classes=10),
        _stream(10, batch_size=10),
        TINY_TENSORS,
        threads=1,
    )
    for name in TINY_TENSORS:  # padding rows of the last run are never counted
        assert stats[name].equals(dynamic[name]), name


def test_progress_reports_samples_done(digits_model: Path) -> None:
    calls: list[tuple[int, int]] = []
    collect_statistics(
        digits_model,
        _stream(50, batch_size=20),
        TINY_TENSORS,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(20, 50), (40, 50), (50, 50)]


def test_fewer_samples_than_asked_warns_and_records_the_real_count(
    digits_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = _stream(512)  # the bundled calibration split has 257
    with caplog.at_level(logging.WARNING):
        stats = collect_statistics(digits_model, stream, TINY_TENSORS, requested=512)
    assert stats.samples == 257 and stats.requested == 512
    assert stats.summary()["samples"] == 257
    assert any("257 samples, fewer than the 512 asked" in r.message for r in caplog.records)


def test_corrupt_images_are_skipped_and_counted(tmp_path: Path) -> None:
    import onnx

    folder = write_image_folder(tmp_path / "imgs", {"a": 3, "b": 3}, size=12)
    (folder / "a" / "broken.png").write_bytes(b"not a png")
    contract = PreprocessContract(
        8, 3, (0.5,) * 3, (0.25,) * 3, None, None, Interpolation.BILINEAR, 4
    )
    model = make_tiny_cnn(tmp_path / "rgb.onnx")
    source = open_source(folder, default_split=Split.CALIB)
    stream = BatchStream(source, contract, select_indices(len(source), None, 0), 4)
    tensors = calibration_tensors(onnx.load(str(model)))
    stats = collect_statistics(model, stream, tensors, requested=7)
    assert stats.samples == 6 and stats.requested == 7
    assert [name for name, _ in stats.skipped] == ["a/broken.png"]
    strict = BatchStream(source, contract, select_indices(len(source), None, 0), 4, strict=True)
    with pytest.raises(ResnetOptError, match=r"broken\.png.*\(strict\)$") as error:
        collect_statistics(model, strict, tensors)  # from Python: the field
    assert worded(error.value, FLAGS).endswith("(--strict)")  # the command line: the flag


def test_empty_calibration_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResnetOptError, match="no image files found") as info:
        open_source(tmp_path / "empty", default_split=Split.CALIB)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_npy_data_is_a_clear_error(tmp_path: Path, bad: float) -> None:
    data = np.zeros((4, 1, 8, 8), np.float32)
    data[2, 0, 3, 3] = bad
    np.save(tmp_path / "calib.npy", data)
    with pytest.raises(ResnetOptError, match="NaN or inf") as info:
        open_source(tmp_path / "calib.npy", default_split=Split.CALIB)
    assert "\n" not in str(info.value)


def test_model_and_tensor_errors(tmp_path: Path, digits_model: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(ResnetOptError, match="no tensor named 'nope'"):
        collect_statistics(digits_model, _stream(4), ["input", "nope"])
    with pytest.raises(ResnetOptError, match="'w' is a weight"):
        collect_statistics(digits_model, _stream(4), ["input", "w"])
    with pytest.raises(ResnetOptError, match="no tensors"):
        collect_statistics(digits_model, _stream(4), [])
    rgb = make_tiny_cnn(tmp_path / "rgb.onnx", channels=3)
    with pytest.raises(ResnetOptError, match=r"takes samples of shape 3×8×8.*gives 1×8×8"):
        collect_statistics(rgb, _stream(4), ["input"])

    model = onnx.load(str(digits_model))
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    two = tmp_path / "two_inputs.onnx"
    onnx.save(model, str(two))
    with pytest.raises(ResnetOptError, match="exactly one input"):
        collect_statistics(two, _stream(4), ["input"])


def test_run_batch_follows_the_activation_budget(digits_model: Path) -> None:
    import onnx

    model = onnx.load(str(digits_model))
    per_sample = activation_bytes_per_sample(model, TINY_TENSORS[1:])
    assert per_sample == 4 * (6 * 8 * 8 * 2 + 6 + 6 + 10)
    assert run_batch_size(model, TINY_TENSORS[1:], budget_bytes=per_sample * 5) == 5
    assert run_batch_size(model, TINY_TENSORS[1:], budget_bytes=1) == 1


# -- a real ResNet -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision resnet18 (random weights) exported at 64×64 with a dynamic batch."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path_factory.mktemp("resnet18") / "resnet18.onnx"
    model = torchvision.models.resnet18(weights=None).eval()
    with warnings.catch_warnings():  # the legacy exporter announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 64, 64),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def test_resnet18_calibration_covers_every_conv_and_add_input(
    resnet18_64: Path, tmp_path: Path
) -> None:
    import onnx

    from resnet_opt.calibration.collect import constant_tensors

    model = onnx.load(str(resnet18_64))
    tensors = calibration_tensors(model)
    constant = constant_tensors(model.graph)
    assert not set(tensors) & constant
    for node in model.graph.node:
        if node.op_type == "Conv":
            assert node.input[0] in tensors and node.output[0] in tensors
        if node.op_type == "Add":
            assert all(name in tensors for name in node.input)
    assert tensors[0] == "input" and tensors[-1] == "logits"

    folder = write_image_folder(tmp_path / "imgs", {"x": 3}, size=72)
    contract = PreprocessContract(
        64, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 72, 64, Interpolation.BILINEAR, 1000
    )
    source = open_source(folder, default_split=Split.CALIB)
    stream = BatchStream(source, contract, select_indices(len(source), None, 0), 2)
    stats = collect_statistics(resnet18_64, stream, tensors, threads=1)
    ranges = compute_ranges(stats, Method.ENTROPY)
    assert list(ranges) == tensors
    relu_outputs = [n.output[0] for n in model.graph.node if n.op_type == "Relu"]
    assert all(ranges[name].amin >= 0 for name in relu_outputs)
