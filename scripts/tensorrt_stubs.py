"""Copy the tensorrt-stubs package into typings/, fixed so that mypy can read it.

tensorrt-stubs (PyPI, the TensorRT 10.13 Python API as type stubs) cannot be used as installed:
its `tensorrt/` folder has no `py.typed` marker, so mypy skips it as untyped, and its generated
`tensorrt_bindings/tensorrt.pyi` has syntax errors (a parameter named `in`, a parameter without
a default after defaulted ones), which stop mypy outright. This script copies the installed
stubs and makes only those two mechanical repairs, so that mypy checks our TensorRT layer
against NVIDIA's API as the stubs describe it.

typings/ is generated, not committed (pyproject's `mypy_path` points there): the test suite
writes it before it runs mypy (the `tensorrt_stubs` fixture in tests/conftest.py), and a
developer runs this script once before running mypy by hand. Only files whose text changed are
rewritten, so mypy's cache stays valid.

    pip install --no-deps tensorrt-stubs==10.13.0.35.1
    python scripts/tensorrt_stubs.py          # writes typings/
    python scripts/tensorrt_stubs.py --check  # exit 1 when typings/ is missing or stale
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

DIST = "tensorrt-stubs"
VERSION = "10.13.0.35.1"
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "typings"
STUB_FILES = (
    "tensorrt/__init__.pyi",
    "tensorrt_bindings/__init__.pyi",
    "tensorrt_bindings/tensorrt.pyi",
)
HEADER = (
    "# Copied from tensorrt-stubs {version} (MIT, see typings/LICENSE) by\n"
    "# scripts/tensorrt_stubs.py, with only the syntax repairs that script describes.\n"
    "# Do not edit by hand.\n"
)

_DEF = re.compile(r"^(?P<indent>\s*)def (?P<name>\w+)\((?P<params>.*)\)(?P<rest>\s*->.*:\s*)$")


def _split_params(params: str) -> list[str]:
    """Split a parameter list on top-level commas (brackets may hold commas)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in params:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def repair_line(line: str) -> str:
    """Rename a parameter called `in` to `in_`; give `= ...` to a required one after defaults."""
    match = _DEF.match(line)
    if not match:
        return line
    params = _split_params(match["params"])
    fixed, seen_default, changed = [], False, False
    for param in params:
        new = param
        if re.match(r"^in\s*:", new):
            new = "in_" + new[2:]
        bare = new.lstrip("*")
        if new.startswith("*"):
            seen_default = False if new == "*" else seen_default
        elif "=" in new:
            seen_default = True
        elif seen_default and ":" in bare:
            new = new + " = ..."
        changed |= new != param
        fixed.append(new)
    if not changed:
        return line
    return f"{match['indent']}def {match['name']}({', '.join(fixed)}){match['rest']}"


def stub_sources() -> dict[str, str]:
    """The installed stub files by relative path; exit with a message when absent."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        sys.exit(f"{DIST} is not installed: pip install --no-deps {DIST}=={VERSION}")
    if dist.version != VERSION:
        sys.exit(f"{DIST} {dist.version} is installed; this copy is made from {VERSION}")
    sources = {}
    for rel in STUB_FILES:
        path = Path(str(dist.locate_file(rel)))
        sources[rel] = path.read_text(encoding="utf-8")
    lic = [f for f in dist.files or () if f.name == "LICENSE"]
    sources["LICENSE"] = Path(str(dist.locate_file(lic[0]))).read_text(encoding="utf-8")
    return sources


def render() -> dict[str, str]:
    out = {}
    for rel, text in stub_sources().items():
        if rel.endswith(".pyi"):
            body = "\n".join(repair_line(line) for line in text.split("\n"))
            out[rel] = HEADER.format(version=VERSION) + body
        else:
            out[rel] = text
    out["tensorrt/py.typed"] = ""
    out["tensorrt_bindings/py.typed"] = ""
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when typings/ is missing or stale"
    )
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args()
    files = render()
    stale = [
        rel
        for rel, text in files.items()
        if not (args.target / rel).is_file()
        or (args.target / rel).read_text(encoding="utf-8") != text
    ]
    if args.check:
        for rel in stale:
            print(f"stale: {args.target / rel}")
        return 1 if stale else 0
    for rel in stale:
        path = args.target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8")
    print(f"wrote {len(stale)} of {len(files)} files under {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
