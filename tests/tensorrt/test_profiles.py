"""The engine's optimization profile: from the ONNX's batch dimension and --batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resnet_opt.core.manifest import Precision, Stage, new_manifest
from resnet_opt.errors import ResnetOptError
from resnet_opt.tensorrt.network import TensorInfo, read_network
from resnet_opt.tensorrt.profiles import (
    DEFAULT_DYNAMIC,
    BatchProfile,
    check_batch_in_profile,
    derive_profile,
    parse_batch,
    profile_shapes,
)
from tests.conftest import make_tiny_cnn


def image(batch: int | str | None, *rest: int | str | None) -> TensorInfo:
    return TensorInfo("input", (batch, *(rest or (3, 8, 8))), "float32")


def test_parse_single_and_triple() -> None:
    assert parse_batch("8") == BatchProfile(8, 8, 8)
    assert parse_batch(" 1:8:32 ") == BatchProfile(1, 8, 32)
    assert str(parse_batch("2:4:4")) == "2:4:4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8:1:32", "min <= opt <= max"),
        ("1:64:32", "min <= opt <= max"),
        ("4:2:1", "min <= opt <= max"),
        ("0", "at least 1"),
        ("1:8", "N or min:opt:max"),
        ("a:b:c", "whole numbers"),
        ("1.5", "whole numbers"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ResnetOptError, match=message):
        parse_batch(text)


@given(st.integers(1, 512), st.integers(0, 512), st.integers(0, 512))
def test_parse_round_trips_every_valid_profile(lo: int, d1: int, d2: int) -> None:
    profile = BatchProfile(lo, lo + d1, lo + d1 + d2)
    assert parse_batch(str(profile)) == profile
    assert profile.contains(lo) and profile.contains(lo + d1 + d2)
    assert not profile.contains(lo - 1) and not profile.contains(lo + d1 + d2 + 1)


def test_fixed_batch_onnx_gives_that_batch() -> None:
    assert derive_profile(image(4), None) == BatchProfile(4, 4, 4)
    assert derive_profile(image(4), BatchProfile(4, 4, 4)) == BatchProfile(4, 4, 4)


def test_fixed_batch_onnx_refuses_another_batch() -> None:
    with pytest.raises(ResnetOptError, match=r"fixed batch of 1"):
        derive_profile(image(1), BatchProfile(1, 8, 32))
    with pytest.raises(ResnetOptError, match=r"fixed batch of 4"):
        derive_profile(image(4), BatchProfile(8, 8, 8))


@pytest.mark.parametrize("batch", ["N", "batch_size", None])
def test_dynamic_batch_defaults_to_1_8_32(batch: str | None) -> None:
    assert derive_profile(image(batch), None) == DEFAULT_DYNAMIC == BatchProfile(1, 8, 32)


def test_dynamic_batch_takes_the_option() -> None:
    assert derive_profile(image("N"), BatchProfile(2, 16, 64)) == BatchProfile(2, 16, 64)


def test_other_dynamic_dims_are_refused() -> None:
    with pytest.raises(ResnetOptError, match=r"dimension.*2, 3 are not fixed"):
        derive_profile(image("N", 3, "h", "w"), None)
    with pytest.raises(ResnetOptError, match=r"expected a batch of images"):
        derive_profile(TensorInfo("x", ("N",), "float32"), None)


def test_profile_shapes_keep_the_image_dims() -> None:
    lo, opt, hi = profile_shapes(image("N", 3, 224, 224), BatchProfile(1, 8, 32))
    assert lo == (1, 3, 224, 224) and opt == (8, 3, 224, 224) and hi == (32, 3, 224, 224)


def test_profile_from_real_onnx_files(tmp_path: Path) -> None:
    dynamic = read_network(make_tiny_cnn(tmp_path / "d.onnx"))
    fixed = read_network(make_tiny_cnn(tmp_path / "f.onnx", batch=2))
    assert dynamic.image_input.shape == ("N", 3, 8, 8)
    assert derive_profile(dynamic.image_input, None) == DEFAULT_DYNAMIC
    assert derive_profile(fixed.image_input, None) == BatchProfile(2, 2, 2)
    assert dynamic.precision is Precision.FP32


def _engine_manifest(tmp_path: Path, profile: BatchProfile, backend: str = "tensorrt"):  # type: ignore[no-untyped-def]
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    return new_manifest(
        stage=Stage.BUILD,
        artifact=plan,
        precision=Precision.FP32,
        inputs=(),
        preprocessing=None,
        details={"backend": backend, "profile": {"batch": profile.to_dict()}},
    )


def test_check_batch_in_profile(tmp_path: Path) -> None:
    manifest = _engine_manifest(tmp_path, BatchProfile(1, 8, 32))
    for batch in (1, 8, 32):
        check_batch_in_profile(manifest, batch)
    with pytest.raises(ResnetOptError, match=r"batch 64 is outside the engine's profile \(1\.\.32"):
        check_batch_in_profile(manifest, 64)
    fixed = _engine_manifest(tmp_path, BatchProfile(4, 4, 4))
    with pytest.raises(ResnetOptError, match=r"batch 1 is outside .*\(4, built with --batch 4:4:4"):
        check_batch_in_profile(fixed, 1)


def test_check_batch_refuses_other_backends(tmp_path: Path) -> None:
    manifest = _engine_manifest(tmp_path, BatchProfile(1, 1, 1), backend="onnxruntime")
    with pytest.raises(ResnetOptError, match=r"not a TensorRT engine"):
        check_batch_in_profile(manifest, 1)
