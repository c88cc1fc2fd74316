"""The Python API: one function per stage, the very functions the command line runs.

    from resnet_opt import export, fold, quantize, build, evaluate, bench

Every stage has the same shape, `stage(source, output, options, *, force, progress) -> result`:
`source` is what the stage reads (a model name or file for `export`, an artifact otherwise, one
or a list of artifacts for `bench`), `output` where it writes (a file, or a report folder for
`bench`; optional for `evaluate` and `bench`, which can also just return their result),
`options` the stage's frozen options dataclass (None: the defaults; `build` needs one, whose
type names the backend), `force` whether an existing output may be replaced, `progress` the
callback (`bench`: the sink) the CLI's progress bars use, ignored by stages with no long loop.
Results are the stage's own types: the manifest written, `QuantizeResult`, `Evaluation`,
`Report`.

Errors are `resnet_opt.errors.ResnetOptError` (a `QualityGateError` when a gate such as
`QuantizeOptions.max_drop` failed); nothing here exits or prints, but for one line on stderr:
`bench` on a Jetson whose clocks scale says so before measuring, as the command does (silent
after `resnet_opt.console.set_verbosity(0, quiet=True)`). The option classes are re-exported here
so a script imports everything from one place.
"""

from __future__ import annotations

from resnet_opt.core.manifest import Manifest
from resnet_opt.measure.jetson_budget import BudgetRequest
from resnet_opt.measure.targets import Target
from resnet_opt.measure.timing import Budget
from resnet_opt.pipeline.bench import BenchOptions, bench
from resnet_opt.pipeline.build import build
from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions
from resnet_opt.pipeline.evaluate import EvalOptions, Evaluation, evaluate
from resnet_opt.pipeline.export import ExportOptions, export
from resnet_opt.pipeline.fold import FoldOptions, fold
from resnet_opt.pipeline.import_model import ImportOptions, import_model
from resnet_opt.pipeline.quantize import quantize
from resnet_opt.pipeline.quantize_artifact import QuantizeResult
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.quantization.plan import QdqTarget
from resnet_opt.report.schema import Report
from resnet_opt.tensorrt.options import TensorRtBuildOptions

__all__ = [
    "BenchOptions",
    "Budget",
    "BudgetRequest",
    "EvalOptions",
    "Evaluation",
    "ExportOptions",
    "FoldOptions",
    "ImportOptions",
    "Manifest",
    "OpenVinoBuildOptions",
    "OrtBuildOptions",
    "QdqTarget",
    "QuantizeOptions",
    "QuantizeResult",
    "Report",
    "Target",
    "TensorRtBuildOptions",
    "bench",
    "build",
    "evaluate",
    "export",
    "fold",
    "import_model",
    "quantize",
]
