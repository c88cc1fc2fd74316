"""Where a model comes from, and how to get it back: the `--model` / `--weights` of `export`.

Sources (the README's `export --model`): a registry name (torchvision ResNets, CIFAR ResNets, the
bundled default), `path/to/file.py:factory` or `package.module:factory`, a TorchScript file, or,
only with --trust-pickle, a whole pickled nn.Module. `load_model` returns the module in eval mode
with a `ModelSource` record that the manifest stores and that `rebuild` turns back into the very
same model (checked by a hash of every tensor), which is how the PyTorch runner finds its model.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from resnet_opt.core.hashing import sha256_file
from resnet_opt.core.manifest import InputRef
from resnet_opt.deps import require
from resnet_opt.errors import ResnetOptError, UsageError, first_line
from resnet_opt.models import timm_models, torchvision_weights
from resnet_opt.models.checkpoint import (
    apply_state_dict,
    load_checkpoint,
    read_torch_file,
    state_sha256,
)
from resnet_opt.models.contract import ContractTemplate, imagenet_template
from resnet_opt.models.default import DEFAULT_ALIAS, default_model
from resnet_opt.models.registry import Family, ModelEntry, get_entry, is_registered

NO_WEIGHTS = "none"
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".ts", ".jit", ".torchscript", ".ptl", ".bin"})


class SourceKind(str, Enum):
    TORCHVISION = "torchvision"
    REGISTRY = "registry"
    FACTORY = "factory"
    TORCHSCRIPT = "torchscript"
    PICKLE = "pickle"
    TIMM = "timm"  # timm:NAME, through timm.create_model


class WeightsKind(str, Enum):
    FILE = "file"  # a checkpoint the user gave
    TORCHVISION = "torchvision"  # a weights enum, from the local torch cache
    BUNDLED = "bundled"  # the default model's committed weights
    RANDOM = "random"  # --weights none on a registry architecture (seeded)
    AS_BUILT = "as-built"  # whatever the factory / TorchScript / pickle file holds
    HUB = "hub"  # timm's pretrained weights (downloaded by timm on first use)


@dataclass(frozen=True)
class ModelRequest:
    """What the user asked for; None fields take the source's defaults."""

    model: str | None = None  # None or 'default': the bundled default model
    weights: str | None = None
    trust_pickle: bool = False
    num_classes: int | None = None  # registry architectures only
    in_channels: int | None = None  # CIFAR architectures only (from --channels)
    seed: int = 0  # random init of --weights none


