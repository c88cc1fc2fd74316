"""The `resnet-opt` command line: one thin command per stage.

Commands parse options into the stage's typed arguments and call the stage function; all work
happens in `resnet_opt.pipeline`. Errors: a ResnetOptError becomes one line on stderr and its
exit code (1, 2 for a UsageError: the command line or config is wrong in itself, as for Typer's
own usage errors, or 3 for a failed quality gate); anything else is a bug and keeps its
traceback. RESNET_OPT_DEBUG=1 shows tracebacks for known errors too. No option takes NaN or
infinity, no --threads exceeds the CPU count without --force-threads, and SIGTERM unwinds like
Ctrl-C (exit 143) so that no temporary file is left behind.

Only the standard library, numpy and typer are imported at the top (ARCHITECTURE.md, "Imports and
extras"): `--help` must not pull in torch.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from resnet_opt.console import counting_bar, emit_json, say, set_verbosity
from resnet_opt.core.signals import reraise_if_terminated
from resnet_opt.core.version import __version__
from resnet_opt.errors import ResnetOptError, UsageError

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=Enum)


def domain_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the domain error into one stderr line and its exit code.

    Every command is wrapped with this (through `command`), so the rule holds for the console
    script and for Typer's test runner alike.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            _refuse_non_finite(kwargs)
            return func(*args, **kwargs)
        except ResnetOptError as exc:
            reraise_if_terminated(exc)
            if os.environ.get("RESNET_OPT_DEBUG") == "1":
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:  # a bug keeps its traceback, unless it was SIGTERM in disguise
            reraise_if_terminated(exc)
            raise

    return wrapper


def _refuse_non_finite(options: dict[str, Any]) -> None:
    """No option takes NaN or infinity: NaN compares false, so a gate given `--max-drop nan`
    would pass anything, and `--duration inf` would never end (a usage error, exit 2)."""
    from resnet_opt.core.validation import finite

    for name, value in options.items():
        if isinstance(value, float):
            finite(value, f"--{name.replace('_', '-')}")


def _threads(threads: int | None, force: bool) -> int | None:
    """`--threads`, refused above this host's CPU count unless `--force-threads`."""
    from resnet_opt.core.validation import threads as check

    check(threads, "--threads", force=force, force_hint="pass --force-threads")
    return threads


