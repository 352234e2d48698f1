"""The monthly MHSDS submission package, built from a period's promoted Parquet.

Public API (see docs/submission.md):

* :func:`build_package` ``(settings, period, run_id) -> Path``: check, build, version.
* :func:`package` ``(period, run_id, settings=None) -> dict``: the same, as a JSON-able summary
  for Airflow XCom.
* :class:`SubmissionError`: the package was refused; ``.failures`` names period, table, check.
* :func:`add_parser` / :func:`cmd_package`: ``mhsds package --period YYYY-MM``; it also
  registers :func:`cmd_audit_verify`: ``mhsds audit verify [--period YYYY-MM]``.

Modules: ``idb`` (IDB tables, columns, text formats), ``checks`` (pre-submission checks),
``package`` (build and versioning), ``diff`` (resubmission diff), ``audit`` (audit log),
``manifest`` (manifest name and reader, :class:`CheckFailure`, :class:`SubmissionError`),
``access_loader`` (fills the official Access IDB on Windows). Imports run one way:
``package`` -> ``checks`` / ``diff`` -> ``manifest`` / ``idb`` (tests/unit/test_import_graph.py).

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
from mhsds_pipeline.submission import audit
from mhsds_pipeline.submission.package import (
    CheckFailure,
    PackageResult,
    SubmissionError,
    build_package,
    current_package,
    package,
    package_period,
    verify_submissions,
)

__all__ = [
    "CheckFailure",
    "PackageResult",
    "SubmissionError",
    "add_parser",
    "audit",
    "build_package",
    "cmd_audit_verify",
    "cmd_package",
    "current_package",
    "package",
    "package_period",
    "verify_submissions",
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
    except (SubmissionError, audit.AuditError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    summary = result.summary()
    print(json.dumps(summary, indent=2, default=str))
    verb = "created" if result.status == "created" else "unchanged; current package is"
    print(f"\nMHSDS {period} submission package {verb} {result.version}: {result.path}", file=sys.stderr)
    return 0


def cmd_audit_verify(ns: argparse.Namespace) -> int:
    """``mhsds audit verify``: exit 0 with a one-line summary if the audit log is intact;
    1 naming the first bad line (seq) and what is wrong; 2 without a key or with a bad period."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.period import PeriodError, ReportingPeriod

    try:
        period = ReportingPeriod.parse(ns.period) if ns.period else None
    except PeriodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = verify_submissions(load_settings(), period)
    except audit.AuditKeyError as exc:
        print(f"error: cannot verify the audit log: {exc}", file=sys.stderr)
        return 2
    scope = f"MHSDS {period}" if period else "MHSDS"
    if report.ok:
        print(f"{scope} {report.summary()}")
        return 0
    print(f"{scope} {report.summary()}", file=sys.stderr)
    for problem in report.problems[:20]:
        print(f"  - {problem}", file=sys.stderr)
    if len(report.problems) > 20:
        print(f"  ... and {len(report.problems) - 20} more", file=sys.stderr)
    return 1


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``audit verify`` on the ``mhsds`` CLI's subparsers."""
    p = subparsers.add_parser(
        "audit",
        help="check the submission audit log (keyed hash chain, head checkpoint, package anchors)",
    )
    actions = p.add_subparsers(dest="audit_command", required=True)
    v = actions.add_parser(
        "verify",
        help="verify the whole audit log chain against the packages on disk",
        description=(
            "Check every line's MAC and chain, the head checkpoint and each package manifest's "
            "audit_anchor, and that every package of --period (default: every period) has its "
            "package_created line and that current is its latest package. Exit 0 intact, "
            "1 broken or needing repair, 2 without a key."
        ),
    )
    v.add_argument(
        "--period", default="", help="YYYY-MM: check this period's packages (default: every period)"
    )
    v.set_defaults(func=cmd_audit_verify)
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``package`` and ``audit verify`` on the ``mhsds`` CLI's subparsers."""
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
    add_audit_parser(subparsers)
    return p
