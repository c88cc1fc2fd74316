"""Engines built on the device, cached so that a second `build` of the same thing is instant.

Like jetson-inference (which names its cache `<model>.<batch>.<gpu fallback>.<TensorRT version>.
<device>.<precision>.engine` and keeps the model's checksum beside it), an entry is keyed by
everything that makes an engine different: the ONNX's sha256 and precision, the build options
(profile, workspace, optimization level, DLA core, compatibility flags), the calibration cache's
sha256 for an implicit-INT8 DLA build (the very file the build reads: `calibration_cache_path`),
the GPU (name, compute capability, integrated, SM count), on a Jetson the module's part number
and the nvpmodel power mode (every Orin reports "Orin", sm 8.7: an AGX Orin's 16 SMs at MAXN
and an Orin Nano's 8 at 7 W are told apart only by these), the L4T release and the TensorRT
version. A key is a sha256 of those facts, so a changed model, option,
device or TensorRT never hits a stale engine; and a hit is still checked (the plan's sha256
against its manifest, the manifest against this device) before it is copied to the output.
The timing cache is not in the key: it changes how long a build takes, not what it computes;
nor is `verify` (whether a fresh build is run against its source), which changes no engine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_opt.core.atomic import staged_outputs
from resnet_opt.core.hashing import sha256_file, sha256_json
from resnet_opt.core.manifest import (
    Manifest,
    check_artifact_hash,
    read_manifest,
    write_manifest,
)
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.build_details import EngineCacheUse, TensorRtBuildDetails
from resnet_opt.tensorrt.device import DeviceInfo
from resnet_opt.tensorrt.options import TensorRtBuildOptions

CACHE_DETAIL = "tensorrt_calibration_cache"
KEY_SUFFIX = ".key.json"


@dataclass(frozen=True)
class CachedBuild:
    manifest: Manifest
    hit: bool
    entry: Path  # the cached plan
    note: str | None = None  # why an existing entry was not used (damaged, other device)


# TensorRtBuildOptions fields that are not in the key, and why (tests/pipeline/test_engine_cache.py
# fails on a field that is in neither the key nor this list)
NOT_IN_KEY = {
    "timing_cache": "changes how long a build takes, not what it computes",
    "calib_cache": "its content is in the key (calibration_cache_sha256), not its path",
    "verify": "whether a fresh build is run against its source; changes no engine",
}


def _calibration_sha(source: Path, manifest: Manifest, options: TensorRtBuildOptions) -> str | None:
    """The cache a TensorRT 10 DLA INT8 build replays: its content is part of the engine."""
    from resnet_opt.tensorrt.dla import calibration_cache_path

    if options.dla_core is None:
        return None
    found = calibration_cache_path(source, manifest, options.calib_cache)
    return sha256_file(found) if found is not None else None


def key_facts(
    source: Path, manifest: Manifest, options: TensorRtBuildOptions, device: DeviceInfo
) -> dict[str, Any]:
    """What the engine depends on (module docstring), as JSON."""
    chosen = {k: v for k, v in options.to_dict().items() if k not in NOT_IN_KEY}
    return {
        "model_sha256": manifest.sha256,
        "precision": manifest.precision.value,
        "options": chosen,
        "calibration_cache_sha256": _calibration_sha(source, manifest, options),
        "gpu": {
            "name": device.gpu_name,
            "compute_capability": device.sm,
            "integrated": device.integrated,
            "sm_count": device.sm_count,
            "module": device.jetson_module,
            "power_mode": device.power_mode,
        },
        "l4t": device.l4t,
        "tensorrt": device.tensorrt,
    }


def entry_path(cache: Path, source: Path, key: str) -> Path:
    """<cache>/<model stem>.<key prefix>.plan (its manifest and key facts beside it)."""
    return Path(cache) / f"{source.stem}.{key[:20]}.plan"


def _usable(entry: Path, device: DeviceInfo) -> tuple[Manifest | None, str | None]:
    """The cached entry's manifest when it can be used as is, else why not."""
    from resnet_opt.tensorrt.compat import check_engine_compatible

    if not entry.is_file():
        return None, None
    try:
        manifest = read_manifest(entry)
        assert manifest is not None
        check_artifact_hash(entry, manifest)
        check_engine_compatible(manifest, device)
    except ResnetOptError as exc:
        return None, f"cached engine {entry.name} not used ({exc}); rebuilt it"
    return manifest, None


def _copy_out(entry: Path, manifest: Manifest, output: Path, force: bool, key: str) -> Manifest:
    details = _with_cache_use(manifest, EngineCacheUse(key=key, hit=True, entry=str(entry)))
    copied = dataclasses.replace(manifest, artifact=output.name, details=details)
    with staged_outputs(force=force) as staged:
        plan_tmp, manifest_tmp = staged.add_with_manifest(output)
        shutil.copyfile(entry, plan_tmp)
        write_manifest(manifest_tmp, copied)
    return copied


def _with_cache_use(manifest: Manifest, use: EngineCacheUse) -> dict[str, object]:
    """The engine's details, saying where the cache keeps it and whether this copy came from it."""
    built = manifest.read_details(TensorRtBuildDetails)
    return dataclasses.replace(
        built, engine_cache=use, absent=built.absent - {"engine_cache"}
    ).to_dict()


def _store(output: Path, manifest: Manifest, entry: Path, facts: dict[str, Any], key: str) -> None:
    """Put a fresh build into the cache (atomically: a half entry is never found)."""
    details = _with_cache_use(manifest, EngineCacheUse(key=key, hit=False, entry=str(entry)))
    stored = dataclasses.replace(manifest, artifact=entry.name, details=details)
    with staged_outputs(force=True) as staged:
        plan_tmp, manifest_tmp = staged.add_with_manifest(entry)
        key_tmp = staged.add(entry.with_name(entry.name + KEY_SUFFIX))
        shutil.copyfile(output, plan_tmp)
        write_manifest(manifest_tmp, stored)
        key_tmp.write_text(json.dumps({"key": key, **facts}, indent=2) + "\n", encoding="utf-8")


def build_cached(
    source: Path,
    output: Path,
    options: TensorRtBuildOptions,
    *,
    cache: Path,
    force: bool = False,
) -> CachedBuild:
    """`build_tensorrt`, or the cached engine for exactly this model, options, GPU and TensorRT."""
    from resnet_opt.pipeline.build_tensorrt import build_tensorrt
    from resnet_opt.tensorrt.device import probe_device

    source, output, cache = Path(source), Path(output), Path(cache)
    if cache.exists() and not cache.is_dir():
        raise ResnetOptError(f"--engine-cache {cache}: is a file, not a folder")
    manifest = read_manifest(source)
    assert manifest is not None
    check_artifact_hash(source, manifest)
    device = probe_device()
    if device.gpu_name is None or device.tensorrt is None:
        # nothing to key on: the build itself says what is missing
        built = build_tensorrt(source, output, options, force=force)
        return CachedBuild(built, False, output)
    facts = key_facts(source, manifest, options, device)
    key = sha256_json(facts)
    entry = entry_path(cache, source, key)
    cached, note = _usable(entry, device)
    if cached is not None:
        if output.exists() and not force:
            raise ResnetOptError(f"{output}: exists; pass --force to overwrite it")
        return CachedBuild(_copy_out(entry, cached, output, force, key), True, entry)
    built = build_tensorrt(source, output, options, force=force)
    try:
        _store(output, built, entry, facts, key)
    except ResnetOptError as exc:
        note = f"{output} was built, but not cached: {exc}"
    return CachedBuild(built, False, entry, note)
