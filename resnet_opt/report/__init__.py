"""Bench reports: the versioned JSON (schema.py), Markdown, plot, files and `compare`.

Only the standard library and numpy are imported here; jsonschema and matplotlib load inside the
functions that need them.
"""

from resnet_opt.report.files import (
    ReportFiles,
    append_step_summary,
    check_report_folder,
    write_report,
)
from resnet_opt.report.schema import SCHEMA_VERSION, Report, load_report

__all__ = [
    "SCHEMA_VERSION",
    "Report",
    "ReportFiles",
    "append_step_summary",
    "check_report_folder",
    "load_report",
    "write_report",
]
