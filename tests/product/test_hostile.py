"""The catalogue of hostile input: one parametrized test per class of mistake, every command.

Each class holds one rule, checked over every command it applies to, so the next hostile input
of the same kind goes into a parameter list rather than a new test:

- NaN and infinity never pass a gate: options, report values and manifest values are refused.
- An artifact whose bytes differ from its manifest is refused by every command that reads one.
- A user error is one line and exit 1 (files, data, device) or 2 (the command line or config
  itself), never a traceback; the same mistake has the same code in every command.
- Values that would exhaust the host (threads, array sizes) are refused before any work.
- SIGTERM cleans up like Ctrl-C; stale temporary files are removed; one writer per output.
- `run` checks every config value before its first stage, naming the TOML key.
- Labels map one-to-one; fold folds through constant subgraphs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from resnet_opt.cli import app
from resnet_opt.core.manifest import manifest_path
from resnet_opt.core.output_lock import acquire, lock_path, release
from tests.benchkit import small_report, tiny_set, write_export
from tests.conftest import TINY_CONTRACT, make_tiny_cnn, write_image_folder
from tests.pipeline.test_fold import make_bn_cnn, resnet18_with_bn  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
MANY = 10**6  # threads no machine has
runner = CliRunner()


def _invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _refused(result: Any, code: int, *fragments: str) -> str:
    """Exit `code`, no traceback, and (for our own errors) one `error:` line with `fragments`."""
    out = result.stderr
    assert result.exit_code == code, (result.exit_code, out, result.exception)
    assert "Traceback" not in result.output, result.output
    if out.startswith("error: "):
        assert out.count("\n") == 1, out
    flat = " ".join(out.replace("│", " ").split())  # Typer's usage box wraps long lines
    for fragment in fragments:
        assert fragment in flat, out
    return flat


def _outputs(folder: Path) -> set[str]:
    """Every file under `folder`: outputs, and any temporary or lock file left behind (the
    tests keep their inputs in another folder, so nothing is left out)."""
    return {p.name for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def kit(tmp_path: Path) -> dict[str, Path]:
    """A tiny FP32 export, an 'int8' child, labelled images, and a place for outputs."""
    source, child, data = tiny_set(tmp_path / "in")
    return {"source": source, "child": child, "data": data, "out": tmp_path / "out"}


def _tamper(path: Path) -> None:
    """Change an ONNX file's bytes and keep it a valid model (as an edit by hand would)."""
    model = onnx.load(str(path))
    model.metadata_props.add(key="edited", value="by hand")
    onnx.save(model, str(path))


# -- 1. NaN and infinity never pass a gate ------------------------------------------------------

FLOAT_OPTIONS = [
    ("eval", "{source}", "--reference", "{child}", "--max-drop"),
    ("quantize", "{source}", "-o", "{out}/q.onnx", "--max-drop"),
    ("quantize", "{source}", "-o", "{out}/q.onnx", "--accuracy-budget"),
    ("quantize", "{source}", "-o", "{out}/q.onnx", "--method", "percentile", "--percentile"),
    ("export", "-o", "{out}/e.onnx", "--tolerance"),
    ("fold", "{source}", "-o", "{out}/f.onnx", "--tolerance"),
    ("build", "{source}", "-o", "{out}/b.onnx", "--backend", "onnxruntime", "--tolerance"),
    ("bench", "{source}", "--no-accuracy", "--duration"),
    ("bench", "{source}", "--no-accuracy", "--warmup"),
    ("compare", "{source}", "{child}", "--max-accuracy-drop"),
    ("compare", "{source}", "{child}", "--max-throughput-drop"),
    ("compare", "{source}", "{child}", "--max-latency-rise"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("command", FLOAT_OPTIONS, ids=lambda c: f"{c[0]} {c[-1]}")
def test_no_option_takes_nan_or_infinity(
    kit: dict[str, Path], command: tuple[str, ...], value: str
) -> None:
    args = [a.format(**kit) for a in command]
    args[-1] = f"{args[-1]}={value}"  # `--x=-inf`: never read as an option
    _refused(_invoke(*args), 2)
    assert not kit["out"].exists()


@pytest.fixture(scope="module")
def report_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data: dict[str, Any] = small_report(tmp_path_factory.mktemp("report")).to_dict()
    return data


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "field",
    ["measurements/0/throughput", "measurements/1/latency_ms/p50", "accuracy/0/top1"],
)
def test_report_values_must_be_finite(
    tmp_path: Path, report_json: dict[str, Any], field: str, bad: float
) -> None:
    data = json.loads(json.dumps(report_json))
    *parents, last = field.split("/")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = bad
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(report_json))
    new.write_text(json.dumps(data))  # Python writes NaN / Infinity, as a hand edit might
    for args in ((base, new), (new, base)):
        _refused(_invoke("compare", *args), 1, f"{field} is not a finite number")


def test_compare_of_nothing_in_common_is_no_verdict(
    tmp_path: Path, report_json: dict[str, Any]
) -> None:
    empty = json.loads(json.dumps(report_json))
    empty["measurements"], empty["accuracy"] = [], []
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(report_json))
    new.write_text(json.dumps(empty))
    _refused(_invoke("compare", base, new), 1, "nothing to compare")
    gated = _invoke("compare", base, new, "--fail-on-missing")  # missing rows fail the gate
    assert gated.exit_code == 3, gated.output


@pytest.mark.parametrize("field", ["verification", "details"])
def test_manifest_values_must_be_finite(kit: dict[str, Path], field: str) -> None:
    path = manifest_path(kit["source"])
    data = json.loads(path.read_text())
    data[field] = {"max_abs_error": math.nan}
    path.write_text(json.dumps(data))
    _refused(
        _invoke("eval", kit["source"], "--data", kit["data"]),
        1,
        f"{field}/max_abs_error is not a finite number",
        str(path),
    )


# -- 2. no artifact is read without its hash checked ---------------------------------------------

READERS = [
    ("eval", "{bad}", "--data", "{data}"),
    ("eval", "{good}", "--data", "{data}", "--reference", "{bad}"),
    ("build", "{bad}", "-o", "{out}/b.onnx", "--backend", "onnxruntime"),
    ("bench", "{bad}", "--no-accuracy", "--iterations", "1", "--batch", "1"),
    ("bench", "{good}", "--data", "{data}", "--reference", "{bad}", "--iterations", "1"),
    ("fold", "{bad}", "-o", "{out}/f.onnx"),
    ("quantize", "{bad}", "-o", "{out}/q.onnx", "--calib", "{data}", "--eval", "none"),
]


@pytest.mark.parametrize("how", ["edited", "swapped"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2] + c[-2:]))
def test_every_reader_checks_the_hash(
    kit: dict[str, Path], command: tuple[str, ...], how: str
) -> None:
    bad, good = kit["child"], kit["source"]
    if how == "edited":
        _tamper(bad)
    else:  # another model's bytes beside this manifest (an FP32 file under an INT8 name)
        bad.write_bytes(good.read_bytes())
    args = [a.format(bad=bad, good=good, data=kit["data"], out=kit["out"]) for a in command]
    _refused(_invoke(*args), 1, f"{bad}: content does not match its manifest")
    assert not kit["out"].exists()


