"""The `quantize` stage: FP32 ONNX + calibration data → INT8 (explicit Q/DQ) or FP16 ONNX.

TensorRT 11 takes precision only from the ONNX, so this stage decides what every engine will
compute. Its parts, one job each:

- `quantize_options.py`: the options (one schema for the CLI, `run` and Python), their rules,
  and which data applies when none is named;
- `quantize_source.py`: the FP32 model read once;
- `calibrate.py`: the activation statistics;
- `quantize_int8.py` (with `accuracy_budget.py`) and `quantize_fp16.py`: the two rewrites;
- `quantize_artifact.py`: the score against the source, the gate figures and the manifest that
  every artifact gets.

This module is the entry: it checks the options, reads the source, runs the rewrite and turns a
failed `max_drop` gate into QuantizeGateError after the artifact is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_opt.core.manifest import Precision
from resnet_opt.errors import QualityGateError
from resnet_opt.pipeline.quantize_artifact import QuantizeResult
from resnet_opt.pipeline.quantize_fp16 import quantize_fp16
from resnet_opt.pipeline.quantize_int8 import quantize_int8
from resnet_opt.pipeline.quantize_options import (
    QuantizeOptions,
    calibration_spec,
    check_gates_measurable,
    check_options,
    evaluation_spec,
)
from resnet_opt.pipeline.quantize_source import read_source

if TYPE_CHECKING:
    from resnet_opt.core.contract import PreprocessContract
    from resnet_opt.core.progress import ProgressCallback


def check_data_up_front(options: QuantizeOptions, contract: PreprocessContract) -> None:
    """Everything about the data that can be checked without running the model, checked before
    calibration starts (a wrong evaluation folder must not cost a calibration pass first): the
    evaluation data's classes are the model's (by name or WordNet id), a label list's files
    exist, and under `strict` every image of either set is in the model's mode already."""
    from resnet_opt.calibration.data import Split, check_modes, open_source
    from resnet_opt.pipeline.evaluate import EvalOptions, open_evaluation_data

    eval_spec = evaluation_spec(options, contract)
    if eval_spec is not None:
        open_evaluation_data(
            EvalOptions(data=eval_spec, data_labels=options.eval_labels, strict=options.strict),
            contract,
        )
    calib_spec = calibration_spec(options, contract)
    if options.strict and calib_spec is not None:
        check_modes(open_source(calib_spec, default_split=Split.CALIB, strict=True), contract)


class QuantizeGateError(QualityGateError):
    """The accuracy drop exceeded `max_drop`. The artifact was still written (for inspection,
    its manifest says the gate failed); the result is attached."""

    def __init__(self, message: str, result: QuantizeResult) -> None:
        super().__init__(message)
        self.result = result


def quantize(
    source: Path,
    output: Path,
    options: QuantizeOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> QuantizeResult:
    """Quantize `source` into `output` (INT8 or FP16), scored and gated as `options` say.

    `progress(consumed, total)` is called as calibration samples stream through (the long part).

    Raises QuantizeGateError (exit 3) after writing when the drop exceeds `max_drop`: a CI job
    fails, and the artifact and its manifest stay for inspection.
    """
    options = options or QuantizeOptions()
    check_options(options)
    output = Path(output)
    src = read_source(Path(source), output, options.preprocessing)
    check_gates_measurable(options, evaluation_spec(options, src.contract))
    check_data_up_front(options, src.contract)
    if options.precision is Precision.FP16:
        result = quantize_fp16(src, output, options, force, progress)
    else:
        result = quantize_int8(src, output, options, force, progress)
    gate = result.manifest.verification.get("gate")
    if isinstance(gate, Mapping) and gate.get("passed") is False:
        from resnet_opt.quantization.report import gate_advice

        raise QuantizeGateError(
            f"{output.name}: top-1 dropped {gate['drop_points']:.2f} points, over --max-drop "
            f"{gate['max_drop']:g}; try {gate_advice(result.manifest)} ({output} kept for "
            "inspection; its manifest records the failure)",
            result,
        )
    return result
