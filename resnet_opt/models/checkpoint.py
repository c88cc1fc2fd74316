"""Reading PyTorch checkpoints the way users actually have them, with errors that say what is wrong.

A checkpoint is a bare state_dict or a training checkpoint holding one under `state_dict`,
`model_state_dict` or `model`; `module.` (DataParallel/DDP) and `_orig_mod.` (torch.compile)
prefixes are stripped when every key carries them. Files load with `weights_only=True`: a file
that needs arbitrary unpickling (a whole pickled model, a checkpoint holding Python objects)
is refused unless the user passes --trust-pickle, because unpickling runs code from the file.

Keys must match exactly: missing, unexpected and wrongly shaped tensors are listed in the error,
never skipped. The only tolerated gap is BatchNorm's `num_batches_tracked` (absent from old
checkpoints, and unused in eval mode; torch fills it in itself).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, first_line

if TYPE_CHECKING:
    from torch import nn

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")
TOLERATED_MISSING = ("num_batches_tracked",)
_SHOWN = 6  # keys listed per category in an error


class PickleRefusedError(ResnetOptError):
    """The file needs full unpickling (it runs code); only with --trust-pickle."""


@dataclass(frozen=True)
class Checkpoint:
    """A state_dict read from a file, and where in the file it was found."""

    path: Path
    sha256: str
    state_dict: Mapping[str, Any]  # name -> torch.Tensor
    found_under: str | None  # the training checkpoint's key, None for a bare state_dict
    stripped_prefix: str | None


def read_torch_file(path: Path, *, trust_pickle: bool) -> Any:
    """torch.load on the CPU, weights_only unless trusted, with one-line errors."""
    torch = require("torch")
    path = Path(path)
    if not path.exists():
        raise ResnetOptError(f"{path}: no such file")
    if not path.is_file():
        raise ResnetOptError(f"{path}: not a file")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if not trust_pickle and "Unsupported global" in text:
            raise PickleRefusedError(
                f"{path}: holds pickled Python objects (e.g. a whole model), and unpickling runs "
                "code from the file; pass --trust-pickle if you trust it, or save a state_dict"
            ) from exc
        # the weights-only unpickler wraps its reason in a paragraph; keep just the reason
        reason = text.partition("WeightsUnpickler error:")[2].strip() or text
        hint = "" if trust_pickle else "; if it is a pickle you trust, pass --trust-pickle"
        raise ResnetOptError(
            f"{path}: not a PyTorch checkpoint ({first_line(reason)}){hint}"
        ) from exc
    except Exception as exc:  # zip/stream errors, EOF, unknown magic numbers, missing classes
        if trust_pickle and isinstance(exc, ImportError | AttributeError):
            raise ResnetOptError(
                f"{path}: cannot unpickle ({type(exc).__name__}: {first_line(exc)}); the "
                "classes it was saved with must be importable"
            ) from exc
        raise ResnetOptError(f"{path}: not a PyTorch checkpoint ({first_line(exc)})") from exc


def load_checkpoint(path: Path, *, trust_pickle: bool = False) -> Checkpoint:
    """The state_dict in `path` (bare, or under one of STATE_DICT_KEYS), prefixes stripped."""
    from resnet_opt.core.hashing import sha256_file

    torch = require("torch")
    obj = read_torch_file(path, trust_pickle=trust_pickle)
    found_under: str | None = None
    if isinstance(obj, torch.nn.Module):
        state: Mapping[str, Any] = obj.state_dict()
        found_under = "<pickled module>"
    elif isinstance(obj, Mapping) and obj and _is_state_dict(obj, torch):
        state = obj
    elif isinstance(obj, Mapping):
        key = next((k for k in STATE_DICT_KEYS if k in obj), None)
        if key is None:
            shown = ", ".join(sorted(str(k) for k in obj)[:_SHOWN]) or "nothing"
            raise ResnetOptError(
                f"{path}: no state_dict in this checkpoint (top-level keys: {shown}); expected "
                f"a bare state_dict or one under {', '.join(STATE_DICT_KEYS)}"
            )
        inner = obj[key]
        if isinstance(inner, torch.nn.Module):
            inner = inner.state_dict()
        if not isinstance(inner, Mapping) or not inner or not _is_state_dict(inner, torch):
            raise ResnetOptError(f"{path}: {key!r} does not hold a state_dict of tensors")
        state, found_under = inner, key
    else:
        raise ResnetOptError(
            f"{path}: not a checkpoint (holds a {type(obj).__name__}, not a state_dict)"
        )
    state, prefix = strip_prefixes(state)
    return Checkpoint(
        path=Path(path),
        sha256=sha256_file(Path(path)),
        state_dict=state,
        found_under=found_under,
        stripped_prefix=prefix,
    )


def _is_state_dict(obj: Mapping[Any, Any], torch: Any) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def strip_prefixes(state: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Drop a wrapper prefix that every key carries (DataParallel's `module.`, compile's)."""
    stripped: list[str] = []
    current = dict(state)
    changed = True
    while changed and current:
        changed = False
        for prefix in STRIPPED_PREFIXES:
            if all(k.startswith(prefix) for k in current):
                current = {k[len(prefix) :]: v for k, v in current.items()}
                stripped.append(prefix)
                changed = True
    return current, "".join(stripped) or None


def apply_state_dict(
    model: nn.Module, state: Mapping[str, Any], *, what: str, source: Path
) -> None:
    """Load `state` into `model`, or list every missing, unexpected and mis-shaped key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(TOLERATED_MISSING)]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} (checkpoint {_shape(state[k])}, model {_shape(expected[k])})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for label, keys in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", mismatched),
    ):
        if keys:
            more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:_SHOWN])}{more}")
    if problems:
        raise ResnetOptError(f"{source}: weights do not fit {what}: {'; '.join(problems)}")
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:  # dtype/device surprises the checks above cannot foresee
        raise ResnetOptError(f"{source}: cannot load into {what} ({first_line(exc)})") from exc


def state_sha256(model: nn.Module) -> str:
    """Hash of every tensor in the state_dict (names, dtypes, shapes, bytes).

    File hashes are not enough to prove that a rebuilt model is the exported one (a factory or
    random init has no file; torch.save adds a random id), so the manifest records this too.
    """
    torch = require("torch")
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _shape(tensor: Any) -> str:
    return "×".join(str(d) for d in tensor.shape) or "scalar"