app = typer.Typer(
    name="resnet-opt",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Take a trained ResNet to ONNX, INT8/FP16, TensorRT or ONNX Runtime engines, "
    "and measure what each step costs and buys.",
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
ForceThreadsOption = Annotated[
    bool,
    typer.Option("--force-threads", help="Allow --threads above this machine's CPU count."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resnet-opt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv: debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only.")] = False,
) -> None:
    set_verbosity(verbose, quiet)


def command(
    name: str | None = None, **kwargs: object
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`app.command` with the domain-error wrapper: use it for every command."""

    def register(func: Callable[P, R]) -> Callable[P, R]:
        wrapped = domain_errors(func)
        app.command(name, **kwargs)(wrapped)  # type: ignore[arg-type]
        return wrapped

    return register


def _step_summary(markdown: str) -> None:
    """`--summary` (bench, compare): append to $GITHUB_STEP_SUMMARY and say so, or say why not."""
    from resnet_opt.report import append_step_summary

    target = append_step_summary(markdown)
    if target is None:
        say("--summary: GITHUB_STEP_SUMMARY is not set; no step summary written")
    else:
        say(f"appended the summary to {target}")


def _warn(warning: str | None) -> None:
    """One warning line on stderr (silent under -q), when there is one."""
    if warning is not None:
        say(f"warning: {warning}")


def _choice_option(enum: type[E], value: str, option: str, only: tuple[E, ...] = ()) -> E:
    """An enum option given as text (its module is imported late): a usage error lists the
    choices (`only` those members, when the command takes a subset)."""
    allowed = only or tuple(enum)
    try:
        chosen = enum(value)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in allowed:
        choices = ", ".join(str(m.value) for m in allowed)
        raise typer.BadParameter(f"{value!r}: choose {choices}", param_hint=option) from None
    return chosen


@command()
def info(json_output: JsonOption = False) -> None:
    """Versions, ONNX Runtime providers, and whether TensorRT / CUDA / pycuda work (or why not)."""
    from resnet_opt.environment import collect

    env = collect()
    if json_output:
        emit_json(env.to_dict())
        return
    lines = [f"python        {env.python}"]
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.packages]
    lines.append(f"ORT providers {', '.join(env.onnxruntime_providers) or '—'}")
    from resnet_opt.environment import onnxruntime_distributions

    if len(ort := onnxruntime_distributions()) > 1:
        lines.append(f"ORT warning   {' and '.join(ort)} are both installed: keep one")
    lines += [f"{p.name:<13} {p.version or '— ' + (p.problem or '')}" for p in env.accelerators]
    lines += [
        f"OpenVINO {d.name:<4} {d.full_name} ({', '.join(d.capabilities)})"
        for d in env.openvino_devices
    ]
    m = env.machine
    lines.append(f"machine       {m.cpu_model}, {m.cpu_cores} cores, {m.memory_gb} GB")
    if m.cpu_flags:
        lines.append(f"CPU flags     {', '.join(m.cpu_flags)}")
    from resnet_opt.core.cpu_int8 import Int8Family, describe

    lines.append(f"CPU int8      {describe(Int8Family(m.cpu_int8_family))}")
    if m.jetpack:
        lines.append(f"jetson        {m.jetpack}")
    if env.jetson is not None:
        from resnet_opt.jetson.show import info_lines

        lines += info_lines(env.jetson)
    typer.echo("\n".join(lines))


@command("export")
def export_command(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Architecture name (resnet18…resnet152, resnext50_32x4d, wide_resnet50_2, "
            "resnet20…resnet110, resnet20-digits), FILE.py:FACTORY, PACKAGE.MODULE:FACTORY, or "
            "a TorchScript file (default: the bundled ResNet-20 on digits).",
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint (state_dict) path, a torchvision weights name (IMAGENET1K_V2, "
            "DEFAULT) from the local torch cache, or none (random init)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="ONNX file to write (default: <model name>.onnx)."),
    ] = None,
    input_size: Annotated[int | None, typer.Option(min=1, help="Network input, square.")] = None,
    channels: Annotated[int | None, typer.Option(help="Input channels: 1 or 3.")] = None,
    mean: Annotated[str | None, typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406.")] = (
        None
    ),
    std: Annotated[str | None, typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225.")] = (
        None
    ),
    resize: Annotated[str | None, typer.Option(help="Shorter side before the crop, or none.")] = (
        None
    ),
    crop: Annotated[str | None, typer.Option(help="Centre crop, or none.")] = None,
    interpolation: Annotated[
        str | None,
        typer.Option(help="Resize filter: nearest, bilinear, bicubic (default: the model's)."),
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Class labels: a text file (one per line) or a,b,c.")
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(min=1, help="Classes of a registry architecture (default: from weights)."),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Fixed batch size (default: dynamic batch axis).")
    ] = None,
    opset: Annotated[
        int | None, typer.Option(help="ONNX opset (default: 17; 18 with --exporter dynamo).")
    ] = None,
    exporter: Annotated[
        str, typer.Option(help="torchscript (any source, fast) or dynamo (torch.export).")
    ] = "torchscript",
    tolerance: Annotated[
        float,
        typer.Option(help="Largest max-abs error vs PyTorch, relative to the logits' scale."),
    ] = 1e-3,
    data: Annotated[
        str | None,
        typer.Option(
            help="Real images for the parity check: image folder, .npy/.npz or 'default' "
            "(default: the bundled test split for the bundled model, else none)."
        ),
    ] = None,
    data_samples: Annotated[
        int | None,
        typer.Option(min=1, help="Images compared from --data (default: 256; bundled: all)."),
    ] = None,
    no_fold: Annotated[
        bool, typer.Option("--no-fold", help="Keep BatchNormalization nodes the exporter left.")
    ] = False,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle", help="Allow files that need full unpickling (runs their code)."
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed: random init, parity inputs, samples.")
    ] = 0,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads for the parity check (torch and ORT).")
    ] = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Export a trained ResNet to ONNX (BatchNorm folded), verified against PyTorch."""
    from resnet_opt.core.contract import Interpolation, parse_floats
    from resnet_opt.models.contract import (
        ContractOptions,
        parse_choice,
        parse_labels,
        parse_size,
    )
    from resnet_opt.pipeline.export import Exporter, ExportOptions, default_output, export

    chosen_exporter = parse_choice(Exporter, exporter, "--exporter")
    filter_ = (
        parse_choice(Interpolation, interpolation, "--interpolation") if interpolation else None
    )
    options = ExportOptions(
        model=model,
        weights=weights,
        trust_pickle=trust_pickle,
        num_classes=num_classes,
        contract=ContractOptions(
            input_size=input_size,
            channels=channels,
            mean=parse_floats(mean, "--mean") if mean is not None else None,
            std=parse_floats(std, "--std") if std is not None else None,
            resize=parse_size(resize, "--resize") if resize is not None else None,
            crop=parse_size(crop, "--crop") if crop is not None else None,
            interpolation=filter_,
            labels=parse_labels(labels) if labels is not None else None,
        ),
        batch=batch,
        opset=opset,
        exporter=chosen_exporter,
        tolerance=tolerance,
        data=data,
        data_samples=data_samples,
        fold=not no_fold,
        force=force,
        seed=seed,
        threads=_threads(threads, force_threads),
    )
    target = output if output is not None else default_output(model)
    manifest = export(options, target)
    if json_output:
        emit_json({"output": str(target), **manifest.to_dict()})
        return
    details, check = manifest.details, manifest.verification
    contract = manifest.preprocessing
    assert contract is not None
    size_mb = target.stat().st_size / 1e6
    batch_text = "dynamic batch" if details["dynamic_batch"] else f"batch {details['batch']}"
    say(
        f"{target}: {details['model']} ({details['parameters'] / 1e6:.2f}M parameters, "
        f"{details['num_classes']} classes), opset {details['opset']}, {batch_text}, "
        f"{size_mb:.1f} MB"
    )
    say(
        f"  parity with PyTorch: max abs error {check['max_abs_error']:.2e} on {check['samples']} "
        f"random inputs (tolerance {check['tolerance']:.2e}), top-1 agreement "
        f"{check['top1_agreement']:.1f}%"
    )
    if "data" in check:
        real = check["data"]
        say(
            f"  on {real['data']}: max abs error {real['max_abs_error']:.2e} on "
            f"{real['samples']} images, top-1 agreement {real['top1_agreement']:.1f}%"
        )
    accuracy = check.get("accuracy") or {}
    if "pytorch_top1" in accuracy:
        say(
            f"  top-1: PyTorch {accuracy['pytorch_top1']:.2f}%, ONNX Runtime "
            f"{accuracy['onnxruntime_top1']:.2f}% ({accuracy['count']} images)"
        )
    bn = details["batchnorm"]
    say(
        f"  BatchNorm: {bn['in_model']} in the model; folded by the exporter "
        f"{bn['folded_by']['exporter']}, by the fold pass {bn['folded_by']['fold']}; "
        f"left {len(bn['left'])}"
    )
    spatial = (
        f"resize {contract.resize}, crop {contract.crop}"
        if contract.resize or contract.crop
        else "scaled straight"
    )
    say(
        f"  input {contract.channels}×{contract.input_size}×{contract.input_size} "
        f"({spatial}, {contract.interpolation.value}; from {details['contract_origin']})"
    )


@command("fold")
def fold_command(
    model: Annotated[Path, typer.Argument(help="ONNX model (any exporter; manifest optional).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folded ONNX to write (plus its .json manifest).")
    ],
    tolerance: Annotated[
        float,
        typer.Option(min=0.0, help="Largest max-abs output difference accepted in verification."),
    ] = 1e-3,
    input_shape: Annotated[
        str | None,
        typer.Option(
            help="One sample's shape without the batch, e.g. 3,224,224; needed only when the "
            "input dims are symbolic and no manifest gives the image size."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Random inputs to verify with.")] = 8,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random inputs.")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads.")] = (
        None
    ),
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Fold BatchNormalization into the Conv/Gemm before it; verify outputs with ONNX Runtime."""
    from resnet_opt.pipeline.fold import fold, parse_shape

    manifest = fold(
        model,
        output,
        force=force,
        tolerance=tolerance,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        input_shape=parse_shape(input_shape) if input_shape is not None else None,
        threads=_threads(threads, force_threads),
    )
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
        return
    batchnorm = manifest.details["batchnorm"]
    left = batchnorm["left"]
    check = manifest.verification
    say(
        f"{output}: folded {batchnorm['folded']} BatchNormalization, left "
        f"{len(left)}; max abs error {check['max_abs_error']:.2e} over {check['samples']} "
        f"random inputs (tolerance {check['tolerance']:g})"
    )
    constants = manifest.details.get("constants", {})
    if constants.get("folded"):
        ops = ", ".join(f"{n} {op}" for op, n in constants["by_op"].items())
        say(f"  first folded {constants['folded']} constant nodes into initializers ({ops})")
    for entry in left:
        say(f"  left {entry['node']}: {entry['reason']}")


@command("quantize")
def quantize_command(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX (BatchNorm folded) with its manifest.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="ONNX to write (plus .json manifest; int8 tensorrt: .trt-calib.cache too).",
        ),
    ],
    precision: Annotated[str, typer.Option(help="int8 (explicit Q/DQ) or fp16.")] = "int8",
    target: Annotated[
        str | None,
        typer.Option(
            help="int8 layout: tensorrt (symmetric s8, TensorRT's Conv+Add fusion) or cpu "
            "(u8/s8, ONNX Runtime's fastest) (default: tensorrt)."
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help="Range calibration: max, percentile, entropy, mse (default: entropy)."),
    ] = None,
    percentile: Annotated[
        float | None, typer.Option(help="With --method percentile (default: 99.99).")
    ] = None,
    calib: Annotated[
        str | None,
        typer.Option(
            help="Calibration data: image folder, .npy/.npz, or default (bundled split) "
            "(default: the bundled calib split for the bundled model)."
        ),
    ] = None,
    calib_samples: Annotated[
        int | None,
        typer.Option(
            min=1, help="Calibration samples, seeded draw (default: 512, or all there are)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the calibration/evaluation draws.")] = 0,
    calib_cache: Annotated[
        Path | None,
        typer.Option(help="Statistics cache: reused when its keys match, written when absent."),
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option(
            "--eval",
            help="Labelled data to score the result against the FP32 input, or none "
            "(default: the bundled test split for the bundled model).",
        ),
    ] = None,
    eval_samples: Annotated[
        int | None, typer.Option(min=1, help="Score a seeded subset of this many images.")
    ] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(help="Exit 3 when top-1 drops more than this many points (file kept)."),
    ] = None,
    accuracy_budget: Annotated[
        float | None,
        typer.Option(
            help="int8: keep the most sensitive layers in higher precision until the "
            "drop is at most this many points."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Node name or op type kept in higher precision (repeat, or a,b)."),
    ] = None,
    keep_io_types: Annotated[
        bool, typer.Option("--keep-io-types", help="fp16: keep fp32 inputs and outputs.")
    ] = False,
    input_size: Annotated[
        int | None, typer.Option(min=1, help="Without a manifest: network input size.")
    ] = None,
    mean: Annotated[str | None, typer.Option(help="Without a manifest: per-channel mean.")] = None,
    std: Annotated[str | None, typer.Option(help="Without a manifest: per-channel std.")] = None,
    resize: Annotated[
        int | None, typer.Option(min=1, help="Without a manifest: shorter side before the crop.")
    ] = None,
    crop: Annotated[
        int | None, typer.Option(min=1, help="Without a manifest: centre crop.")
    ] = None,
    tensorrt_version: Annotated[
        str | None,
        typer.Option(
            help="int8 tensorrt target: the TensorRT that reads the calibration cache "
            "(default: 10.3.0, JetPack 6.1/6.2's)."
        ),
    ] = None,
    reduce_range: Annotated[
        bool | None,
        typer.Option(
            "--reduce-range/--no-reduce-range",
            help="int8 cpu target: 7-bit weights ([-64, 64], ONNX Runtime's reduce_range) that "
            "keep their accuracy on x86 CPUs without VNNI (AVX2, AVX-512), where full 8-bit "
            "u8×s8 sums saturate. --no-reduce-range: full 8 bits, for VNNI/AMX/Arm-dotprod "
            "CPUs only (default: --reduce-range).",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on unreadable images instead of skipping.")
    ] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads.")] = (
        None
    ),
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """INT8 (explicit Q/DQ for TensorRT or the CPU) or FP16, scored against the FP32 input."""
    from resnet_opt.core.manifest import Precision
    from resnet_opt.pipeline.quantize import (
        QuantizeGateError,
        QuantizeOptions,
        contract_from_options,
        quantize,
    )
    from resnet_opt.quantization.plan import QdqTarget
    from resnet_opt.quantization.report import summary_lines

    chosen = _choice_option(Precision, precision, "--precision", (Precision.INT8, Precision.FP16))
    options = QuantizeOptions(
        precision=chosen,
        target=_choice_option(QdqTarget, target, "--target") if target is not None else None,
        method=method,
        percentile=percentile,
        calib=calib,
        calib_samples=calib_samples,
        seed=seed,
        calib_cache=calib_cache,
        eval_data=eval_data,
        eval_samples=eval_samples,
        max_drop=max_drop,
        accuracy_budget=accuracy_budget,
        exclude=tuple(p.strip() for e in exclude or () for p in e.split(",") if p.strip()),
        keep_io_types=keep_io_types,
        strict=strict,
        threads=_threads(threads, force_threads),
        preprocessing=contract_from_options(
            model, input_size=input_size, mean=mean, std=std, resize=resize, crop=crop
        ),
        tensorrt_version=tensorrt_version,
        reduce_range=reduce_range,
    )
    try:
        with counting_bar("calibrating") as progress:
            result = quantize(model, output, options, force=force, progress=progress)
    except QuantizeGateError as gate:
        _quantize_report(gate.result.manifest, output, json_output, summary_lines)
        raise
    _quantize_report(result.manifest, output, json_output, summary_lines)


def _quantize_report(
    manifest: Any, output: Path, json_output: bool, lines: Callable[..., list[str]]
) -> None:
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
    else:
        for line in lines(manifest, output):
            say(line)


@command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="ONNX artifact with its manifest.")],
    data: Annotated[
        str,
        typer.Option(
            help="Image folder (class subfolders), .npy/.npz, or 'default' (bundled test split)."
        ),
    ] = "default",
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference artifact (e.g. the FP32 source) for agreement and drop."),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Evaluate a seeded subset of this many samples.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed for --samples.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    threads: Annotated[int | None, typer.Option(min=1, help="ONNX Runtime intra-op threads.")] = (
        None
    ),
    max_drop: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Exit 3 when top-1 drops more than this many points vs --reference."
        ),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Fail on unreadable images instead of skipping.")] = (
        False
    ),
    force_threads: ForceThreadsOption = False,
    json_output: JsonOption = False,
) -> None:
    """Top-1 / top-5 of an ONNX artifact, and its drop against a reference."""
    from resnet_opt.errors import QualityGateError
    from resnet_opt.pipeline.evaluate import evaluate
    from resnet_opt.quantization.saturation import warning_for

    if max_drop is not None and reference is None:
        raise UsageError("--max-drop needs --reference (the drop is measured against it)")
    _warn(warning_for([model]))
    result = evaluate(
        model,
        data,
        reference=reference,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        threads=_threads(threads, force_threads),
        strict=strict,
    )
    if json_output:
        emit_json(result.to_dict())
    else:
        acc = result.accuracy
        line = f"{model.name}: top-1 {acc.top1:.2f}%  top-5 {acc.top5:.2f}%  ({acc.count} images)"
        if result.reference is not None and result.drop_points is not None:
            line += (
                f"; reference top-1 {result.reference.top1:.2f}%, drop "
                f"{result.drop_points:+.2f} points, agreement {result.top1_agreement:.2f}%"
            )
        say(line)
    if max_drop is not None and result.drop_points is not None and result.drop_points > max_drop:
        raise QualityGateError(
            f"top-1 dropped {result.drop_points:.2f} points, over --max-drop {max_drop}"
        )


@command("build")
def build_command(
    source: Annotated[Path, typer.Argument(help="ONNX artifact (with its manifest) to build.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Artifact to write: a .plan (TensorRT), .onnx/.ort (ONNX "
            "Runtime), .xml/.blob (OpenVINO); its manifest goes beside it as <file>.json.",
        ),
    ],
    backend: Annotated[
        str, typer.Option(help="tensorrt (GPU / Jetson), onnxruntime or openvino (CPU).")
    ],
    batch: Annotated[
        str | None,
        typer.Option(
            help="TensorRT: the profile, N or min:opt:max \\[default: the ONNX's fixed batch, "
            "else 1:8:32]. OpenVINO: fix a dynamic batch to N."
        ),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            help="TensorRT workspace memory pool limit, e.g. 2G, 512M \\[default: TensorRT's]."
        ),
    ] = None,
    opt_level: Annotated[
        int | None,
        typer.Option(min=0, max=5, help="TensorRT builder optimization level 0-5 \\[default: 3]."),
    ] = None,
    timing_cache: Annotated[
        Path | None,
        typer.Option(help="TensorRT timing cache file: read if present, updated after the build."),
    ] = None,
    dla_core: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Build for this DLA core (Jetson Orin) with GPU fallback: TensorRT <= 10.7 "
            "(implicit INT8 from the calibration cache quantize wrote, or FP16) or >= 11.4.1 "
            "(fp16 / Q/DQ int8 ONNX).",
        ),
    ] = None,
    calib_cache: Annotated[
        Path | None,
        typer.Option(
            help="TensorRT 10 DLA INT8: the calibration cache \\[default: the one the INT8 "
            "ONNX's manifest names]."
        ),
    ] = None,
    version_compatible: Annotated[
        bool,
        typer.Option(
            "--version-compatible", help="TensorRT: a plan later TensorRT versions can load."
        ),
    ] = False,
    hardware_compatible: Annotated[
        bool,
        typer.Option(
            "--hardware-compatible",
            help="TensorRT: a plan for any Ampere or newer GPU (not on Jetson).",
        ),
    ] = False,
    same_compute_capability: Annotated[
        bool,
        typer.Option(
            "--same-compute-capability",
            help="TensorRT >= 10.9: a plan for any GPU of this compute capability.",
        ),
    ] = False,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="TensorRT: skip running the engine against ONNX Runtime."),
    ] = False,
    engine_cache: Annotated[
        Path | None,
        typer.Option(
            help="TensorRT: a folder of engines keyed by model sha256, precision, options, GPU, "
            "L4T and TensorRT version; an engine built before is copied, not rebuilt."
        ),
    ] = None,
    optimization: Annotated[
        str | None,
        typer.Option(help="ONNX Runtime graph optimization: disabled, basic, extended, all."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(help="ONNX Runtime provider: cpu, cuda, tensorrt \\[default: cpu]."),
    ] = None,
    portable: Annotated[
        bool,
        typer.Option("--portable", help="ONNX Runtime: no CPU-family-specific (NCHWc) layout."),
    ] = False,
    device: Annotated[str | None, typer.Option(help="OpenVINO device \\[default: CPU].")] = None,
    precision_hint: Annotated[
        str | None,
        typer.Option(
            help="OpenVINO inference precision: f32, bf16, f16, default \\[default: f32]."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="ONNX Runtime / OpenVINO threads the runner uses.")
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(help="ONNX Runtime / OpenVINO: one sample's shape for symbolic dims, C,H,W."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(min=1, help="ONNX Runtime / OpenVINO: random inputs checked vs the source."),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(help="ONNX Runtime / OpenVINO: largest max-abs difference accepted."),
    ] = None,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Build a deployable artifact: a TensorRT engine or an ONNX Runtime / OpenVINO model."""
    from resnet_opt.pipeline.build import BuildBackend, build, check_backend_options

    chosen = _choice_option(BuildBackend, backend, "--backend")
    check_backend_options(
        chosen,
        {
            "--batch": batch is not None,
            "--workspace": workspace is not None,
            "--opt-level": opt_level is not None,
            "--timing-cache": timing_cache is not None,
            "--dla-core": dla_core is not None,
            "--calib-cache": calib_cache is not None,
            "--version-compatible": version_compatible,
            "--hardware-compatible": hardware_compatible,
            "--same-compute-capability": same_compute_capability,
            "--no-verify": no_verify,
            "--engine-cache": engine_cache is not None,
            "--optimization": optimization is not None,
            "--provider": provider is not None,
            "--portable": portable,
            "--device": device is not None,
            "--precision-hint": precision_hint is not None,
            "--threads": threads is not None,
            "--input-shape": input_shape is not None,
            "--samples": samples is not None,
            "--tolerance": tolerance is not None,
        },
    )
    options: Any
    if chosen is BuildBackend.TENSORRT:
        from resnet_opt.tensorrt.options import TensorRtBuildOptions, parse_bytes
        from resnet_opt.tensorrt.profiles import parse_batch
        from resnet_opt.tensorrt.versions import HardwareCompat

        if hardware_compatible and same_compute_capability:
            raise UsageError(
                "--hardware-compatible and --same-compute-capability are two levels: pick one"
            )
        level = (
            HardwareCompat.AMPERE_PLUS
            if hardware_compatible
            else HardwareCompat.SAME_COMPUTE_CAPABILITY
            if same_compute_capability
            else None
        )
        options = TensorRtBuildOptions(
            batch=parse_batch(batch) if batch is not None else None,
            workspace_bytes=parse_bytes(workspace) if workspace is not None else None,
            opt_level=opt_level,
            timing_cache=timing_cache,
            dla_core=dla_core,
            calib_cache=calib_cache,
            version_compatible=version_compatible,
            hardware_compatible=level,
        )
    else:
        options = _cpu_build_options(
            chosen,
            batch=batch,
            optimization=optimization,
            provider=provider,
            portable=portable,
            device=device,
            precision_hint=precision_hint,
            threads=_threads(threads, force_threads),
            input_shape=input_shape,
            samples=samples,
            tolerance=tolerance,
        )
    from resnet_opt.pipeline.bundle import verify_if_bundled

    verify_if_bundled(source)  # a bundled ONNX: its files against bundle.json first
    if engine_cache is not None:
        from resnet_opt.pipeline.engine_cache import build_cached

        cached = build_cached(
            source, output, options, cache=engine_cache, force=force, verify=not no_verify
        )
        manifest = cached.manifest
        if cached.note:
            say(cached.note)
        if cached.hit:
            say(
                f"engine cache: {cached.entry.name} was built for this model, options, GPU and "
                "TensorRT; copied, not rebuilt"
            )
    else:
        manifest = build(source, output, chosen, options, force=force, verify=not no_verify)
    if json_output:
        emit_json({"output": str(output), **manifest.to_dict()})
        return
    say(_build_summary(chosen, output, manifest))


def _cpu_build_options(backend: Any, **given: Any) -> Any:
    """OrtBuildOptions / OpenVinoBuildOptions from the CLI values that were given."""
    from dataclasses import replace

    from resnet_opt.pipeline.build import BuildBackend

    shape = None
    if given["input_shape"] is not None:
        try:
            shape = tuple(int(d) for d in given["input_shape"].split(","))
        except ValueError:
            raise UsageError(
                f"--input-shape {given['input_shape']!r}: give sizes like 3,224,224"
            ) from None
    common = {
        k: v
        for k, v in {
            "threads": given["threads"],
            "input_shape": shape,
            "samples": given["samples"],
            "tolerance": given["tolerance"],
        }.items()
        if v is not None
    }
    if backend is BuildBackend.ONNXRUNTIME:
        from resnet_opt.pipeline.build_onnxruntime import OrtBuildOptions
        from resnet_opt.runners.onnxruntime import GraphOptimization, OrtProvider

        ort = OrtBuildOptions(portable=given["portable"], **common)
        if given["optimization"] is not None:
            level = _choice_option(GraphOptimization, given["optimization"], "--optimization")
            ort = replace(ort, optimization=level)
        if given["provider"] is not None:
            provider = _choice_option(OrtProvider, given["provider"], "--provider")
            ort = replace(ort, provider=provider)
        return ort
    from resnet_opt.pipeline.build_openvino import OpenVinoBuildOptions
    from resnet_opt.runners.openvino import OvPrecision

    ov = OpenVinoBuildOptions(**common)
    if given["device"] is not None:
        ov = replace(ov, device=given["device"])
    if given["precision_hint"] is not None:
        hint = _choice_option(OvPrecision, given["precision_hint"], "--precision-hint")
        ov = replace(ov, precision=hint)
    if given["batch"] is not None:
        try:
            ov = replace(ov, batch=int(given["batch"]))
        except ValueError:
            raise UsageError(
                f"--batch {given['batch']!r}: OpenVINO fixes the batch to one size N"
            ) from None
    return ov


def _build_summary(backend: Any, output: Path, manifest: Any) -> str:
    """The lines a person reads after `build`, from the backend's own summary."""
    from resnet_opt.pipeline.build import BuildBackend

    if backend is BuildBackend.TENSORRT:
        from resnet_opt.pipeline.build_tensorrt import summary_lines
    elif backend is BuildBackend.ONNXRUNTIME:
        from resnet_opt.pipeline.build_onnxruntime import summary_lines
    else:
        from resnet_opt.pipeline.build_openvino import summary_lines
    return "\n".join(summary_lines(manifest, output))


@command("bench")
def bench_command(
    artifacts: Annotated[
        list[Path], typer.Argument(help="Artifacts with their manifests (.onnx, engines, builds).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Report folder: report.json, report.md, report.png."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="auto (every backend installed here that fits each artifact) or a comma list "
            "of: torch, onnxruntime, onnxruntime-cuda, onnxruntime-tensorrt, openvino, tensorrt."
        ),
    ] = "auto",
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1,8,32",
    iterations: Annotated[
        int | None, typer.Option(min=1, help="Timed runs per point (instead of --duration).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Seconds of timed runs per point \\[default: 0.5, on a Jetson 3 as trtexec; "
            "unless --iterations]."
        ),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Warm-up per point: one first run, then this many seconds of runs "
            "\\[default: 0.1, on a Jetson 0.2 as trtexec].",
        ),
    ] = None,
    min_iterations: Annotated[
        int, typer.Option(min=1, help="With --duration: at least this many timed runs.")
    ] = 10,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads per backend \\[default: all usable cores].")
    ] = None,
    data: Annotated[
        str,
        typer.Option(
            help="Evaluation set: image folder (class subfolders), .npy/.npz, or 'default' "
            "(bundled test split)."
        ),
    ] = "default",
    no_accuracy: Annotated[
        bool, typer.Option("--no-accuracy", help="Time only (seeded random input batch).")
    ] = False,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Evaluate a seeded subset of this many images.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed for --samples and random inputs.")] = 0,
    reference: Annotated[
        Path | None,
        typer.Option(help="FP32 source for drops \\[default: found from each manifest's lineage]."),
    ] = None,
    no_data_transfers: Annotated[
        bool,
        typer.Option(
            "--no-data-transfers", help="TensorRT: time without host/device copies (trtexec)."
        ),
    ] = False,
    cuda_graph: Annotated[
        bool, typer.Option("--cuda-graph", help="TensorRT: replay the inference as a CUDA graph.")
    ] = False,
    plot_batch: Annotated[
        int | None, typer.Option(min=1, help="Batch size the plot shows \\[default: largest].")
    ] = None,
    note: Annotated[
        list[str] | None, typer.Option(help="A note for the report (repeatable).")
    ] = None,
    summary: Annotated[
        bool, typer.Option(help="Append the Markdown to $GITHUB_STEP_SUMMARY when it is set.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Fail on unreadable images instead of skipping.")] = (
        False
    ),
    concurrent: Annotated[
        bool,
        typer.Option(
            "--concurrent",
            help="TensorRT engines at the same time, one process each (GPU + DLA0 + DLA1 on an "
            "Orin): per-engine and total throughput. Needs --no-accuracy.",
        ),
    ] = False,
    force_threads: ForceThreadsOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Throughput, latency and accuracy per artifact × backend × batch → JSON, Markdown, PNG."""
    from resnet_opt.console import is_quiet
    from resnet_opt.jetson.facts import read_facts
    from resnet_opt.measure.jetson_budget import budget_defaults, clock_warning
    from resnet_opt.measure.progress import NoProgress, RichProgress
    from resnet_opt.measure.targets import parse_targets
    from resnet_opt.measure.timing import Budget
    from resnet_opt.pipeline.bench import BenchOptions, bench, parse_batches
    from resnet_opt.report import check_report_folder, write_report
    from resnet_opt.report.markdown import render

    jetson = read_facts()
    chosen = budget_defaults(jetson, warmup_s=warmup, duration_s=duration, iterations=iterations)
    options = BenchOptions(
        backends=parse_targets(backend),
        batches=parse_batches(batch),
        budget=Budget(
            iterations=iterations,
            duration_s=chosen.duration_s,
            warmup_s=chosen.warmup_s,
            min_iterations=min_iterations,
        ),
        threads=_threads(threads, force_threads),
        data=None if no_accuracy else data,
        samples=samples,
        seed=seed,
        reference=reference,
        no_data_transfers=no_data_transfers,
        cuda_graph=cuda_graph,
        plot_batch=plot_batch,
        strict=strict,
        notes=tuple(note or ()),
    )
    if output is not None:  # what write_report would refuse, refused before measuring
        check_report_folder(output, force=force)
    if summary:
        from resnet_opt.report.files import check_step_summary

        check_step_summary()
    from resnet_opt.measure.targets import Target
    from resnet_opt.quantization.saturation import warning_for

    if options.backends is None or Target.ONNXRUNTIME in options.backends:  # as the report notes
        _warn(warning_for(artifacts))
    if (warning := clock_warning(jetson)) is not None:
        say(warning)
    if concurrent:
        from resnet_opt.pipeline.bench_concurrent import bench_concurrent

        report = bench_concurrent(artifacts, options)
    else:
        with RichProgress() if not is_quiet() else NoProgress() as progress:
            report = bench(artifacts, options, progress=progress)
    for skip in report.skipped:
        say(f"skipped {skip.artifact} · {skip.backend}: {skip.reason}")
    markdown = render(report)
    if output is not None:
        files = write_report(report, output, force=force)
        say(f"wrote {files.json}, {files.markdown.name}, {files.plot.name}")
    if summary:
        _step_summary(markdown)
    if json_output:
        emit_json(report.to_dict())
    else:
        typer.echo(markdown, nl=False)


@command("bundle")
def bundle_command(
    artifacts: Annotated[
        list[Path], typer.Argument(help="Artifacts to hand to the device (with their manifests).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write the bundle into.")
    ],
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Collect what a device needs (ONNX, manifests, calibration cache, FP32 source for DLA,
    labels) into one folder with bundle.json: every file's sha256, checked on arrival."""
    from resnet_opt.pipeline.bundle import bundle

    made = bundle(artifacts, output, force=force)
    if json_output:
        emit_json({"output": str(output), **made.to_dict()})
        return
    uses: dict[str, list[str]] = {}
    for f in made.files:
        uses.setdefault(f.path, []).append(f"{f.role} of {f.serves}")
    say(f"wrote {output}/bundle.json: {len(uses)} files for {', '.join(made.artifacts)}")
    for path, roles in uses.items():
        say(f"  {path:<36} {'; '.join(roles)}")


@command("bundle-verify")
def bundle_verify_command(
    folder: Annotated[Path, typer.Argument(help="A folder written by resnet-opt bundle.")],
    json_output: JsonOption = False,
) -> None:
    """Check every file of a bundle against its bundle.json (after copying it to the device)."""
    from resnet_opt.pipeline.bundle import verify_bundle

    found, count = verify_bundle(folder)
    if json_output:
        emit_json({"folder": str(folder), "files_checked": count, "ok": True})
        return
    say(f"{folder}: {count} files match bundle.json ({', '.join(found.artifacts)})")


@command("compare")
def compare_command(
    base: Annotated[Path, typer.Argument(help="The baseline report.json.")],
    new: Annotated[Path, typer.Argument(help="The new report.json.")],
    max_throughput_drop: Annotated[
        str, typer.Option(help="Largest throughput drop accepted, in percent (5% or 5).")
    ] = "5%",
    max_latency_rise: Annotated[
        str, typer.Option(help="Largest latency rise accepted, in percent; 'off' to not gate.")
    ] = "10%",
    latency_stat: Annotated[
        str, typer.Option(help="Latency gated: mean, p50, p90 or p99.")
    ] = "p50",
    max_accuracy_drop: Annotated[
        float, typer.Option(min=0.0, help="Largest top-1 drop accepted, in points.")
    ] = 0.2,
    allow_different_hardware: Annotated[
        bool,
        typer.Option(help="Compare reports from different machines or settings anyway."),
    ] = False,
    fail_on_missing: Annotated[
        bool, typer.Option(help="A measurement missing from NEW is a regression.")
    ] = False,
    summary: Annotated[
        bool, typer.Option(help="Append the Markdown to $GITHUB_STEP_SUMMARY when it is set.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Diff two bench reports; exit 3 on a regression beyond the limits (for CI)."""
    from resnet_opt.errors import QualityGateError
    from resnet_opt.report import load_report
    from resnet_opt.report.compare import (
        LatencyStat,
        Thresholds,
        compare_reports,
        comparison_dict,
        parse_percent,
        render_comparison,
    )

    stat = _choice_option(LatencyStat, latency_stat, "--latency-stat")
    thresholds = Thresholds(
        max_throughput_drop_pct=parse_percent(max_throughput_drop, "--max-throughput-drop"),
        max_latency_rise_pct=None
        if max_latency_rise.strip().lower() == "off"
        else parse_percent(max_latency_rise, "--max-latency-rise"),
        max_accuracy_drop_points=max_accuracy_drop,
        latency_stat=stat,
        fail_on_missing=fail_on_missing,
    )
    comparison = compare_reports(
        load_report(base),
        load_report(new),
        thresholds,
        allow_different_hardware=allow_different_hardware,
    )
    markdown = render_comparison(comparison)
    if summary:
        _step_summary(markdown)
    if json_output:
        emit_json(comparison_dict(comparison))
    else:
        typer.echo(markdown, nl=False)
    if comparison.regressed:
        first = comparison.regressions[0]
        more = len(comparison.regressions) - 1
        raise QualityGateError(first + (f" (and {more} more)" if more else ""))


report_app = typer.Typer(
    help="Bench reports across devices: merge a fleet's reports into one table and plot.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")


def _report_merge(
    reports: Annotated[
        list[Path], typer.Argument(help="report.json files, one per device (fleet CI).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder: fleet.json, fleet.md, fleet.png.")
    ],
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Batch size of the latency, power and plot columns "
            "\\[default: the largest all reports measured].",
        ),
    ] = None,
    summary: Annotated[
        bool, typer.Option(help="Append the Markdown to $GITHUB_STEP_SUMMARY when it is set.")
    ] = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """One fleet table and plot from the reports of several devices (Jetsons and x86)."""
    from resnet_opt.report.merge import merge_reports, render_fleet, write_fleet

    fleet = merge_reports(reports, batch=batch)
    files = write_fleet(fleet, output, force=force)
    say(f"wrote {files[0]}, {files[1].name}, {files[2].name}")
    if summary:
        _step_summary(render_fleet(fleet))
    if json_output:
        emit_json(fleet.to_dict())
    else:
        typer.echo(render_fleet(fleet), nl=False)


report_app.command("merge")(domain_errors(_report_merge))


@command("run")
def run_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="TOML config \\[default: the bundled default model, every stage]."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output folder \\[default: the config's, else ./resnet-opt-out]."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run every stage, even those that are unchanged.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Every stage from one config: export → quantize → build → bench → report."""
    from resnet_opt.console import is_quiet
    from resnet_opt.measure.progress import RichProgress
    from resnet_opt.pipeline.run import gate_error, run
    from resnet_opt.pipeline.run_config import load_config

    result = run(
        load_config(config),
        output,
        force=force,
        progress=None if is_quiet() else RichProgress,
    )
    if json_output:
        emit_json(result.to_dict())
    else:
        typer.echo(result.markdown, nl=False)
        if result.report is not None:
            say(f"report: {result.report} (+ report.md, report.png)")
    error = gate_error(result)
    if error is not None:
        raise error


def main() -> None:
    """Console-script entry point: SIGTERM cleans up as Ctrl-C does (exit 143)."""
    from resnet_opt.core.signals import terminate_cleanly

    with terminate_cleanly():
        app()


if __name__ == "__main__":
    main()
