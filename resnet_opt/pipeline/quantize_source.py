"""The FP32 model `quantize` reads: the file, its graph, sha256, manifest and contract, read once.

Refused here, before any calibration: an output that is the input, a model that is already
quantized, a manifest that does not describe the file, and preprocessing options that
contradict the manifest's contract (or are missing where there is no manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_opt.core.contract import PreprocessContract
from resnet_opt.core.manifest import InputRef, Manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.runners.loaders import open_stage_input

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class QuantizeSource:
    """The FP32 model being quantized, read once: file, graph, sha256, manifest, contract."""

    path: Path
    model: onnx.ModelProto
    sha256: str
    parent: Manifest | None
    contract: PreprocessContract

    def input_ref(self) -> InputRef:
        return InputRef("model", str(self.path), self.sha256)


def read_source(
    source: Path, output: Path, preprocessing: PreprocessContract | None
) -> QuantizeSource:
    """`source` read for quantizing into `output`; `preprocessing` for a model without a
    manifest (see `quantize_options.contract_from_options`)."""
    from resnet_opt.graph import load_onnx
    from resnet_opt.quantization.graph_rules import quantized_reason

    opened = open_stage_input(source, output)
    model = load_onnx(source)
    reason = quantized_reason(model)
    if reason:
        raise ResnetOptError(f"{source}: already quantized ({reason}); quantize the FP32 model")
    from resnet_opt.core.manifest import Precision
    from resnet_opt.graph import precision_of

    precision, _, fp16 = precision_of(model)
    if precision is Precision.FP16:  # fp16 of fp16 changes nothing; int8 of it calibrates nothing
        raise ResnetOptError(
            f"{source}: already fp16 ({fp16} fp16 tensors); quantize or convert the FP32 model"
        )
    parent = opened.manifest
    contract = _contract(source, parent, preprocessing)
    return QuantizeSource(source, model, opened.sha256, parent, contract)


def _contract(
    source: Path, parent: Manifest | None, given: PreprocessContract | None
) -> PreprocessContract:
    if parent is not None and parent.preprocessing is not None:
        if given is not None and given.to_dict() != parent.preprocessing.to_dict():
            raise ResnetOptError(
                f"{source}: its manifest already sets the preprocessing; drop the preprocessing "
                "options (they differ from it)"
            )
        return parent.preprocessing
    if given is None:
        raise ResnetOptError(
            f"{source}: no manifest with a preprocessing contract beside it; give the "
            "preprocessing (--input-size, --mean, --std, and --resize/--crop if used), describe "
            "it once with `resnet-opt import` (preprocessing and --labels, for every later "
            "command), or export the model with resnet-opt"
        )
    return given
