"""The machine a report was measured on: host, CPU, GPUs, driver, JetPack, load.

Built on resnet_opt.environment's probes. GPUs are read through the CUDA driver library itself
(resnet_opt.tensorrt.device's ctypes probe, no pycuda or torch), so a report names its GPU even
where only the driver is installed; without a driver the list is empty.
"""

from __future__ import annotations

import contextlib
import os

from resnet_opt import environment
from resnet_opt.report.schema import Gpu, MachineInfo

MAX_GPUS = 16


def gpus() -> tuple[Gpu, ...]:
    """The CUDA devices the driver sees (empty without a driver or device). Never raises."""
    from resnet_opt.tensorrt.device import probe_gpu

    found = []
    for ordinal in range(MAX_GPUS):
        gpu = probe_gpu(ordinal=ordinal)
        if gpu.name is None:
            break
        cc = gpu.compute_capability
        found.append(Gpu(gpu.name, None if cc is None else f"{cc[0]}.{cc[1]}"))
    return tuple(found)


def machine_info() -> MachineInfo:
    host = environment.machine()
    driver = environment.cuda_driver()
    return MachineInfo(
        hostname=host.hostname,
        system=host.system,
        arch=host.machine,
        cpu_model=host.cpu_model,
        cpu_cores=host.cpu_cores,
        memory_gb=host.memory_gb,
        gpus=gpus(),
        cuda_driver=driver.version,
        jetpack=host.jetpack,
        cpu_int8_family=host.cpu_int8_family,
    )


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15-minute load averages (None where the OS has none)."""
    with contextlib.suppress(OSError, AttributeError):
        one, five, fifteen = os.getloadavg()
        return (round(one, 2), round(five, 2), round(fifteen, 2))
    return None


def usable_cores() -> int:
    """Cores this process may run on (its affinity), the default thread count."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
