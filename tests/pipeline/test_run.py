from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.errors import ResnetOptError
from resnet_opt.pipeline.run_config import DEFAULT_VARIANTS, RunConfig, load_config

runner = CliRunner()

SMALL = """
[data]
eval_samples = 64

[[quantize]]
name = "int8-cpu"
target = "cpu"
method = "max"

[build]
backends = ["onnxruntime", "tensorrt"]

[bench]
batches = [1, 4]
duration = 0.05
warmup = 0.0
threads = 1
"""


def _write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


# -- config --------------------------------------------------------------------------------


def test_no_config_is_the_bundled_default_pipeline() -> None:
    config = load_config(None)
    assert config == RunConfig()
    assert config.model.source == "default"
    assert [v.name for v in config.quantize] == [v.name for v in DEFAULT_VARIANTS]
    assert {v.options.precision for v in config.quantize} == {"int8", "fp16"}
    assert {v.options.target for v in config.quantize} == {"cpu", "tensorrt", None}


def test_config_values_are_typed(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, SMALL))
    assert config.bench.batches == (1, 4)
    assert config.bench.duration == 0.05
    assert config.quantize[0].options.method == "max"
    assert config.data.eval_samples == 64


def test_reduce_range_reaches_the_quantize_stage(tmp_path: Path) -> None:
    text = "[[quantize]]\nname = 'cpu8'\ntarget = 'cpu'\nreduce_range = false\n"
    config = load_config(_write(tmp_path, text))
    assert config.quantize_options(config.quantize[0]).reduce_range is False
    default = load_config(None)
    assert [default.quantize_options(v).reduce_range for v in default.quantize] == [
        None,  # the cpu target's default: 7-bit weights
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[bench]\nbatchs = [1]\n", "unknown key 'batchs'"),
        ("[[quantize]]\nname = 'a'\nmethd = 'max'\n", "quantize[0]: unknown key 'methd'"),
        ("[build.tensorrt]\nworkspce = '1G'\n", "build: tensorrt: unknown key 'workspce'"),
        ("[bench]\nbatches = 8\n", "bench: batches: expected a list"),
        ("[bench]\nthreads = 'two'\n", "bench: threads: expected an integer"),
        ("[[quantize]]\ntarget = 'cpu'\n", "missing key 'name'"),
        ("[[quantize]]\nname = 'a'\n[[quantize]]\nname = 'a'\n", "used twice"),
        ("[[quantize]]\nname = '../x'\n", "plain file-name part"),
        ("not toml = = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ResnetOptError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, text))
    result = _invoke("run", str(tmp_path / "run.toml"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2  # a mistake in the config's content is a usage error
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[quantize]]\nname = 'a'\nmethod = 'kl'\n", "quantize[0].method = 'kl'"),
        ("[build]\nbackends = ['tflite']\n", "build.backends[0] = 'tflite'"),
        ("[[quantize]]\nname = 'a'\nprecision = 'fp16'\ntarget = 'cpu'\n", "int8 only"),
        ("[model]\ninterpolation = 'cubic'\n", "model.interpolation = 'cubic'"),
        (
            "[build.onnxruntime]\noptimization = 'max'\n",
            "build.onnxruntime.optimization = 'max'",
        ),
        (
            "[build]\nbackends = ['openvino']\n[build.openvino]\nprecision = 'f64'\n",
            "build.openvino.precision = 'f64'",
        ),
        ("[build.tensorrt]\nbatch = '8:1'\n", "give N or min:opt:max"),
        (
            "[[quantize]]\nname = 'a'\ntarget = 'tensorrt'\nreduce_range = false\n",
            'quantize[0].reduce_range applies to int8 with target = "cpu" only',
        ),
        ("[[quantize]]\nname = 'a'\nreduce_range = true\n", "quantize[0].reduce_range"),
    ],
)
def test_bad_choices_are_refused_before_any_work(tmp_path: Path, text: str, message: str) -> None:
    result = _invoke("run", str(_write(tmp_path, text)), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    result = _invoke("run", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert "no such config file" in result.stderr


# -- the pipeline ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    folder = tmp_path_factory.mktemp("run")
    config = _write(folder, SMALL)
    out = folder / "out"
    result = _invoke("run", str(config), "-o", str(out))
    return config, out, result


def test_run_writes_every_stage_and_the_report(small_run: tuple[Path, Path, Any]) -> None:
    _, out, result = small_run
    assert result.exit_code == 0, result.output
    for name in (
        "model.onnx",
        "model.int8-cpu.onnx",
        "model.optimized.onnx",
        "model.int8-cpu.optimized.onnx",
        "report/report.json",
        "report/report.md",
        "report/report.png",
        "run-state.json",
    ):
        assert (out / name).is_file(), name
    assert "| " in result.stdout  # the Markdown table is printed
    assert "build tensorrt: skipped: no TensorRT" in result.stderr
    report = json.loads((out / "report" / "report.json").read_text())
    names = {m["artifact"] for m in report["measurements"]}
    assert {"model.onnx", "model.int8-cpu.onnx", "model.int8-cpu.optimized.onnx"} <= names
    assert {m["batch"] for m in report["measurements"]} == {1, 4}
    drops = [a for a in report["accuracy"] if a["artifact"] == "model.int8-cpu.onnx"]
    assert drops and drops[0]["drop_points"] is not None


def test_second_run_skips_every_stage(small_run: tuple[Path, Path, Any]) -> None:
    config, out, first = small_run
    assert first.exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = _invoke("--quiet", "run", str(config), "-o", str(out), "--json")
    assert again.exit_code == 0, again.output
    stages = json.loads(again.stdout)["stages"]
    statuses = {s["name"]: s["status"] for s in stages}
    assert statuses.pop("build tensorrt").startswith("skipped: no TensorRT")
    assert set(statuses.values()) == {"unchanged"}
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_changed_option_reruns_only_what_depends_on_it(
    small_run: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    _, out, first = small_run
    assert first.exit_code == 0
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    changed = _write(tmp_path, SMALL.replace('method = "max"', 'method = "percentile"'))
    result = _invoke("--quiet", "run", str(changed), "-o", str(copy), "--json")
    assert result.exit_code == 0, result.output
    statuses = {s["name"]: s["status"] for s in json.loads(result.stdout)["stages"]}
    assert statuses["export"] == "unchanged"
    assert statuses["build onnxruntime fp32"] == "unchanged"
    assert statuses["quantize int8-cpu"] == "done"
    assert statuses["build onnxruntime int8-cpu"] == "done"
    assert statuses["bench"] == "done"
    manifest = json.loads((copy / "model.int8-cpu.onnx.json").read_text())
    assert manifest["details"]["calibration"]["method"] == "percentile"


def test_a_modified_output_is_rebuilt(small_run: tuple[Path, Path, Any], tmp_path: Path) -> None:
    config, out, first = small_run
    assert first.exit_code == 0
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "report" / "report.md").write_text("edited by hand\n")
    result = _invoke("--quiet", "run", str(config), "-o", str(copy), "--json")
    statuses = {s["name"]: s["status"] for s in json.loads(result.stdout)["stages"]}
    assert statuses["bench"] == "done"
    assert statuses["export"] == "unchanged"
    assert "edited by hand" not in (copy / "report" / "report.md").read_text()


def test_failed_gate_exits_3_after_every_stage(
    small_run: tuple[Path, Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quantize gate failure is reported after the bench, and again on a re-run."""
    import resnet_opt.pipeline.quantize as quantize_module

    _, out, first = small_run
    assert first.exit_code == 0
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    strict = _write(tmp_path, SMALL + "\n[gates]\nmax_drop = 0.0\n")
    real = quantize_module.quantize

    def failing(*args: Any, **kwargs: Any) -> Any:
        # the real stage runs and writes; the gate then fails as it would for a real drop
        result = real(*args, **kwargs)
        message = "top-1 dropped 0.40 points, over --max-drop 0"
        raise quantize_module.QuantizeGateError(message, result)

    monkeypatch.setattr(quantize_module, "quantize", failing)
    result = _invoke("run", str(strict), "-o", str(copy))
    assert result.exit_code == 3
    assert "quality gate failed: top-1 dropped 0.40 points" in result.stderr
    assert (copy / "report" / "report.json").is_file()
    monkeypatch.setattr(quantize_module, "quantize", real)
    again = _invoke("--quiet", "run", str(strict), "-o", str(copy))
    assert again.exit_code == 3  # the stage is unchanged, its failed gate is not forgotten


def test_tensorrt_build_is_skipped_where_the_driver_sees_no_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A driver without a visible GPU (CUDA_VISIBLE_DEVICES="") cannot build: skipped, as
    build_tensorrt would refuse it, not attempted."""
    import resnet_opt.deps
    import resnet_opt.environment
    import resnet_opt.tensorrt.device as device
    from resnet_opt.pipeline.run import _unavailable
    from resnet_opt.runners.base import Backend

    real_probe = resnet_opt.deps.probe
    monkeypatch.setattr(
        resnet_opt.deps,
        "probe",
        lambda name: ("10.3.0", None) if name == "tensorrt" else real_probe(name),
    )
    monkeypatch.setattr(
        resnet_opt.environment,
        "cuda_driver",
        lambda: resnet_opt.environment.Probe("cuda-driver", "12.6"),
    )
    no_gpu = device.GpuProbe(None, None, None, "12.6", "the CUDA driver sees no GPU")
    monkeypatch.setattr(device, "probe_gpu", lambda: no_gpu)
    assert _unavailable(Backend.TENSORRT) == "no CUDA GPU (the CUDA driver sees no GPU)"


def test_output_folder_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("x")
    result = _invoke("run", "-o", str(blocker))
    assert result.exit_code == 1
    assert "is a file" in result.stderr


def test_gate_without_evaluation_data_is_said_not_skipped_silently(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
[model]
mean = [0.5]
std = [0.3]

[data]
calibration = "default:calib"
calib_samples = 32

[[quantize]]
name = "int8-cpu"
target = "cpu"
method = "max"

[build]
backends = ["onnxruntime"]

[bench]
batches = [1]
duration = 0.02
warmup = 0.0
threads = 1
""",
    )
    result = _invoke("run", str(config), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "gates: max_drop 1 not applied: no evaluation data" in result.stderr
    manifest = json.loads((tmp_path / "out" / "model.int8-cpu.onnx.json").read_text())
    assert manifest["verification"]["evaluated"] is False


def test_a_quantize_refusal_inside_run_names_the_config_key(tmp_path: Path) -> None:
    """Only the exported model shows that the excluded layer does not exist; the refusal then
    names what the config said (`quantize[0].exclude`), not a flag its user never typed."""
    config = _write(
        tmp_path,
        """
[data]
calib_samples = 16
evaluation = "none"

[[quantize]]
name = "int8-cpu"
target = "cpu"
exclude = ["NoSuchLayer"]

[build]
backends = []
""",
    )
    result = _invoke("run", str(config), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: quantize[0].exclude NoSuchLayer: no node or op type"), line
    assert "--exclude" not in result.stderr
    assert not (tmp_path / "out" / "model.int8-cpu.onnx").exists()


@pytest.mark.slow
def test_default_run_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first command: `resnet-opt run` with nothing, in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    result = _invoke("run")
    assert result.exit_code == 0, result.output
    out = tmp_path / "resnet-opt-out"
    for name in (
        "model.onnx",
        "model.int8-cpu.onnx",
        "model.int8-tensorrt.onnx",
        "model.int8-tensorrt.trt-calib.cache",
        "model.fp16.onnx",
        "model.optimized.onnx",
        "model.int8-cpu.optimized.onnx",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report" / "report.json").read_text())
    accuracy = {a["artifact"]: a for a in report["accuracy"]}
    for name in ("model.int8-cpu.onnx", "model.int8-tensorrt.onnx", "model.fp16.onnx"):
        assert accuracy[name]["drop_points"] <= 1.0  # the default gate
    assert "build tensorrt: skipped: no TensorRT" in result.stderr
    assert "| model.int8-tensorrt.onnx |" in result.stdout
    # the CPU artifact keeps 8-bit weights yet cannot saturate on x86 CPUs without VNNI: each
    # pair of weights that meets one activation pair sums within the 16-bit bound
    # (tests/quantization/test_emulate.py proves the exact int32 result there), and the report
    # names this CPU's family
    quant = json.loads((out / "model.int8-cpu.onnx.json").read_text())["details"]["quantization"]
    assert quant["weight_range"] == [-127, 127] and quant["safe_pairs"] is True
    assert quant["saturation_safe"] is True
    for name in ("model.int8-cpu.onnx", "model.int8-tensorrt.onnx", "model.fp16.onnx"):
        assert accuracy[name]["drop_points"] <= 0.5
    assert report["machine"]["cpu_int8_family"]


def test_a_bench_without_duration_or_iterations_is_refused_before_the_folder(
    tmp_path: Path,
) -> None:
    """Only a config built in Python can leave both unset (TOML has no None)."""
    from resnet_opt.errors import UsageError
    from resnet_opt.pipeline.run import run
    from resnet_opt.pipeline.run_config import BenchConfig

    out = tmp_path / "out"
    with pytest.raises(UsageError, match=r"^config: bench: give duration or iterations$"):
        run(RunConfig(bench=BenchConfig(duration=None)), out)
    assert not out.exists()
