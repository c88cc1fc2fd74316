"""Write resnet_opt/models/data/digits.npz: the bundled default data, split once and for all.

scikit-learn's handwritten digits (UCI "Optical Recognition of Handwritten Digits", 1797 8×8
images, 10 classes) become uint8 grayscale pixels (0..16 scaled to 0..255), with a fixed split
stored in the file itself, so that the split never depends on a random generator's version:
540 test, 256 calibration, the rest (1001) train, stratified by class.

Run once: python scripts/make_digits_split.py  (needs scikit-learn: pip install -e '.[train]')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20151210  # the ResNet paper's arXiv date
N_TEST = 540
N_CALIB = 256
TRAIN, CALIB, TEST = 0, 1, 2
OUT = Path(__file__).resolve().parents[1] / "resnet_opt" / "models" / "data" / "digits.npz"


def main() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(SEED)
    split = np.full(len(labels), TRAIN, dtype=np.uint8)
    # stratified: the same share of every class in test and calibration
    for cls in range(10):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(N_TEST * len(members) / len(labels))
        n_calib = round(N_CALIB * len(members) / len(labels))
        split[members[:n_test]] = TEST
        split[members[n_test : n_test + n_calib]] = CALIB
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, images=images, labels=labels, split=split)
    counts = {
        name: int((split == code).sum())
        for name, code in (("train", TRAIN), ("calib", CALIB), ("test", TEST))
    }
    print(f"wrote {OUT} {counts}")


if __name__ == "__main__":
    main()
