"""Every value of a `run` config checked before the first stage, by its TOML key.

Why: the stages check their own options, but only when `run` reaches them, after minutes of
export and calibration, and in the words of the command line (`--calib-samples`) that the
user of a config file never typed. Here each number is checked up front with the same rules
(`resnet_opt.core.validation`) and the error names the key (`data.calib_samples`,
`bench.batches[0]`). The quantize variants go through the quantize stage's own rules
(`quantize_options.check_options`), which name them by key here, and the build options through
each backend's own (its unit's `check`: `build_onnxruntime.check_options`,
`build_openvino.check_options`; a TensorRT table is checked as it is decoded, by
`TensorRtBuildOptions` itself). The choices of a
quantize variant and of a build table are decoded as enums with the config; the others (backend
names) are checked by `run` itself (`_check_choices`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from resnet_opt.core import validation as v
from resnet_opt.core.naming import OptionError
from resnet_opt.errors import ResnetOptError, UsageError
from resnet_opt.pipeline.run_config import RunConfig, VariantKeys

# the smallest image a model here takes (the bundled ResNet-20: 1×32×32); used to refuse a
# batch that could not fit even then when the config does not give the input size
MIN_SAMPLE_SHAPE = (1, 32, 32)


def _key(where: str) -> str:
    return f"config: {where}"


def _positive_ints(values: dict[str, int | None]) -> None:
    for where, value in values.items():
        if value is not None:
            v.positive_int(value, _key(where))


def check_run_config(config: RunConfig) -> None:
    """Refuse the first out-of-range, non-finite or host-exhausting value, naming its key."""
    m, data, bench = config.model, config.data, config.bench
    _positive_ints(
        {
            "model.num_classes": m.num_classes,
            "model.input_size": m.input_size,
            "model.batch": m.batch,
            "model.opset": m.opset,
            "data.calib_samples": data.calib_samples,
            "data.eval_samples": data.eval_samples,
            "bench.iterations": bench.iterations,
            "bench.plot_batch": bench.plot_batch,
        }
    )
    if m.channels is not None and m.channels not in (1, 3):
        raise UsageError(f"{_key('model.channels')}: must be 1 or 3, not {m.channels}")
    for name, values in (("mean", m.mean), ("std", m.std)):
        if values is not None and len(values) not in ((m.channels,) if m.channels else (1, 3)):
            raise UsageError(
                f"{_key(f'model.{name}')}: give one value per input channel, not {len(values)}"
            )
    _check_model_files(config)
    for name, values in (("mean", m.mean), ("std", m.std)):
        for i, value in enumerate(values or ()):
            if name == "std":
                v.positive(value, _key(f"model.std[{i}]"))
            else:
                v.finite(value, _key(f"model.mean[{i}]"))
    v.seed(data.seed, _key("data.seed"))
    _check_variants(config)
    backends = list(config.build.backends)
    repeated = sorted({b for b in backends if backends.count(b) > 1})
    if repeated:
        raise UsageError(f"{_key('build.backends')}: {repeated[0]!r} is listed twice")
    _check_builds(config)
    _check_bench(config)
    if config.gates.max_drop is not None:
        v.at_least(config.gates.max_drop, 0, _key("gates.max_drop"))
    _check_parsed(config)
    _check_data("data.calibration", data.calibration)
    _check_data("data.evaluation", data.evaluation)


def _check_variants(config: RunConfig) -> None:
    """Each [[quantize]] variant as the stage will get it, by the rules the stage applies
    (`quantize_options.check_options`), named by config key; and its threads against this
    host, as the command line's --threads is."""
    from resnet_opt.pipeline.quantize_options import check_options

    for i, variant in enumerate(config.quantize):
        options = config.quantize_options(variant)
        try:
            check_options(options)
        except OptionError as exc:  # named by the field: here by its config key
            raise exc.reworded(VariantKeys(i)) from None
        v.threads(options.threads, _key(f"quantize[{i}].threads"))


def _check_model_files(config: RunConfig) -> None:
    """The opset the exporter writes, and a weights file that is not there, refused now."""
    from resnet_opt.pipeline.export import Exporter

    m = config.model
    span = Exporter.TORCHSCRIPT.opsets  # the exporter `run` uses
    if m.opset is not None and m.opset not in span:
        raise UsageError(
            f"{_key('model.opset')}: {m.opset}; the exporter writes opsets "
            f"{span.start}–{span.stop - 1}"
        )
    from resnet_opt.models.torchvision_weights import looks_like_enum

    weights = m.weights
    named = weights is None or weights == "none" or looks_like_enum(weights)
    if not named and weights is not None and not Path(weights).is_file():
        raise ResnetOptError(f"{_key('model.weights')}: {weights}: no such file")


