"""The op table (`quantization/ops.py`): every op kind declares each part, and each part is read.

ARCHITECTURE.md's "Where a new quantizable op or int8 layout goes" lists what an entry holds;
these tests fail when an entry leaves a part out or declares one nothing can use.
"""

from __future__ import annotations

import pytest

from resnet_opt.calibration import collect
from resnet_opt.quantization import ops
from resnet_opt.quantization.plan import QdqTarget
from tests.emulate import kernels

KINDS = sorted(ops.OPS)


def test_the_table_is_keyed_by_op_type() -> None:
    assert all(kind.op_type == op for op, kind in ops.OPS.items())


@pytest.mark.parametrize("op", KINDS)
def test_every_op_says_how_it_is_calibrated(op: str) -> None:
    kind = ops.OPS[op]
    assert isinstance(kind.calibrated, bool)
    assert (op in collect.CALIBRATED_OPS) is kind.calibrated
    # a layout can only place Q/DQ on tensors calibration records
    if any(rule is not None for rule in kind.layouts.values()):
        assert kind.calibrated, f"{op}: quantized by a layout but not calibrated"


@pytest.mark.parametrize("op", KINDS)
def test_every_op_has_a_decision_for_every_layout(op: str) -> None:
    """A rule or an explicit None ("left in float") per layout: a new layout must decide for
    each op, and a new op for each layout."""
    kind = ops.OPS[op]
    assert set(kind.layouts) == set(QdqTarget), f"{op}: layouts {sorted(kind.layouts)}"
    for target, rule in kind.layouts.items():
        if rule is None:
            continue
        assert isinstance(rule.inputs, ops.Inputs)
        if rule.weight:
            assert kind.weight_axis is not None, f"{op}/{target.value}: weight but no axis"
        if rule.int32_bias:
            assert rule.weight, f"{op}/{target.value}: an int32 bias needs the int8 weight"
        if rule.shares:
            assert not (rule.weight or rule.output), f"{op}: a pass-through owns no range"
        if rule.inputs is ops.Inputs.SKIP:
            assert op == "Add", "only a residual Add has a skip input"


@pytest.mark.parametrize("op", KINDS)
def test_every_op_says_whether_sensitivity_probes_it(op: str) -> None:
    kind = ops.OPS[op]
    runs_int8 = any(r is not None and not r.shares for r in kind.layouts.values())
    if kind.sensitivity is None:
        # a candidate layer of some layout must say whether the budget may keep it
        assert not runs_int8 or all(
            r is None or r.shares or r.accepts is ops._never for r in kind.layouts.values()
        ), f"{op}: a candidate layer with no sensitivity declaration"
    else:
        assert runs_int8, f"{op}: probed but no layout runs it in int8"
        if kind.sensitivity.macs_per_output is not None:
            assert kind.weight_axis is not None, f"{op}: MACs are counted from the weight"


@pytest.mark.parametrize("op", KINDS)
def test_every_op_says_how_the_emulation_runs_it(op: str) -> None:
    """Declared kernels exist; an op without one runs in float in the emulation, which is right
    only for ops with no integer arithmetic of their own in the cpu layout."""
    kind = ops.OPS[op]
    cpu = kind.layouts[QdqTarget.CPU]
    if kind.emulation is not None:
        assert kind.emulation.kernel in kernels(), f"{op}: no kernel {kind.emulation.kernel}"
        assert cpu is not None and cpu.weight, f"{op}: emulated, but no int8 weight on the cpu"
    else:
        assert cpu is None or not cpu.weight, f"{op}: int8 weights on the cpu, not emulated"


def test_every_layout_is_declared_with_its_placement_module() -> None:
    from resnet_opt.quantization.layouts import LAYOUTS, placement

    assert set(LAYOUTS) == set(QdqTarget)
    for target in QdqTarget:
        assert LAYOUTS[target].target is target
        module = placement(target)
        assert module.TARGET is target


def test_architecture_md_names_files_that_exist() -> None:
    """The per-change file lists in ARCHITECTURE.md name real files (a move updates them)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Where a new quantizable op or int8 layout goes", 1)[1]
    section = section.split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:quantization|cli|tests)/[\w/]+\.py)`", section))
    assert {"quantization/ops.py", "quantization/layouts.py", "tests/emulate.py"} <= named
    missing = [
        name
        for name in sorted(named)
        if not (root / name).is_file() and not (root / "resnet_opt" / name).is_file()
    ]
    assert not missing, missing
