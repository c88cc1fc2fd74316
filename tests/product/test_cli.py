from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from resnet_opt.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("resnet-opt ")


def test_info_json_reports_why_tensorrt_is_missing() -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    accel = {p["name"]: p for p in data["accelerators"]}
    assert "tensorrt" in accel and "pycuda.driver" in accel
    for probe in accel.values():
        assert probe["version"] is not None or probe["problem"]
    assert "CPUExecutionProvider" in data["onnxruntime_providers"]


def test_usage_error_exits_2() -> None:
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_help_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from resnet_opt.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = ('torch', 'torchvision', 'tensorrt', 'onnxruntime')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
