"""A torchvision ResNet-50 with trained statistics, made offline: trained briefly on the digits.

The CPU peers benchmark (benchmarks/cpu_peers.py) needs a ResNet-50 whose weights, BatchNorm
statistics and logits are a trained network's: quantization error and top-1 agreement mean
little on a random network (its logits are near-tied, so any perturbation flips them). No
weights can be downloaded here, so this trains one: torchvision `resnet50(num_classes=10)`,
3 input channels, on the bundled 8×8 digits rendered at 32×32 as colour images (light, tinted
ink on a dark, tinted paper, sensor noise), with random shifts and scales as augmentation.
AdamW, 8 epochs from scratch (cached as the base), then 6 epochs fine-tuning it (cached too):
88.7 % held-out top-1 (539 test digits), median top-1/top-2 logit margin 4.2. 32×32 (CIFAR's
size; layer4 then works on 1×1) keeps each part to 5–20 minutes on 2 shared cores; 64×64 costs
2–4× that, and training at 32 then one epoch at 64 (progressive resizing) fell from 81 % to
19 % held-out top-1 at the switch, so it was dropped.

- train split (1,001 digits): training, rendered afresh each epoch with augmentation;
- test split (539 digits): held-out evaluation (`render_split`, centred, seeded tints);
- calibration for the benchmark: the train split rendered without augmentation.

Deterministic: seeded numpy and torch, `torch.use_deterministic_algorithms`, a fixed thread
count. The checkpoint goes to a cache outside git (~/.cache/resnet-opt-bench/, or
$RESNET_OPT_BENCH_CACHE), keyed by the settings, with a JSON record (sha256, held-out top-1,
seconds); a later run reuses it.

    python benchmarks/trained_resnet50.py              # train (or report the cached one)
    python benchmarks/trained_resnet50.py --epochs 8   # another setting, another cache file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from resnet_opt.calibration.data import Split, load_bundled_split  # noqa: E402

MEAN = (0.485, 0.456, 0.406)  # ImageNet's, as a torchvision ResNet-50 is normally fed
STD = (0.229, 0.224, 0.225)
SEED = 20240519


def cache_dir() -> Path:
    return Path(os.environ.get("RESNET_OPT_BENCH_CACHE", Path.home() / ".cache/resnet-opt-bench"))


def render(digit: np.ndarray, size: int, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """One 8×8 digit (values 0..16) → uint8 size×size×3: tinted light ink on tinted dark paper
    with a soft gradient and noise; with `augment`, a random scale (75–100 %) and shift."""
    from PIL import Image

    grey = Image.fromarray((digit.astype(np.float32) * (255 / 16)).astype(np.uint8))
    scale = rng.uniform(0.75, 1.0) if augment else 1.0
    side = max(8, round(size * scale))
    glyph = np.asarray(grey.resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    canvas = np.zeros((size, size), np.float32)
    room = size - side
    shift = size // 8 if augment else 0
    top = int(np.clip(room // 2 + rng.integers(-shift, shift + 1), 0, room))
    left = int(np.clip(room // 2 + rng.integers(-shift, shift + 1), 0, room))
    canvas[top : top + side, left : left + side] = np.clip(glyph, 0, 1)
    ink, paper = rng.uniform(150, 255, 3), rng.uniform(0, 90, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    gradient = 30 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy)
    alpha = canvas[..., None]
    pixels = paper * (1 - alpha) + ink * alpha + gradient[..., None]
    pixels += rng.normal(0, 8, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def render_split(split: Split, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A whole bundled split rendered without augmentation: uint8 N×size×size×3 and labels."""
    digits, labels = load_bundled_split(split)
    rng = np.random.default_rng(seed)
    return np.stack([render(d, size, rng, augment=False) for d in digits]), labels


def write_folder(folder: Path, pixels: np.ndarray, labels: np.ndarray) -> Path:
    """An ImageFolder (class subfolders 0..9) of PNGs, written once (kept when complete)."""
    from PIL import Image

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == len(pixels):
        return folder
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        out = folder / str(int(label))
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / f"{i:04d}.png")
    return folder


def to_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 → float32 N×3×H×W, as the exported contract preprocesses (resize/crop
    none at the input size: scale to [0, 1], subtract MEAN, divide by STD)."""
    x = pixels.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def top1(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Top-1 in percent and the median margin between the two largest logits."""
    import torch

    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(x[i : i + 64])) for i in range(0, len(x), 64)])
    top2 = logits.topk(2, dim=1).values
    margin = float((top2[:, 0] - top2[:, 1]).median())
    return 100.0 * float((logits.argmax(1).numpy() == y).mean()), margin