# -- 3. user errors: one line, no traceback ------------------------------------------------------

USER_ERRORS = [
    (("eval", "{source}", "--seed", "-1", "--samples", "2"), 2, "--seed"),
    (("quantize", "{source}", "-o", "{out}/q.onnx", "--seed", "-1"), 2, "--seed"),
    (("fold", "{source}", "-o", "{out}/f.onnx", "--seed", "-1"), 2, "--seed"),
    (("bench", "{source}", "--seed", "-1", "--no-accuracy"), 2, "--seed"),
    (("export", "-o", "{out}/e.onnx", "--seed", "-1"), 2, "--seed"),
    (("eval", "{folder}"), 1, "is a folder"),
    (("eval", "{out}/missing.onnx"), 1, "no such file"),
    (("fold", "{garbage}", "-o", "{out}/f.onnx"), 1, "not an ONNX model"),
    (("fold", "{source}", "-o", "{source}", "--force"), 1, "is the source model"),
    (("export", "--labels", "a,b,a", "-o", "{out}/e.onnx"), 2, "'a' is given twice"),
    (("fold", "{folder}", "-o", "{out}/f.onnx"), 1, "is a folder, not an ONNX file"),
    (("fold", "{external}", "-o", "{out}/f.onnx"), 1, "external weight data is missing"),
    (("eval", "{bad_contract}"), 1, "bad_contract.onnx.json: channels must be 1 or 3"),
]


@pytest.mark.parametrize(("command", "code", "fragment"), USER_ERRORS, ids=lambda x: str(x))
def test_user_errors_are_one_line(
    kit: dict[str, Path], tmp_path: Path, command: tuple[str, ...], code: int, fragment: str
) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not protobuf" * 10)
    external = tmp_path / "external.onnx"  # weights in a side file that is not there
    onnx.save(
        onnx.load(str(kit["source"])),
        str(external),
        save_as_external_data=True,
        location="external.onnx.data",
        size_threshold=0,
    )
    (tmp_path / "external.onnx.data").unlink()
    bad_contract = write_export(tmp_path / "bad_contract.onnx")
    text = manifest_path(bad_contract).read_text()
    manifest_path(bad_contract).write_text(text.replace('"channels": 3', '"channels": 2'))
    names = {"folder": tmp_path, "garbage": garbage, "external": external}
    args = [a.format(**kit, **names, bad_contract=bad_contract) for a in command]
    _refused(_invoke(*args), code, fragment)
    assert not kit["out"].exists()


@pytest.mark.parametrize("pixels", [12, 20])  # over the limit (Pillow warns), over twice (raises)
@pytest.mark.parametrize("strict", [True, False])
def test_decompression_bombs_are_one_line(
    kit: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pixels: int, strict: bool
) -> None:
    from PIL import Image

    data = write_image_folder(tmp_path / "bombs", {"a": 2, "b": 2}, size=pixels)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    args = ["eval", kit["source"], "--data", data, *(["--strict"] if strict else [])]
    flat = _refused(_invoke(*args), 1)
    assert "decompression-bomb limit" in flat or "no sample" in flat or "could be" in flat, flat
    if strict:
        assert "a/000.png" in flat


def test_bench_summary_target_is_checked_before_measuring(
    kit: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a folder: cannot be appended to
    result = _invoke("bench", kit["source"], "--no-accuracy", "--summary", "-o", kit["out"])
    _refused(result, 1, "GITHUB_STEP_SUMMARY", "is a folder")
    assert not kit["out"].exists()  # refused before the report was written


# -- 4. values that would exhaust the host -------------------------------------------------------

THREAD_USERS = [
    ("eval", "{source}", "--samples", "2"),
    ("fold", "{source}", "-o", "{out}/f.onnx"),
    ("quantize", "{source}", "-o", "{out}/q.onnx"),
    ("build", "{source}", "-o", "{out}/b.onnx", "--backend", "onnxruntime"),
    ("bench", "{source}", "--no-accuracy"),
    ("export", "-o", "{out}/e.onnx"),
]


@pytest.mark.parametrize("command", THREAD_USERS, ids=lambda c: c[0])
def test_threads_are_bounded_by_the_cpus(kit: dict[str, Path], command: tuple[str, ...]) -> None:
    args = [a.format(**kit) for a in command]
    _refused(_invoke(*args, "--threads", MANY), 2, f"{MANY} threads", "--force-threads")
    assert not kit["out"].exists()


def _symbolic_model(path: Path) -> Path:
    """The tiny CNN with symbolic height and width, and no manifest."""
    make_tiny_cnn(path)
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (("bench", "{source}", "--no-accuracy", "--batch", "1000000000000"), "TB"),
        (("bench", "{source}", "--no-accuracy", "--batch", "1,2000000000000"), "PB"),
        (("fold", "{symbolic}", "-o", "{out}/f.onnx", "--input-shape", "3,1000000,1000000"), "TB"),
        (("export", "-o", "{out}/e.onnx", "--batch", "1000000000000"), "PB"),
        (("export", "-o", "{out}/e.onnx", "--input-size", "100000000"), "PB"),
    ],
)
def test_arrays_that_cannot_fit_are_refused_with_their_size(
    kit: dict[str, Path], tmp_path: Path, command: tuple[str, ...], fragment: str
) -> None:
    symbolic = _symbolic_model(tmp_path / "symbolic.onnx")
    args = [a.format(**kit, symbolic=symbolic) for a in command]
    _refused(_invoke(*args), 2, "array needs", fragment, "of memory available here")
    assert not kit["out"].exists()


# -- 5. SIGTERM, stale temporary files, concurrent writers ---------------------------------------


