"""Train the bundled default model: CIFAR ResNet-20 on the bundled 8×8 digits, upsampled to 32×32.

Writes resnet_opt/models/data/resnet20_digits.pt (a state_dict) and resnet20_digits.json
(preprocessing contract, training settings, the test-split top-1 measured here). Inputs go
through the very PreprocessContract that ships with the model (bilinear resize 8→32, mean/std
of the train split), so export, calibration and evaluation see exactly what training saw.

Deterministic: fixed seed, fixed thread count, torch.use_deterministic_algorithms(True); the
tensors come out identical on the same torch build (the .pt file's bytes do not: torch.save
writes a random serialization id, which is why the metadata also records a hash of the tensors).

Run:  python scripts/train_default.py        (a couple of minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from resnet_opt.calibration.data import Split, load_bundled_split
from resnet_opt.calibration.preprocess import apply_pixels
from resnet_opt.core.contract import Interpolation, PreprocessContract
from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import dump_json
from resnet_opt.models.checkpoint import state_sha256
from resnet_opt.models.default import DEFAULT_MODEL, METADATA_FILE, WEIGHTS_FILE, data_dir

INPUT_SIZE = 32
SEED = 20151210
LABELS = tuple(str(d) for d in range(10))


def contract_for(mean: float, std: float) -> PreprocessContract:
    return PreprocessContract(
        input_size=INPUT_SIZE,
        channels=1,
        mean=(mean,),
        std=(std,),
        resize=None,  # neither resize nor crop: scale the 8×8 image straight to 32×32
        crop=None,
        interpolation=Interpolation.BILINEAR,
        num_classes=10,
        labels=LABELS,
    )


def preprocess(pixels: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    return np.stack([apply_pixels(contract, p) for p in pixels])


def train_stats(pixels: np.ndarray) -> tuple[float, float]:
    """Mean and std of the train split at the network's input size, in [0, 1]."""
    unit = preprocess(pixels, contract_for(0.0, 1.0))
    return round(float(unit.mean()), 4), round(float(unit.std()), 4)


def shifted(x: np.ndarray, rng: np.random.Generator, max_shift: int, fill: float) -> np.ndarray:
    """Random translation by up to ±max_shift pixels, filling with the background value."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * max_shift, w + 2 * max_shift), fill, dtype=x.dtype)
    padded[:, :, max_shift : max_shift + h, max_shift : max_shift + w] = x
    out = np.empty_like(x)
    offsets = rng.integers(0, 2 * max_shift + 1, size=(n, 2))
    for i, (dy, dx) in enumerate(offsets):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


def top1(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(x[i : i + 128])) for i in range(0, len(x), 128)])
    return 100.0 * float((logits.argmax(1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--max-shift", type=int, default=3, help="augmentation, in 32×32 pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=data_dir())
    args = parser.parse_args()

    import torch

    from resnet_opt.models.cifar import Shortcut, cifar_resnet

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)

    train_px, train_y = load_bundled_split(Split.TRAIN)
    test_px, test_y = load_bundled_split(Split.TEST)
    calib_px, calib_y = load_bundled_split(Split.CALIB)
    mean, std = train_stats(train_px)
    contract = contract_for(mean, std)
    x_train, x_test, x_calib = (preprocess(p, contract) for p in (train_px, test_px, calib_px))
    background = (0.0 - mean) / std

    model = cifar_resnet(20, in_channels=1, num_classes=10, shortcut=Shortcut.B)
    decay: list[Any] = []
    no_decay: list[Any] = []
    for param in model.parameters():
        (no_decay if param.ndim == 1 else decay).append(param)  # no decay on BN and biases
    optimizer = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total = args.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch_size : (b + 1) * args.batch_size]
            xb = shifted(x_train[idx], rng, args.max_shift, background)
            logits = model(torch.from_numpy(xb))
            loss = loss_fn(logits, torch.from_numpy(train_y[idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(
                f"epoch {epoch + 1:3d}  loss {running / len(x_train):.4f}  "
                f"test top-1 {top1(model, x_test, test_y):.2f}%  "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - start
    model.eval()
    test_acc = top1(model, x_test, test_y)
    calib_acc = top1(model, x_calib, calib_y)

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / WEIGHTS_FILE
    torch.save(model.state_dict(), weights)
    meta = {
        "name": DEFAULT_MODEL,
        "architecture": "resnet20",
        "in_channels": 1,
        "num_classes": 10,
        "shortcut": Shortcut.B.value,
        "weights": WEIGHTS_FILE,
        "weights_sha256": sha256_file(weights),
        "state_sha256": state_sha256(model),
        "preprocessing": contract.to_dict(),
        "test_top1": round(test_acc, 2),
        "test_count": len(test_y),
        "calib_top1": round(calib_acc, 2),
        "training": {
            "script": "scripts/train_default.py",
            "data": f"bundled digits, train split ({len(train_y)} images)",
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "SGD, momentum 0.9, Nesterov",
            "lr": args.lr,
            "schedule": "cosine to 0, per step",
            "weight_decay": args.weight_decay,
            "weight_decay_on": "conv and fc weights (not BN, not biases)",
            "augmentation": f"random shift up to ±{args.max_shift} px at 32×32, background fill",
            "threads": args.threads,
            "deterministic": True,
            "seconds": round(seconds, 1),
            "machine": platform.processor() or platform.machine(),
        },
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }
    (args.out / METADATA_FILE).write_text(dump_json(meta), encoding="utf-8")
    print(json.dumps({"test_top1": meta["test_top1"], "calib_top1": meta["calib_top1"]}))
    print(f"wrote {weights} and {args.out / METADATA_FILE} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
