"""Build the monthly MHSDS submission package from a period's promoted Parquet.

Layout (packages live outside the pruned ``.versions`` so every package of a period is kept)::

    output/submissions/audit_log.jsonl                  append-only, keyed audit trail (audit.py)
    output/submissions/audit_head.json                  the log's head checkpoint (audit.py)
    output/submissions/<YYYY-MM>/v001/                  first package of the period
        MHS000Header.csv ... MHS902ServiceTeamDetails.csv   one file per IDB table, IDB order
        submission_manifest.json                        what, from what, hashes, DQ status
    output/submissions/<YYYY-MM>/v002/                  a resubmission: changed content only
        ...  + diff_summary.json, diff_keys.csv         what changed against v001, by key
    output/submissions/<YYYY-MM>/current -> v002        the package to upload now
    output/<YYYY-MM>/submission -> ../../../submissions/<YYYY-MM>/v002
        (inside the promoted version directory the package was built from)

SDCS keeps only the last good upload for a month (mhsds.md 6), so a resubmission is a whole
package, never a delta; the diff is for the people who sign it off. A package is written into a
temporary directory and renamed into place, so a reader never sees half a package, and its files
are made read-only. Packaging the same content again creates nothing and reports ``unchanged``.
If a pre-submission check fails (:mod:`.checks`) no package is written and
:class:`SubmissionError` names the period, table and check; the refusal is still recorded in the
audit log, because who tried to submit what is exactly what IG asks.

Packaging first verifies the audit log (:func:`verify_submissions`) and refuses, writing
nothing, if it is broken; each manifest anchors the log's head (``audit_anchor``). A crash
after a package is renamed into place but before its audit line leaves ``current`` or the log
behind the package on disk: the next packaging of that period moves ``current`` and writes the
missing ``package_created`` line (``"recovered": true``), once.

This module imports only the standard library at import time (the CLI registers it on every
``mhsds`` call); pyarrow and DuckDB are imported when a package is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.config import MHSDS_SPEC_VERSION, Settings, load_settings
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.submission import audit
from mhsds_pipeline.submission.manifest import MANIFEST_NAME, SubmissionError, read_manifest
from mhsds_pipeline.submission.manifest import CheckFailure as CheckFailure  # re-exported

log = logging.getLogger(__name__)

DIFF_SUMMARY_NAME = "diff_summary.json"
DIFF_KEYS_NAME = "diff_keys.csv"
_VERSION_RE = re.compile(r"^v(\d{3,})$")
_PERIOD_RE = re.compile(r"^\d{4}-\d{2}$")


@dataclass
class PackageResult:
    period: str
    status: str  # created | unchanged
    version: str  # v001, v002, ...
    path: Path
    manifest: dict
    diff: dict | None = None
    seconds: float = 0.0
    links: dict[str, str] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Small and JSON-able: what Airflow keeps in XCom (no patient data, no keys)."""
        return {
            "period": self.period,
            "status": self.status,
            "version": self.version,
            "path": str(self.path),
            "content_sha256": self.manifest["content_sha256"],
            "row_counts": {t["idb_table"]: t["rows"] for t in self.manifest["tables"]},
            "dq_status": self.manifest["dq"]["gate_status"],
            "previous_version": self.manifest.get("previous_version"),
            "changes": _changes(self.diff),
            "repaired": list(self.repaired),
            "seconds": self.seconds,
        }


def _changes(diff_doc: dict | None) -> dict | None:
    """Per table, the added / removed / changed counts of tables that changed."""
    if not diff_doc:
        return None
    return {
        t: {k: d[k] for k in ("added", "removed", "changed")}
        for t, d in diff_doc["tables"].items()
        if d["added"] or d["removed"] or d["changed"]
    }


# ---------------------------------------------------------------------------------------------
# Locations


def submissions_root(settings: Settings) -> Path:
    return settings.output_dir / "submissions"


def period_dir(settings: Settings, period: ReportingPeriod | str) -> Path:
    return submissions_root(settings) / str(period)


