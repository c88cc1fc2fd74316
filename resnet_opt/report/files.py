"""Writing a report folder (report.json, report.md, report.png) and the CI step summary.

The three files are written under temporary names and renamed together on success, so a failed
plot never leaves a JSON without its picture, and an existing report is kept unless `force`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from resnet_opt.core import output_lock
from resnet_opt.core.atomic import staged_outputs
from resnet_opt.errors import ResnetOptError
from resnet_opt.report.markdown import render
from resnet_opt.report.plot import plot_report
from resnet_opt.report.schema import Report, report_json

JSON_NAME = "report.json"
MARKDOWN_NAME = "report.md"
PLOT_NAME = "report.png"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    plot: Path


def check_report_folder(folder: Path, *, force: bool = False) -> ReportFiles:
    """The report's files in `folder`, refused as `write_report` would refuse them (a file where
    the folder goes; an existing report without `force`): bench asks before it measures."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ResnetOptError(f"{folder}: exists and is not a folder; give a folder for the report")
    files = ReportFiles(folder / JSON_NAME, folder / MARKDOWN_NAME, folder / PLOT_NAME)
    if not force:
        for path in (files.json, files.markdown, files.plot):
            if path.exists():
                raise ResnetOptError(f"{path}: exists; pass --force to overwrite it")
    return files


# what a report folder takes at most (JSON, Markdown and a PNG of a few points): checked free
# before minutes of measuring, so a full disk fails at once, not in the plot step
REPORT_BYTES = 8 * 1024**2


@contextlib.contextmanager
def report_folder_lock(folder: Path | None) -> Iterator[None]:
    """Hold `folder`'s writer lock while bench measures and writes, and check there is room for
    the report first: a second `bench -o` of the same folder is refused before it measures,
    and a full disk is one line before the first measurement."""
    if folder is None:
        yield
        return
    folder = Path(folder)
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < REPORT_BYTES:
        raise ResnetOptError(
            f"{folder}: {free / 1e6:.1f} MB free on its file system; the report needs about "
            f"{REPORT_BYTES / 1e6:.0f} MB"
        )
    held = output_lock.acquire(folder) if folder.parent.is_dir() else None
    try:
        yield
    finally:
        output_lock.release(held)


def write_report(report: Report, folder: Path, *, force: bool = False) -> ReportFiles:
    """Write the report folder atomically; refuses existing files unless `force`."""
    files = check_report_folder(folder, force=force)
    with staged_outputs(force=force) as staged:
        json_tmp = staged.add(files.json)
        md_tmp = staged.add(files.markdown)
        png_tmp = staged.add(files.plot)
        json_tmp.write_text(report_json(report), encoding="utf-8")
        md_tmp.write_text(render(report, image=PLOT_NAME), encoding="utf-8")
        plot_report(report, png_tmp)
    return files


def check_step_summary() -> None:
    """Refuse, before any measuring, a $GITHUB_STEP_SUMMARY that could not be appended to:
    `--summary` must not fail after the report has been written."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target:
        return
    path = Path(target)
    if path.is_dir():
        raise ResnetOptError(f"{path} ({STEP_SUMMARY_ENV}): is a folder, not a file")
    writable = path.exists() and os.access(path, os.W_OK)
    creatable = not path.exists() and path.parent.is_dir() and os.access(path.parent, os.W_OK)
    if not (writable or creatable):
        raise ResnetOptError(f"{path} ({STEP_SUMMARY_ENV}): cannot append the step summary there")


def append_step_summary(markdown: str) -> Path | None:
    """Append to the file $GITHUB_STEP_SUMMARY names (GitHub Actions); None when it is unset."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        reason = exc.strerror or exc
        raise ResnetOptError(f"{path}: cannot append the step summary ({reason})") from exc
    return path
