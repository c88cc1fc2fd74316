"""The Python API: the README's example runs, the names are the documented ones, and importing
the package stays light."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import resnet_opt
from resnet_opt import api
from resnet_opt.core.contract import PreprocessContract
from resnet_opt.errors import ResnetOptError
from tests.conftest import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("export", "fold", "quantize", "build", "evaluate", "bench")


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API section has one worked example"
    return str(blocks[0])


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="export needs the export extra")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)
    work = tmp_path / "api-example"
    for name in ("model.onnx", "model.int8.onnx", "model.int8.opt.onnx"):
        assert (work / name).is_file() and (work / f"{name}.json").is_file()
    assert {p.name for p in (work / "report").iterdir()} == {
        "report.json",
        "report.md",
        "report.png",
    }
    report = namespace["report"]
    assert isinstance(report, api.Report)
    assert {(m.artifact, m.batch) for m in report.measurements} == {
        ("model.onnx", 1),
        ("model.onnx", 8),
        ("model.int8.opt.onnx", 1),
        ("model.int8.opt.onnx", 8),
    }
    scored = namespace["scored"]
    assert isinstance(scored, api.Evaluation) and scored.drop_points is not None


def test_the_stages_are_the_package_api() -> None:
    assert set(STAGES) <= set(resnet_opt.__all__)
    assert set(STAGES) <= set(dir(resnet_opt))
    for name in STAGES:
        function = getattr(resnet_opt, name)
        assert function is getattr(api, name) and function.__doc__
        params = list(inspect.signature(function).parameters.values())
        assert [p.name for p in params[:3]] == ["source", "output", "options"]
        assert "force" in {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = resnet_opt.nothing


def test_bench_is_the_function_even_after_the_measuring_code_is_imported() -> None:
    import resnet_opt.measure.timing  # noqa: F401  (a submodule import sets package attributes)
    from resnet_opt import bench

    assert callable(bench) and bench is api.bench


def test_importing_the_package_imports_no_stage_and_no_framework() -> None:
    code = (
        "import sys, resnet_opt\n"
        "loaded = [m for m in sys.modules if m.startswith(('resnet_opt.pipeline', 'torch', "
        "'onnx', 'onnxruntime', 'openvino'))]\n"
        "assert not loaded, loaded\n"
        "from resnet_opt import bench, export\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


def test_fold_with_an_output(tmp_path: Path, tiny_onnx: Path) -> None:
    folded = api.fold(tiny_onnx, tmp_path / "folded.onnx", api.FoldOptions(threads=1))
    assert folded.stage.value == "fold" and (tmp_path / "folded.onnx").is_file()
    with pytest.raises(ResnetOptError, match="exists; pass --force"):
        api.fold(tiny_onnx, tmp_path / "folded.onnx")
    api.fold(tiny_onnx, tmp_path / "folded.onnx", force=True)


def test_evaluate_writes_its_output_and_checks_it_before_evaluating(
    tmp_path: Path,
    tiny_onnx: Path,
    tiny_contract: PreprocessContract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2, "c": 2, "d": 2})
    options = api.EvalOptions(data=str(data), contract=tiny_contract, threads=1)
    out = tmp_path / "eval.json"
    result = api.evaluate(tiny_onnx, out, options)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(result.to_dict()))

    def evaluated(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated before the output was checked")

    monkeypatch.setattr("resnet_opt.pipeline.evaluate._evaluate", evaluated)
    with pytest.raises(ResnetOptError, match="exists; pass --force"):
        api.evaluate(tiny_onnx, out, options)


def test_build_takes_its_backend_from_the_options_type(tmp_path: Path, tiny_onnx: Path) -> None:
    manifest = api.build(tiny_onnx, tmp_path / "tiny.opt.onnx", api.OrtBuildOptions(threads=1))
    assert manifest.details["backend"] == "onnxruntime"
    with pytest.raises(TypeError, match="must be TensorRtBuildOptions"):
        api.build(tiny_onnx, tmp_path / "x.onnx", api.FoldOptions())  # type: ignore[arg-type]
