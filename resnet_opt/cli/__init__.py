"""The `resnet-opt` command line: one short module per command, each a thin layer over a stage.

A command parses its flags into the stage's options dataclass (`params.fill`: a flag is named
after its field) and calls the stage function; all work happens in `resnet_opt.pipeline`.
`app.py` holds the application and the error rule (one line on stderr, exit 1, 2 or 3),
`params.py` the parameter types and parsers the commands share. Importing this package registers
every command, in the order `--help` lists them (hence no import sorting here); `build`'s
subcommands are the build backends' units' `command` modules, in `Backend` order.
"""

from __future__ import annotations

import importlib

# isort: off
from resnet_opt.cli import info, export, import_model, fold, quantize, evaluate  # noqa: F401
from resnet_opt.cli import build  # noqa: F401
from resnet_opt.backends.registry import build_backends, build_part

for _backend in build_backends():  # `build <backend>`: each build unit's subcommand module
    importlib.import_module(build_part(_backend).command)
from resnet_opt.cli import bench, bundle, compare, report, run  # noqa: E402, F401
from resnet_opt.cli.app import app, main  # noqa: E402

# isort: on

__all__ = ["app", "main"]
