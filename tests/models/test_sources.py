"""Model sources: CIFAR ResNets, the registry, checkpoints, factories, TorchScript, pickles."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_opt.core.contract import Interpolation
from resnet_opt.errors import ResnetOptError
from resnet_opt.models import DEFAULT_MODEL, default_model, get_entry, list_models
from resnet_opt.models.contract import (
    NONE,
    ContractOptions,
    imagenet_template,
    parse_labels,
    parse_size,
    resolve_contract,
)
from resnet_opt.models.sources import (
    ModelRequest,
    SourceKind,
    WeightsKind,
    load_model,
    rebuild,
)

torch = pytest.importorskip("torch")

TINY_FACTORY = '''
import torch
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )


def fixed_size():
    """Only takes 3×8×8: a flatten straight into a Linear."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))


def not_a_module():
    return 42


def broken():
    raise ValueError("no GPU found")


VALUE = 3
'''


@pytest.fixture
def factory_file(tmp_path: Path) -> Path:
    path = tmp_path / "mynets.py"
    path.write_text(TINY_FACTORY)
    return path


# -- CIFAR ResNets --------------------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "params"), [(20, 0.27e6), (32, 0.46e6), (110, 1.7e6)])
def test_cifar_resnets_have_the_papers_sizes(depth: int, params: float) -> None:
    from resnet_opt.models.cifar import Shortcut, cifar_resnet

    model = cifar_resnet(depth, shortcut=Shortcut.A)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - params) / params < 0.03  # the paper's table 6: 0.27M, 0.46M, 1.7M
    bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert bn == depth - 1  # every conv but the fc has a BN (option A: no projection convs)


def test_cifar_resnet_channels_classes_and_shortcuts() -> None:
    from resnet_opt.models.cifar import Shortcut, cifar_resnet

    for shortcut in Shortcut:
        model = cifar_resnet(20, in_channels=1, num_classes=7, shortcut=shortcut).eval()
        with torch.inference_mode():
            assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(ResnetOptError, match="6n\\+2"):
        cifar_resnet(21)


def test_cifar_resnet_pickles_as_a_module_level_class(tmp_path: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet

    path = tmp_path / "whole.pt"
    torch.save(cifar_resnet(20), path)
    loaded = torch.load(path, weights_only=False)
    assert type(loaded).__module__ == "resnet_opt.models.cifar"
    assert type(loaded).__name__ == "CifarResNet"


# -- registry and the bundled default ------------------------------------------------------------


def test_registry_names_and_suggestions() -> None:
    names = list_models()
    for name in ("resnet18", "resnet152", "resnext50_32x4d", "wide_resnet50_2", "resnet110"):
        assert name in names
    assert get_entry("default").name == DEFAULT_MODEL
    with pytest.raises(ResnetOptError, match=r"did you mean .*resnet50"):
        get_entry("resnet05")


def test_default_model_metadata_without_torch() -> None:
    code = (
        "import sys\n"
        "from resnet_opt.models import default_model\n"
        "m = default_model()\n"
        "print(m.contract.input_size, m.contract.channels, m.test_top1, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    size, channels, top1, imported_torch = out.stdout.split()
    assert (size, channels, imported_torch) == ("32", "1", "False")
    assert float(top1) >= 97.0


def test_bundled_default_loads_its_committed_weights() -> None:
    meta = default_model()
    loaded = load_model(ModelRequest())
    assert loaded.name == DEFAULT_MODEL
    assert loaded.source.kind is SourceKind.REGISTRY
    assert loaded.source.weights is WeightsKind.BUNDLED
    assert loaded.source.weights_sha256 == meta.weights_sha256
    assert loaded.source.state_sha256 == meta.metadata["state_sha256"]
    assert loaded.template.labels == tuple(str(d) for d in range(10))
    assert not loaded.module.training


# -- preprocessing defaults and options -----------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=16, max_value=1024))
def test_input_size_keeps_the_recipes_crop_ratio(size: int) -> None:
    contract = resolve_contract(imagenet_template(), ContractOptions(input_size=size), 1000)
    assert contract.input_size == contract.crop == size
    assert contract.resize is not None and contract.resize >= size
    assert abs(contract.resize - size * 256 / 224) <= 0.5


def test_contract_options_override_single_fields() -> None:
    t = imagenet_template()
    c = resolve_contract(t, ContractOptions(), 1000)
    assert (c.input_size, c.resize, c.crop) == (224, 256, 224)
    c = resolve_contract(t, ContractOptions(crop=192), 10)
    assert (c.input_size, c.resize, c.crop) == (192, 256, 192)
    c = resolve_contract(t, ContractOptions(resize=NONE), 10)
    assert (c.input_size, c.resize, c.crop) == (224, None, 224)
    c = resolve_contract(
        t, ContractOptions(interpolation=Interpolation.BICUBIC, labels=("a", "b")), 2
    )
    assert c.interpolation is Interpolation.BICUBIC and c.labels == ("a", "b")
    with pytest.raises(ResnetOptError, match="add --crop"):
        resolve_contract(t, ContractOptions(crop=NONE), 10)
    with pytest.raises(ResnetOptError, match="3 values but the input has 1"):
        resolve_contract(t, ContractOptions(channels=1), 10)
    with pytest.raises(ResnetOptError, match="2 class labels"):
        resolve_contract(t, ContractOptions(labels=("a", "b")), 10)


def test_parse_labels_and_sizes(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\n")
    assert parse_labels(str(labels)) == ("cat", "dog")
    assert parse_labels("cat, dog,bird") == ("cat", "dog", "bird")
    with pytest.raises(ResnetOptError, match="no such labels file"):
        parse_labels(str(tmp_path / "missing.txt"))
    assert parse_size("none", "--resize") == NONE
    assert parse_size("232", "--resize") == 232
    with pytest.raises(ResnetOptError, match="size in pixels or 'none'"):
        parse_size("big", "--resize")


# -- checkpoints -------------------------------------------------------------------------------


def _resnet20_state(num_classes: int = 10, in_channels: int = 3) -> dict[str, object]:
    from resnet_opt.models.cifar import cifar_resnet

    model = cifar_resnet(20, in_channels=in_channels, num_classes=num_classes)
    return dict(model.state_dict())


@pytest.mark.parametrize("under", [None, "state_dict", "model", "model_state_dict"])
def test_checkpoint_layouts_and_prefixes(tmp_path: Path, under: str | None) -> None:
    state = {f"module.{k}": v for k, v in _resnet20_state(num_classes=5).items()}
    path = tmp_path / "ckpt.pt"
    torch.save(state if under is None else {under: state, "epoch": 3}, path)
    loaded = load_model(ModelRequest(model="resnet20", weights=str(path)))
    assert loaded.source.num_classes == 5  # read from the checkpoint's fc
    assert loaded.source.weights is WeightsKind.FILE
    with torch.inference_mode():
        assert loaded.module(torch.zeros(1, 3, 32, 32)).shape == (1, 5)


def test_in_channels_and_option_a_read_from_checkpoint(tmp_path: Path) -> None:
    from resnet_opt.models.cifar import Shortcut, cifar_resnet

    path = tmp_path / "a.pt"
    torch.save(cifar_resnet(32, in_channels=1, shortcut=Shortcut.A).state_dict(), path)
    loaded = load_model(ModelRequest(model="resnet32", weights=str(path)))
    assert loaded.source.in_channels == 1
    assert loaded.module.shortcut is Shortcut.A
    assert loaded.template.channels == 1


def test_mismatched_keys_are_listed(tmp_path: Path) -> None:
    state = _resnet20_state()
    state["head.weight"] = state.pop("fc.weight")
    state["fc.bias"] = torch.zeros(4)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ResnetOptError) as info:
        load_model(ModelRequest(model="resnet20", weights=str(path), num_classes=10))
    message = str(info.value)
    assert "1 missing keys: fc.weight" in message
    assert "1 unexpected keys: head.weight" in message
    assert "fc.bias (checkpoint 4, model 10)" in message


def test_pickles_need_trust(tmp_path: Path) -> None:
    from resnet_opt.models.cifar import cifar_resnet

    whole = tmp_path / "whole.pt"
    torch.save(cifar_resnet(20, num_classes=4), whole)
    with pytest.raises(ResnetOptError, match="--trust-pickle"):
        load_model(ModelRequest(model=str(whole)))
    loaded = load_model(ModelRequest(model=str(whole), trust_pickle=True))
    assert loaded.source.kind is SourceKind.PICKLE and loaded.name == "whole"
    # a training checkpoint with Python objects in it: the same rule
    ckpt = tmp_path / "objects.pt"
    torch.save({"state_dict": _resnet20_state(), "args": ResnetOptError("x")}, ckpt)
    with pytest.raises(ResnetOptError, match="--trust-pickle"):
        load_model(ModelRequest(model="resnet20", weights=str(ckpt)))
    trusted = load_model(ModelRequest(model="resnet20", weights=str(ckpt), trust_pickle=True))
    assert trusted.source.num_classes == 10


def test_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ResnetOptError, match="not a PyTorch checkpoint"):
        load_model(ModelRequest(model="resnet20", weights=str(garbage)))
    weights_only = tmp_path / "weights.pt"
    torch.save(_resnet20_state(), weights_only)
    with pytest.raises(ResnetOptError, match="holds weights only"):
        load_model(ModelRequest(model=str(weights_only)))
    no_state = tmp_path / "nostate.pt"
    torch.save({"epoch": 1, "lr": torch.tensor(0.1), "notes": "x"}, no_state)
    with pytest.raises(ResnetOptError, match="no state_dict in this checkpoint"):
        load_model(ModelRequest(model="resnet20", weights=str(no_state)))
    with pytest.raises(ResnetOptError, match="already ONNX"):
        load_model(ModelRequest(model=str(tmp_path / "model.onnx")))


def test_registry_weights_must_be_explicit() -> None:
    with pytest.raises(ResnetOptError, match="pass --weights"):
        load_model(ModelRequest(model="resnet18"))
    with pytest.raises(ResnetOptError, match="takes 3 input channels"):
        load_model(ModelRequest(model="resnet18", weights="none", in_channels=1))


def test_random_init_is_seeded() -> None:
    a = load_model(ModelRequest(model="resnet20", weights="none", seed=1))
    b = load_model(ModelRequest(model="resnet20", weights="none", seed=1))
    c = load_model(ModelRequest(model="resnet20", weights="none", seed=2))
    assert a.source.state_sha256 == b.source.state_sha256 != c.source.state_sha256


# -- torchvision weights enums ---------------------------------------------------------------


def test_weights_enum_missing_from_cache_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error

    import torch.hub

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr(torch.hub, "urlopen", offline)  # the download's fetch, offline
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    with pytest.raises(ResnetOptError) as info:
        load_model(ModelRequest(model="resnet50", weights="IMAGENET1K_V2"))
    message = str(info.value)
    assert str(expected) in message and "could not be downloaded (" in message
    assert "no network here" in message and not expected.exists()
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in message
    with pytest.raises(ResnetOptError, match="known: IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        load_model(ModelRequest(model="resnet50", weights="IMAGENET1K_V7"))


def test_weights_enum_from_cache_is_hash_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    from resnet_opt.models import torchvision_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cached)  # not the published bytes
    with pytest.raises(ResnetOptError, match="does not match the hash in its name"):
        load_model(ModelRequest(model="resnet18", weights="DEFAULT"))
    # the same rule accepts a file whose name carries its hash prefix
    from resnet_opt.core.hashing import sha256_file

    sha = sha256_file(cached)
    named = cached.with_name(f"resnet18-{sha[:8]}.pth")
    torchvision_weights.check_hash_prefix(named, sha)
    template = torchvision_weights.template(torchvision_weights.resolve("resnet50", "DEFAULT"))
    assert (template.resize, template.crop) == (232, 224)  # IMAGENET1K_V2's own transforms
    assert template.labels is not None and len(template.labels) == 1000


# -- user factories, TorchScript ------------------------------------------------------------------


def test_factory_file_and_errors(factory_file: Path) -> None:
    loaded = load_model(ModelRequest(model=f"{factory_file}:build"))
    assert loaded.name == "build" and loaded.source.kind is SourceKind.FACTORY
    assert loaded.source.code_sha256 is not None
    assert loaded.template.origin.startswith("ImageNet recipe")
    with pytest.raises(ResnetOptError, match="no 'missing' in"):
        load_model(ModelRequest(model=f"{factory_file}:missing"))
    with pytest.raises(ResnetOptError, match=r"returned a int, not a torch\.nn\.Module"):
        load_model(ModelRequest(model=f"{factory_file}:not_a_module"))
    with pytest.raises(ResnetOptError, match="factory failed \\(ValueError: no GPU found\\)"):
        load_model(ModelRequest(model=f"{factory_file}:broken"))
    with pytest.raises(ResnetOptError, match="is a int, not callable"):
        load_model(ModelRequest(model=f"{factory_file}:VALUE"))
    with pytest.raises(ResnetOptError, match="no such file"):
        load_model(ModelRequest(model=f"{factory_file.with_name('none.py')}:build"))
    with pytest.raises(ResnetOptError, match="--num-classes builds a registry"):
        load_model(ModelRequest(model=f"{factory_file}:build", num_classes=3))


def test_factory_file_import_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import no_such_module_here\n")
    with pytest.raises(ResnetOptError, match="import failed \\(ModuleNotFoundError"):
        load_model(ModelRequest(model=f"{path}:build"))


def test_package_module_factory(
    factory_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(factory_file.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_model(ModelRequest(model="userpkg.nets:build"))
    assert loaded.source.model == "userpkg.nets:build"
    with pytest.raises(ResnetOptError, match=r"cannot import nosuchpkg\.nets"):
        load_model(ModelRequest(model="nosuchpkg.nets:build"))


def test_torchscript_files(factory_file: Path, tmp_path: Path) -> None:
    built = load_model(ModelRequest(model=f"{factory_file}:build")).module
    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.trace(built, torch.zeros(1, 3, 8, 8)), str(path))
    loaded = load_model(ModelRequest(model=str(path)))
    assert loaded.source.kind is SourceKind.TORCHSCRIPT and loaded.name == "net"
    from resnet_opt.models.probe import count_batchnorm

    assert count_batchnorm(loaded.module) == 1
    with pytest.raises(ResnetOptError, match="carries its own weights"):
        load_model(ModelRequest(model=str(path), weights=str(path)))
    broken = tmp_path / "broken.ts"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ResnetOptError, match="not a"):
        load_model(ModelRequest(model=str(broken)))


def test_dry_run_reads_classes_and_refuses_what_does_not_fit(factory_file: Path) -> None:
    from resnet_opt.models.probe import check_input_size, dry_run

    fixed = load_model(ModelRequest(model=f"{factory_file}:fixed_size")).module
    assert dry_run(fixed, (3, 8, 8), "fixed_size") == 2
    with pytest.raises(ResnetOptError, match="fails on a 1×3×16×16 input"):
        dry_run(fixed, (3, 16, 16), "fixed_size")
    with pytest.raises(ResnetOptError, match="too small for the model"):
        check_input_size("resnet50", 16, get_entry("resnet50").min_input_size)


# -- rebuilding from a record -------------------------------------------------------------------


def test_rebuild_checks_files_and_tensors(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(_resnet20_state(), path)
    loaded = load_model(ModelRequest(model="resnet20", weights=str(path)))
    again = rebuild(loaded.source)
    assert again.source.state_sha256 == loaded.source.state_sha256
    random = load_model(ModelRequest(model="resnet20", weights="none", seed=7))
    assert rebuild(random.source).source.state_sha256 == random.source.state_sha256
    torch.save(_resnet20_state(), path)  # other random weights, same file name
    with pytest.raises(ResnetOptError, match="changed since export"):
        rebuild(loaded.source)


# -- downloads (a local file server; never the network) --------------------------------------


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving tmp_path/served: (base URL, folder)."""
    import http.server
    import threading
    from typing import Any

    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_downloads_with_the_published_hash_check(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    import hashlib

    from resnet_opt.models.torchvision_weights import DownloadError, fetch

    base, served = file_server
    payload = b"weights" * 1000
    digest = hashlib.sha256(payload).hexdigest()
    good = f"model-{digest[:8]}.pth"
    (served / good).write_bytes(payload)
    target = tmp_path / "cache" / good
    fetch(f"{base}/{good}", target)
    assert target.read_bytes() == payload
    # a file whose content is not the one its name promises is refused, and nothing is left
    bad = "model-deadbeef.pth"
    (served / bad).write_bytes(payload)
    with pytest.raises(DownloadError, match="deadbeef"):
        fetch(f"{base}/{bad}", tmp_path / "cache" / bad)
    assert not (tmp_path / "cache" / bad).exists()
    with pytest.raises(DownloadError):
        fetch(f"{base}/absent-12345678.pth", tmp_path / "cache" / "absent-12345678.pth")
