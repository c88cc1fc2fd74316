"""resnet_opt.core.validation: the number checks every entry point uses (hypothesis properties)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resnet_opt.core import validation as v
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.report.compare import Thresholds

any_float = st.floats(allow_nan=True, allow_infinity=True)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), any_float, st.text(max_size=3))
json_tree = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(any_float)
def test_finite_accepts_exactly_the_finite_numbers(x: float) -> None:
    if math.isfinite(x):
        assert v.finite(x, "x") == x
    else:
        with pytest.raises(UsageError, match=r"x: .* is not a finite number"):
            v.finite(x, "x")


@given(any_float, st.floats(-1e6, 1e6))
def test_at_least_never_lets_nan_through(x: float, low: float) -> None:
    """The bug this module exists for: `x < low` is False for NaN, so NaN passed range checks."""
    if math.isfinite(x) and x >= low:
        assert v.at_least(x, low, "x") == x
    else:
        with pytest.raises(UsageError):
            v.at_least(x, low, "x")


@given(json_tree)
def test_every_non_finite_leaf_is_found(tree: Any) -> None:
    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [x for value in node.values() for x in leaves(value)]
        if isinstance(node, list):
            return [x for value in node for x in leaves(value)]
        return [node]

    bad = [x for x in leaves(tree) if isinstance(x, float) and not math.isfinite(x)]
    assert len(list(v.non_finite_paths(tree))) == len(bad)
    if bad:
        with pytest.raises(ResnetOptError, match="is not a finite number"):
            v.check_all_finite(tree, "report")
    else:
        v.check_all_finite(tree, "report")


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=5))
def test_array_bytes_is_exact_for_any_shape(shape: list[int]) -> None:
    assert v.array_bytes(shape) == math.prod(shape) * 4  # Python ints: no int64 overflow


def test_threads_need_force_above_the_cpu_count() -> None:
    limit = v.cpu_limit()
    v.threads(limit, "--threads")
    v.threads(limit + 1, "--threads", force=True)
    with pytest.raises(UsageError, match="pass --force-threads"):
        v.threads(limit + 1, "--threads", force_hint="pass --force-threads")
    with pytest.raises(UsageError, match="1 or more"):
        v.threads(0, "--threads", force=True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_thresholds_refuse_limits_that_pass_everything(bad: float) -> None:
    with pytest.raises(UsageError):
        Thresholds(max_throughput_drop_pct=bad)
    with pytest.raises(UsageError):
        Thresholds(max_latency_rise_pct=bad)
    with pytest.raises(UsageError):
        Thresholds(max_accuracy_drop_points=bad)


@pytest.mark.parametrize("value", [0, -1, -(10**9)])
def test_positive_count_refuses_below_one_in_one_wording(value: int) -> None:
    with pytest.raises(UsageError, match=rf"^batch size must be positive, not {value}$"):
        v.positive_count(value, "batch size")
    with pytest.raises(UsageError, match=rf"^resize: must be positive, not {value}$"):
        v.positive_count(value, "resize", colon=True)
    with pytest.raises(ResnetOptError) as error:  # the caller's setting, not the user's: exit 1
        v.positive_count(value, "calibration run batch", error=ResnetOptError)
    assert not isinstance(error.value, UsageError)
    assert v.positive_count(1, "x") == 1


def test_no_count_is_checked_positive_by_hand() -> None:
    """Every "must be positive" refusal of a count goes through core.validation (the files
    listed are another part's, or check a float list, not a count)."""
    import re
    from pathlib import Path

    root = Path(v.__file__).resolve().parents[1]
    others = {
        "core/validation.py",
        "core/contract.py",  # std: a list of floats ("must be positive, got [...]")
        "pipeline/build_openvino.py",  # the build backends' own checks (their part of issue 18)
        "runners/openvino.py",
    }
    found = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        if str(path.relative_to(root)) not in others
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"must be positive", line)
    ]
    assert found == []
