"""`bench`: real ONNX Runtime measurements of tiny models, accuracy and drops, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.core.manifest import Precision
from resnet_opt.errors import ResnetOptError
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import (
    BenchOptions,
    bench,
    check_tensorrt_flags,
    input_batch,
    precision_run,
)
from resnet_opt.pipeline.evaluate import EvalOptions, evaluate
from resnet_opt.report.schema import validate
from tests.benchkit import CONTRACT, tiny_set, write_engine, write_export
from tests.conftest import write_image_folder

QUICK = ["--iterations", "3", "--warmup", "0", "--threads", "1"]


def _quick(**kwargs: object) -> BenchOptions:
    base: dict[str, object] = {
        "backends": (Target.ONNXRUNTIME,),
        "batches": (1, 4),
        "budget": Budget(iterations=5, warmup_s=0.0),
        "threads": 1,
    }
    return BenchOptions(**{**base, **kwargs})  # type: ignore[arg-type]


def _fail(args: list[str], code: int = 1) -> str:
    """Run the CLI expecting the one-line user error (2: a usage error); return that line."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr


def test_points_accuracy_and_drop_match_eval(tmp_path: Path) -> None:
    source, child, data = tiny_set(tmp_path)
    report = bench([source, child], options=_quick(data=str(data)))
    validate(report.to_dict())
    keys = [(m.artifact, m.backend, m.batch) for m in report.measurements]
    assert keys == [
        ("model.onnx", "onnxruntime", 1),
        ("model.onnx", "onnxruntime", 4),
        ("model.int8.onnx", "onnxruntime", 1),
        ("model.int8.onnx", "onnxruntime", 4),
    ]
    for m in report.measurements:
        assert m.iterations == 5 and m.threads == 1 and m.provider == "CPUExecutionProvider"
        assert m.throughput == pytest.approx(m.batch * m.iterations / m.total_s)
        lat = m.latency_ms
        assert 0 < lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
    # accuracy: once per artifact × backend, the drop against the FP32 source found by lineage,
    # and the same figures `resnet-opt eval --reference` computes in lock-step
    assert [(a.artifact, a.backend) for a in report.accuracy] == [
        ("model.onnx", "onnxruntime"),
        ("model.int8.onnx", "onnxruntime"),
    ]
    expected = evaluate(child, options=EvalOptions(data=str(data), reference=source))
    got = report.accuracy[1]
    assert got.reference == "model.onnx"
    assert got.top1 == pytest.approx(expected.accuracy.top1)
    assert got.drop_points == pytest.approx(expected.drop_points)
    assert got.top1_agreement == pytest.approx(expected.top1_agreement)
    assert report.accuracy[0].drop_points == 0.0 and report.accuracy[0].top1_agreement == 100.0
    assert report.settings.input == "eval-data"
    info = report.artifact("model.int8.onnx")
    assert info is not None
    assert info.size_bytes == child.stat().st_size
    assert info.lineage == ("model.onnx",) and info.precision == "int8"


def test_source_found_beside_an_artifact_benched_alone(tmp_path: Path) -> None:
    source, child, data = tiny_set(tmp_path)
    report = bench([child], options=_quick(data=str(data), batches=(2,)))
    acc = report.accuracy[0]
    assert acc.reference == "model.onnx"
    expected = evaluate(child, options=EvalOptions(data=str(data), reference=source))
    assert acc.drop_points == pytest.approx(expected.drop_points)


def test_changed_source_is_not_used_as_reference(tmp_path: Path) -> None:
    source, child, data = tiny_set(tmp_path)
    write_export(tmp_path / "other.onnx", seed=7)
    source.write_bytes((tmp_path / "other.onnx").read_bytes())  # sha256 no longer matches
    report = bench([child], options=_quick(data=str(data), batches=(2,)))
    assert report.accuracy[0].reference is None and report.accuracy[0].drop_points is None


