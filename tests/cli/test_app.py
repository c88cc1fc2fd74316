"""The command line's shape: short commands, `build BACKEND` subcommands, and the legacy form.

The flags themselves are pinned by each command's own tests; these pin what issue 11 asked of
the package: no long command function, one subcommand per build backend declaring only its own
flags, and `build SOURCE --backend NAME` still meaning `build NAME SOURCE`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_opt.cli import app
from tests.conftest import make_tiny_cnn

CLI = Path(__file__).resolve().parents[2] / "resnet_opt" / "cli"
LONGEST = 60  # lines, the signature included

runner = CliRunner()


def test_no_cli_function_is_long() -> None:
    long = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("form", ["subcommand", "--backend", "--backend="])
def test_build_onnxruntime_in_every_form(tmp_path: Path, form: str) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.ort"
    args = {
        "subcommand": ["build", "onnxruntime", str(source), "-o", str(out)],
        "--backend": ["build", str(source), "-o", str(out), "--backend", "onnxruntime"],
        "--backend=": ["build", "--backend=onnxruntime", str(source), "-o", str(out)],
    }[form]
    result = runner.invoke(app, [*args, "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and data["details"]["threads"] == 1
    assert out.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tensorrt", "{src}", "--threads", "2"], "--threads applies to --backend onnxruntime or"),
        (["openvino", "{src}", "--portable"], "--portable applies to --backend onnxruntime, not"),
        (["onnxruntime", "{src}", "--workspace=1G"], "--workspace applies to --backend tensorrt"),
        (["{src}", "--backend", "torch"], "--backend 'torch': choose tensorrt, onnxruntime, open"),
        (["{src}"], "say which backend: resnet-opt build {tensorrt|onnxruntime|openvino} SOURCE"),
        (["openvino", "{src}", "--backend", "tensorrt"], "--backend tensorrt: name the backend"),
    ],
)
def test_build_refuses_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    given = [a.format(src=source) for a in args]
    result = runner.invoke(app, ["build", *given, "-o", str(tmp_path / "out.onnx")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize(
    ("backend", "present", "absent"),
    [
        ("tensorrt", "--workspace", "--threads"),
        ("onnxruntime", "--portable", "--dla-core"),
        ("openvino", "--precision-hint", "--engine-cache"),
    ],
)
def test_each_backend_lists_only_its_own_flags(backend: str, present: str, absent: str) -> None:
    result = runner.invoke(app, ["build", backend, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert present in result.stdout and absent not in result.stdout
