"""Install per JetPack line: the `jetson` extra never asks pip for TensorRT, the `tensorrt` extra
is bounded to what the code supports, and a missing TensorRT on a Jetson says what to do there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from resnet_opt.core.cuda_driver import CUDA_EXTRAS
from resnet_opt.deps import require
from resnet_opt.errors import MissingDependencyError
from resnet_opt.jetson import facts as jetson_facts
from resnet_opt.jetson.install import jetson_advice
from resnet_opt.tensorrt.versions import capabilities

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the venv here is 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TREES = Path(__file__).parents[1] / "data" / "jetson"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
JETPACK_LINES = {"JetPack 6.1/6.2": "3.10", "JetPack 7": "3.12"}


def _environment(python: str, machine: str = "aarch64") -> dict[str, str]:
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def requirements(extra: str | None, environment: dict[str, str]) -> list[Requirement]:
    """What pip would be asked for by `resnet-opt[extra]` in `environment` (self-references to
    other extras expanded, markers evaluated)."""
    wanted: list[Requirement] = []
    pending: list[tuple[str, str | None]] = [(r, None) for r in PROJECT["dependencies"]]
    if extra is not None:
        pending += [(r, extra) for r in PROJECT["optional-dependencies"][extra]]
    while pending:
        text, from_extra = pending.pop()
        req = Requirement(text)
        env = {**environment, "extra": from_extra or ""}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if req.name == "resnet-opt":
            for sub in req.extras:
                pending += [(r, sub) for r in PROJECT["optional-dependencies"][sub]]
            continue
        wanted.append(req)
    return wanted


@pytest.mark.parametrize("python", sorted(JETPACK_LINES.values()))
def test_jetson_extra_never_asks_for_tensorrt(python: str) -> None:
    names = {r.name for r in requirements("jetson", _environment(python))}
    assert not {n for n in names if n.startswith("tensorrt")}, names
    assert {"pycuda", "cuda-bindings", "onnxruntime"} <= names
    assert "onnxruntime-gpu" not in names  # one ONNX Runtime, not both


def test_jetson_extra_picks_cuda_bindings_per_jetpack_line() -> None:
    def bindings(python: str) -> SpecifierSet:
        env = _environment(python)
        return next(r.specifier for r in requirements("jetson", env) if r.name == "cuda-bindings")

    assert "12.9.0" in bindings("3.10") and "13.0.0" not in bindings("3.10")  # CUDA 12
    assert "13.0.3" in bindings("3.12") and "12.9.0" not in bindings("3.12")  # CUDA 13


@pytest.mark.parametrize(("extra", "major"), [("tensorrt-cu12", 12), ("tensorrt-cu13", 13)])
def test_tensorrt_extras_are_for_x86_split_by_cuda_and_bounded(extra: str, major: int) -> None:
    """One extra per CUDA major: NVIDIA's tensorrt-cuNN and cuda-bindings of that major, within
    the TensorRT releases versions.py knows; none of it asks for TensorRT on a Jetson."""
    assert CUDA_EXTRAS[major] == extra
    on_jetson = {r.name for r in requirements(extra, _environment("3.10"))}
    assert not {n for n in on_jetson if n.startswith("tensorrt")}
    x86 = requirements(extra, _environment("3.11", "x86_64"))
    assert "tensorrt" not in {r.name for r in x86}  # the unsplit package picks CUDA 13
    (spec,) = [r.specifier for r in x86 if r.name == f"tensorrt-cu{major}"]
    assert "11.4.1" in spec and "12.0.0" not in spec  # a later major is not known to work
    assert not any(v in spec for v in ("8.6.1", "9.3.0"))
    assert capabilities(min(spec.filter(["10.0.1", "10.3.0", "10.13.2"]))).version.major == 10
    (bindings,) = [r.specifier for r in x86 if r.name == "cuda-bindings"]
    assert f"{major}.9.0" in bindings or f"{major}.0.0" in bindings
    assert f"{major + 1}.0.0" not in bindings and f"{major - 1}.9.9" not in bindings
    assert "pycuda" in {r.name for r in x86}


def test_no_unsplit_tensorrt_extra() -> None:
    assert "tensorrt" not in PROJECT["optional-dependencies"]
    assert set(CUDA_EXTRAS.values()) <= set(PROJECT["optional-dependencies"])


def test_gpu_test_extra_holds_only_pytest() -> None:
    """The gpu tests run from the base install + a TensorRT extra + this (README, GPU tests)."""
    names = {r.name for r in requirements("gpu-test", _environment("3.11", "x86_64"))}
    assert "pytest" in names and not names & {"torch", "hypothesis", "ruff", "mypy"}


def test_dev_extra_markers_are_valid() -> None:
    for extra, reqs in PROJECT["optional-dependencies"].items():
        for text in reqs:
            req = Requirement(text)
            if req.marker is not None:
                Marker(str(req.marker)).evaluate({**_environment("3.10"), "extra": extra})


def _pypi_reachable() -> bool:
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("python", sorted(JETPACK_LINES.values()))
def test_pip_resolves_the_jetson_extra_for_aarch64_without_tensorrt(
    python: str, tmp_path: Path
) -> None:
    """pip's own resolver, for aarch64 wheels of Python `python`: what `pip install
    'resnet-opt[jetson]'` would install, minus pycuda (sdist only: it is built on the device)."""
    # markers already evaluated for the target: pip would evaluate them for this interpreter
    wanted = requirements("jetson", _environment(python))
    reqs = [f"{r.name}{r.specifier}" for r in wanted if r.name != "pycuda"]
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
        "--retries", "1", "--timeout", "20",
        "--target", str(tmp_path / "target"), "--only-binary=:all:",
        "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
        "--platform", "manylinux_2_34_aarch64", "--python-version", python,
        "--report", str(tmp_path / "report.json"), *reqs,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 and not _pypi_reachable():
        pytest.skip("PyPI is unreachable from here: cannot resolve the extra")
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads((tmp_path / "report.json").read_text())["install"]
    }
    assert not [name for name in installed if name.startswith("tensorrt")], installed
    assert installed["cuda-bindings"].startswith("12." if python == "3.10" else "13.")
    assert "onnxruntime" in installed and "onnxruntime-gpu" not in installed


def _tensorrt_wheels(extra: str, python: str) -> list[str]:
    """The extra's requirements for x86_64 Linux and `python`, as pip gets them from
    `pip install '.[extra]'`, with pycuda left out (sdist only: it compiles on the machine) and
    NVIDIA's tensorrt-cuNN meta package (an sdist that pins tensorrt_cuNN_bindings and
    tensorrt_cuNN_libs of its own version; the libs are a stub that downloads from
    pypi.nvidia.com) replaced by tensorrt-cuNN-bindings with the same bounds: the wheel pip can
    resolve for another Python, and the one `import tensorrt` loads."""
    reqs = []
    for r in requirements(extra, _environment(python, "x86_64")):
        if r.name == "pycuda":
            continue
        name = f"{r.name}-bindings" if r.name.startswith("tensorrt-cu") else r.name
        reqs.append(f"{name}{r.specifier}")
    return reqs


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("python", ["3.10", "3.12"])
@pytest.mark.parametrize(("extra", "major"), sorted((e, m) for m, e in CUDA_EXTRAS.items()))
def test_pip_resolves_each_tensorrt_extra_to_its_cuda_major(
    extra: str, major: int, python: str, tmp_path: Path
) -> None:
    """pip's own resolver, for x86_64 wheels of Python `python`: the TensorRT and cuda-bindings
    the extra installs are both built for CUDA `major`, and TensorRT is one versions.py knows."""
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
        "--retries", "1", "--timeout", "20",
        "--target", str(tmp_path / "target"), "--only-binary=:all:",
        "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--platform", "manylinux2014_x86_64", "--python-version", python,
        "--report", str(tmp_path / "report.json"), *_tensorrt_wheels(extra, python),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 and not _pypi_reachable():
        pytest.skip("PyPI is unreachable from here: cannot resolve the extra")
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads((tmp_path / "report.json").read_text())["install"]
    }
    trt = {n: v for n, v in installed.items() if n.startswith("tensorrt")}
    assert list(trt) == [f"tensorrt-cu{major}-bindings"], installed
    capabilities(next(iter(trt.values())))  # a release versions.py knows (10.0 and later)
    assert next(iter(trt.values())).split(".")[0] in ("10", "11")
    assert installed["cuda-bindings"].split(".")[0] == str(major), installed
    other = {f"cu{m}" for m in CUDA_EXTRAS if m != major}
    assert not [n for n in installed if any(o in n for o in other)], installed


# -- the advice when TensorRT is missing on a Jetson ---------------------------------------------


def _board_with_tensorrt(tmp_path: Path, python: str) -> Path:
    root = tmp_path / "board"
    shutil.copytree(TREES / "agx_orin", root)
    (root / f"usr/lib/python{python}/dist-packages/tensorrt").mkdir(parents=True)
    return root


def test_venv_without_system_site_packages(tmp_path: Path) -> None:
    root = _board_with_tensorrt(tmp_path, "3.10")
    advice = jetson_advice("tensorrt", root=root, python=(3, 10), in_venv=True, sees_system=False)
    assert advice is not None
    assert "your venv cannot see JetPack's TensorRT at /usr/lib/python3.10/dist-packages" in advice
    assert "python3.10 -m venv --system-site-packages" in advice


def test_venv_on_another_python_than_jetpacks(tmp_path: Path) -> None:
    root = _board_with_tensorrt(tmp_path, "3.10")
    advice = jetson_advice("tensorrt", root=root, python=(3, 12), in_venv=True, sees_system=True)
    assert (
        advice is not None and "built for python3.10" in advice and "this is python3.12" in advice
    )


def test_bindings_not_installed_says_apt_and_jetpack_6_0() -> None:
    advice = jetson_advice("tensorrt", root=TREES / "agx_orin", python=(3, 10), in_venv=False)
    assert advice is not None
    assert "apt install python3-libnvinfer" in advice and "JetPack 6.0 ships 8.6" in advice
    assert "never pip install tensorrt" in advice


def test_pycuda_advice_and_none_off_a_jetson() -> None:
    advice = jetson_advice("pycuda.driver", root=TREES / "orin_nano")
    assert advice is not None and "/usr/local/cuda/bin" in advice
    assert jetson_advice("tensorrt", root=TREES / "x86") is None


def test_require_on_a_jetson_does_not_say_pip_install_tensorrt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "agx_orin")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ModuleNotFoundError
    with pytest.raises(MissingDependencyError) as caught:
        require("tensorrt")
    message = str(caught.value)
    assert "resnet-opt[tensorrt]" not in message and "JetPack" in message
    assert "\n" not in message


def test_require_off_a_jetson_keeps_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "x86")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match=r"pip install '\.\[tensorrt-cu12\]'"):
        require("tensorrt")


@pytest.mark.parametrize(("dockerfile", "python"), [("jetpack6", "3.10"), ("jetpack7", "3.12")])
def test_dockerfiles_take_tensorrt_from_jetpack(dockerfile: str, python: str) -> None:
    text = (ROOT / "docker" / f"Dockerfile.{dockerfile}").read_text()
    assert "venv --system-site-packages" in text and '"/src[jetson]"' in text
    assert "python3-libnvinfer" in text  # TensorRT's bindings from JetPack's apt repository
    assert f"/usr/lib/python{python}/dist-packages" in text
    assert "pip install tensorrt" not in text and "[tensorrt]" not in text
    base = next(line for line in text.splitlines() if line.startswith("ARG BASE_IMAGE="))
    assert base.split("=", 1)[1] in ("nvcr.io/nvidia/l4t-jetpack:r36.4.0", "ubuntu:24.04")


def test_arm_server_is_told_the_extra_is_x86_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_opt.jetson.install import install_advice

    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "x86")
    advice = install_advice("tensorrt", machine="aarch64")
    assert advice is not None and "x86_64 only" in advice


@pytest.mark.parametrize(
    ("driver", "extra"),
    [("12.4", "tensorrt-cu12"), ("13.0", "tensorrt-cu13"), ("12.9", "tensorrt-cu12")],
)
def test_x86_advice_names_the_extra_of_the_drivers_cuda(
    driver: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_opt.jetson.install import install_advice

    monkeypatch.setattr(jetson_facts, "SYSTEM_ROOT", TREES / "x86")
    for module in ("tensorrt", "pycuda.driver", "cuda.bindings.driver"):
        advice = install_advice(module, machine="x86_64", driver_cuda=driver)
        assert advice is not None and f"pip install '.[{extra}]'" in advice
        assert "resnet-opt[" not in advice  # not on the package index
    none = install_advice("tensorrt", machine="x86_64", driver_cuda=None)
    assert none is not None and "'.[tensorrt-cu12]'" in none and "'.[tensorrt-cu13]'" in none


def _run_instructions(text: str) -> list[str]:
    """Each RUN instruction of a Dockerfile, its continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [line[4:] for line in logical if line.upper().startswith("RUN ")]


def _loads_tensorrt(command: str) -> bool:
    """Whether a shell command imports TensorRT (directly, or through resnet-opt's commands that
    probe it, or a test run)."""
    return bool(
        re.search(r"import\s+[\w., ]*\btensorrt\b|from\s+tensorrt\b", command)
        or re.search(r"\bresnet-opt\s+(info|build|bench|run)\b", command)
        or re.search(r"\bresnet_opt\.cli\b|\bpytest\b|hardware_report", command)
    )


@pytest.mark.parametrize("dockerfile", ["jetpack6", "jetpack7"])
def test_dockerfiles_load_tensorrt_only_when_the_container_runs(dockerfile: str) -> None:
    """libnvinfer needs libraries nvidia-container-runtime mounts from the host only at run time
    (jetson-containers #902, #1185): `docker build` must not import TensorRT; the entrypoint
    checks it when the container starts."""
    text = (ROOT / "docker" / f"Dockerfile.{dockerfile}").read_text()
    runs = _run_instructions(text)
    assert runs, "no RUN instruction found"
    assert [r for r in runs if _loads_tensorrt(r)] == []
    entry = re.search(r"^ENTRYPOINT \[\"([^\"]+)\"", text, re.M)
    assert entry is not None and entry.group(1) == "resnet-opt-entrypoint"
    assert "COPY docker/entrypoint.sh /usr/local/bin/resnet-opt-entrypoint" in text
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert 'python -c "import tensorrt"' in script and 'exec resnet-opt "$@"' in script


def test_the_build_time_check_is_caught() -> None:
    """The check above fails on what the Dockerfiles did before (import during the build)."""
    old = 'RUN pip install "/src[jetson]" && \\\n    python -c "import tensorrt, resnet_opt"\n'
    assert [r for r in _run_instructions(old) if _loads_tensorrt(r)]
    assert _loads_tensorrt("resnet-opt info") and not _loads_tensorrt("pip install /src")


def test_the_entrypoint_refuses_a_container_without_tensorrt(tmp_path: Path) -> None:
    """Run with a Python that has no TensorRT: exit 3 and one line naming --runtime nvidia."""
    shell = shutil.which("sh")
    if shell is None:
        pytest.skip("no sh here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    (tmp_path / "tensorrt.py").write_text("raise ImportError('libnvdla_compiler.so: not found')\n")
    done = subprocess.run(
        [shell, str(ROOT / "docker" / "entrypoint.sh"), "info"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "libnvdla_compiler.so" in done.stderr and "--runtime nvidia" in done.stderr