def _check_data(where: str, spec: str | None) -> None:
    """A data path that is not there fails now, not after the export (the bundled split and
    "none" are names, not paths)."""
    if spec is not None and spec.startswith("default:"):
        from resnet_opt.calibration.data import Split

        split = spec.partition(":")[2]
        if split not in {s.value for s in Split}:
            choices = ", ".join(s.value for s in Split)
            raise UsageError(f"{_key(where)}: unknown bundled split {split!r} (choose {choices})")
        return
    if spec is None or spec == "none" or spec == "default":
        return
    if not Path(spec).exists():
        raise ResnetOptError(f"{_key(where)}: {spec}: no such file or folder")


def _as_key(key: str, flag: str, parse: Callable[..., Any], *args: Any) -> None:
    """Run a command-line parser on a config value; its error names the TOML key, not `flag`."""
    try:
        parse(*args)
    except ResnetOptError as exc:
        text = str(exc).replace(flag, _key(key), 1)
        if _key(key) not in text:
            text = f"{_key(key)}: {text}"
        raise (UsageError if isinstance(exc, UsageError) else ResnetOptError)(text) from exc


def _check_parsed(config: RunConfig) -> None:
    """The values `run` hands to the command-line parsers (labels; the build tables' text
    values are parsed as they are decoded)."""
    from resnet_opt.models.contract import parse_labels

    if config.model.labels is not None:
        _as_key("model.labels", "--labels", parse_labels, config.model.labels)


def _check_builds(config: RunConfig) -> None:
    """Each build backend's options by its own rules (its unit's `check`, when it has one), named
    by the table (every table, listed in build.backends or not, as decoding does), and their
    threads against this host, as the command line's --threads is. The file names are the ones
    `run` writes (a config sets no format or form)."""
    from resnet_opt.backends.registry import build_backends, build_part
    from resnet_opt.backends.spec import resolve

    for backend in build_backends():
        spec = build_part(backend)
        if spec.check is not None:
            options = config.build.options(backend.value)
            _check_build(backend.value, options, resolve(spec.check), f"model{spec.run_suffix}")


def _check_build(name: str, options: Any, check: Callable[[Path, Any], object], out: str) -> None:
    # threads and input_shape: the fields the CPU builds share, checked where a backend has them
    v.threads(getattr(options, "threads", None), _key(f"build.{name}.threads"))
    for i, dim in enumerate(getattr(options, "input_shape", None) or ()):
        v.positive_int(dim, _key(f"build.{name}.input_shape[{i}]"))
    try:
        check(Path(out), options)
    except ResnetOptError as exc:
        kind = UsageError if isinstance(exc, UsageError) else ResnetOptError
        raise kind(f"{_key(f'build.{name}')}: {exc}") from exc


def _check_bench(config: RunConfig) -> None:
    bench = config.bench
    _check_batches(bench.batches, config)
    if bench.duration is not None:
        v.seconds(bench.duration, _key("bench.duration"))
    if bench.duration is None and bench.iterations is None:
        raise UsageError(f"{_key('bench')}: give duration or iterations")
    v.seconds(bench.warmup, _key("bench.warmup"), strict=False)
    if bench.iterations is not None:  # the ceilings bench's own flags have (core.validation)
        v.count(bench.iterations, _key("bench.iterations"))
    v.threads(
        bench.threads,
        _key("bench.threads"),
        force=bench.force_threads,
        force_hint="set bench.force_threads = true",
    )
    if bench.plot_batch is not None and bench.plot_batch not in bench.batches:
        raise UsageError(
            f"{_key('bench.plot_batch')}: {bench.plot_batch} is not one of bench.batches"
        )


def _check_batches(batches: Sequence[int], config: RunConfig) -> None:
    if not batches:
        raise UsageError(f"{_key('bench.batches')}: give at least one batch size")
    for i, batch in enumerate(batches):
        v.positive_int(batch, _key(f"bench.batches[{i}]"))
    if len(set(batches)) != len(batches):
        raise UsageError(f"{_key('bench.batches')}: batch sizes repeat ({list(batches)})")
    m = config.model
    channels, size = MIN_SAMPLE_SHAPE[0], MIN_SAMPLE_SHAPE[1]
    if m.channels is not None:
        channels = m.channels
    if m.input_size is not None:
        size = m.input_size
    largest = max(batches)
    v.check_fits(
        (largest, channels, size, size), _key(f"bench.batches[{list(batches).index(largest)}]")
    )
