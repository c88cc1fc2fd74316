"""The budget search and the sensitivity ranking, on synthetic drops and the tiny ResNet."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_opt.quantization.graph_rules import prepare
from resnet_opt.quantization.sensitivity import layer_macs, rank, search_kept
from tests.qdq_models import tiny_resnet


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=40),
    st.floats(0.0, 1.0),
)
def test_search_finds_the_fewest_layers_for_a_monotone_drop(
    relief: list[float], budget: float
) -> None:
    """Keeping layer i removes relief[i] points: the search returns the smallest prefix."""
    layers = [f"l{i}" for i in range(len(relief))]
    initial = sum(relief) + 0.5 * budget + 0.01

    def drop_of(kept: tuple[str, ...]) -> float:
        return max(0.0, initial - sum(relief[: len(kept)]))

    result = search_kept(layers, drop_of, budget, initial)
    k = len(result.kept)
    assert result.kept == tuple(layers[:k])
    assert result.drop == drop_of(result.kept)
    if result.drop <= budget:
        assert k == 0 or drop_of(tuple(layers[: k - 1])) > budget  # minimal
    else:
        assert k == len(layers)  # only when even keeping everything is not enough
    measured = [kept for kept, _ in result.trials]
    assert len(measured) == len(set(measured)) and measured[0] == 0


def test_no_search_when_already_within_budget() -> None:
    calls: list[tuple[str, ...]] = []

    def drop_of(kept: tuple[str, ...]) -> float:
        calls.append(kept)
        return 0.0

    result = search_kept(["a", "b"], drop_of, 0.5, 0.3)
    assert result.kept == () and result.drop == 0.3 and calls == []


def test_rank_orders_by_error_then_graph_order() -> None:
    errors = {"a": 0.1, "b": 0.5, "c": 0.1, "d": 0.0}
    ranked = rank(list(errors), dict.fromkeys(errors, "Conv"), errors.__getitem__, {"b": 7})
    assert [s.layer for s in ranked] == ["b", "a", "c", "d"]
    assert ranked[0].macs == 7 and ranked[1].macs is None


def test_layer_macs_from_inferred_shapes() -> None:
    macs = layer_macs(prepare(tiny_resnet(), "tiny"))
    assert macs["stem_conv"] == 4 * 8 * 8 * (3 * 3 * 3)
    assert macs["b_down"] == 8 * 4 * 4 * 4  # 1×1, stride 2
    assert macs["fc"] == 4 * 8