def test_fixed_batch_model_is_scored_on_padded_batches(tmp_path: Path) -> None:
    """Six images through a batch-4 model: the last batch of two is padded, not dropped."""
    fixed = write_export(tmp_path / "fixed.onnx", batch=4)
    dynamic = write_export(tmp_path / "dynamic.onnx")  # same seed: the same weights
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 1, "d": 1})
    report = bench([fixed], options=_quick(data=str(data), batches=(4,)))
    acc = report.accuracy[0]
    assert acc.count == 6
    assert acc.top1 == pytest.approx(
        evaluate(dynamic, options=EvalOptions(data=str(data))).accuracy.top1
    )


def test_no_accuracy_uses_seeded_random_input(tmp_path: Path) -> None:
    source, _, _ = tiny_set(tmp_path)
    report = bench([source], options=_quick(data=None, batches=(3,)))
    assert report.accuracy == () and report.settings.input == "random"
    a = input_batch(CONTRACT, 3, None, _quick(data=None))
    b = input_batch(CONTRACT, 3, None, _quick(data=None))
    assert a.shape == (3, 3, 8, 8) and (a == b).all()


def test_input_batch_repeats_real_images(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "d", {"a": 1, "b": 1, "c": 1, "d": 1})
    from resnet_opt.calibration.data import Split, open_source

    source = open_source(str(data), default_split=Split.TEST)
    x = input_batch(CONTRACT, 10, source, _quick())
    assert x.shape == (10, 3, 8, 8) and x.flags["C_CONTIGUOUS"]
    assert (x[4:8] == x[:4]).all()  # four images, repeated to fill the batch


