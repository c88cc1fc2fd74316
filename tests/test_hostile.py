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
from tests.test_fold_stage import make_bn_cnn, resnet18_with_bn  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
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
