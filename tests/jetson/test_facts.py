"""Jetson device facts, read from recorded filesystem trees (tests/data/jetson/) as on a device."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from resnet_opt.jetson import release, sysfs
from resnet_opt.jetson.facts import JetsonFacts, is_jetson, read_facts

TREES = Path(__file__).parents[1] / "data" / "jetson"
AGX, NANO, X86 = TREES / "agx_orin", TREES / "orin_nano", TREES / "x86"


def no_command(argv: Sequence[str]) -> str | None:
    return None


def facts(root: Path) -> JetsonFacts:
    found = read_facts(root, run=no_command)
    assert found is not None
    return found


def test_agx_orin_facts() -> None:
    f = facts(AGX)
    assert f.model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (f.part_number, f.module, f.soc) == ("p3701-0005", "Jetson AGX Orin 64GB", "tegra234")
    assert (f.l4t, f.l4t_source, f.jetpack) == ("36.4.3", "/etc/nv_tegra_release", "6.2")
    assert (f.power_mode, f.power_mode_id) == ("MAXN", 0)
    assert f.clocks_locked is True
    assert f.gpu_mhz is not None and f.gpu_mhz.max_mhz == 1300.5
    assert f.emc_mhz is not None and f.emc_mhz.current_mhz == 3199.0
    assert f.temperatures_c["tj-thermal"] == 48.3
    # NC channels and channel 7 (sum of shunt voltages) skipped; no VDD_IN: the total is the sum
    assert [p.rail for p in f.power_w] == [
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
        "VDDQ_VDD2_1V8AO",
    ]
    assert f.power_w[0].watts == pytest.approx(19.120 * 0.612, abs=1e-3)
    assert f.total_power_from == "sum of rails"
    assert f.total_power_w == pytest.approx(sum(p.watts for p in f.power_w), abs=1e-2)
    assert f.problems == ()


def test_orin_nano_in_a_container() -> None:
    f = facts(NANO)
    assert (f.part_number, f.module) == ("p3767-0005", "Jetson Orin Nano 8GB (developer kit)")
    # no nv_tegra_release, no dpkg: the L4T line from the apt source
    assert (f.l4t, f.jetpack) == ("36.4", "6.1 or 6.2")
    assert f.l4t_source == release.Source.APT_SOURCE
    assert (f.power_mode, f.power_mode_id) == ("15W", 0)  # status file + nvpmodel.conf
    assert f.clocks_locked is False
    assert f.emc_mhz is None and any("EMC" in p for p in f.problems)
    assert "cv0-thermal" not in f.temperatures_c  # -256000: no sensor
    assert f.total_power_from == "VDD_IN"
    assert f.total_power_w == pytest.approx(5.056 * 1.520, abs=1e-3)


def test_non_jetson_has_no_facts() -> None:
    assert not is_jetson(X86)
    assert read_facts(X86, run=no_command) is None


def test_nvpmodel_query_wins_over_the_status_file() -> None:
    def nvpmodel(argv: Sequence[str]) -> str | None:
        assert list(argv) == ["nvpmodel", "-q"]
        return "NVPM WARN: fan mode is not set!\nNV Power Mode: MODE_30W\n2\n"

    f = read_facts(AGX, run=nvpmodel)
    assert f is not None and (f.power_mode, f.power_mode_id) == ("MODE_30W", 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NV Power Mode: MAXN\n0\n", ("MAXN", 0)),
        ("NV Power Mode: 15W\n0", ("15W", 0)),
        ("NV Power Mode: 7W\n", ("7W", None)),
        ("nothing here", None),
    ],
)
def test_parse_nvpmodel_query(text: str, expected: tuple[str, int | None] | None) -> None:
    assert sysfs.parse_nvpmodel_query(text) == expected


def test_release_sources_in_order(tmp_path: Path) -> None:
    assert release.read_release(tmp_path) is None
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 36.3.0-20240506\n"
    )
    found = release.read_release(tmp_path)
    assert found == release.Release("36.3.0", release.Source.DPKG, "6.0")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0, GCID: 1\n")
    assert release.read_release(tmp_path) == release.Release(
        "36.4.0", release.Source.NV_TEGRA_RELEASE, "6.1"
    )


def test_removed_package_is_not_installed() -> None:
    text = "Package: nvidia-l4t-core\nStatus: deinstall ok config-files\nVersion: 35.4.1-1\n"
    assert release.dpkg_version(text, "nvidia-l4t-core") is None


def test_unknown_patch_release_is_not_guessed() -> None:
    assert release.jetpack_of("36.4.99") is None
    assert release.jetpack_of("36.4") == "6.1 or 6.2"


def test_part_number_from_the_dts_file_name(tmp_path: Path) -> None:
    dt = tmp_path / "proc/device-tree"
    dt.mkdir(parents=True)
    (dt / "nvidia,dtsfilename").write_bytes(
        b"/dvs/git/hardware/nvidia/t23x/tegra234-p3737-0000+p3701-0004-nv.dts\x00"
    )
    assert sysfs.part_number(tmp_path) == "p3701-0004"


def test_unlocked_gpu_alone_means_not_locked(tmp_path: Path) -> None:
    root = tmp_path / "board"
    shutil.copytree(AGX, root)
    (root / "sys/class/devfreq/17000000.gpu/min_freq").write_text("306000000\n")
    f = facts(root)
    assert f.clocks_locked is False
    assert f.describe() == "Jetson AGX Orin 64GB, MAXN, clocks not locked"


def test_unreadable_rail_leaves_no_total(tmp_path: Path) -> None:
    root = tmp_path / "board"
    shutil.copytree(NANO, root)
    (root / "sys/bus/i2c/devices/1-0040/hwmon/hwmon1/curr1_input").write_text("garbage\n")
    f = facts(root)
    assert f.total_power_w is None
    assert "VDD_IN" not in [p.rail for p in f.power_w]


def test_round_trip_through_json() -> None:
    f = facts(AGX)
    assert JetsonFacts.from_dict(f.to_dict()) == f


def test_the_emc_max_is_the_power_modes_cap(tmp_path: Path) -> None:
    """jtop's read_emc: /sys/kernel/nvpmodel_emc_cap/emc_iso_cap lowers the EMC max; with the
    EMC at that cap (and CPU and GPU pinned) the clocks are locked."""
    root = tmp_path / "board"
    shutil.copytree(AGX, root)
    emc = root / "sys/kernel/debug/bpmp/debug/clk/emc"
    (root / "sys/kernel/nvpmodel_emc_cap").mkdir(parents=True)
    (root / "sys/kernel/nvpmodel_emc_cap/emc_iso_cap").write_text("2133000000\n")
    (emc / "rate").write_text("2133000000\n")
    f = facts(root)
    assert f.emc_mhz is not None and f.emc_mhz.max_mhz == 2133.0
    assert f.clocks_locked is True
    (root / "sys/kernel/nvpmodel_emc_cap/emc_iso_cap").write_text("0\n")  # no cap: 3199 max
    assert facts(root).emc_mhz.max_mhz == 3199.0  # type: ignore[union-attr]


def test_an_emc_below_its_max_means_not_locked(tmp_path: Path) -> None:
    """jtop's jetson_clocks_alive: EMC counts, current == max (CPU and GPU here are pinned)."""
    root = tmp_path / "board"
    shutil.copytree(AGX, root)
    (root / "sys/kernel/debug/bpmp/debug/clk/emc/rate").write_text("665600000\n")
    assert facts(root).clocks_locked is False