def test_openvino_backend(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    source, _, data = tiny_set(tmp_path)
    report = bench(
        [source], options=_quick(data=str(data), backends=(Target.OPENVINO,), batches=(2,))
    )
    (m,) = report.measurements
    assert m.backend == "openvino" and m.precision_run == "fp32"
    assert report.accuracy[0].reference == "model.onnx"  # source scored with ONNX Runtime
    assert report.accuracy[0].drop_points == pytest.approx(0.0, abs=1e-9)


def test_precision_actually_run() -> None:
    assert precision_run(Precision.FP32, None) == "fp32"
    assert precision_run(Precision.FP32, "bf16") == "bf16"
    assert precision_run(Precision.FP32, "f32") == "fp32"
    assert precision_run(Precision.INT8, "f32") == "int8"
    assert precision_run(Precision.INT8, "bf16") == "int8+bf16"


def test_tensorrt_timing_flags_are_checked_against_the_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the TensorRT runner takes both
    check_tensorrt_flags(BenchOptions(cuda_graph=True, no_data_transfers=True))
    from dataclasses import replace

    from resnet_opt.backends import registry
    from resnet_opt.runners import base

    # a runner without them (here: ONNX Runtime's, registered in TensorRT's place) is refused
    ort = registry.unit(base.Backend.ONNXRUNTIME).runner
    swapped = replace(registry.unit(base.Backend.TENSORRT), runner=ort)
    monkeypatch.setattr(base, "unit", lambda backend: swapped)
    with pytest.raises(ResnetOptError, match="--cuda-graph: this resnet-opt's TensorRT runner"):
        check_tensorrt_flags(BenchOptions(cuda_graph=True))


def test_options_are_checked() -> None:
    with pytest.raises(ResnetOptError, match="not one of the measured batch sizes"):
        BenchOptions(batches=(1, 8), plot_batch=4)
    with pytest.raises(ResnetOptError, match="repeat"):
        BenchOptions(batches=(1, 1))
    with pytest.raises(ResnetOptError, match="positive"):
        BenchOptions(batches=(0,))


# -- the command line ----------------------------------------------------------------------------


def test_cli_writes_the_report_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, child, data = tiny_set(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "report"
    args = ["bench", str(source), str(child), "--data", str(data), "--batch", "1,2", *QUICK]
    result = CliRunner().invoke(
        app,
        [
            *args,
            "--backend",
            "onnxruntime",
            "-o",
            str(out),
            "--summary",
            "--note",
            "tiny test models",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "report.png"]
    assert result.stdout.startswith("## resnet-opt bench")
    assert "| model.int8.onnx | onnxruntime | int8 |" in result.stdout
    assert "earlier step" in summary.read_text() and "| model.onnx |" in summary.read_text()
    data_json = json.loads((out / "report.json").read_text())
    validate(data_json)
    assert "tiny test models" in data_json["notes"]
    assert "![throughput vs top-1 accuracy](report.png)" in (out / "report.md").read_text()
    # an existing report is kept unless --force
    again = _fail([*args, "--backend", "onnxruntime", "-o", str(out)])
    assert "exists; pass --force" in again
    forced = CliRunner().invoke(app, [*args, "-o", str(out), "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    validate(json.loads(forced.stdout))  # --json: stdout is exactly the report


def test_cli_refuses_a_report_path_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resnet_opt.pipeline.bench as bench_module

    def no_bench(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured before refusing the report folder")

    monkeypatch.setattr(bench_module, "bench", no_bench)
    source, _, _ = tiny_set(tmp_path)
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    line = _fail(["bench", str(source), "--no-accuracy", "-o", str(blocker)])
    assert "exists and is not a folder" in line
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "report.png").write_bytes(b"an earlier plot")
    assert "report.png: exists; pass --force" in _fail(["bench", str(source), "-o", str(kept)])


def test_cli_artifact_missing(tmp_path: Path) -> None:
    assert "nope.onnx: no such file" in _fail(["bench", str(tmp_path / "nope.onnx")])


def test_cli_engine_for_another_device(tmp_path: Path) -> None:
    source, _, _ = tiny_set(tmp_path)
    engine = write_engine(tmp_path / "model.plan", source)
    line = _fail(["bench", str(engine), "--batch", "1,8", "--no-accuracy"])
    assert "built for Orin (sm 8.7) with TensorRT 10.3.0.30, this machine has no CUDA GPU" in line


def test_cli_engine_for_another_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same path on a GPU machine: the manifest's GPU is not this one."""
    from resnet_opt.tensorrt import device

    here = device.DeviceInfo("NVIDIA H200", (9, 0), False, "13.0", "10.13.0.35", 0, None, None)
    monkeypatch.setattr(device, "probe_device", lambda **_: here)
    source, _, _ = tiny_set(tmp_path)
    engine = write_engine(tmp_path / "model.plan", source)
    line = _fail(["bench", str(engine), "--batch", "1,8", "--no-accuracy"])
    assert "built for Orin (sm 8.7) with TensorRT 10.3.0.30, this is NVIDIA H200 (sm 9.0)" in line


def test_cli_batch_outside_the_engine_profile(tmp_path: Path) -> None:
    source, _, _ = tiny_set(tmp_path)
    engine = write_engine(tmp_path / "model.plan", source, batch=(1, 8, 8))
    line = _fail(["bench", str(engine), "--batch", "1,32", "--no-accuracy"])
    assert "batch 32 is outside the engine's profile (1..8" in line


def test_cli_classes_that_do_not_match_the_model(tmp_path: Path) -> None:
    source, _, _ = tiny_set(tmp_path)
    data = write_image_folder(tmp_path / "zoo", {"a": 1, "zebra": 1})
    line = _fail(["bench", str(source), "--data", str(data), *QUICK])
    assert "classes not known to the model: zebra" in line


def test_cli_fixed_batch_model(tmp_path: Path) -> None:
    model = write_export(tmp_path / "fixed.onnx", batch=1)
    line = _fail(["bench", str(model), "--batch", "1,8", "--no-accuracy", *QUICK])
    assert "takes batch 1 only, not 8" in line


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [  # 2: the command line is wrong in itself; 1: it does not fit these artifacts
        (["--backend", "ort"], "unknown backend 'ort'", 2),
        (["--backend", "tensorrt"], "none of the requested backends runs it", 1),
        (["--batch", "1,x"], "expected comma-separated integers", 2),
        (["--plot-batch", "4"], "--plot-batch 4 is not one of the measured", 2),
        (["--no-data-transfers"], "applies to TensorRT engines only", 1),
        (["--iterations", "3", "--duration", "1"], "exclude each other", 2),
    ],
)
def test_cli_refuses_bad_options(tmp_path: Path, extra: list[str], message: str, code: int) -> None:
    source, _, _ = tiny_set(tmp_path)
    assert message in _fail(["bench", str(source), "--no-accuracy", *extra], code)


def test_bench_does_not_import_torch_or_matplotlib(tmp_path: Path) -> None:
    source, child, data = tiny_set(tmp_path)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from resnet_opt.measure.timing import Budget\n"
        "from resnet_opt.pipeline.bench import BenchOptions, bench\n"
        f"bench([Path({str(source)!r}), Path({str(child)!r})], options=BenchOptions(batches=(1,), "
        f"budget=Budget(iterations=2), data={str(data)!r}))\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'tensorrt') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_torch_eager_baseline_of_the_default_export(default_onnx: Path) -> None:
    """The FP32 export also runs as PyTorch eager (rebuilt from its manifest), scored the same."""
    pytest.importorskip("torch")
    options = _quick(
        backends=(Target.TORCH, Target.ONNXRUNTIME), batches=(2,), data="default", samples=64
    )
    report = bench([default_onnx], options=options)
    assert [m.backend for m in report.measurements] == ["torch", "onnxruntime"]
    torch_acc, ort_acc = report.accuracy
    assert torch_acc.backend == "torch" and torch_acc.count == 64
    assert torch_acc.top1 == pytest.approx(ort_acc.top1)
    assert torch_acc.top1_agreement is not None and torch_acc.top1_agreement >= 98.0
    assert report.artifacts[0].weights == "bundled" and "weights: bundled" in report.notes


def test_fp16_on_the_ort_cpu_is_reported_as_run_in_fp32(default_onnx: Path, tmp_path: Path) -> None:
    """ORT's x86 CPU provider has no fp16 kernels here: the report must not say fp16 ran."""
    from resnet_opt.pipeline.quantize import quantize
    from resnet_opt.pipeline.quantize_options import QuantizeOptions

    fp16 = tmp_path / "model.fp16.onnx"
    quantize(default_onnx, fp16, QuantizeOptions(precision=Precision.FP16, eval_data="none"))
    report = bench([fp16], options=_quick(batches=(2,), data=None))
    (m,) = report.measurements
    assert m.precision == "fp16" and m.precision_run == "fp32"


class _Recorder:
    """A progress reporter as the CLI's bar is: `(done, total)` and step names."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.steps: list[str] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def describe(self, text: str) -> None:
        self.steps.append(text)


def test_bench_reports_progress_through_the_one_progress_type(tmp_path: Path) -> None:
    """The same `progress(done, total)` that calibration and evaluation take; a reporter that
    can show text is told each step's name."""
    source, _, _ = tiny_set(tmp_path)
    recorder = _Recorder()
    bench([source], options=_quick(data=None, batches=(3,)), progress=recorder)
    total = 2  # one backend: loading, then batch 3
    assert recorder.calls == [(0, total), (1, total), (2, total)]
    assert recorder.steps[0].endswith("onnxruntime · loading")
    assert recorder.steps[-1].endswith("onnxruntime · batch 3")
    counted: list[tuple[int, int]] = []
    bench(
        [source],
        options=_quick(data=None, batches=(3,)),
        progress=lambda d, t: counted.append((d, t)),
    )
    assert counted == recorder.calls  # a plain callable just counts
