"""Calibration for `quantize`: activation statistics of the FP32 model on a seeded draw of DATA.

The statistics serve every use: int8 ranges for either layout, the accuracy-budget search's
probes, fp16's overflow check. A calibration cache (`calib_cache`) is written as soon as the
statistics exist: it is valid whatever happens later and saves the next run the pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resnet_opt.core.stage_details import CalibrationCacheUse, CalibrationRun
from resnet_opt.pipeline.quantize_options import QuantizeOptions
from resnet_opt.pipeline.quantize_source import QuantizeSource

if TYPE_CHECKING:
    from resnet_opt.calibration.data import DataSource
    from resnet_opt.calibration.histogram import Statistics
    from resnet_opt.core.progress import ProgressCallback

log = logging.getLogger(__name__)

DEFAULT_CALIB_SAMPLES = 512  # NVIDIA's recommendation for CNNs; fewer when the data has fewer
CALIB_BATCH = 32


@dataclass(frozen=True)
class Calibration:
    stats: Statistics
    source: DataSource
    indices: Any  # np.ndarray of the selected sample positions
    details: CalibrationRun


def calibrate(
    source: QuantizeSource,
    data: str,
    options: QuantizeOptions,
    progress: ProgressCallback | None = None,
) -> Calibration:
    """Statistics of every calibratable tensor: from `calib_cache` when its key matches, else a
    streamed pass (then saved to `calib_cache` if one was named)."""
    from resnet_opt.calibration.cache import CacheKey, load_cache, save_cache
    from resnet_opt.calibration.collect import calibration_tensors, collect_statistics
    from resnet_opt.calibration.data import (
        BatchStream,
        Split,
        converted_modes,
        open_source,
        report_conversions,
        select_indices,
    )

    started = time.perf_counter()
    ds = open_source(data, default_split=Split.CALIB, strict=options.strict)
    wanted = options.calib_samples or DEFAULT_CALIB_SAMPLES
    indices = select_indices(len(ds), wanted, options.seed)
    key = CacheKey(
        model_sha256=source.sha256,
        data_hash=ds.fingerprint([int(i) for i in indices]),
        preprocessing_hash=source.contract.fingerprint(),
        samples=wanted,
        seed=options.seed,
    )
    cache = options.calib_cache
    reused = cache is not None and cache.exists()
    if cache is not None and reused:
        stats = load_cache(cache, key)
        log.info("calibration statistics from %s", cache)
    else:
        stream = BatchStream(ds, source.contract, indices, CALIB_BATCH, options.strict)
        stats = collect_statistics(
            source.path,
            stream,
            calibration_tensors(source.model),
            progress=progress,
            threads=options.threads,
            requested=options.calib_samples,  # a warning only when the user asked for more
        )
        if cache is not None:
            save_cache(cache, key, stats)
    details = CalibrationRun(
        data=ds.description,
        data_hash=key.data_hash,
        preprocessing_hash=key.preprocessing_hash,
        samples=stats.samples,
        requested=options.calib_samples,
        available=len(ds),
        seed=options.seed,
        skipped=len(stats.skipped),
        converted=converted_modes(ds),
        tensors=len(stats.tensors),
        cache=CalibrationCacheUse(cache.name, reused) if cache is not None else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    report_conversions(ds, source.contract, "calibration")
    return Calibration(stats, ds, indices, details)
