"""The monthly MHSDS submission package, built from a period's promoted Parquet.

Public API (see docs/submission.md):

* :func:`build_package` ``(settings, period, run_id) -> Path``: check, build, version.
* :func:`package` ``(period, run_id, settings=None) -> dict``: the same, as a JSON-able summary
  for Airflow XCom.
* :class:`SubmissionError`: the package was refused; ``.failures`` names period, table, check.
* :func:`add_parser` / :func:`cmd_package`: ``mhsds package --period YYYY-MM``.

Modules: ``idb`` (IDB tables, columns, text formats), ``checks`` (pre-submission checks),
``package`` (build and versioning), ``diff`` (resubmission diff), ``audit`` (audit log),
``access_loader`` (fills the official Access IDB on Windows).

Importing this package is cheap (standard library only); pyarrow and DuckDB load when a package
is built. Note: the name ``package`` here is the function; import the module's other names with
``from mhsds_pipeline.submission.package import ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

# Imported before ``package`` is defined below: loading the submodule binds the attribute
# ``package`` to the module, and the function must be what that name means afterwards.
from mhsds_pipeline.submission.package import (
    CheckFailure,
    PackageResult,
    SubmissionError,
    build_package,
    current_package,
    package,
    package_period,
)

__all__ = [
    "CheckFailure",
    "PackageResult",
    "SubmissionError",
    "add_parser",
    "build_package",
    "cmd_package",
    "current_package",
    "package",
    "package_period",
]


def cmd_package(ns: argparse.Namespace) -> int:
    """``mhsds package``: build the period's package; exit 1 with the failed checks if refused."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.period import PeriodError, ReportingPeriod

    try:
        period = ReportingPeriod.resolve(ns.period)
    except PeriodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()
    run_id = ns.run_id or f"cli__{uuid.uuid4().hex[:12]}"
    try:
        result = package_period(settings, period, run_id)
    except SubmissionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    summary = result.summary()
    print(json.dumps(summary, indent=2, default=str))
    verb = "created" if result.status == "created" else "unchanged; current package is"
    print(f"\nMHSDS {period} submission package {verb} {result.version}: {result.path}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``package`` on the ``mhsds`` CLI's subparsers."""
    p = subparsers.add_parser(
        "package",
        help="build the SDCS submission package (IDB-shaped CSV + manifest) from a period's outputs",
        description=(
            "Run the pre-submission checks on the promoted outputs of a period and write a new, "
            "versioned submission package under output/submissions/<YYYY-MM>/ if the content changed."
        ),
    )
    p.add_argument("--period", default="", help="YYYY-MM; default: the latest complete month")
    p.add_argument("--run-id", default=None, help="recorded in the manifest and audit log")
    p.set_defaults(func=cmd_package)
    return p
