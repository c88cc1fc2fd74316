"""Whether a built engine may be loaded here: the plain check before any deserialization.

A plan runs only on the GPU model and TensorRT build that made it, unless it was built
version-compatible (later TensorRT runtimes, never earlier) or hardware-compatible (Ampere and
newer, or the same compute capability). `check_engine_compatible` reads that from the manifest
and compares it with a `DeviceInfo`, so bench can refuse an engine before opening a runner and
a machine without a GPU or TensorRT gets the reason instead of a deserialization crash.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from resnet_opt.core.manifest import Manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.build_details import GpuIdentity, TensorRtBuildDetails, engine_details
from resnet_opt.tensorrt.device import DeviceInfo
from resnet_opt.tensorrt.versions import HardwareCompat, TrtVersion, capabilities

REBUILD = "rebuild with `resnet-opt build`"

Mismatch = Callable[[str | None], ResnetOptError]  # the refusal, with an optional reason


def _cc(text: Any) -> tuple[int, int] | None:
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return None


_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8": "aarch64"}


def host_arch(machine: str | None = None) -> str:
    """This host's CPU platform as TensorRT's plans care about it ('x86_64', 'aarch64')."""
    name = (machine if machine is not None else platform.machine()).strip().lower()
    return _ARCH_ALIASES.get(name, name or "unknown")


def built_for(manifest: Manifest) -> str:
    """'NVIDIA Orin (sm 8.7) with TensorRT 10.3.0.30' from a TensorRT manifest."""
    details = engine_details(manifest) or TensorRtBuildDetails()
    return _built_for(details)


def _built_for(details: TensorRtBuildDetails) -> str:
    gpu = details.gpu or GpuIdentity()
    name = gpu.name or "an unknown GPU"
    sm = f" (sm {gpu.compute_capability})" if gpu.compute_capability else ""
    return f"{name}{sm} with TensorRT {details.tensorrt_version or '?'}"


def check_engine_compatible(
    manifest: Manifest, device: DeviceInfo, *, arch: str | None = None
) -> None:
    """Raise ResnetOptError with 'built for X, this is Y: rebuild …' unless the engine fits.

    `arch` is this host's CPU platform (default: `host_arch()`): a plan is not portable across
    CPU platforms, even a hardware-compatible one (x86-64 to a Jetson's aarch64 and back).
    """
    details = engine_details(manifest)
    if details is None:
        raise ResnetOptError(f"{manifest.artifact}: not a TensorRT engine manifest")
    target = _built_for(details)
    if device.gpu_name is None or device.tensorrt is None:
        missing = []
        if device.gpu_name is None:
            missing.append(f"no CUDA GPU ({device.gpu_problem or 'none found'})")
        if device.tensorrt is None:
            missing.append(f"no TensorRT ({device.tensorrt_problem or 'not installed'})")
        raise ResnetOptError(
            f"{manifest.artifact}: built for {target}, this machine has {' and '.join(missing)}: "
            "rebuild with resnet-opt build on the target"
        )
    here = device.describe()

    def mismatch(why: str | None) -> ResnetOptError:
        reason = f" ({why})" if why else ""
        return ResnetOptError(
            f"{manifest.artifact}: built for {target}, this is {here}{reason}: {REBUILD}"
        )

    _check_tensorrt(details, device.tensorrt, mismatch)
    built_on, here_arch = details.host_arch, arch or host_arch()
    if built_on and host_arch(built_on) != here_arch:  # manifests before it was recorded
        raise mismatch(
            f"built on an {built_on} host, this host is {here_arch}: TensorRT engines do not "
            "move across CPU platforms"
        )
    _check_gpu(details, device, mismatch)
    core = details.dla_core
    if core is not None and (not device.dla_cores or core >= device.dla_cores):
        have = device.dla_cores or 0
        raise ResnetOptError(
            f"{manifest.artifact}: built for DLA core {core}, this device has {have} DLA "
            f"cores: {REBUILD}"
        )


def _check_tensorrt(details: TensorRtBuildDetails, running_text: str, mismatch: Mismatch) -> None:
    try:
        built = TrtVersion.parse(str(details.tensorrt_version))
        running = TrtVersion.parse(running_text)
    except ResnetOptError:
        raise mismatch(None) from None
    if built.same_build(running):
        return
    # a version-compatible plan loads on the same or a later TensorRT, including the same
    # release with another build number
    if details.version_compatible and running.release() >= built.release():
        loads_from = capabilities(running).loads_version_compatible_from
        if built.major in loads_from:
            return
        raise mismatch(
            f"TensorRT {running.major} does not load version-compatible plans from {built.major}.x"
        )
    if details.version_compatible:
        raise mismatch("a version-compatible plan runs on the same or a later TensorRT only")
    raise mismatch(None)


def _check_gpu(details: TensorRtBuildDetails, device: DeviceInfo, mismatch: Mismatch) -> None:
    gpu = details.gpu or GpuIdentity()
    built_cc = _cc(gpu.compute_capability)
    level = details.hardware_compatible
    here = device.compute_capability
    if level == HardwareCompat.AMPERE_PLUS.value:
        if here is None or here < (8, 0):
            raise mismatch("the plan needs an Ampere or newer GPU, sm >= 8.0")
        return
    if level == HardwareCompat.SAME_COMPUTE_CAPABILITY.value:
        if built_cc is None or here != built_cc or here < (7, 5):
            raise mismatch(None)
        return
    if built_cc is None or here != built_cc or gpu.name != device.gpu_name:
        raise mismatch(None)
    _check_identity(gpu, device, mismatch)


def _check_identity(gpu: GpuIdentity, device: DeviceInfo, mismatch: Mismatch) -> None:
    """Same GPU model, but not the device the tactics were timed on: another SM count (every
    Orin is "Orin", sm 8.7), another Jetson module, or another power mode (other clocks). Each
    is checked where both the plan and this device know it."""
    built_sms, here_sms = gpu.sm_count, device.sm_count
    if built_sms and here_sms and int(built_sms) != here_sms:
        raise mismatch(
            f"built on a GPU with {built_sms} SMs, this one has {here_sms}: TensorRT timed its "
            "tactics for the other"
        )
    built_module, here_module = gpu.module, device.jetson_module
    if built_module and here_module and built_module != here_module:
        raise mismatch(f"built on Jetson module {built_module}, this is {here_module}")
    built_mode, here_mode = gpu.power_mode, device.power_mode
    if built_mode and here_mode and built_mode != here_mode:
        raise mismatch(
            f"built at power mode {built_mode}, this module runs {here_mode}: its tactics were "
            f"timed at other clocks; switch back (sudo nvpmodel) or rebuild at {here_mode}"
        )