def list_versions(pdir: Path) -> list[Path]:
    """The period's packages, oldest first (temporary and hidden entries ignored)."""
    if not pdir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in pdir.iterdir() if (m := _VERSION_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def current_package(settings: Settings, period: ReportingPeriod | str) -> Path | None:
    versions = list_versions(period_dir(settings, period))
    return versions[-1] if versions else None


# ---------------------------------------------------------------------------------------------
# Small file helpers


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # directories cannot be fsynced on every platform
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")


def _point(link: Path, target: Path) -> bool:
    """Make ``link`` a relative symlink to ``target``, atomically (never clobbers a real dir)."""
    if link.exists() and not link.is_symlink():
        log.warning("%s exists and is not a symlink; not repointing it at %s", link, target)
        return False
    tmp = link.with_name(f".{link.name}.tmp-{uuid.uuid4().hex[:8]}")
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)
    return True


def content_sha256(tables: list[dict]) -> str:
    """Identity of a package's content: the format version plus every file's name and hash, in
    IDB order. Equal content means an identical upload, whatever run or manifest produced it."""
    from mhsds_pipeline.submission.idb import PACKAGE_FORMAT

    h = hashlib.sha256(f"{PACKAGE_FORMAT}\n".encode())
    for t in tables:
        h.update(f"{t['file']}\t{t['sha256']}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Build


def _write_tables(tmp: Path, source, specs) -> tuple[list[dict], list[str]]:
    """Write every IDB table file into ``tmp``; returns the manifest entries and warnings."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mhsds_pipeline.submission.idb import write_csv

    entries, warnings = [], []
    for spec in specs:
        src = source.version_dir / "mhsds" / f"{spec.idb_table}.parquet"
        table = pq.read_table(src)
        out = tmp / spec.file_name
        write_csv(table, spec, out)
        null_columns = [c for c in spec.column_names if table.column(c).null_count == table.num_rows]
        for col in spec.columns:
            if col.max_length and table.num_rows and col.data_type == "varchar":
                lengths = pc.utf8_length(table.column(col.name))
                over = int(pc.sum(pc.greater(lengths, col.max_length)).as_py() or 0)
                if over:
                    warnings.append(
                        f"{spec.idb_table}.{col.name}: {over} value(s) longer than the {col.text_format} "
                        f"format; SDCS rejects those records (format check)"
                    )
        entries.append(
            {
                "idb_table": spec.idb_table,
                "table_id": spec.table_id,
                "dbt_model": spec.model,
                "file": spec.file_name,
                "rows": table.num_rows,
                "bytes": out.stat().st_size,
                "sha256": sha256_file(out),
                "key": list(spec.key),
                "mandatory": spec.mandatory,
                "columns": [c.as_manifest() for c in spec.columns],
                "null_columns": null_columns,
                "source": {
                    "file": f"mhsds/{src.name}",
                    "sha256": source.table_sha256[spec.idb_table],
                },
            }
        )
    return entries, warnings


def _manifest(
    settings, rp, run_id, source, entries, warnings, content, version, previous, diff_doc, anchor
) -> dict:
    from mhsds_pipeline.publish import code_version
    from mhsds_pipeline.submission.idb import (
        CSV_DIALECT,
        DATE_FORMAT,
        PACKAGE_FORMAT,
        TIME_FORMAT,
        TIMESTAMP_FORMAT,
        V6_IDB_TABLES,
    )

    produced = {e["idb_table"] for e in entries}
    return {
        "dataset": "MHSDS",
        "package_format": PACKAGE_FORMAT,
        "spec_version": MHSDS_SPEC_VERSION,
        "reporting_period": str(rp),
        "reporting_period_start": rp.start.isoformat(),
        "reporting_period_end": rp.end.isoformat(),
        "uniq_month_id": rp.uniq_month_id,
        "org_id_provider": settings.org_id_provider,
        "org_id_submit": settings.org_id_submit,
        "version": version,
        "previous_version": previous,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id,
        "code_version": code_version(settings.home),
        "content_sha256": content,
        "audit_anchor": anchor,
        "source": {
            "version_dir": source.version_dir.name,
            "manifest_sha256": source.manifest_sha256,
            "run_id": source.manifest.get("run_id"),
            "code_version": source.manifest.get("code_version"),
            "created_at": source.manifest.get("created_at"),
        },
        "dq": source.dq,
        "formats": {
            "date": DATE_FORMAT,
            "time": TIME_FORMAT,
            "timestamp": TIMESTAMP_FORMAT,
            "codes": "text as built (leading zeros kept, no trimming or padding)",
            "integer": "decimal digits",
        },
        "csv": CSV_DIALECT,
        "tables": entries,
        "idb_tables_not_populated": [t for t in V6_IDB_TABLES if t not in produced],
        "warnings": warnings,
        "diff": diff_doc,
    }


def _make_read_only(directory: Path) -> None:
    for p in directory.iterdir():
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            _fsync(p)
    _fsync(directory)


# ---------------------------------------------------------------------------------------------
# Audit: verify before writing, anchor, repair after a crash


def _recorded(entries: list[dict]) -> dict[tuple[str, str], dict]:
    """(period, version) -> its ``package_created`` line (the last one, if ever repeated)."""
    found = {}
    for e in entries:
        what = e.get("what") or {}
        if e.get("event") == "package_created" and what.get("period") and what.get("version"):
            found[(str(what["period"]), str(what["version"]))] = e
    return found


def _period_dirs(settings: Settings, period: ReportingPeriod | str | None) -> list[Path]:
    root = submissions_root(settings)
    if period is not None:
        return [root / str(period)] if (root / str(period)).is_dir() else []
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _PERIOD_RE.match(p.name))


def _current_is_latest(pdir: Path, latest: Path) -> bool:
    link = pdir / "current"
    return link.is_symlink() and link.resolve() == latest.resolve()


def verify_submissions(
    settings: Settings, period: ReportingPeriod | str | None = None, key=None
) -> audit.VerifyReport:
    """Verify the audit log against the packages on disk: the whole keyed chain, its head
    checkpoint, the ``audit_anchor`` of every package manifest, and, for ``period`` (default:
    every period), that each package has its ``package_created`` line with the manifest's hash
    and that ``current`` is the latest package. Raises ``audit.AuditKeyError`` without a key."""
    key = key or audit.load_key(settings.data_dir)
    anchors, packages, unreadable = [], [], []
    selected = {p.name for p in _period_dirs(settings, period)}
    for pdir in _period_dirs(settings, None):
        for vdir in list_versions(pdir):
            try:
                manifest = read_manifest(vdir)
            except (OSError, ValueError):
                unreadable.append(
                    audit.Problem(
                        "package", f"{pdir.name} {vdir.name}: {MANIFEST_NAME} is missing or unreadable"
                    )
                )
                continue
            a = manifest.get("audit_anchor")
            if isinstance(a, dict) and isinstance(a.get("seq"), int):
                label = f"{pdir.name}/{vdir.name}/{MANIFEST_NAME}"
                anchors.append(audit.Anchor(label, a["seq"], str(a.get("mac")), a.get("key_id")))
            if pdir.name in selected:
                packages.append((pdir, vdir))
    report = audit.check_log(audit.audit_log_path(settings), key, anchors)
    recorded = _recorded(report.entries)
    problems = list(unreadable)
    for pdir, vdir in packages:
        entry = recorded.get((pdir.name, vdir.name))
        if entry is None:
            problems.append(
                audit.Problem(
                    "unrecorded",
                    f"{pdir.name} {vdir.name} has no package_created line (a crash before the audit "
                    f"append?); run `mhsds package --period {pdir.name}` to record it",
                    repairable=True,
                )
            )
        elif (entry.get("outputs") or {}).get("submission_manifest_sha256") != sha256_file(
            vdir / MANIFEST_NAME
        ):
            problems.append(
                audit.Problem(
                    "package",
                    f"{pdir.name} {vdir.name}: {MANIFEST_NAME} is not the one this line recorded "
                    "(package changed after it was written)",
                    seq=entry.get("seq"),
                )
            )
    for name in sorted(selected):
        versions = list_versions(submissions_root(settings) / name)
        if versions and not _current_is_latest(versions[-1].parent, versions[-1]):
            problems.append(
                audit.Problem(
                    "current",
                    f"{name}: current is not the latest package {versions[-1].name} (a crash before the "
                    f"link moved?); run `mhsds package --period {name}` to repair",
                    repairable=True,
                )
            )
    report.add(problems)
    report.packages = len(packages)
    return report


def _created_record(manifest: dict, target: Path) -> tuple[dict, dict]:
    """``what`` and ``outputs`` of a ``package_created`` line, from the package itself."""
    what = {
        "period": manifest["reporting_period"],
        "version": target.name,
        "path": str(target),
        "status": "created",
        "previous_version": manifest.get("previous_version"),
        "dq_status": (manifest.get("dq") or {}).get("gate_status"),
        "row_counts": {t["idb_table"]: t["rows"] for t in manifest["tables"]},
        "changes": _changes(manifest.get("diff")),
    }
    outputs = {
        "content_sha256": manifest["content_sha256"],
        "submission_manifest_sha256": sha256_file(target / MANIFEST_NAME),
        "files": {t["file"]: t["sha256"] for t in manifest["tables"]},
    }
    return what, outputs


def _repair(settings: Settings, rp: ReportingPeriod, run_id: str, key) -> list[str]:
    """After a crash between promotion and the audit append: point ``current`` at the latest
    package and write each missing ``package_created`` line. Idempotent: a second call finds
    nothing to do."""
    pdir = period_dir(settings, rp)
    if not list_versions(pdir):
        return []
    log_path = audit.audit_log_path(settings)
    repaired = []
    with audit.locked(pdir / ".lock"):
        versions = list_versions(pdir)
        if not _current_is_latest(pdir, versions[-1]) and _point(pdir / "current", versions[-1]):
            repaired.append(f"current -> {versions[-1].name}")
        recorded = _recorded(audit.read(log_path))
        for vdir in versions:
            if (str(rp), vdir.name) in recorded:
                continue
            manifest = read_manifest(vdir)
            what, outputs = _created_record(manifest, vdir)
            src = manifest.get("source") or {}
            audit.append(
                log_path,
                "package_created",
                run_id=run_id,
                what={
                    **what,
                    "recovered": True,
                    "original_run_id": manifest.get("run_id"),
                    "original_created_at": manifest.get("created_at"),
                },
                inputs={
                    "reconstructed_from": MANIFEST_NAME,
                    "version_dir": src.get("version_dir"),
                    "manifest_sha256": src.get("manifest_sha256"),
                    "source_run_id": src.get("run_id"),
                    "tables": {
                        t["idb_table"]: (t.get("source") or {}).get("sha256") for t in manifest["tables"]
                    },
                    "gate_sha256": (manifest.get("dq") or {}).get("gate_sha256"),
                    "dq_results_sha256": (manifest.get("dq") or {}).get("dq_results_sha256"),
                },
                outputs=outputs,
                key=key,
            )
            repaired.append(f"audit entry for {vdir.name}")
    for item in repaired:
        log.warning("MHSDS %s: repaired after an interrupted packaging run: %s", rp, item)
    return repaired


def package_period(settings: Settings, period: ReportingPeriod | str, run_id: str) -> PackageResult:
    """Check, build and version the period's package. Raises :class:`SubmissionError`, or
    ``audit.AuditLogError`` (nothing written) when the audit log fails verification.

    Holds the period's publication lock: the package is built from the current version and
    linked into it, while an asset-triggered MHIS run may be making the next version."""
    from mhsds_pipeline.locks import publication_lock

    with publication_lock(settings, str(ReportingPeriod.parse(str(period))), run_id, "package_submission"):
        return _package_period(settings, period, run_id)


def _package_period(settings: Settings, period: ReportingPeriod | str, run_id: str) -> PackageResult:
    from mhsds_pipeline.submission import checks
    from mhsds_pipeline.submission import diff as diffmod
    from mhsds_pipeline.submission.idb import table_specs

    t0 = time.perf_counter()
    rp = ReportingPeriod.parse(str(period))
    log_path = audit.audit_log_path(settings)
    key = audit.key_for_append(log_path, settings.data_dir)
    report = verify_submissions(settings, rp, key)
    if report.broken:
        raise audit.AuditLogError(log_path, report.broken)
    repaired = _repair(settings, rp, run_id, key)

    specs = table_specs(Path(settings.dbt_project_dir))
    try:
        source = checks.open_source(settings, rp)
        checks.run_checks(settings, rp, source, specs)
    except SubmissionError as exc:
        audit.append(
            log_path,
            "package_refused",
            run_id=run_id,
            what={
                "period": str(rp),
                "failures": [f.as_dict() for f in exc.failures],
            },
            inputs=exc.inputs,
            key=key,
        )
        raise

    pdir = period_dir(settings, rp)
    pdir.mkdir(parents=True, exist_ok=True)
    diff_doc = None
    with audit.locked(pdir / ".lock"):
        tmp = pdir / f".tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            entries, warnings = _write_tables(tmp, source, specs)
            content = content_sha256(entries)
            versions = list_versions(pdir)
            latest = versions[-1] if versions else None
            if latest is not None and read_manifest(latest).get("content_sha256") == content:
                shutil.rmtree(tmp)
                status, target, manifest = "unchanged", latest, read_manifest(latest)
            else:
                number = int(_VERSION_RE.match(latest.name).group(1)) + 1 if latest else 1
                version = f"v{number:03d}"
                if latest is not None:
                    diff_doc = diffmod.diff_packages(latest, tmp, entries, keys_csv=tmp / DIFF_KEYS_NAME)
                    _write_json(tmp / DIFF_SUMMARY_NAME, diff_doc)
                manifest = _manifest(
                    settings,
                    rp,
                    run_id,
                    source,
                    entries,
                    warnings,
                    content,
                    version,
                    latest.name if latest else None,
                    diff_doc,
                    audit.head(log_path).as_dict(),
                )
                _write_json(tmp / MANIFEST_NAME, manifest)
                _make_read_only(tmp)
                target = pdir / version
                os.rename(tmp, target)
                _fsync(pdir)
                status = "created"
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        links = {}
        if _point(pdir / "current", target):
            links["current"] = str(pdir / "current")
        if _point(source.version_dir / "submission", target):
            links["period"] = str(settings.output_dir / str(rp) / "submission")

    result = PackageResult(
        period=str(rp),
        status=status,
        version=target.name,
        path=target,
        manifest=manifest,
        diff=diff_doc,
        seconds=0.0,
        links=links,
        repaired=repaired,
    )
    what, outputs = _created_record(manifest, target)
    what.update(status=status, dq_status=source.dq.get("gate_status"), changes=_changes(diff_doc))
    audit.append(
        log_path,
        "package_created" if status == "created" else "package_unchanged",
        run_id=run_id,
        what=what,
        inputs=source.inputs,
        outputs=outputs,
        key=key,
    )
    result.seconds = round(time.perf_counter() - t0, 3)
    log.info("MHSDS %s submission package %s (%s) at %s", rp, target.name, status, target)
    return result


def build_package(settings: Settings, period: ReportingPeriod | str, run_id: str) -> Path:
    """The period's current package directory, built if the content changed (see module doc)."""
    return package_period(settings, period, run_id).path


def package(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """Airflow/CLI entry point: build the package and return a small JSON-able summary."""
    return package_period(settings or load_settings(), period, run_id).summary()
