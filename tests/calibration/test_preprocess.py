from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from resnet_opt.calibration import preprocess
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.errors import ResnetOptError
from resnet_opt.models.contract import ContractOptions, imagenet_template, resolve_contract


def test_imagenet_recipe_matches_torchvision_order() -> None:
    contract = resolve_contract(imagenet_template(), ContractOptions(), 1000)
    image = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    )
    x = preprocess.apply(contract, image)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    # same as torchvision: Resize(256) → CenterCrop(224) → ToTensor → Normalize
    resized = image.resize((341, 256), Image.Resampling.BILINEAR)
    left, top = round((341 - 224) / 2), round((256 - 224) / 2)
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), np.float32) / 255
    expected = ((crop - contract.mean) / contract.std).transpose(2, 0, 1)
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_round_trip_and_fingerprint(tiny_contract: PreprocessContract) -> None:
    again = PreprocessContract.from_dict(tiny_contract.to_dict())
    assert again == tiny_contract
    assert again.fingerprint() == tiny_contract.fingerprint()
    other = PreprocessContract.from_dict({**tiny_contract.to_dict(), "mean": [0.4] * 3})
    assert other.fingerprint() != tiny_contract.fingerprint()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mean": (0.5,)}, "mean has 1 values"),
        ({"crop": 6}, "crop 6 does not give"),
        ({"resize": 10}, "without a crop"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"labels": ("a",)}, "1 class labels"),
        ({"std": (0.0, 1.0, 1.0)}, "std must be positive"),
        ({"mean": (0.5, float("nan"), 0.5)}, "mean must be finite numbers"),
        ({"std": (1.0, float("inf"), 1.0)}, "std must be finite numbers"),
    ],
)
def test_contract_refuses_inconsistent_settings(
    tiny_contract: PreprocessContract, changes: dict[str, object], message: str
) -> None:
    data: dict[str, Any] = {**tiny_contract.__dict__, **changes}
    with pytest.raises(ResnetOptError, match=message):
        PreprocessContract(**data)


def test_grayscale_pixels() -> None:
    contract = PreprocessContract(
        input_size=32,
        channels=1,
        mean=(0.5,),
        std=(0.5,),
        resize=None,
        crop=None,
        interpolation=Interpolation.BILINEAR,
        num_classes=10,
    )
    x = preprocess.apply_pixels(contract, np.full((8, 8), 255, np.uint8))
    assert x.shape == (1, 32, 32)
    np.testing.assert_allclose(x, 1.0)
    with pytest.raises(ResnetOptError, match="3 channel"):
        preprocess.apply_pixels(contract, np.zeros((8, 8, 3), np.uint8))
