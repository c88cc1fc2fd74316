"""One rule for text → choice: every options class takes an enum member or its text value from
Python, and refuses a bad one as a usage error that lists the choices (core.fields)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from resnet_opt.calibration.ranges import Method
from resnet_opt.errors import UsageError
from resnet_opt.measure.targets import Target
from resnet_opt.pipeline.bench import BenchOptions
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions, OvForm
from resnet_opt.pipeline.evaluate import EvalOptions
from resnet_opt.pipeline.export import Exporter, ExportOptions
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.runners.base import Backend
from resnet_opt.runners.onnxruntime import GraphOptimization, OrtFormat, OrtProvider
from resnet_opt.runners.openvino import OvPrecision
from resnet_opt.tensorrt.options import TensorRtBuildOptions
from resnet_opt.tensorrt.versions import HardwareCompat

# (class, field, a member, every choice it takes)
CASES: list[tuple[Callable[..., Any], str, Any, tuple[str, ...]]] = [
    (OrtBuildOptions, "optimization", GraphOptimization.BASIC, tuple(GraphOptimization)),
    (OrtBuildOptions, "format", OrtFormat.ORT, tuple(OrtFormat)),
    (OrtBuildOptions, "provider", OrtProvider.CUDA, tuple(OrtProvider)),
    (OpenVinoBuildOptions, "precision", OvPrecision.F16, tuple(OvPrecision)),
    (OpenVinoBuildOptions, "form", OvForm.COMPILED, tuple(OvForm)),
    (EvalOptions, "backend", Backend.OPENVINO, tuple(Backend)),
    (ExportOptions, "exporter", Exporter.DYNAMO, tuple(Exporter)),
    (
        TensorRtBuildOptions,
        "hardware_compatible",
        HardwareCompat.AMPERE_PLUS,
        tuple(HardwareCompat),
    ),
]


@pytest.mark.parametrize(("cls", "name", "member", "choices"), CASES)
def test_member_or_text(cls: Callable[..., Any], name: str, member: Any, choices: Any) -> None:
    assert getattr(cls(**{name: member}), name) is member
    assert getattr(cls(**{name: member.value}), name) is member


@pytest.mark.parametrize(("cls", "name", "member", "choices"), CASES)
def test_bad_text_lists_choices(
    cls: Callable[..., Any], name: str, member: Any, choices: Any
) -> None:
    with pytest.raises(UsageError) as err:
        cls(**{name: "no-such-choice"})
    listed = ", ".join(c.value for c in choices)
    assert str(err.value) == f"unknown {name} 'no-such-choice' (choose {listed})"
    assert err.value.exit_code == 2


def test_the_issue_examples() -> None:
    # the fields are typed as their enums; text is what a Python caller may give as well
    optimization = OrtBuildOptions(optimization="all").optimization  # type: ignore[arg-type]
    assert optimization is GraphOptimization.ALL
    bench = BenchOptions(backends=("onnxruntime",))  # type: ignore[arg-type]
    assert bench.backends == (Target.ONNXRUNTIME,)
    assert QuantizeOptions(method="max").method is Method.MAX  # type: ignore[arg-type]


def test_a_tuple_of_choices() -> None:
    mixed = BenchOptions(backends=(Target.OPENVINO, "onnxruntime-cuda"))  # type: ignore[arg-type]
    assert mixed.backends == (Target.OPENVINO, Target.ONNXRUNTIME_CUDA)
    assert BenchOptions(backends=None).backends is None
    with pytest.raises(UsageError, match=r"unknown backends 'cuda' \(choose torch, onnxruntime,"):
        BenchOptions(backends=("onnxruntime", "cuda"))  # type: ignore[arg-type]
    # one string is not a tuple of names: 'onnxruntime' would read as eleven letters
    with pytest.raises(UsageError, match="backends: give a sequence of choices"):
        BenchOptions(backends="onnxruntime")  # type: ignore[arg-type]


def test_narrowed_choices_are_listed() -> None:
    with pytest.raises(UsageError, match=r"unknown precision 'fp32' \(choose int8, fp16\)$"):
        QuantizeOptions(precision="fp32")  # type: ignore[arg-type]


def test_another_type_is_refused() -> None:
    with pytest.raises(UsageError, match=r"unknown backend 3 \(choose torch, onnxruntime,"):
        EvalOptions(backend=3)  # type: ignore[arg-type]
