"""TensorRT's text calibration cache: format, round trip, and what TensorRT would ignore."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_opt.calibration.histogram import Statistics, TensorStats
from resnet_opt.calibration.ranges import Method, TensorRange, compute_ranges
from resnet_opt.calibration.tensorrt_cache import (
    CalibrationAlgorithm,
    format_tensorrt_cache,
    hex_scale,
    parse_tensorrt_cache,
    read_tensorrt_cache,
    scale_hex,
    tensorrt_version_int,
    version_text,
)
from resnet_opt.errors import ResnetOptError


def test_the_documented_format_byte_for_byte(tmp_path: Path) -> None:
    ranges = {
        "input": TensorRange(amin=-1.0, amax=1.0),
        "/layer1/layer1.0/relu/Relu_output_0": TensorRange(amin=0.0, amax=127.0),
    }
    path = tmp_path / "model.calib"
    path.write_bytes(format_tensorrt_cache(ranges, tensorrt_version="10.3.0").encode("utf-8"))
    # 1/127 as float32 is 0x3c010204 (a value NVIDIA's tools show for inputs in [-1, 1])
    assert path.read_bytes() == (
        b"TRT-100300-EntropyCalibration2\n"
        b"input: 3c010204\n"
        b"/layer1/layer1.0/relu/Relu_output_0: 3f800000\n"
    )


@pytest.mark.parametrize(
    ("version", "number"),
    [
        ("10.3.0", 100300),
        ("10.3.0.30", 100300),
        ("10.13.2", 101302),
        ("11.0", 110000),
        ("8.6.1", 8601),
        ("8.5.2.2", 8502),
        ("7.2.2", 7202),
        (100300, 100300),
        ("100300", 100300),
    ],
)
def test_version_numbers_follow_nv_tensorrt_version(version: str | int, number: int) -> None:
    assert tensorrt_version_int(version) == number


def test_version_text_inverts_the_number() -> None:
    assert version_text(100300) == "10.3.0" and version_text(8601) == "8.6.1"
    for bad in ("ten", "10", "10.3.0-rc", "10.300.0", -1):
        with pytest.raises(ResnetOptError):
            tensorrt_version_int(bad)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-30, max_value=1e30))
def test_scales_round_trip_through_hex_as_float32(amax: float) -> None:
    scale = amax / 127
    assert hex_scale(scale_hex(scale)) == struct.unpack(">f", struct.pack(">f", scale))[0]
    assert len(scale_hex(scale)) == 8


def test_round_trip_of_calibrated_ranges(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stats = Statistics(
        {
            "input": TensorStats.of("input", rng.normal(0, 1, 5000)),
            "conv1:0": TensorStats.of("conv1:0", rng.laplace(0, 2, 5000)),  # TF-style name
            "relu": TensorStats.of("relu", np.maximum(rng.normal(0, 3, 5000), 0)),
        },
        samples=1,
        requested=1,
    )
    ranges = compute_ranges(stats, Method.ENTROPY)
    path = tmp_path / "cache.txt"
    text = format_tensorrt_cache(
        ranges, tensorrt_version="8.6.1", algorithm=CalibrationAlgorithm.MINMAX
    )
    path.write_bytes(text.encode("utf-8"))
    cache = read_tensorrt_cache(path)
    assert (cache.version, cache.algorithm, cache.version_text) == (
        8601,
        "MinMaxCalibration",
        "8.6.1",
    )
    assert list(cache.scales) == list(ranges)
    for name, r in ranges.items():
        assert cache.amax(name) == pytest.approx(r.amax, rel=1e-6)
        assert cache.scales[name] == np.float32(r.amax / 127)
    cache.check_compatible("8.6.1", CalibrationAlgorithm.MINMAX)


def test_the_cache_for_another_tensorrt_or_calibrator_is_refused() -> None:
    cache = parse_tensorrt_cache("TRT-8600-EntropyCalibration2\ninput: 3c010204\n")
    with pytest.raises(ResnetOptError, match=r"for TensorRT 8\.6\.0 .*this is TensorRT 10\.3\.0"):
        cache.check_compatible("10.3.0")
    with pytest.raises(ResnetOptError, match="written for EntropyCalibration2, the calibrator is"):
        cache.check_compatible("8.6.0", CalibrationAlgorithm.MINMAX)


def test_parser_accepts_what_tensorrt_writes() -> None:
    text = (
        "TRT-7202-EntropyCalibration2\n"
        "data: 3c008912\n"
        "(Unnamed Layer* 4) [Fully Connected]_output: 3d65992f\n"
        "input_1:0: 3c010a14\n"
        "zero: 0\n"
    )
    cache = parse_tensorrt_cache(text)
    assert cache.version == 7202
    assert list(cache.scales) == [
        "data",
        "(Unnamed Layer* 4) [Fully Connected]_output",
        "input_1:0",
        "zero",
    ]
    assert cache.scales["zero"] == 0.0
    assert cache.scales["data"] == pytest.approx(0.0078451, rel=1e-4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("input: 3c010204\n", "not a TensorRT calibration cache header"),
        ("TRT-8601-EntropyCalibration2\ninput 3c010204\n", ":2: expected 'tensor: <hex scale>'"),
        ("TRT-8601-EntropyCalibration2\ninput: 3c01020g\n", ":2: expected"),
        (
            "TRT-8601-EntropyCalibration2\na: 3c010204\na: 3c010204\n",
            ":3: tensor 'a' appears twice",
        ),
        ("TRT-8601-EntropyCalibration2\na: 7fc00000\n", "not valid"),  # NaN
        ("TRT-8601-EntropyCalibration2\na: bf800000\n", "not valid"),  # negative
    ],
)
def test_malformed_caches_are_refused(text: str, message: str) -> None:
    with pytest.raises(ResnetOptError, match=message):
        parse_tensorrt_cache(text)


def test_writer_refuses_what_tensorrt_could_not_read(tmp_path: Path) -> None:
    with pytest.raises(ResnetOptError, match="cannot be written"):
        format_tensorrt_cache({"bad\nname": 1.0}, tensorrt_version="10.3.0")
    with pytest.raises(ResnetOptError, match="no positive int8 scale"):
        format_tensorrt_cache({"t": 0.0}, tensorrt_version="10.3.0")
    with pytest.raises(ResnetOptError, match="no positive int8 scale"):
        format_tensorrt_cache({"t": 1e-45}, tensorrt_version="10.3.0")  # underflows in float32
    with pytest.raises(ResnetOptError, match="no such calibration cache"):
        read_tensorrt_cache(tmp_path / "missing.cache")
    (tmp_path / "binary.cache").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ResnetOptError, match="not a text TensorRT calibration cache"):
        read_tensorrt_cache(tmp_path / "binary.cache")
