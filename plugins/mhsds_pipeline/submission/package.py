"""Build the monthly MHSDS submission package from a period's promoted Parquet.

Layout (packages live outside the pruned ``.versions`` so every package of a period is kept)::

    output/submissions/audit_log.jsonl                  append-only audit trail (audit.py)
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mhsds_pipeline.config import MHSDS_SPEC_VERSION, Settings, load_settings
from mhsds_pipeline.period import ReportingPeriod

log = logging.getLogger(__name__)

MANIFEST_NAME = "submission_manifest.json"
DIFF_SUMMARY_NAME = "diff_summary.json"
DIFF_KEYS_NAME = "diff_keys.csv"
_VERSION_RE = re.compile(r"^v(\d{3,})$")


@dataclass(frozen=True)
class CheckFailure:
    """One failed pre-submission check. ``table`` is None for period-level checks."""

    period: str
    table: str | None
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.table or '(period)'}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


class SubmissionError(RuntimeError):
    """The package for a period was refused; nothing was written. ``failures`` lists every
    failed check (period, table, check, message)."""

    def __init__(self, period: str, failures: list[CheckFailure], inputs: dict | None = None):
        self.period = str(period)
        self.failures = list(failures)
        self.inputs = inputs or {}
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(
            f"MHSDS {self.period}: submission package refused, {len(self.failures)} pre-submission "
            f"check(s) failed (SDCS would reject the file). Nothing was written.\n{lines}"
        )

    @property
    def table(self) -> str | None:
        return self.failures[0].table if self.failures else None

    @property
    def check(self) -> str | None:
        return self.failures[0].check if self.failures else None


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

    def summary(self) -> dict:
        """Small and JSON-able: what Airflow keeps in XCom (no patient data, no keys)."""
        changes = None
        if self.diff:
            changes = {
                t: {k: d[k] for k in ("added", "removed", "changed")}
                for t, d in self.diff["tables"].items()
                if d["added"] or d["removed"] or d["changed"]
            }
        return {
            "period": self.period,
            "status": self.status,
            "version": self.version,
            "path": str(self.path),
            "content_sha256": self.manifest["content_sha256"],
            "row_counts": {t["idb_table"]: t["rows"] for t in self.manifest["tables"]},
            "dq_status": self.manifest["dq"]["gate_status"],
            "previous_version": self.manifest.get("previous_version"),
            "changes": changes,
            "seconds": self.seconds,
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


def read_manifest(package_dir: Path) -> dict:
    return json.loads((package_dir / MANIFEST_NAME).read_text())


def current_package(settings: Settings, period: ReportingPeriod | str) -> Path | None:
    versions = list_versions(period_dir(settings, period))
    return versions[-1] if versions else None


# ---------------------------------------------------------------------------------------------
# Small file helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def _manifest(settings, rp, run_id, source, entries, warnings, content, version, previous, diff_doc) -> dict:
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


def package_period(settings: Settings, period: ReportingPeriod | str, run_id: str) -> PackageResult:
    """Check, build and version the period's package. Raises :class:`SubmissionError`."""
    from mhsds_pipeline.submission import audit, checks
    from mhsds_pipeline.submission import diff as diffmod
    from mhsds_pipeline.submission.idb import table_specs

    t0 = time.perf_counter()
    rp = ReportingPeriod.parse(str(period))
    specs = table_specs(Path(settings.dbt_project_dir))
    log_path = audit.audit_log_path(settings)
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
        seconds=round(time.perf_counter() - t0, 3),
        links=links,
    )
    audit.append(
        log_path,
        "package_created" if status == "created" else "package_unchanged",
        run_id=run_id,
        what={
            "period": str(rp),
            "version": target.name,
            "path": str(target),
            "status": status,
            "previous_version": manifest.get("previous_version"),
            "dq_status": source.dq.get("gate_status"),
            "row_counts": {t["idb_table"]: t["rows"] for t in manifest["tables"]},
            "changes": result.summary()["changes"],
        },
        inputs=source.inputs,
        outputs={
            "content_sha256": manifest["content_sha256"],
            "submission_manifest_sha256": sha256_file(target / MANIFEST_NAME),
            "files": {t["file"]: t["sha256"] for t in manifest["tables"]},
        },
    )
    log.info("MHSDS %s submission package %s (%s) at %s", rp, target.name, status, target)
    return result


def build_package(settings: Settings, period: ReportingPeriod | str, run_id: str) -> Path:
    """The period's current package directory, built if the content changed (see module doc)."""
    return package_period(settings, period, run_id).path


def package(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """Airflow/CLI entry point: build the package and return a small JSON-able summary."""
    return package_period(settings or load_settings(), period, run_id).summary()
