"""Which int8 instructions this CPU's inference kernels use, and whether they saturate.

An INT8 accuracy or speed figure holds for the int8 instruction family it was measured on, not
for "a CPU": x86 kernels without VNNI (AVX2, AVX-512 without VNNI) multiply u8 activations by s8
weights with VPMADDUBSW, which adds each pair of products into int16 and saturates, so the same
file with full 8-bit weights scores lower there than on a VNNI or AMX CPU. VNNI (VPDPBUSD), AMX
and Arm's dot-product (SDOT/UDOT) and i8mm (USMMLA) instructions accumulate in int32. Manifests,
eval output and bench reports record the family; `compare` treats two families as two machines.

Read from the CPU's feature flags (/proc/cpuinfo, best family first): `family_from_flags` here, in
the bottom layer every report and manifest module may use; `environment.cpu_int8_family` for this
machine.
"""

from __future__ import annotations

import platform
from collections.abc import Collection
from enum import Enum


class Int8Family(str, Enum):
    """The instructions u8×s8 int8 kernels (ONNX Runtime's MLAS, oneDNN) dispatch to."""

    AMX = "amx"
    AVX512_VNNI = "avx512-vnni"
    AVX_VNNI = "avx-vnni"
    AVX512 = "avx512"  # AVX-512BW without VNNI
    AVX2 = "avx2"
    ARM_I8MM = "arm-i8mm"
    ARM_DOTPROD = "arm-dotprod"
    UNKNOWN = "unknown"

    @property
    def saturates_u8s8(self) -> bool:
        """Whether u8×s8 products are added in pairs into int16 with saturation (VPMADDUBSW).

        False for UNKNOWN: nothing is known, so nothing is claimed (and no warning is given).
        """
        return self in (Int8Family.AVX512, Int8Family.AVX2)

    @property
    def label(self) -> str:
        """How people name it (reports, README)."""
        return _LABELS[self]


_LABELS = {
    Int8Family.AMX: "AMX",
    Int8Family.AVX512_VNNI: "AVX-512 VNNI",
    Int8Family.AVX_VNNI: "AVX-VNNI",
    Int8Family.AVX512: "AVX-512 (no VNNI)",
    Int8Family.AVX2: "AVX2",
    Int8Family.ARM_I8MM: "Arm i8mm",
    Int8Family.ARM_DOTPROD: "Arm dotprod",
    Int8Family.UNKNOWN: "unknown",
}

# (flag, family), best first: a CPU with AMX also has AVX-512 VNNI, which has AVX-512BW, …
_X86 = (
    ("amx_int8", Int8Family.AMX),
    ("avx512_vnni", Int8Family.AVX512_VNNI),
    ("avx_vnni", Int8Family.AVX_VNNI),
    ("avx512bw", Int8Family.AVX512),
    ("avx2", Int8Family.AVX2),
)
_ARM = (("i8mm", Int8Family.ARM_I8MM), ("asimddp", Int8Family.ARM_DOTPROD))


def family_from_flags(flags: Collection[str]) -> Int8Family:
    """The family a set of /proc/cpuinfo feature flags (x86 "flags" or Arm "Features") names."""
    for flag, family in (*_X86, *_ARM):
        if flag in flags:
            return family
    return Int8Family.UNKNOWN


def recorded_label(value: str) -> str:
    """How people name a family recorded in a report or manifest; a value this version does not
    know (a family a newer resnet-opt knows) is shown as recorded."""
    try:
        return Int8Family(value).label
    except ValueError:
        return value


def describe(family: Int8Family) -> str:
    """One phrase for manifests and reports: the family and what it means for int8 accuracy."""
    if family.saturates_u8s8:
        return f"{family.label}: u8×s8 pairs summed in int16 with saturation (VPMADDUBSW)"
    if family is Int8Family.UNKNOWN:
        return f"unknown ({platform.machine() or 'unknown architecture'})"
    return f"{family.label}: u8×s8 products accumulated in int32 (no saturation)"