def _cli_process(*args: Any, cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "resnet_opt.cli", "-q", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_mid_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new-folder"
    process = _cli_process("export", "-o", out / "model.onnx", cwd=tmp_path)
    deadline = time.monotonic() + 120

    def written() -> bool:  # the model is in its temp file; its parity check is running
        temps = [p for p in out.iterdir() if p.suffix == ".tmp"] if out.is_dir() else []
        return any(p.stat().st_size > 0 for p in temps if p.exists())

    while not written():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err
    assert not out.exists(), list(out.iterdir())  # temp files, lock files, the folder: all gone


@pytest.mark.parametrize("leftover", [".f.onnx.0123abcd.tmp", ".f.onnx.json.89abcdef.tmp"])
def test_stale_temp_files_of_a_killed_run_are_removed(kit: dict[str, Path], leftover: str) -> None:
    kit["out"].mkdir()
    stale = kit["out"] / leftover
    stale.write_bytes(b"half a model")
    lock_path(kit["out"] / "f.onnx").write_text("")  # SIGKILL leaves the lock file, not the lock
    result = _invoke("fold", kit["source"], "-o", kit["out"] / "f.onnx")
    assert result.exit_code == 0, result.output
    assert _outputs(kit["out"]) == {"f.onnx", "f.onnx.json"}


def test_a_second_writer_of_one_output_is_refused(kit: dict[str, Path]) -> None:
    kit["out"].mkdir()
    target = kit["out"] / "f.onnx"
    held = acquire(target)  # another process in the middle of writing it
    try:
        for force in ([], ["--force"]):
            _refused(
                _invoke("fold", kit["source"], "-o", target, *force),
                1,
                "another resnet-opt process is writing it",
            )
    finally:
        release(held)
    assert _outputs(kit["out"]) == set()


def test_two_processes_never_both_write_one_output(kit: dict[str, Path]) -> None:
    target = kit["out"] / "f.onnx"
    first = _cli_process("fold", kit["source"], "-o", target, cwd=kit["out"].parent)
    second = _cli_process("fold", kit["source"], "-o", target, cwd=kit["out"].parent)
    errors = [p.communicate(timeout=300)[1].decode() for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 1], errors
    refusal = next(e for p, e in zip((first, second), errors, strict=True) if p.returncode == 1)
    assert "another resnet-opt process" in refusal or "exists" in refusal, refusal
    assert _outputs(kit["out"]) == {"f.onnx", "f.onnx.json"}


# -- 6. run: the whole config before the first stage, by TOML key --------------------------------

RUN_CONFIG = [
    ("[data]\ncalib_samples = -5\n", "data.calib_samples"),
    ("[data]\ncalib_samples = 0\n", "data.calib_samples"),
    ("[data]\nseed = -1\n", "data.seed"),
    ("[bench]\nbatches = []\n", "bench.batches"),
    ("[bench]\nbatches = [1, 0]\n", "bench.batches[1]"),
    ("[bench]\nbatches = [1000000000]\n", "bench.batches[0]"),
    ("[bench]\nduration = nan\n", "bench.duration"),
    ("[bench]\nduration = 0\n", "bench.duration"),
    ("[bench]\nwarmup = -inf\n", "bench.warmup"),
    ("[bench]\niterations = 0\n", "bench.iterations"),
    ("[bench]\nthreads = 0\n", "bench.threads"),
    (f"[bench]\nthreads = {MANY}\n", f"bench.threads: {MANY} threads"),
    ("[bench]\nplot_batch = 3\n", "bench.plot_batch"),
    ("[gates]\nmax_drop = nan\n", "gates.max_drop"),
    ("[gates]\nmax_drop = -1\n", "gates.max_drop"),
    ("[model]\nstd = [0.5, 0.0, 0.5]\n", "model.std[1]"),
    ("[model]\nmean = [0.5, inf, 0.5]\n", "model.mean[1]"),
    ("[model]\nchannels = 2\n", "model.channels"),
    ("[[quantize]]\nname = 'a'\nmethod = 'percentile'\npercentile = 101\n", "quantize[0]"),
    ("[[quantize]]\nname = 'a'\naccuracy_budget = nan\n", "quantize[0].accuracy_budget"),
    ("[build.tensorrt]\nopt_level = 9\n", "build.tensorrt.opt_level"),
    ("[build.tensorrt]\nbatch = '8:1'\n", "build.tensorrt.batch"),
    ("[build.tensorrt]\nworkspace = 'lots'\n", "build.tensorrt.workspace"),
    ("[build.onnxruntime]\nthreads = 0\n", "build.onnxruntime.threads"),
    (f"[build.openvino]\nthreads = {MANY}\n", f"build.openvino.threads: {MANY} threads"),
    ("[build.openvino]\ninput_shape = [3, 0, 32]\n", "build.openvino.input_shape[1]"),
    ("[build.openvino]\nsamples = 0\n", "build.openvino"),
    ("[build.onnxruntime]\ntolerance = -1.0\n", "build.onnxruntime"),
    ("[model]\nlabels = 'a,b,a'\n", "model.labels"),
    ("[model]\nresize = -3\n", "model.resize"),
    ("[model]\nmean = []\n", "model.mean"),
    ("[model]\nopset = 100000\n", "model.opset"),
    ("[data]\ncalibration = 'default:nosplit'\n", "data.calibration"),
    ("[[quantize]]\nname = 'a'\nexclude = ['']\n", "quantize[0].exclude"),
    ("[[quantize]]\nname = 'a'\npercentile = 99\n", "quantize[0].percentile"),
    ("[[quantize]]\nname = 'a'\nthreads = 0\n", "quantize[0].threads"),
    (
        "[data]\nevaluation = 'none'\n[[quantize]]\nname = 'a'\naccuracy_budget = 1\n",
        "quantize[0].accuracy_budget",
    ),
    ("[build]\nbackends = ['onnxruntime', 'onnxruntime']\n", "build.backends"),
]


@pytest.mark.parametrize(("text", "key"), RUN_CONFIG)
def test_run_checks_every_config_value_first(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "run.toml"
    config.write_text(text)
    out = tmp_path / "out"
    flat = _refused(_invoke("run", config, "-o", out), 2, f"config: {key}")
    assert "--" not in flat.replace("--force-threads", "")  # TOML keys, not CLI flags
    assert not out.exists()  # refused before the folder, let alone the first stage


@pytest.mark.parametrize("key", ["data.calibration", "data.evaluation", "model.weights"])
def test_run_refuses_missing_files_before_the_first_stage(tmp_path: Path, key: str) -> None:
    config = tmp_path / "run.toml"
    table, name = key.split(".")
    config.write_text(f"[{table}]\n{name} = '{tmp_path / 'nowhere.pt'}'\n")
    _refused(_invoke("run", config, "-o", tmp_path / "out"), 1, f"config: {key}", "no such file")
    assert not (tmp_path / "out").exists()


# -- 7. one exit code per kind of mistake --------------------------------------------------------

SAME_MISTAKE = {
    "unknown choice": [
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--precision", "fp8"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--target", "gpu"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--method", "kl"),
        ("export", "-o", "{out}/e.onnx", "--exporter", "onnxscript"),
        ("export", "-o", "{out}/e.onnx", "--interpolation", "lanczos"),
        ("compare", "{source}", "{child}", "--latency-stat", "p42"),
        ("build", "{source}", "-o", "{out}/b.onnx", "--backend", "tflite"),
        ("build", "{source}", "-o", "{out}/b.onnx", "--backend", "onnxruntime", "--provider", "x"),
        ("build", "onnxruntime", "{source}", "-o", "{out}/b.onnx", "--optimization", "most"),
        ("build", "openvino", "{source}", "-o", "{out}/b.xml", "--precision-hint", "int4"),
        ("bench", "{source}", "--backend", "ort"),
        ("run", "{toml:[[quantize]]\nname = 'a'\nmethod = 'kl'\n}"),
    ],
    "negative tolerance": [
        ("export", "-o", "{out}/e.onnx", "--tolerance=-1"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--tolerance=-1"),
        ("build", "{source}", "-o", "{out}/b.onnx", "--backend", "onnxruntime", "--tolerance=-1"),
    ],
    "negative threshold": [
        ("eval", "{source}", "--reference", "{child}", "--max-drop=-1"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--max-drop=-1"),
        ("compare", "{source}", "{child}", "--max-accuracy-drop=-1"),
        ("compare", "{source}", "{child}", "--max-throughput-drop=-1"),
        ("run", "{toml:[gates]\nmax_drop = -1\n}"),
    ],
    "batch 0": [
        ("bench", "{source}", "--batch", "0"),
        ("build", "{source}", "-o", "{out}/b.plan", "--backend", "tensorrt", "--batch", "0"),
        ("export", "-o", "{out}/e.onnx", "--batch", "0"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--batch-size", "0"),
        ("eval", "{source}", "--batch-size", "0"),
        ("run", "{toml:[bench]\nbatches = [0]\n}"),
    ],
    "zero count": [
        ("bench", "{source}", "--iterations", "0"),
        ("bench", "{source}", "--duration", "0"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--calib-samples", "0"),
        ("eval", "{source}", "--samples", "0"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--samples", "0"),
        ("run", "{toml:[data]\ncalib_samples = 0\n}"),
        ("run", "{toml:[bench]\niterations = 0\n}"),
    ],
    "conflicting options": [
        ("bench", "{source}", "--iterations", "3", "--duration", "1"),
        ("eval", "{source}", "--max-drop", "1"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--precision", "fp16", "--target", "cpu"),
        ("build", "{source}", "-o", "{out}/b.plan", "--backend", "tensorrt", "--threads", "1"),
        ("build", "openvino", "{source}", "-o", "{out}/b.xml", "--dla-core", "0"),
    ],
}


def _fill(arg: str, kit: dict[str, Path], folder: Path) -> str:
    if arg.startswith("{toml:"):
        config = folder / "run.toml"
        config.write_text(arg[len("{toml:") : -1])
        return str(config)
    return arg.format(**kit)


@pytest.mark.parametrize("kind", sorted(SAME_MISTAKE))
def test_one_exit_code_per_kind_of_mistake(kit: dict[str, Path], tmp_path: Path, kind: str) -> None:
    for command in SAME_MISTAKE[kind]:
        args = [_fill(a, kit, tmp_path) for a in command]
        result = _invoke(*args, *(["-o", kit["out"]] if args[0] == "run" else []))
        flat = _refused(result, 2)
        if kind == "unknown choice":
            assert "choose" in flat, (command, flat)
    assert not kit["out"].exists()


# -- 8. labels ------------------------------------------------------------------------------------


def test_eval_warns_when_classes_do_not_map_one_to_one(tmp_path: Path) -> None:
    import dataclasses

    contract = dataclasses.replace(TINY_CONTRACT, labels=("a", "a", "c", "d"))
    model = write_export(tmp_path / "m.onnx", contract=contract)
    data = write_image_folder(tmp_path / "data", {"a": 2, "c": 2, "d": 2})
    result = _invoke("eval", model, "--data", data)
    assert result.exit_code == 0, result.output
    assert "do not map one-to-one" in " ".join(result.stderr.split()), result.stderr


# -- 9. fold through constant subgraphs ----------------------------------------------------------


def as_constant_subgraphs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every initializer rewritten as a small computation on constants, rotating through the
    forms older exporters and other frameworks write (Constant, Identity, Cast, Reshape, Mul,
    ConstantOfShape + Add, Unsqueeze + Squeeze)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    made: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        made.append(
            helper.make_node(
                "Constant", [], [name], value=numpy_helper.from_array(value, name), name=name
            )
        )
        return name

    for i, tensor in enumerate(graph.initializer):
        w = numpy_helper.to_array(tensor)
        n, form = tensor.name, i % 7
        if form == 0:
            const(n, w)
        elif form == 1:
            made.append(helper.make_node("Identity", [const(f"{n}/c", w)], [n], name=f"{n}/id"))
        elif form == 2:
            c = const(f"{n}/c", w.astype(np.float64))
            made.append(helper.make_node("Cast", [c], [n], to=TensorProto.FLOAT, name=f"{n}/cast"))
        elif form == 3:
            flat = const(f"{n}/flat", w.reshape(-1))
            shape = const(f"{n}/shape", np.asarray(w.shape, np.int64))
            made.append(helper.make_node("Reshape", [flat, shape], [n], name=f"{n}/reshape"))
        elif form == 4:
            half, two = const(f"{n}/half", w / 2), const(f"{n}/two", np.asarray(2.0, np.float32))
            made.append(helper.make_node("Mul", [half, two], [n], name=f"{n}/mul"))
        elif form == 5:
            shape = const(f"{n}/shape", np.asarray(w.shape, np.int64))
            made.append(helper.make_node("ConstantOfShape", [shape], [f"{n}/zeros"], name=f"{n}/z"))
            made.append(helper.make_node("Add", [f"{n}/zeros", const(f"{n}/c", w)], [n]))
        else:
            axes = const(f"{n}/axes", np.asarray([0], np.int64))
            c = const(f"{n}/c", w)
            made.append(helper.make_node("Unsqueeze", [c, axes], [f"{n}/u"], name=f"{n}/u"))
            made.append(helper.make_node("Squeeze", [f"{n}/u", axes], [n], name=f"{n}/s"))
    del graph.initializer[:]
    nodes = [*made, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(out)
    return out


def test_fold_folds_bn_whose_parameters_are_constant_subgraphs(tmp_path: Path) -> None:
    plain = make_bn_cnn(tmp_path / "plain.onnx")  # BN after a Conv and after a Gemm
    model = as_constant_subgraphs(onnx.load(str(plain)))
    source = tmp_path / "consts.onnx"
    onnx.save(model, str(source))
    bns = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    result = _invoke("fold", source, "-o", tmp_path / "folded.onnx", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["details"]["batchnorm"]["folded"] == bns == 2
    assert manifest["details"]["batchnorm"]["left"] == []
    initializers = len(onnx.load(str(plain)).graph.initializer)
    assert manifest["details"]["constants"]["folded"] >= initializers > 0  # one node at least each
    assert manifest["verification"]["max_abs_error"] <= manifest["verification"]["tolerance"]
    folded = onnx.load(str(tmp_path / "folded.onnx"))
    assert {n.op_type for n in folded.graph.node}.isdisjoint({"BatchNormalization", "Constant"})


def test_fold_of_onnx_test_data_opset9_resnet50(tmp_path: Path) -> None:
    """onnx's own test ResNet-50 (opset 9, IR 3): every weight is a ConstantOfShape."""
    light = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
    if not light.is_file():
        pytest.skip("this onnx wheel has no light_resnet50 test model")
    result = _invoke(
        "fold", light, "-o", tmp_path / "r50.onnx", "--samples", "1", "--batch-size", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    details = json.loads(result.stdout)["details"]
    assert details["batchnorm"]["folded"] == 53 and details["batchnorm"]["left"] == []
    assert details["constants"]["by_op"] == {"ConstantOfShape": 239}


def test_fold_of_a_resnet18_whose_weights_are_constant_subgraphs(
    resnet18_with_bn: Path,  # noqa: F811 - the fixture imported above, by name
    tmp_path: Path,
) -> None:
    """A real ResNet-18 (20 BN) as another framework would write it: every weight computed."""
    source = tmp_path / "resnet18-consts.onnx"
    onnx.save(as_constant_subgraphs(onnx.load(str(resnet18_with_bn))), str(source))
    result = _invoke("fold", source, "-o", tmp_path / "folded.onnx", "--samples", "2", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["details"]["batchnorm"]["folded"] == 20
    assert manifest["details"]["batchnorm"]["left"] == []
    assert manifest["verification"]["max_abs_error"] < 1e-4


# == second round (issue 17): one section per class of the catalogue ============================
# Each example of the issue has a test here that fails on the code before it; the other cases in
# each class are our own.

DEEP = "[" * 200_000 + "]" * 200_000
HUGE_INT = "9" * 5000


def _report_file(folder: Path, data: dict[str, Any], name: str = "r.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def _edit_manifest(artifact: Path, **fields: Any) -> None:
    path = manifest_path(artifact)
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


# -- R1. sizes read from files are bounded -------------------------------------------------------


def test_r1_manifest_input_size_is_bounded_by_memory(kit: dict[str, Path]) -> None:
    path = manifest_path(kit["source"])
    data = json.loads(path.read_text())
    data["preprocessing"]["input_size"] = 1_000_000
    path.write_text(json.dumps(data))
    _refused(_invoke("eval", kit["source"], "--data", kit["data"]), 1, "array needs", str(path))


def test_r1_a_batch_of_manifest_sized_samples_is_checked_before_loading(
    kit: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_opt.core import validation

    monkeypatch.setattr(validation, "available_memory", lambda: 3 * 8 * 8 * 4 * 2)  # 2 samples
    _refused(_invoke("eval", kit["source"], "--data", kit["data"], "--batch-size", "8"), 2, "batch")


def test_r1_npz_is_read_lazily(tmp_path: Path) -> None:
    from resnet_opt.calibration.data import ArraySource

    x = np.random.default_rng(0).random((50, 3, 8, 8), dtype=np.float32)
    path = tmp_path / "calib.npz"
    np.savez_compressed(path, x=x, y=np.arange(50) % 4)
    source = ArraySource.open(path)
    assert not isinstance(source.samples, np.ndarray)  # never inflated whole
    for i in (3, 7, 7, 49, 0):  # forwards, the same again, backwards
        np.testing.assert_array_equal(np.asarray(source.samples[i]), x[i])
    assert source.labels is not None and list(source.labels[:5]) == [0, 1, 2, 3, 0]


@pytest.mark.parametrize(
    "command",
    [
        ("bench", "{source}", "--no-accuracy", "--iterations", "1000000000000000000"),
        ("bench", "{source}", "--no-accuracy", "--duration", "1e18"),
        ("bench", "{source}", "--no-accuracy", "--warmup", "1e18"),
        ("bench", "{source}", "--no-accuracy", "--min-iterations", "1000000000000000000"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--samples", "1000000000000000000"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--threads", "100000", "--force-threads"),
        ("bench", "{source}", "--no-accuracy", "--threads", "100000", "--force-threads"),
        ("eval", "{source}", "--threads", "5000", "--force-threads"),
        ("run", "{toml:[bench]\niterations = 1000000000000000000\n}"),
        ("run", "{toml:[bench]\nduration = 1e18\n}"),
    ],
    ids=lambda c: " ".join(c[:1] + c[-2:]),
)
def test_r1_counts_durations_and_threads_have_a_ceiling(
    kit: dict[str, Path], tmp_path: Path, command: tuple[str, ...]
) -> None:
    args = [_fill(a, kit, tmp_path) for a in command]
    result = _invoke(*args, *(["-o", kit["out"]] if args[0] == "run" else []))
    _refused(result, 2)
    assert not kit["out"].exists()


# -- R2. duplicates and omissions ----------------------------------------------------------------


@pytest.fixture
def two_reports(tmp_path: Path, report_json: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    base = _report_file(tmp_path, report_json, "base.json")
    return base, json.loads(json.dumps(report_json))


@pytest.mark.parametrize("table", ["measurements", "accuracy"])
def test_r2_compare_refuses_duplicate_rows(
    tmp_path: Path, two_reports: tuple[Path, dict[str, Any]], table: str
) -> None:
    base, data = two_reports
    worse = json.loads(json.dumps(data[table][0]))
    if table == "measurements":
        worse["throughput"] *= 0.1  # lost 90 %: must not be the row silently dropped
    data[table].append(worse)
    new = _report_file(tmp_path, data, "new.json")
    for args in ((base, new), (new, base)):
        _refused(_invoke("compare", *args), 1, "repeats", f"{table}/0")


def test_r2_report_merge_refuses_duplicate_rows(
    tmp_path: Path, two_reports: tuple[Path, dict[str, Any]]
) -> None:
    base, data = two_reports
    data["measurements"].append(data["measurements"][0])
    data["machine"]["hostname"] = "other"
    new = _report_file(tmp_path, data, "new.json")
    _refused(_invoke("report", "merge", base, new, "-o", tmp_path / "fleet"), 1, "repeats")
    assert not (tmp_path / "fleet").exists()


def _bundled(tmp_path: Path) -> Path:
    from tests.pipeline.test_bundle import workstation

    int8 = workstation(tmp_path / "ws")
    result = _invoke("bundle", int8, "-o", tmp_path / "bundle")
    assert result.exit_code == 0, result.output
    return tmp_path / "bundle"


@pytest.mark.parametrize("removed", ["all", "calibration cache", "fp32 source", "labels"])
def test_r2_bundle_verify_checks_what_the_manifests_need(tmp_path: Path, removed: str) -> None:
    folder = _bundled(tmp_path)
    listing = folder / "bundle.json"
    data = json.loads(listing.read_text())
    data["files"] = [] if removed == "all" else [f for f in data["files"] if f["role"] != removed]
    listing.write_text(json.dumps(data))
    _refused(_invoke("bundle-verify", folder), 1, "bundle.json")


def test_r2_bundle_verify_refuses_no_artifacts(tmp_path: Path) -> None:
    folder = _bundled(tmp_path)
    data = json.loads((folder / "bundle.json").read_text())
    data["artifacts"], data["files"] = [], []
    (folder / "bundle.json").write_text(json.dumps(data))
    _refused(_invoke("bundle-verify", folder), 1, "lists no artifacts")


@pytest.mark.parametrize("edit", [{"gate_failure": None}, {"outputs": {}}, {"key": "x"}])
def test_r2_run_state_cannot_turn_a_failed_gate_into_success(
    tmp_path: Path, edit: dict[str, Any]
) -> None:
    from resnet_opt.pipeline.run import STATE_FILE, _State

    out = tmp_path / "model.int8.onnx"
    out.write_bytes(b"model")
    state = _State(tmp_path, force=False)
    state.record("quantize int8", "k", [out], gate_failure="top-1 dropped 5 points")
    assert _State(tmp_path, force=False).unchanged("quantize int8", "k") is not None
    data = json.loads((tmp_path / STATE_FILE).read_text())
    data["stages"]["quantize int8"].update(edit)
    (tmp_path / STATE_FILE).write_text(json.dumps(data))
    record = _State(tmp_path, force=False).unchanged("quantize int8", "k")
    assert record is None or record.get("gate_failure"), record  # runs again, gate measured


# -- R3. paths in manifests are confined to the artifact's folder --------------------------------


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_r3_bundle_takes_no_file_from_outside_the_artifact_folder(
    tmp_path: Path, where: str
) -> None:
    from tests.pipeline.test_bundle import workstation

    int8 = workstation(tmp_path / "ws" / "deep")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    recorded = {"absolute": str(secret), "parent": "../../secret.txt", "symlink": "link.calib"}
    if where == "symlink":
        (int8.parent / "link.calib").symlink_to(secret)
    path = manifest_path(int8)
    data = json.loads(path.read_text())
    data["details"]["tensorrt_calibration_cache"] = recorded[where]
    path.write_text(json.dumps(data))
    _refused(_invoke("bundle", int8, "-o", tmp_path / "b"), 1, "outside the artifact's folder")
    assert not (tmp_path / "b").exists()


def test_r3_bundle_json_names_stay_in_the_bundle(tmp_path: Path) -> None:
    folder = _bundled(tmp_path)
    data = json.loads((folder / "bundle.json").read_text())
    data["artifacts"] = ["../ws/m.int8.onnx"]
    (folder / "bundle.json").write_text(json.dumps(data))
    _refused(_invoke("bundle-verify", folder), 1, "not a plain name")


# -- R4. readers survive deep or huge JSON and TOML ----------------------------------------------


def _deep_or_huge(kind: str) -> str:
    return DEEP if kind == "deep" else f'{{"schema": {HUGE_INT}}}'


@pytest.mark.parametrize("kind", ["deep", "huge"])
@pytest.mark.parametrize("reader", ["manifest", "report", "bundle.json", "cache", "run-state"])
def test_r4_every_json_reader_is_bounded(
    kit: dict[str, Path], tmp_path: Path, report_json: dict[str, Any], reader: str, kind: str
) -> None:
    text = _deep_or_huge(kind)
    if reader == "manifest":
        manifest_path(kit["source"]).write_text(text)
        _refused(_invoke("eval", kit["source"], "--data", kit["data"]), 1, "not valid")
    elif reader == "report":
        base = _report_file(tmp_path, report_json)
        (tmp_path / "bad.json").write_text(text)
        _refused(_invoke("compare", base, tmp_path / "bad.json"), 1, "not valid")
    elif reader == "bundle.json":
        folder = _bundled(tmp_path)
        (folder / "bundle.json").write_text(text)
        _refused(_invoke("bundle-verify", folder), 1, "not valid")
    elif reader == "cache":
        from resnet_opt.calibration.cache import _read

        header = np.frombuffer(text.encode(), dtype=np.uint8)
        np.savez(tmp_path / "c.npz", header=header, counts=np.zeros(3))
        with pytest.raises(Exception, match="not a resnet-opt calibration cache"):
            _read(tmp_path / "c.npz")
    else:
        from resnet_opt.pipeline.run import STATE_FILE, _State

        (tmp_path / STATE_FILE).write_text(text)
        assert _State(tmp_path, force=False).stages == {}  # every stage runs again


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000 + "]" * 100_000 + "\n",
        f"[bench]\niterations = {HUGE_INT}\n",
        "[bench]\niterations = 99999999999999999999999999999999999999999999\n",
        "[data]\nseed = 18446744073709551616\n",
        "\xff\xfe not utf-8",
    ],
    ids=["deep", "5000 digits", "44 digits", "2**64 seed", "not utf-8"],
)
def test_r4_a_bad_run_config_exits_2(tmp_path: Path, text: str) -> None:
    config = tmp_path / "run.toml"
    config.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else b"\xff")
    _refused(_invoke("run", config, "-o", tmp_path / "out"), 2)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("preprocessing", [1]),
        ("preprocessing", "x"),
        ("details", [1]),
        ("inputs", {"a": 1}),
        ("lineage", 3),
        ("verification", None),
    ],
)
def test_r4_manifest_fields_have_their_types_checked(
    kit: dict[str, Path], field: str, value: Any
) -> None:
    _edit_manifest(kit["source"], **{field: value})
    _refused(_invoke("eval", kit["source"], "--data", kit["data"]), 1, f"{field} must be")


# -- R5. the environment: one line -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["fold", "quantize"])
def test_r5_disk_full_is_one_line(
    kit: dict[str, Path], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    import errno

    def full(*_: Any, **__: Any) -> None:
        raise OSError(
            errno.ENOSPC, "No space left on device", str(kit["out"] / ".f.onnx.0a1b2c3d.tmp")
        )

    monkeypatch.setattr(onnx, "save_model", full)  # what every ONNX write goes through
    args = ["fold", kit["source"], "-o", kit["out"] / "f.onnx"]
    if command == "quantize":
        args = ["quantize", kit["source"], "-o", kit["out"] / "f.onnx", "--calib", kit["data"]]
        args += ["--eval", "none"]
    flat = _refused(_invoke(*args), 1, "no space left on the device")
    assert ".tmp" not in flat
    assert not kit["out"].exists() or _outputs(kit["out"]) == set()


def test_r5_bench_checks_free_space_before_measuring(
    kit: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from resnet_opt.measure import timing

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("measured on a full disk")

    full = shutil._ntuple_diskusage(1, 1, 1000)  # total, used, free
    monkeypatch.setattr(shutil, "disk_usage", lambda _: full)
    monkeypatch.setattr(timing, "measure", never)
    _refused(_invoke("bench", kit["source"], "--no-accuracy", "-o", kit["out"]), 1, "MB free")


@pytest.mark.parametrize("length", [300, 5000])
def test_r5_long_names_are_one_line_naming_the_users_path(
    kit: dict[str, Path], length: int
) -> None:
    name = "a" * length if length < 1000 else "/".join(["b" * 50] * (length // 51)) + "/f"
    target = kit["out"] / f"{name}.onnx"
    flat = _refused(_invoke("fold", kit["source"], "-o", target), 1, "file name too long")
    assert ".tmp" not in flat


@pytest.mark.parametrize("kind", ["loop", "devnull", "fifo"])
@pytest.mark.parametrize("command", ["fold", "eval", "quantize"])
def test_r5_odd_inputs_are_one_line(
    kit: dict[str, Path], tmp_path: Path, kind: str, command: str
) -> None:
    if kind == "loop":
        (tmp_path / "l1.onnx").symlink_to(tmp_path / "l2.onnx")
        (tmp_path / "l2.onnx").symlink_to(tmp_path / "l1.onnx")
        source, why = tmp_path / "l1.onnx", "symlink loop"
    elif kind == "devnull":
        source, why = Path("/dev/null"), "is a device"
    else:
        source, why = tmp_path / "pipe.onnx", "FIFO"
        os.mkfifo(source)
    args = {
        "fold": ["-o", kit["out"] / "f.onnx"],
        "eval": [],
        "quantize": ["-o", kit["out"] / "q.onnx"],
    }
    _refused(_invoke(command, source, *args[command]), 1, why)
    assert not kit["out"].exists()


def test_r5_info_json_with_stdout_closed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        f"{sys.executable} -m resnet_opt.cli info --json >&-",
        shell=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert b"Traceback" not in done.stderr and b"stdout is closed" in done.stderr


def test_r5_onnx_that_cannot_import_gets_requires_message(
    kit: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    _refused(
        _invoke("fold", kit["source"], "-o", kit["out"] / "f.onnx"), 1, "onnx is not available"
    )


def test_r5_ctrl_c_during_an_import_is_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_opt import deps
    from resnet_opt.core.signals import terminate_cleanly
    from resnet_opt.errors import MissingDependencyError

    def interrupted(module: str) -> Any:  # what pybind11 makes of a KeyboardInterrupt
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(deps, "_import", interrupted)
    with terminate_cleanly(), pytest.raises(KeyboardInterrupt):
        try:
            deps.require("onnxruntime")
        except MissingDependencyError as exc:  # pragma: no cover - the bug
            raise AssertionError(f"reported as missing: {exc}") from exc


def test_r5_non_utf8_names_in_error_lines(kit: dict[str, Path], tmp_path: Path) -> None:
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/bad-\xff-name"))
    folder.mkdir()
    target = folder / "missing.onnx"
    _refused(_invoke("eval", target), 1, "no such file")


# -- R6. no silent success on nonsense ------------------------------------------------------------


def _nan_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])
    nan = numpy_helper.from_array(np.full((1, 4), np.nan, np.float32), "nan")
    shape = numpy_helper.from_array(np.asarray([0, -1], np.int64), "shape")
    pick = numpy_helper.from_array(np.asarray([0, 1, 2, 3], np.int64), "pick")
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["flat"]),
        helper.make_node("Gather", ["flat", "pick"], ["four"], axis=1),
        helper.make_node("Mul", ["four", "nan"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "nan", [x], [y], [nan, shape, pick])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    from resnet_opt.core.manifest import InputRef, Precision, Stage, new_manifest, write_manifest

    write_manifest(
        manifest_path(path),
        new_manifest(
            stage=Stage.EXPORT,
            artifact=path,
            precision=Precision.FP32,
            inputs=(InputRef.of("source", path),),
            preprocessing=TINY_CONTRACT,
        ),
    )
    return path


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_r6_non_finite_logits_are_an_error(
    kit: dict[str, Path], tmp_path: Path, command: str
) -> None:
    model = _nan_model(tmp_path / "nan.onnx")
    extra = (
        ["--iterations", "2", "--batch", "2", "--backend", "onnxruntime"]
        if command == "bench"
        else []
    )
    _refused(_invoke(command, model, "--data", kit["data"], *extra), 1, "not finite")


def test_r6_a_factory_calling_sys_exit_is_an_error(tmp_path: Path) -> None:
    code = tmp_path / "factory.py"
    code.write_text("import sys\n\ndef make():\n    sys.exit(0)\n")
    out = tmp_path / "out"
    _refused(_invoke("export", "--model", f"{code}:make", "-o", out / "m.onnx"), 1, "sys.exit(0)")
    assert not out.exists()


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((4, 32, 0), np.uint8), "no empty axis"),
        (np.zeros((0, 3, 8, 8), np.float32), "no empty axis"),
        (np.zeros((4, 0, 8, 8), np.float32), "no empty axis"),
        (None, "not a readable"),  # a 0-byte .npy: numpy's EOFError became a bare "Aborted."
    ],
)
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_r6_empty_arrays_are_a_clear_error(
    kit: dict[str, Path], tmp_path: Path, array: np.ndarray | None, fragment: str, suffix: str
) -> None:
    path = tmp_path / f"data{suffix}"
    if array is None:
        path.write_bytes(b"")
    elif suffix == ".npy":
        np.save(path, array)
    else:
        np.savez_compressed(path, x=array)
    args = ["quantize", kit["source"], "-o", kit["out"] / "q.onnx", "--calib", path]
    _refused(_invoke(*args, "--eval", "none"), 1, fragment)
    assert not kit["out"].exists()


@pytest.mark.parametrize(
    "command",
    [
        ("bench", "{source}", "--no-accuracy", "--batch", "1,,2"),
        ("bench", "{source}", "--no-accuracy", "--batch", ",1"),
        ("bench", "{source}", "--no-accuracy", "--batch", "\u0663"),
        ("bench", "{source}", "--no-accuracy", "--batch", "1,\uff12"),
        ("bench", "{source}", "--no-accuracy", "--backend", ""),
        ("bench", "{source}", "--no-accuracy", "--backend", "onnxruntime,,openvino"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--tensorrt-version", "7.0"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--tensorrt-version", "999"),
    ],
    ids=lambda c: f"{c[-2]} {c[-1]!a}",
)
def test_r6_nonsense_values_are_refused(kit: dict[str, Path], command: tuple[str, ...]) -> None:
    _refused(_invoke(*[a.format(**kit) for a in command]), 2)
    assert not kit["out"].exists()


# -- R7. exit codes and messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("export", "--std", "0", "-o", "{out}/e.onnx"),
        ("export", "--opset", "0", "-o", "{out}/e.onnx"),
        ("export", "--channels", "2", "-o", "{out}/e.onnx"),
        ("export", "--resize", "16", "--crop", "64", "-o", "{out}/e.onnx"),
        ("export", "--mean", "0.5,0.5", "-o", "{out}/e.onnx"),
        ("bench", "{source}", "{child}", "--concurrent"),
        ("export", "--seed", "100000000000000000000000", "-o", "{out}/e.onnx"),
        ("eval", "{source}", "--seed", "9223372036854775808"),
        ("fold", "{source}", "-o", "{out}/f.onnx", "--seed", "9223372036854775808"),
        ("bench", "{source}", "--no-accuracy", "--seed", "9223372036854775808"),
        ("quantize", "{source}", "-o", "{out}/q.onnx", "--seed", "9223372036854775808"),
        ("eval", "{source}", "--batch-size", "9223372036854775808"),
    ],
    ids=lambda c: " ".join(c[:3]),
)
def test_r7_usage_mistakes_exit_2(kit: dict[str, Path], command: tuple[str, ...]) -> None:
    _refused(_invoke(*[a.format(**kit) for a in command]), 2)
    assert not kit["out"].exists()


def test_r7_a_tiny_percentile_is_not_called_all_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_opt.calibration import ranges
    from resnet_opt.calibration.histogram import TensorStats

    said: list[str] = []
    monkeypatch.setattr(ranges.log, "warning", lambda fmt, *a: said.append(fmt % a))
    values = np.zeros(1000, np.float32)  # a ReLU output: mostly zeros, up to 3.57
    values[-1] = 3.57
    ranges.compute_range(TensorStats.of("t", values), ranges.Method.PERCENTILE, percentile=1e-300)
    assert said and "zero on all calibration data" not in said[0], said
    assert "3.57" in said[0], said


def test_r7_compare_of_a_zero_latency_is_not_inf_percent(
    tmp_path: Path, two_reports: tuple[Path, dict[str, Any]]
) -> None:
    base_path, data = two_reports
    base = json.loads(base_path.read_text())
    base["measurements"][0]["latency_ms"]["p50"] = 0.0
    base_path.write_text(json.dumps(base))
    new = _report_file(tmp_path, data, "new.json")
    flat = _refused(_invoke("compare", base_path, new, "--max-latency-rise", "5"), 1, "p50")
    assert "inf" not in flat


def test_r7_fp16_of_an_fp16_model(kit: dict[str, Path]) -> None:
    first = kit["out"] / "m.fp16.onnx"
    made = _invoke("quantize", kit["source"], "-o", first, "--precision", "fp16", "--eval", "none")
    assert made.exit_code == 0, made.output
    again = kit["out"] / "m.fp16.fp16.onnx"
    args = ["quantize", first, "-o", again, "--precision", "fp16", "--eval", "none"]
    _refused(_invoke(*args), 1, "already fp16")
    assert not again.exists()


# -- R8. two writers and name clashes ------------------------------------------------------------


def test_r8_a_second_bench_of_one_report_folder_is_refused_before_measuring(
    kit: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_opt.measure import timing

    kit["out"].parent.mkdir(exist_ok=True)
    held = acquire(kit["out"])  # another bench writing this report folder
    monkeypatch.setattr(timing, "measure", lambda *a, **k: pytest.fail("measured"))
    try:
        args = ["bench", kit["source"], "--no-accuracy", "-o", kit["out"]]
        _refused(_invoke(*args), 1, "another resnet-opt process")
    finally:
        release(held)


@pytest.mark.parametrize("name", ["optimized", "int8.optimized", "x.optimized"])
def test_r8_variant_names_cannot_collide_with_runs_files(tmp_path: Path, name: str) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f"[[quantize]]\nname = 'int8'\n[[quantize]]\nname = '{name}'\n")
    _refused(_invoke("run", config, "-o", tmp_path / "out"), 2, "collides with run's own file")
    assert not (tmp_path / "out").exists()


# -- R9. the export manifest records the model, not its graph -------------------------------------


def test_r9_export_manifest_records_the_model_spec(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = _invoke("export", "-o", out)
    assert result.exit_code == 0, result.output
    options = json.loads(manifest_path(out).read_text())["options"]
    assert options["model"] is None or len(options["model"]) < 300, str(options["model"])[:200]
    assert manifest_path(out).stat().st_size < 100_000


# -- fuzz: the readers and the numeric options never show a traceback ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _bug(result: Any) -> bool:
    """An exception other than the exit the CLI chose (Typer's runner keeps it here)."""
    return isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit)


def _short_if_accepted(text: str) -> bool:
    """Leave out values a bench would accept and then honour for long (a 40 s warm-up, a
    million iterations): the fuzz is about parsing and refusing, and such a value is a real
    measurement, not a hostile one. Tiny, zero, negative, huge, non-finite and non-numbers stay."""
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return True
    return not 0.05 < number <= 1e7


MANIFEST_KEYS = st.sampled_from(
    ["stage", "artifact", "sha256", "precision", "inputs", "preprocessing", "options", "schema"]
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=MANIFEST_KEYS, value=JSON_VALUES)
def test_fuzz_manifest_fields(kit: dict[str, Path], key: str, value: Any) -> None:
    path = manifest_path(kit["source"])
    original = path.read_text()
    try:
        data = json.loads(original)
        data[key] = value
        path.write_text(json.dumps(data))
        result = _invoke("eval", kit["source"], "--data", kit["data"], "--samples", "2")
        assert result.exit_code in (0, 1, 2, 3), result.output
        assert "Traceback" not in result.output
        assert not _bug(result), result.exception
    finally:
        path.write_text(original)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    table=st.sampled_from(["bench", "data", "gates", "model"]),
    key=st.sampled_from(
        ["iterations", "duration", "seed", "threads", "calib_samples", "max_drop", "input_size"]
    ),
    value=st.integers() | st.floats() | st.text(max_size=6) | st.lists(st.integers(), max_size=3),
)
def test_fuzz_run_config_values(tmp_path: Path, table: str, key: str, value: Any) -> None:
    import uuid

    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    config = folder / "run.toml"
    config.write_text(f"[{table}]\n{key} = {json.dumps(value)}\n")
    out = folder / "out"
    # only the config check: stop before the first stage by giving an output that is a file
    out.write_text("in the way")
    result = _invoke("run", config, "-o", out)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert not _bug(result), result.exception
    assert sorted(p.name for p in folder.iterdir()) == ["out", "run.toml"]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    option=st.sampled_from(
        [
            "--iterations",
            "--duration",
            "--warmup",
            "--min-iterations",
            "--seed",
            "--threads",
            "--batch",
            "--samples",
        ]
    ),
    value=(
        st.integers(min_value=-(2**80), max_value=2**80).map(str)
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
        | st.text(max_size=5)
    ).filter(_short_if_accepted),
)
def test_fuzz_numeric_options(kit: dict[str, Path], option: str, value: str) -> None:
    # --duration with --iterations: a usage error whatever the value, so nothing is measured long
    result = _invoke(
        "bench",
        kit["source"],
        "--no-accuracy",
        "--iterations",
        "1",
        "--batch",
        "1",
        f"{option}={value}",
        "-o",
        kit["out"],
        "--force",
    )
    assert result.exit_code in (0, 1, 2, 3), result.output
    assert "Traceback" not in result.output
    assert not _bug(result), result.exception
    if result.exit_code != 0:
        assert not kit["out"].exists() or not any(p.suffix == ".tmp" for p in kit["out"].iterdir())
