"""Every registered backend is a whole unit (ARCHITECTURE.md, "Where a new backend goes"): each
part its unit names exists and is what the generic code expects, so a backend added with a part
missing or misnamed fails here, not on a user's machine."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from resnet_opt.backends.registry import (
    Backend,
    Target,
    build_backends,
    build_part,
    targets_of,
    unit,
    units,
)
from resnet_opt.backends.spec import BackendUnit, Natural, module_of, resolve

BACKENDS = [b.value for b in Backend]
BUILDERS = [b.value for b in build_backends()]


def _frozen_dataclass(cls: Any) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return (
        isinstance(cls, type) and dataclasses.is_dataclass(cls) and bool(params and params.frozen)
    )


def test_every_backend_has_a_unit_and_every_target_one_backend() -> None:
    assert [u.name for u in units()] == BACKENDS
    declared = [spec.name for u in units() for spec in u.targets]
    assert sorted(declared) == sorted(t.value for t in Target)  # no target twice, none left out
    for target in Target:
        assert target in targets_of(target.backend)


@pytest.mark.parametrize("name", BACKENDS)
def test_the_runner_opener_takes_an_artifact_and_options(name: str) -> None:
    backend = Backend(name)
    opener = resolve(unit(backend).runner)
    assert callable(opener)
    params = list(inspect.signature(opener).parameters.values())
    assert params[0].name == "artifact"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[1:])  # options by name only


@pytest.mark.parametrize("name", BACKENDS)
def test_the_unit_says_what_reports_and_installs_need(name: str) -> None:
    declared: BackendUnit = unit(Backend(name))
    assert declared.title and declared.tools
    for spec in declared.targets:
        assert spec.colour.startswith("tab:")  # a matplotlib colour of its own in report.png
        for module, why in spec.requires:
            assert module and why
    plain = declared.targets[0]
    assert plain.provider is None  # the backend's own target comes first; variants follow
    if declared.build is None:
        assert plain.natural is not Natural.NONE  # a runner-only backend runs something


@pytest.mark.parametrize("name", BUILDERS)
def test_a_build_backend_has_every_build_part(name: str) -> None:
    from resnet_opt.cli.build import build_app
    from resnet_opt.pipeline.run_config import NOT_IN_RUN, BuildConfig

    backend = Backend(name)
    spec = build_part(backend)
    options = resolve(spec.options)
    assert _frozen_dataclass(options)
    fields = {f.name for f in dataclasses.fields(options)}
    assert set(spec.run_refused) <= fields and NOT_IN_RUN[options] == spec.run_refused
    build = resolve(spec.build)
    assert list(inspect.signature(build).parameters)[:3] == ["source", "output", "options"]
    assert "force" in inspect.signature(build).parameters
    builds_for: Callable[[Any], bool] = resolve(spec.run_builds)
    assert builds_for(None) is True  # every build backend builds the FP32 model in `run`
    if spec.unavailable is not None:
        assert callable(resolve(spec.unavailable))
    if spec.check is not None:
        assert list(inspect.signature(resolve(spec.check)).parameters) == ["output", "options"]
    assert spec.run_suffix.startswith(".") and name in spec.output_help.lower().replace(" ", "")
    resolve(spec.command)  # its module registers `build <backend>`
    assert name in {c.name for c in build_app.registered_commands}
    assert isinstance(BuildConfig().options(name), options)  # its [build.<backend>] table


@pytest.mark.parametrize("name", BUILDERS)
def test_a_build_backend_types_its_runner_details(name: str) -> None:
    path = unit(Backend(name)).runner_details
    assert path is not None and module_of(path) == module_of(unit(Backend(name)).runner)
    cls = resolve(path)
    assert _frozen_dataclass(cls)
    assert cls.from_dict(cls().to_dict()) == cls()


@pytest.mark.parametrize("name", BACKENDS)
def test_extras_and_tools_reach_deps_and_manifests(name: str) -> None:
    from resnet_opt.core.manifest import _tools
    from resnet_opt.deps import EXTRA_FOR_MODULE

    declared = unit(Backend(name))
    assert set(declared.tools) <= set(_tools())
    for module, extra in declared.extras.items():
        assert EXTRA_FOR_MODULE[module] == extra


def test_build_subcommands_are_listed_in_the_units_order() -> None:
    from resnet_opt.cli.build import build_app

    listed = [c.name for c in build_app.registered_commands]
    assert listed == BUILDERS
    assert [build_part(b).listed for b in build_backends()] == sorted(
        build_part(b).listed for b in build_backends()
    )


def test_build_help_names_every_build_backend() -> None:
    from resnet_opt.cli.build import build_app

    text = " ".join((build_app.info.help or "").split())
    for backend in build_backends():
        assert unit(backend).title in text, backend


def test_every_target_is_a_valid_report_backend() -> None:
    from resnet_opt.report.schema import json_schema

    allowed = json_schema()["$defs"]["backend"]["enum"]
    assert sorted(allowed) == sorted(t.value for t in Target)
