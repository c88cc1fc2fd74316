"""The TensorRT version table: one row per version that matters, every branch."""

from __future__ import annotations

import pytest

from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.versions import (
    DlaMode,
    HardwareCompat,
    TrtVersion,
    capabilities,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.3.0.30", TrtVersion(10, 3, 0, 30)),
        ("10.3.0", TrtVersion(10, 3, 0, None)),
        ("11.4.1", TrtVersion(11, 4, 1)),
        ("10.13", TrtVersion(10, 13, 0)),
        (" 10.7.0.23+cuda12.6 ", TrtVersion(10, 7, 0, 23)),
    ],
)
def test_parse_versions(text: str, expected: TrtVersion) -> None:
    assert TrtVersion.parse(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "10", "v10.3"])
def test_unreadable_version_is_refused(text: str) -> None:
    with pytest.raises(ResnetOptError, match=r"cannot read TensorRT version"):
        TrtVersion.parse(text)


def test_same_build_needs_equal_builds_where_known() -> None:
    assert TrtVersion.parse("10.3.0.30").same_build(TrtVersion.parse("10.3.0"))
    assert not TrtVersion.parse("10.3.0.30").same_build(TrtVersion.parse("10.3.0.26"))
    assert not TrtVersion.parse("10.3.0").same_build(TrtVersion.parse("10.3.1"))


def test_jetpack6_tensorrt_10_3() -> None:
    caps = capabilities("10.3.0.30")
    assert caps.strongly_typed_flag and caps.weak_typing
    assert caps.precision_flags and caps.implicit_int8
    assert not caps.explicit_batch_flag
    assert caps.dla is DlaMode.IMPLICIT
    assert caps.version_compatible and caps.builder_optimization_level
    assert caps.hardware_compat == {HardwareCompat.AMPERE_PLUS}
    assert caps.loads_version_compatible_from == (10,)
    assert caps.inspector_io_key == "Bindings"
    caps.require_dla()


def test_10_7_is_the_last_10x_with_dla() -> None:
    assert capabilities("10.7.0").dla is DlaMode.IMPLICIT
    eight = capabilities("10.8.0")
    assert eight.dla is DlaMode.NONE
    with pytest.raises(ResnetOptError, match=r"10.7 was the last 10.x release with DLA"):
        eight.require_dla()


def test_10_13_thor_has_flags_but_no_dla_and_same_cc_level() -> None:
    caps = capabilities("10.13.0.35")
    assert caps.precision_flags and caps.implicit_int8 and caps.strongly_typed_flag
    assert caps.dla is DlaMode.NONE
    assert HardwareCompat.SAME_COMPUTE_CAPABILITY in caps.hardware_compat
    assert HardwareCompat.SAME_COMPUTE_CAPABILITY not in capabilities("10.8.0").hardware_compat
    assert HardwareCompat.SAME_COMPUTE_CAPABILITY in capabilities("10.9.0").hardware_compat


def test_11_0_is_strongly_typed_only_without_dla() -> None:
    caps = capabilities("11.0.0")
    assert not caps.strongly_typed_flag  # default and deprecated: nothing to pass
    assert not caps.weak_typing and not caps.precision_flags and not caps.implicit_int8
    assert caps.dla is DlaMode.NONE
    assert caps.loads_version_compatible_from == (10, 11)
    assert caps.inspector_io_key == "I/O Tensors"
    with pytest.raises(ResnetOptError, match=r"11.0 through 11.3"):
        caps.require_dla()


def test_11_4_0_has_no_linux_dla_and_11_4_1_brings_strongly_typed_dla() -> None:
    assert capabilities("11.4.0").dla is DlaMode.NONE
    caps = capabilities("11.4.1")
    assert caps.dla is DlaMode.STRONGLY_TYPED
    assert not caps.implicit_int8 and not caps.precision_flags
    assert "JetPack 7.2.2" in caps.dla_note
    assert capabilities("11.5.0").dla is DlaMode.STRONGLY_TYPED


def test_future_major_assumes_11x_api_but_only_its_own_plans() -> None:
    caps = capabilities("12.0.0")
    assert not caps.precision_flags and caps.dla is DlaMode.STRONGLY_TYPED
    assert caps.loads_version_compatible_from == (12,)


@pytest.mark.parametrize("old", ["8.6.1", "9.3.0"])
def test_older_than_10_is_refused(old: str) -> None:
    with pytest.raises(ResnetOptError, match=r"TensorRT 10.0 or later"):
        capabilities(old)


@pytest.mark.parametrize(
    ("driver", "jetson", "extra"),
    [
        ("12.4", False, "tensorrt-cu12"),
        ("12.9", False, "tensorrt-cu12"),
        ("13.0", False, "tensorrt-cu13"),
        ("13.2", False, "tensorrt-cu13"),
        ("11.8", False, None),
        (None, False, None),
        ("12.6", True, "jetson"),
    ],
)
def test_the_extra_that_fits_the_drivers_cuda(
    driver: str | None, jetson: bool, extra: str | None
) -> None:
    from resnet_opt.core.cuda_driver import extra_for_driver

    choice = extra_for_driver(driver, jetson=jetson)
    assert choice.extra == extra and choice.why
    if driver == "11.8":
        assert "upgrade the NVIDIA driver" in choice.why


def test_info_names_the_extra_for_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_opt.tensorrt import device

    name, value, why = device.pip_extra_row("12.4", jetson=False)
    assert name == "pip extra" and why is None and value is not None
    assert "pip install '.[tensorrt-cu12]'" in value and "CUDA 12.4" in value
    assert device.pip_extra_row(None, jetson=False)[1] is None


@pytest.mark.parametrize(
    ("version", "shared"),
    [
        ("10.0.1", False),
        ("10.1.0", True),
        ("10.3.0.30", True),
        ("10.16.1", True),
        ("11.4.1", False),
    ],
)
def test_which_tensorrt_shares_activation_memory(version: str, shared: bool) -> None:
    from resnet_opt.tensorrt.versions import shares_activation_memory

    assert shares_activation_memory(version) is shared
