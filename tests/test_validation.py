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
