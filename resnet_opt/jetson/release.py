"""Which L4T (Jetson Linux) and JetPack a Jetson runs, from whatever the filesystem still has.

A flashed board has /etc/nv_tegra_release and the `nvidia-l4t-core` package; NVIDIA's L4T
containers often have neither, but keep the apt source of NVIDIA's Jetson repository
(`.../jetson/common r36.4 main`), so that is the fallback: it names the L4T line (36.4), which is
all a TensorRT choice needs (JetPack 6.1 and 6.2 both ship TensorRT 10.3). The dpkg status file is
read directly (what `dpkg-query` reads) so no `dpkg` binary is needed.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

# L4T release -> JetPack, from NVIDIA's JetPack archive (the table jtop keeps too)
JETPACK_FOR_L4T: dict[str, str] = {
    "39.2.0": "7.2",
    "38.4.0": "7.1",
    "38.2.2": "7.0",
    "38.2.1": "7.0",
    "38.2.0": "7.0",
    "36.5.0": "6.2.2",
    "36.4.7": "6.2.1",
    "36.4.4": "6.2.1",
    "36.4.3": "6.2",
    "36.4.2": "6.1",
    "36.4.0": "6.1",
    "36.3.0": "6.0",
    "36.2.0": "6.0 DP",
    "35.6.1": "5.1.5",
    "35.6.0": "5.1.4",
    "35.5.0": "5.1.3",
    "35.4.1": "5.1.2",
    "35.3.1": "5.1.1",
    "35.2.1": "5.1",
}

# an L4T line (major.minor) -> the JetPack releases on it, for the apt-source fallback
JETPACK_FOR_LINE: dict[str, str] = {
    "39.2": "7.2",
    "38.4": "7.1",
    "38.2": "7.0",
    "36.5": "6.2.2",
    "36.4": "6.1 or 6.2",
    "36.3": "6.0",
    "35.6": "5.1.4 or 5.1.5",
}


class Source:
    """Where the L4T release was read (recorded, so a report says how sure it is)."""

    NV_TEGRA_RELEASE = "/etc/nv_tegra_release"
    DPKG = "dpkg nvidia-l4t-core"
    APT_SOURCE = "apt source of the Jetson repository"


@dataclass(frozen=True)
class Release:
    l4t: str  # "36.4.3", or the line only ("36.4") when read from the apt source
    source: str
    jetpack: str | None  # "6.2"; from the nvidia-jetpack package when installed, else the table


def _read(root: Path, path: str) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return (root / path.lstrip("/")).read_text(encoding="utf-8", errors="replace")
    return None


def parse_nv_tegra_release(text: str) -> str | None:
    """'36.4.3' from '# R36 (release), REVISION: 4.3, GCID: …'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def dpkg_version(status: str, package: str) -> str | None:
    """The installed version of `package` in a dpkg status file."""
    for block in status.split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", block, re.M) and re.search(
            r"^Status: .*installed$", block, re.M
        ):
            match = re.search(r"^Version: (\S+)$", block, re.M)
            if match:
                return match.group(1)
    return None


def parse_apt_source(text: str) -> str | None:
    """'36.4' from 'deb https://repo.download.nvidia.com/jetson/common r36.4 main'."""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = re.search(r"repo\.download\.nvidia\.com/jetson/\S+\s+r(\d+\.\d+)\b", line)
        if match:
            return match.group(1)
    return None


def _apt_sources(root: Path) -> list[str]:
    texts = []
    listed = root / "etc/apt/sources.list.d"
    with contextlib.suppress(OSError):
        for path in sorted(listed.glob("*.list")):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
    main = _read(root, "/etc/apt/sources.list")
    if main:
        texts.append(main)
    return texts


def jetpack_of(l4t: str) -> str | None:
    """The JetPack of an L4T release ('36.4.3') or line ('36.4'); None when not in the tables
    (a newer patch release is not guessed at)."""
    if l4t.count(".") >= 2:
        return JETPACK_FOR_L4T.get(l4t)
    return JETPACK_FOR_LINE.get(l4t)


def read_release(root: Path = Path("/")) -> Release | None:
    """The L4T release and JetPack of the system under `root`, or None (not a Jetson image)."""
    status = _read(root, "/var/lib/dpkg/status") or ""
    jetpack_pkg = dpkg_version(status, "nvidia-jetpack")  # '6.2+b77' on a full JetPack
    jetpack = jetpack_pkg.split("+")[0].split("-")[0] if jetpack_pkg else None

    l4t, source = None, None
    text = _read(root, "/etc/nv_tegra_release")
    if text:
        l4t, source = parse_nv_tegra_release(text), Source.NV_TEGRA_RELEASE
    if l4t is None:
        core = dpkg_version(status, "nvidia-l4t-core")  # '36.4.3-20250107174145'
        if core:
            l4t, source = core.split("-")[0], Source.DPKG
    if l4t is None:
        for text in _apt_sources(root):
            line = parse_apt_source(text)
            if line:
                l4t, source = line, Source.APT_SOURCE
                break
    if l4t is None or source is None:
        return None
    return Release(l4t=l4t, source=source, jetpack=jetpack or jetpack_of(l4t))