def train(settings: dict[str, Any], log: Any = print, init: Path | None = None) -> Any:
    """Train from scratch, or with `init` (a checkpoint) fine-tune by settings["finetune"]."""
    import torch
    import torchvision

    size, epochs, batch = settings["size"], settings["epochs"], settings["batch_size"]
    lr, seed, warm = settings["lr"], settings["seed"], 0.25
    if init is not None:
        epochs, lr = settings["finetune"]["epochs"], settings["finetune"]["lr"]
        seed, warm = seed + 1, 0.1  # fresh augmentation draws, a short warm-up
    torch.manual_seed(seed)
    torch.set_num_threads(settings["threads"])
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    digits, labels = load_bundled_split(Split.TRAIN)
    test_px, test_y = render_split(Split.TEST, size, settings["seed"] + 2)
    x_test = to_input(test_px)

    model = torchvision.models.resnet50(weights=None, num_classes=10, zero_init_residual=True)
    if init is not None:
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    steps = math.ceil(len(digits) / batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps, pct_start=warm
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(digits))
        running = 0.0
        for b in range(steps):
            idx = order[b * batch : (b + 1) * batch]
            xb = to_input(np.stack([render(digits[i], size, rng, augment=True) for i in idx]))
            loss = loss_fn(model(torch.from_numpy(xb)), torch.from_numpy(labels[idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += float(loss.detach()) * len(idx)
        acc, margin = top1(model, x_test[:256], test_y[:256])
        log(
            f"epoch {epoch + 1}/{epochs}  loss {running / len(digits):.4f}  "
            f"held-out top-1 (256) {acc:.1f} %  median margin {margin:.2f}  "
            f"({time.perf_counter() - start:.0f} s)"
        )
    model.eval()
    acc, margin = top1(model, x_test, test_y)
    return model, {
        "test_top1": round(acc, 2),
        "test_median_margin": round(margin, 3),
        "test_count": len(test_y),
        "seconds": round(time.perf_counter() - start, 1),
    }


def default_settings(**overrides: Any) -> dict[str, Any]:
    settings = {
        "arch": "torchvision resnet50(num_classes=10, zero_init_residual=True)",
        "data": "bundled digits train split, rendered 3-channel (benchmarks/trained_resnet50.py)",
        "size": 32,
        "epochs": 8,
        "batch_size": 16,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "optimizer": "AdamW, one-cycle (25 % warm-up), per step",
        # then fine-tuned from that checkpoint: one-cycle again (10 % warm-up), new draws
        "finetune": {"epochs": 6, "lr": 1e-3},
        "seed": SEED,
        "threads": 2,
        "mean": MEAN,
        "std": STD,
    }
    settings.update(overrides)
    return settings


def checkpoint(settings: dict[str, Any], log: Any = print) -> tuple[Path, dict[str, Any]]:
    """The cached checkpoint for `settings` (trained now when absent) and its record."""
    import torch

    from resnet_opt.core.hashing import sha256_file

    folder = cache_dir()
    stem = f"resnet50-digits{settings['size']}-{settings_key(settings)}"
    weights, record_path = folder / f"{stem}.pt", folder / f"{stem}.json"
    if weights.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("sha256") == sha256_file(weights):
            log(f"reusing {weights} (sha256 {record['sha256'][:12]}…)")
            return weights, record
    init = None
    if "finetune" in settings:  # the base model first (cached itself), then fine-tuned
        base = {k: v for k, v in settings.items() if k != "finetune"}
        init = checkpoint(base, log)[0]
    epochs = settings["finetune"]["epochs"] if init else settings["epochs"]
    what = f"fine-tuning {init.name}" if init else "from scratch"
    log(f"training {stem}: {epochs} epochs at {settings['size']}×{settings['size']}, {what}")
    model, figures = train(settings, log, init)
    folder.mkdir(parents=True, exist_ok=True)
    partial = weights.with_suffix(".pt.partial")
    torch.save(model.state_dict(), partial)
    partial.replace(weights)
    record = {
        "weights": str(weights),
        "sha256": sha256_file(weights),
        "settings": settings,
        **figures,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return weights, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = default_settings(size=args.size, epochs=args.epochs, threads=args.threads)
    record = checkpoint(settings, lambda m: print(m, flush=True))[1]
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