@dataclass(frozen=True)
class ModelSource:
    """Everything needed to rebuild the model: stored as the export manifest's details.source."""

    kind: SourceKind
    model: str  # registry name, or FILE.py:FACTORY / PKG.MOD:FACTORY / file path (absolute)
    weights: WeightsKind
    weights_path: str | None = None
    weights_sha256: str | None = None
    weights_enum: str | None = None
    num_classes: int | None = None
    in_channels: int | None = None
    seed: int | None = None
    trust_pickle: bool = False
    code_sha256: str | None = None  # the .py of a file factory, or the model file itself
    state_sha256: str = ""  # hash of every tensor of the loaded model

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["weights"] = self.weights.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSource:
        try:
            values = dict(data)
            values["kind"] = SourceKind(values["kind"])
            values["weights"] = WeightsKind(values["weights"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResnetOptError(f"manifest model source is incomplete ({exc})") from exc

    def request(self) -> ModelRequest:
        """The request that loads this source again."""
        weights: str | None
        if self.weights is WeightsKind.FILE:
            weights = self.weights_path
        elif self.weights is WeightsKind.TORCHVISION:
            weights = self.weights_enum
        elif self.weights is WeightsKind.RANDOM or (
            self.kind is SourceKind.TIMM and self.weights is WeightsKind.AS_BUILT
        ):
            weights = NO_WEIGHTS
        elif self.weights is WeightsKind.HUB:
            weights = timm_models.PRETRAINED
        else:
            weights = None
        registry = self.kind in (SourceKind.TORCHVISION, SourceKind.REGISTRY, SourceKind.TIMM)
        return ModelRequest(
            model=self.model,
            weights=weights,
            trust_pickle=self.trust_pickle,
            num_classes=self.num_classes if registry else None,
            in_channels=self.in_channels if self.kind is SourceKind.REGISTRY else None,
            seed=self.seed or 0,
        )


@dataclass(frozen=True)
class LoadedModel:
    module: Any  # torch.nn.Module (or a TorchScript module), in eval mode
    name: str  # short name: registry name, factory name or file stem (default output name)
    source: ModelSource
    template: ContractTemplate  # default preprocessing
    min_input_size: int | None = None
    inputs: tuple[InputRef, ...] = field(default_factory=tuple)


def is_onnx(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


def already_onnx(spec: str) -> ResnetOptError:
    """An .onnx given as the model is a mix-up of stages: the error says which stages take it."""
    return ResnetOptError(
        f"{spec}: is already ONNX; export takes a PyTorch model (pass the .onnx to fold, "
        "quantize or build directly)"
    )


def load_model(request: ModelRequest) -> LoadedModel:
    """The model the user described, in eval mode, or one clear error."""
    spec = request.model or DEFAULT_ALIAS
    if spec != spec.strip() or not spec:
        raise ResnetOptError(f"--model {spec!r}: empty or padded with spaces")
    left, sep, right = spec.rpartition(":")
    if timm_models.is_timm_spec(spec):
        loaded = _load_timm(spec, request)
    elif sep and left.endswith(".py"):
        loaded = _load_factory_file(Path(left), right, spec, request)
    elif is_onnx(spec):
        raise already_onnx(spec)
    elif Path(spec).suffix.lower() in TORCH_SUFFIXES or (
        Path(spec).is_file() and not is_registered(spec)
    ):
        loaded = _load_model_file(Path(spec), request)
    elif sep and not is_registered(spec):
        loaded = _load_factory_module(left, right, spec, request)
    elif not is_registered(spec) and ("/" in spec or "\\" in spec):
        raise ResnetOptError(f"{spec}: no such file")
    else:
        loaded = _load_registry(get_entry(spec), request)
    loaded.module.eval()
    return loaded


# -- registry architectures ----------------------------------------------------------------------


def _load_registry(entry: ModelEntry, request: ModelRequest) -> LoadedModel:
    torch = require("torch")
    kind = SourceKind.TORCHVISION if entry.family is Family.TORCHVISION else SourceKind.REGISTRY
    if (
        request.in_channels is not None
        and not entry.channels_configurable
        and request.in_channels != entry.in_channels
    ):
        raise UsageError(  # the flag does not fit the model chosen: a usage mistake (exit 2)
            f"{entry.name} takes {entry.in_channels} input channels; --channels "
            f"{request.in_channels} needs a model built for it"
        )
    weights = request.weights
    if weights is None and not entry.bundled:
        raise ResnetOptError(
            f"{entry.name}: pass --weights: a checkpoint path"
            + (
                ", a torchvision weights name (IMAGENET1K_V1, DEFAULT …)"
                if kind is SourceKind.TORCHVISION
                else ""
            )
            + ", or none for random initialization"
        )
    template = entry.template(request.in_channels)
    inputs: list[InputRef] = []
    state: Mapping[str, Any] | None = None
    source_path: Path | None = None
    enum_member: Any = None
    weights_kind: WeightsKind
    if weights is None:  # the bundled default's committed weights
        bundled = default_model()
        source_path = bundled.weights
        weights_kind = WeightsKind.BUNDLED
    elif weights.lower() == NO_WEIGHTS:
        weights_kind = WeightsKind.RANDOM
    elif (
        kind is SourceKind.TORCHVISION
        and torchvision_weights.looks_like_enum(weights)
        and not Path(weights).exists()
    ):
        enum_member = torchvision_weights.resolve(entry.name, weights)
        source_path = torchvision_weights.require_cached(entry.name, enum_member)
        template = torchvision_weights.template(enum_member)
        weights_kind = WeightsKind.TORCHVISION
    else:
        source_path = Path(weights)
        weights_kind = WeightsKind.FILE
        if not source_path.exists() and torchvision_weights.looks_like_enum(weights):
            raise ResnetOptError(
                f"--weights {weights}: {entry.name} has no pretrained weights by that name and "
                "there is no such file; give a checkpoint path or none"
            )
    sha: str | None = None
    if source_path is not None:
        checkpoint = load_checkpoint(source_path, trust_pickle=request.trust_pickle)
        state, sha = checkpoint.state_dict, checkpoint.sha256
        inputs.append(InputRef(role="weights", path=str(source_path), sha256=sha))
        if enum_member is not None:
            torchvision_weights.check_hash_prefix(source_path, sha)
        if weights_kind is WeightsKind.BUNDLED and sha != default_model().weights_sha256:
            raise ResnetOptError(
                f"{source_path}: bundled weights do not match their metadata (sha256); "
                "re-install resnet-opt or re-run scripts/train_default.py"
            )

    num_classes = request.num_classes or _rows(state, entry.classifier_key) or entry.num_classes
    in_channels = entry.in_channels
    if entry.channels_configurable:
        in_channels = request.in_channels or _cols(state, entry.stem_key) or entry.in_channels
        if request.in_channels is None and in_channels != template.channels:
            template = entry.template(in_channels)
    with _seeded(torch, request.seed):
        module = _build(entry, num_classes, in_channels, state)
    if state is not None:
        assert source_path is not None
        apply_state_dict(module, state, what=entry.name, source=source_path)
    source = ModelSource(
        kind=kind,
        model=entry.name,
        weights=weights_kind,
        weights_path=str(source_path.resolve()) if source_path else None,
        weights_sha256=sha,
        weights_enum=enum_member.name if enum_member is not None else None,
        num_classes=num_classes,
        in_channels=in_channels,
        seed=request.seed if weights_kind is WeightsKind.RANDOM else None,
        trust_pickle=request.trust_pickle,
        state_sha256=state_sha256(module),
    )
    return LoadedModel(
        module=module,
        name=entry.name,
        source=source,
        template=template,
        min_input_size=entry.min_input_size,
        inputs=tuple(inputs),
    )


def _build(
    entry: ModelEntry, num_classes: int, in_channels: int, state: Mapping[str, Any] | None
) -> Any:
    if entry.family is Family.TORCHVISION:
        torchvision = require("torchvision")
        return torchvision.models.get_model(entry.name, weights=None, num_classes=num_classes)
    from resnet_opt.models.cifar import Shortcut, cifar_resnet

    assert entry.depth is not None
    shortcut = Shortcut.B
    if state is not None and not any(".downsample." in k for k in state):
        shortcut = Shortcut.A  # a checkpoint trained with the paper's parameter-free shortcut
    return cifar_resnet(
        entry.depth, in_channels=in_channels, num_classes=num_classes, shortcut=shortcut
    )


def _rows(state: Mapping[str, Any] | None, key: str) -> int | None:
    tensor = state.get(key) if state is not None else None
    return int(tensor.shape[0]) if tensor is not None and tensor.ndim == 2 else None


def _cols(state: Mapping[str, Any] | None, key: str) -> int | None:
    tensor = state.get(key) if state is not None else None
    return int(tensor.shape[1]) if tensor is not None and tensor.ndim == 4 else None


@contextlib.contextmanager
def _seeded(torch: Any, seed: int) -> Iterator[None]:
    """Reproducible random init without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# -- user factories --------------------------------------------------------------------------


def _refuse_registry_options(request: ModelRequest, what: str) -> None:
    if request.num_classes is not None:
        raise ResnetOptError(
            f"--num-classes builds a registry architecture; {what} decides its own classes"
        )


def _refuse_exit(exc: SystemExit, who: str) -> None:
    """A user's code that calls sys.exit(): an error (exit 0 with no model would read as
    success); SIGTERM's own SystemExit (core.signals.Terminated) goes on unwinding."""
    from resnet_opt.core.signals import Terminated

    if isinstance(exc, Terminated):
        raise exc
    raise ResnetOptError(
        f"{who} called sys.exit({exc.code!r}) instead of returning a torch.nn.Module"
    ) from None


def _load_factory_file(path: Path, attr: str, spec: str, request: ModelRequest) -> LoadedModel:
    if not path.is_file():
        raise ResnetOptError(f"{path}: no such file")
    code_sha = sha256_file(path)
    module_name = f"resnet_opt_user_{path.stem}_{code_sha[:8]}"
    if module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        spec_obj = importlib.util.spec_from_file_location(module_name, path)
        if spec_obj is None or spec_obj.loader is None:
            raise ResnetOptError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec_obj)
        sys.modules[module_name] = module
        folder = str(path.resolve().parent)
        sys.path.insert(0, folder)  # so the file can import its neighbours
        try:
            spec_obj.loader.exec_module(module)
        except Exception as exc:  # user code: any failure is theirs to fix, in one line
            sys.modules.pop(module_name, None)
            raise ResnetOptError(f"{path}: import failed ({_describe(exc)})") from exc
        except SystemExit as exc:
            sys.modules.pop(module_name, None)
            _refuse_exit(exc, f"{path}: importing it")
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    resolved_spec = f"{path.resolve()}:{attr}"
    code = InputRef(role="model code", path=str(path), sha256=code_sha)
    return _from_factory(module, attr, spec, resolved_spec, request, [code], code_sha)


def _load_factory_module(
    module_name: str, attr: str, spec: str, request: ModelRequest
) -> LoadedModel:
    if not module_name or not attr:
        raise ResnetOptError(f"--model {spec!r}: expected PACKAGE.MODULE:FACTORY")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ModuleNotFoundError, or the module's own import errors
        raise ResnetOptError(f"{spec}: cannot import {module_name} ({_describe(exc)})") from exc
    return _from_factory(module, attr, spec, spec, request, [], None)


def _from_factory(
    module: Any,
    attr: str,
    spec: str,
    resolved_spec: str,
    request: ModelRequest,
    inputs: list[InputRef],
    code_sha: str | None,
) -> LoadedModel:
    torch = require("torch")
    _refuse_registry_options(request, spec)
    factory = getattr(module, attr, None)
    if factory is None:
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        shown = ", ".join(found[:8]) or "no callables"
        raise ResnetOptError(f"{spec}: no {attr!r} in {module.__name__} (found: {shown})")
    if not callable(factory):
        raise ResnetOptError(f"{spec}: {attr!r} is a {type(factory).__name__}, not callable")
    with _seeded(torch, request.seed):
        try:
            model = factory()
        except Exception as exc:  # user code
            raise ResnetOptError(f"{spec}: the factory failed ({_describe(exc)})") from exc
        except SystemExit as exc:  # sys.exit(0) in user code must not end us with success
            _refuse_exit(exc, f"{spec}: the factory")
    if not isinstance(model, torch.nn.Module):
        raise ResnetOptError(
            f"{spec}: the factory returned a {type(model).__name__}, not a torch.nn.Module"
        )
    weights_kind, path, sha = _apply_user_weights(model, request, spec, inputs)
    source = ModelSource(
        kind=SourceKind.FACTORY,
        model=resolved_spec,
        weights=weights_kind,
        weights_path=str(path.resolve()) if path else None,
        weights_sha256=sha,
        seed=request.seed,
        trust_pickle=request.trust_pickle,
        code_sha256=code_sha,
        state_sha256=state_sha256(model),
    )
    template = (
        timm_models.template(model, spec)
        if timm_models.has_pretrained_cfg(model)
        else _user_template()
    )
    return LoadedModel(
        module=model,
        name=attr,
        source=source,
        template=template,
        inputs=tuple(inputs),
    )


# -- timm --------------------------------------------------------------------------------------


def _load_timm(spec: str, request: ModelRequest) -> LoadedModel:
    """`timm:NAME`: timm.create_model, with timm's pretrained weights (`--weights pretrained`,
    downloaded by timm on first use), a checkpoint file, or none (seeded random init); the
    contract from the model's pretrained_cfg."""
    torch = require("torch")
    name = spec[len(timm_models.PREFIX) :]
    weights = request.weights
    if weights is None:
        raise ResnetOptError(
            f"{spec}: pass --weights: pretrained (timm's weights, downloaded on first use), a "
            "checkpoint path, or none for random initialization"
        )
    pretrained = weights.lower() == timm_models.PRETRAINED
    with _seeded(torch, request.seed):
        module = timm_models.create(name, pretrained=pretrained, num_classes=request.num_classes)
    inputs: list[InputRef] = []
    path: Path | None = None
    sha: str | None = None
    if pretrained:
        kind = WeightsKind.HUB
    elif weights.lower() == NO_WEIGHTS:
        kind = WeightsKind.RANDOM
    else:
        path = Path(weights)
        checkpoint = load_checkpoint(path, trust_pickle=request.trust_pickle)
        apply_state_dict(module, checkpoint.state_dict, what=spec, source=path)
        sha = checkpoint.sha256
        inputs.append(InputRef(role="weights", path=str(path), sha256=sha))
        kind = WeightsKind.FILE
    source = ModelSource(
        kind=SourceKind.TIMM,
        model=spec,
        weights=kind,
        weights_path=str(path.resolve()) if path else None,
        weights_sha256=sha,
        num_classes=request.num_classes,
        seed=request.seed if kind is WeightsKind.RANDOM else None,
        trust_pickle=request.trust_pickle,
        state_sha256=state_sha256(module),
    )
    return LoadedModel(
        module=module,
        name=name.split(".")[0] or "timm",
        source=source,
        template=timm_models.template(module, spec),
        inputs=tuple(inputs),
    )


def _apply_user_weights(
    model: Any, request: ModelRequest, spec: str, inputs: list[InputRef]
) -> tuple[WeightsKind, Path | None, str | None]:
    weights = request.weights
    if weights is None or weights.lower() == NO_WEIGHTS:
        return WeightsKind.AS_BUILT, None, None
    path = Path(weights)
    if not path.exists() and torchvision_weights.looks_like_enum(weights):
        raise ResnetOptError(
            f"--weights {weights}: torchvision weights names apply to torchvision "
            "architectures; give a checkpoint path for this model"
        )
    checkpoint = load_checkpoint(path, trust_pickle=request.trust_pickle)
    apply_state_dict(model, checkpoint.state_dict, what=spec, source=path)
    inputs.append(InputRef(role="weights", path=str(path), sha256=checkpoint.sha256))
    return WeightsKind.FILE, path, checkpoint.sha256


def _user_template() -> ContractTemplate:
    return imagenet_template(
        origin="ImageNet recipe (no registry entry: describe other inputs with "
        "--input-size/--channels/--mean/--std)"
    )


# -- TorchScript and pickled modules -----------------------------------------------------------


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive carries its code (`<name>/code/…`); torch.save's zip does not."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)


def _load_model_file(path: Path, request: ModelRequest) -> LoadedModel:
    torch = require("torch")
    if not path.exists():
        raise ResnetOptError(f"{path}: no such file")
    if not path.is_file():
        raise ResnetOptError(f"{path}: not a file")
    _refuse_registry_options(request, str(path))
    sha = sha256_file(path)
    inputs = [InputRef(role="model", path=str(path), sha256=sha)]
    if is_torchscript(path):
        if request.weights is not None:
            raise ResnetOptError(
                f"{path}: a TorchScript file carries its own weights; drop --weights"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch's own RuntimeErrors for a broken archive
            raise ResnetOptError(
                f"{path}: not a loadable TorchScript file ({_describe(exc)})"
            ) from exc
        kind, weights_kind = SourceKind.TORCHSCRIPT, WeightsKind.AS_BUILT
        weights_path, weights_sha = None, None
    else:
        obj = read_torch_file(path, trust_pickle=request.trust_pickle)
        if not isinstance(obj, torch.nn.Module):
            if isinstance(obj, Mapping):
                raise ResnetOptError(
                    f"{path}: holds weights only (a checkpoint), not a model; give the "
                    f"architecture with --model NAME --weights {path}"
                )
            raise ResnetOptError(
                f"{path}: not a TorchScript file or pickled model (holds a {type(obj).__name__})"
            )
        module = obj
        kind = SourceKind.PICKLE
        weights_kind, weights_path_obj, weights_sha = _apply_user_weights(
            module, request, str(path), inputs
        )
        weights_path = str(weights_path_obj.resolve()) if weights_path_obj else None
    source = ModelSource(
        kind=kind,
        model=str(path.resolve()),
        weights=weights_kind,
        weights_path=weights_path,
        weights_sha256=weights_sha,
        trust_pickle=request.trust_pickle,
        code_sha256=sha,
        state_sha256=state_sha256(module),
    )
    return LoadedModel(
        module=module,
        name=path.stem,
        source=source,
        template=_user_template(),
        inputs=tuple(inputs),
    )


# -- rebuilding from a manifest ------------------------------------------------------------------


def rebuild(source: ModelSource) -> LoadedModel:
    """The exported model again, refused unless every file and tensor is unchanged."""
    for path, sha, what in (
        (source.weights_path, source.weights_sha256, "weights"),
        (
            source.model.rpartition(":")[0] if source.kind is SourceKind.FACTORY else source.model,
            source.code_sha256,
            "model file",
        ),
    ):
        if path and sha and Path(path).is_file() and sha256_file(Path(path)) != sha:
            raise ResnetOptError(f"{path}: the {what} changed since export (sha256 differs)")
    loaded = load_model(source.request())
    if loaded.source.state_sha256 != source.state_sha256:
        raise ResnetOptError(
            f"{source.model}: the rebuilt model's tensors differ from the exported ones; "
            "its code or weights changed since export"
        )
    return loaded


def _describe(exc: BaseException) -> str:
    """`Type: first line` (user code's errors: the type is half the story), or just the type."""
    name = type(exc).__name__
    return f"{name}: {first_line(exc)}" if str(exc).strip() else name
