"""`quantize --accuracy-budget`: keep the most sensitive layers in higher precision until the
top-1 drop fits the budget.

Each candidate layer is ranked by the output error of the model with only that layer in int8
(on a few calibration samples: cheap), then `quantization.sensitivity.search_kept` keeps layers
in that order, scoring each trial on the labelled evaluation data, until the drop fits. The
search's trials and ranking go into the manifest (`details.accuracy_budget`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from resnet_opt.pipeline.calibrate import CALIB_BATCH, Calibration
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.pipeline.quantize_source import QuantizeSource
from resnet_opt.quantization.plan import Plan

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from resnet_opt.calibration.ranges import TensorRange
    from resnet_opt.quantization.graph_rules import GraphView
    from resnet_opt.quantization.weights import WeightPolicy

SENSITIVITY_SAMPLES = 32  # calibration samples the per-layer output error is measured on


def meet_budget(
    source: QuantizeSource,
    prepared: onnx.ModelProto,
    view: GraphView,
    place: Callable[..., Plan],
    candidates: Sequence[str],
    excluded: set[str],
    ranges: Mapping[str, TensorRange],
    calib: Calibration,
    eval_spec: str,
    options: QuantizeOptions,
    drop: float,
    policy: WeightPolicy,
    channel_means: Mapping[str, np.ndarray],
) -> tuple[Plan, dict[str, Any]]:
    """The plan that keeps the fewest sensitive layers in higher precision for the drop to fit
    `options.accuracy_budget`, and the search's record for the manifest."""
    from resnet_opt.calibration.data import (
        BatchStream,
        Split,
        label_map,
        open_source,
        select_indices,
    )
    from resnet_opt.quantization.ops import probed
    from resnet_opt.quantization.qdq import apply_plan
    from resnet_opt.quantization.sensitivity import (
        AccuracyProbe,
        OutputErrorProbe,
        layer_macs,
        rank,
        search_kept,
    )

    assert options.accuracy_budget is not None
    contract = source.contract
    op_of = {n.name: n.op_type for n in view.nodes}
    layers = [c for c in candidates if c not in excluded and probed(op_of[c])]
    probe_indices = calib.indices[:SENSITIVITY_SAMPLES]
    probe_stream = BatchStream(calib.source, contract, probe_indices, CALIB_BATCH, options.strict)
    probe = OutputErrorProbe(source.path, [b.x for b in probe_stream], options.threads)
    ds = open_source(
        eval_spec, default_split=Split.TEST, strict=options.strict, labels=options.eval_labels
    )
    mapping = label_map(ds, contract)
    eval_indices = select_indices(len(ds), options.eval_samples, options.seed)
    accuracy = AccuracyProbe(
        source.path,
        lambda: BatchStream(ds, contract, eval_indices, CALIB_BATCH, options.strict),
        mapping,
        options.threads,
    )
    try:
        everything = set(layers) | excluded

        def error_of(layer: str) -> float:
            model, _ = apply_plan(
                prepared,
                place(view, everything - {layer}),
                ranges,
                policy=policy,
                channel_means=channel_means,
            )
            return probe.error(model)

        macs = layer_macs(prepared)
        ranked = rank(layers, op_of, error_of, macs)

        def drop_of(kept: tuple[str, ...]) -> float:
            model, _ = apply_plan(
                prepared,
                place(view, excluded | set(kept)),
                ranges,
                policy=policy,
                channel_means=channel_means,
            )
            return accuracy.drop(model)

        search = search_kept([s.layer for s in ranked], drop_of, options.accuracy_budget, drop)
    finally:
        probe.close()
        accuracy.close()
    total_macs = sum(macs.get(n, 0) for n in candidates)
    kept_macs = sum(macs.get(n, 0) for n in search.kept)
    plan = place(view, excluded | set(search.kept))
    budget = {
        "budget": options.accuracy_budget,
        "drop_before": drop,
        "kept": list(search.kept),
        "kept_macs_share": (kept_macs / total_macs) if total_macs else None,
        "trials": [{"kept": k, "drop_points": d} for k, d in search.trials],
        "sensitivity": {
            "metric": "relative squared logit error vs FP32 with only this layer in int8",
            "samples": len(probe_indices),
            "layers": [s.to_dict() for s in ranked],
        },
    }
    return plan, budget
