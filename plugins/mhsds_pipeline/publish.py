"""Publish a period's MHSDS Parquet: stage, check, promote atomically.

Layout::

    output/<YYYY-MM>            -> symlink to the current version (atomic switch)
    output/.versions/<YYYY-MM>/<run>/mhsds/<IDBTable>.parquet
    output/.versions/<YYYY-MM>/<run>/manifest.json
    output/.staging/<YYYY-MM>/<run>/     work in progress; never read by consumers

A run writes everything into its staging directory; only when every file is written and the
file-level checks pass is the staging directory moved into ``.versions`` and the period's
symlink replaced with ``os.replace`` (atomic on POSIX). A run that fails at any point leaves the
previous version and the symlink untouched, and removes what it wrote: its staging directory
(patient-level Parquet, which must not linger, and after a full disk the space is needed back)
and a version directory that never became current. OS errors (disk full, permission) are
reported in one line naming the period, the run and the path; the full detail goes to the log.
The last ``keep_versions`` versions are kept so a resubmission can be compared with what went
before.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mhsds_pipeline import __version__
from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.config import MHSDS_SPEC_VERSION, Settings
from mhsds_pipeline.contracts import TableContract, load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.warehouse import read_mart

if TYPE_CHECKING:
    from mhsds_pipeline.quality.verdict import GateVerdict

log = logging.getLogger(__name__)


class PublicationError(RuntimeError):
    """A file-level problem that stops promotion (the previous outputs stay in place).
    ``failed_rules``: the catalogue rules that failed, when a rule is the reason (alerts)."""

    def __init__(self, message: str, failed_rules: tuple[str, ...] = ()):
        super().__init__(message)
        self.failed_rules = list(failed_rules)


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def staging_dir(settings: Settings, period: ReportingPeriod, run_id: str) -> Path:
    return settings.output_dir / ".staging" / str(period) / _safe(run_id)


def current_dir(settings: Settings, period: ReportingPeriod) -> Path:
    return settings.output_dir / str(period)


def code_version(repo: Path) -> str:
    """Package version plus the git commit when the code runs from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


_OS_ERROR_WORDS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EMFILE: "too many open files",
    errno.EIO: "input/output error",
}
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def _errno_of(exc: BaseException | str) -> int | None:
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = _ERRNO_IN_TEXT.search(str(exc))  # Arrow and shutil.Error keep it only in the text
    return int(found.group(1)) if found else None


def summarise_os_error(exc: OSError) -> str:
    """One line for an OS error: what went wrong (disk full, permission...), where, how often.

    ``shutil.copytree`` collects one entry per failed file into a ``shutil.Error`` whose text
    runs to tens of thousands of characters on a full disk; this keeps the first and a count.
    """
    code, path, failures = _errno_of(exc), exc.filename, 1
    entries = exc.args[0] if isinstance(exc, shutil.Error) and exc.args else None
    if isinstance(entries, list) and entries:
        failures = len(entries)
        first = entries[0]
        if isinstance(first, tuple) and len(first) == 3:
            path, code = first[1], _errno_of(str(first[2]))
    if code:
        what = _OS_ERROR_WORDS.get(code, os.strerror(code).lower())
        what += f" ({errno.errorcode.get(code, code)})"
    else:
        what = type(exc).__name__
    where = f" at {path}" if path else ""
    more = f", {failures} files failed" if failures > 1 else ""
    return " ".join(f"{what}{where}{more}".split())  # one line, whatever the path holds


def _storage_failure(period: ReportingPeriod, run_id: str, stage: str, exc: OSError) -> PublicationError:
    log.error("%s run %s: %s failed; detail follows", period, run_id, stage, exc_info=exc)
    return PublicationError(
        f"{period}: publishing run {run_id} failed while {stage}: {summarise_os_error(exc)}. "
        f"The run's staging output was removed and the current outputs of {period} are unchanged; "
        "fix the cause (free disk space, permissions) and re-run publish. Detail in the task log."
    )


def conform(table: pa.Table, contract: TableContract, period: ReportingPeriod, sort: bool = True) -> pa.Table:
    """Select the contract's columns in IDB order, cast to its types and sort deterministically."""
    built = {name.lower(): name for name in table.column_names}
    missing = [c for c in contract.column_names if c.lower() not in built]
    if missing:
        raise PublicationError(
            f"{period} {contract.idb_table}: built mart lacks contract column(s) {missing}"
        )
    arrays = []
    for field in contract.arrow_schema:
        col = table.column(built[field.name.lower()])
        arrays.append(col if col.type == field.type else pc.cast(col, field.type))
    out = pa.Table.from_arrays(arrays, schema=contract.arrow_schema)
    if not sort:
        return out
    sort_cols = list(contract.key) + [c for c in contract.column_names if c not in contract.key]
    return out.sort_by([(c, "ascending") for c in sort_cols]) if out.num_rows else out


def write_tables(
    settings: Settings, period: ReportingPeriod, stage: Path, gated: bool = False
) -> dict[str, dict]:
    """Write every contracted MHSDS table of the period into ``stage/mhsds``.

    ``gated``: read the quality gate's ``dq.<model>__submit`` views (rejected rows excluded) and
    write the rejected rows, with their rule, to ``stage/quarantine``.
    """
    from mhsds_pipeline.quality.engine import submit_view

    contracts = load_contracts(settings.dbt_project_dir)
    out = stage / "mhsds"
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for contract in contracts.values():
        relation = submit_view(contract.model) if gated else None
        table = conform(read_mart(settings, contract.model, relation), contract, period)
        path = out / f"{contract.idb_table}.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=128_000)
        files[contract.idb_table] = {
            "path": f"mhsds/{path.name}",
            "dbt_model": contract.model,
            "rows": table.num_rows,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "columns": contract.column_names,
        }
        if gated:
            _write_quarantine(settings, period, contract, stage, files)
    return files


_QUARANTINE_COLUMNS = [("_rule_id", pa.string()), ("_severity", pa.string()), ("_cause", pa.string())]


def _write_quarantine(settings, period, contract: TableContract, stage: Path, files: dict) -> None:
    """Rejected rows of one table, one row per (row, rule), kept for correction at source."""
    from mhsds_pipeline.quality.engine import quarantine_view

    rows = read_mart(settings, contract.model, quarantine_view(contract.model))
    if rows.num_rows == 0:
        return
    body = conform(rows, contract, period, sort=False)
    schema = pa.schema([*contract.arrow_schema, *(pa.field(n, t) for n, t in _QUARANTINE_COLUMNS)])
    body = pa.Table.from_arrays(
        [*body.columns, *(pc.cast(rows.column(n), t) for n, t in _QUARANTINE_COLUMNS)], schema=schema
    )
    order = [*contract.key, "_rule_id", *(c for c in contract.column_names if c not in contract.key)]
    body = body.sort_by([(c, "ascending") for c in order])
    qdir = stage / "quarantine"
    qdir.mkdir(exist_ok=True)
    path = qdir / f"{contract.idb_table}.parquet"
    pq.write_table(body, path, compression="zstd")
    from mhsds_pipeline.quality.reconcile import distinct_quarantined_rows

    files.setdefault("_quarantine", {})[contract.idb_table] = {
        "path": f"quarantine/{path.name}",
        "rows": body.num_rows,  # one per (row, rule)
        "rejected_rows": distinct_quarantined_rows(body),  # each rejected row once
        "sha256": sha256_file(path),
    }


def check_reconciliation(period: ReportingPeriod, gate: GateVerdict, files: dict, quarantine: dict) -> dict:
    """``extracted = published + quarantined`` per EPR table, on the files just written (the
    gate checked it in the warehouse; rows that went missing since would go unnoticed)."""
    from mhsds_pipeline.quality.reconcile import Reconciliation

    if not gate.reconciliation:
        raise PublicationError(
            f"{period}: the quality gate's verdict has no reconciliation of extract and outputs; "
            "re-run the quality gate for this period before publishing."
        )
    model_of = {idb: f["dbt_model"] for idb, f in files.items()}
    written = Reconciliation.from_json(gate.reconciliation).with_outputs(
        published={f["dbt_model"]: f["rows"] for f in files.values()},
        quarantined={
            model_of[idb]: q.get("rejected_rows", 0) for idb, q in quarantine.items() if idb in model_of
        },
    )
    broken = written.broken()
    if broken:
        idb = {m: i for i, m in model_of.items()}
        raise PublicationError(
            f"{period}: the files written do not account for every extracted row (rule LOCAL_RECONCILIATION): "
            + "; ".join(written.describe(s, idb) for s in broken)
            + ". Nothing was promoted; the current outputs are unchanged. Re-run the period from the extract."
        )
    return written.to_json()


def check_header(stage: Path, settings: Settings, period: ReportingPeriod) -> None:
    """The catalogue's MHS000Header rules (file rejections at upload) on the header written."""
    from mhsds_pipeline.quality.engine import check_file
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.rules import HEADER_TABLE, load_catalogue

    path = stage / "mhsds" / f"{HEADER_TABLE}.parquet"
    if not path.exists():
        raise PublicationError(f"{period}: {HEADER_TABLE} is missing; the submission would be rejected.")
    catalogue = load_catalogue()
    failed = {
        r: n for r, n in check_file(catalogue, sql_context(settings, period), HEADER_TABLE, path).items() if n
    }
    if failed:
        header = pq.read_table(path).to_pylist()
        row = header[0] if len(header) == 1 else {}  # header items only: no patient identifier
        detail = "; ".join(f"{r}: {catalogue.rule(r).filled(row)}" for r in sorted(failed))
        raise PublicationError(
            f"{period} {HEADER_TABLE}: the file would be rejected at upload ({detail}). Nothing was promoted.",
            tuple(sorted(failed)),
        )


def stage_mhsds(
    settings: Settings,
    period: ReportingPeriod,
    run_id: str,
    extra: dict | None = None,
    quality_dir: Path | None = None,
) -> Path:
    """Write the period's MHSDS Parquet and manifest into a fresh staging directory.

    ``quality_dir``: the quality gate's work directory for this run. Its verdict must be
    ``passed``; the submission tables then exclude quarantined rows, and the gate's ``dq/`` and
    ``data_docs/`` are published beside them.
    """
    gate = None
    if quality_dir is not None:
        from mhsds_pipeline.quality.verdict import GATE_FILE, GateVerdict, VerdictError

        gate_path = quality_dir / GATE_FILE
        if not gate_path.exists():
            raise PublicationError(
                f"{period}: the quality gate has not run for this run ({gate_path} missing)."
            )
        try:
            gate = GateVerdict.read(gate_path)
        except VerdictError as exc:
            raise PublicationError(f"{period}: {exc}; re-run the quality gate for this period.") from exc
        if not gate.passed:
            raise PublicationError(
                f"{period}: the quality gate failed ({len(gate.blocking)} blocking: "
                f"{', '.join(gate.failed_rules)}); not publishing.",
                tuple(gate.failed_rules),
            )
    stage = staging_dir(settings, period, run_id)
    try:
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        _write_stage(settings, period, run_id, stage, extra, gate, quality_dir)
    except BaseException as exc:
        discard(stage)
        if isinstance(exc, OSError):
            raise _storage_failure(period, run_id, "staging", exc) from None
        raise
    return stage


def _write_stage(
    settings: Settings,
    period: ReportingPeriod,
    run_id: str,
    stage: Path,
    extra: dict | None,
    gate: GateVerdict | None,
    quality_dir: Path | None,
) -> None:
    files = write_tables(settings, period, stage, gated=gate is not None)
    quarantine = files.pop("_quarantine", {})
    check_header(stage, settings, period)
    if gate is not None:
        extra = {**(extra or {}), "reconciliation": check_reconciliation(period, gate, files, quarantine)}
        shutil.copytree(quality_dir / "dq", stage / "dq")
        if (quality_dir / "data_docs").exists():
            shutil.copytree(quality_dir / "data_docs", stage / "data_docs")
        from mhsds_pipeline.transform import docs_path

        if docs_path(settings, period).exists():  # dbt's docs site of the models this run built
            (stage / "dbt_docs").mkdir()
            shutil.copyfile(docs_path(settings, period), stage / "dbt_docs" / "index.html")
        extra = {
            **(extra or {}),
            "quality": {
                "status": gate.status,
                "rules_catalogue_version": gate.rules_catalogue_version,
                "warnings": gate.warnings,
                "rejected_rows": dict(gate.rejected_rows),
                "dqmi_dataset_score": gate.dqmi_dataset_score,
                "quarantine": quarantine,
                "dq_files": {p.name: sha256_file(p) for p in sorted((stage / "dq").iterdir()) if p.is_file()},
                # the information governance page of the run (quality.ig_page): read it first
                **({"ig_page": "dq/index.html"} if (stage / "dq" / "index.html").is_file() else {}),
            },
        }
    manifest = {
        "dataset": "MHSDS",
        "spec_version": MHSDS_SPEC_VERSION,
        "reporting_period": str(period),
        "reporting_period_start": period.start.isoformat(),
        "reporting_period_end": period.end.isoformat(),
        "uniq_month_id": period.uniq_month_id,
        "org_id_provider": settings.org_id_provider,
        "run_id": run_id,
        "code_version": code_version(settings.home),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tables": files,
        **(extra or {}),
    }
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))


def promote(settings: Settings, period: ReportingPeriod, stage: Path) -> Path:
    """Atomically make ``stage`` the current outputs of the period; returns the version dir."""
    if not (stage / "manifest.json").exists():
        raise PublicationError(f"{period}: staging directory {stage} has no manifest; refusing to promote.")
    versions = settings.output_dir / ".versions" / str(period)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    version = versions / f"{stamp}__{stage.name}"
    link = current_dir(settings, period)
    tmp_link = link.with_name(f".{link.name}.link-{stamp}")
    legacy: Path | None = None
    try:
        versions.mkdir(parents=True, exist_ok=True)
        os.replace(stage, version)
        os.symlink(os.path.relpath(version, link.parent), tmp_link)
        if link.exists() and not link.is_symlink():  # an old real directory: keep it as a version
            legacy = versions / f"{stamp}__legacy"
            os.replace(link, legacy)
        os.replace(tmp_link, link)  # the one atomic switch
    except BaseException as exc:
        _undo_promote(link, tmp_link, legacy, version, stage)
        if isinstance(exc, OSError):
            raise _storage_failure(period, stage.name, "promoting", exc) from None
        raise
    _prune(versions, keep=settings.keep_versions, current=version)
    log.info("promoted %s -> %s", period, version.name)
    return version


def _undo_promote(link: Path, tmp_link: Path, legacy: Path | None, version: Path, stage: Path) -> None:
    """Put things back after a failed promotion: the link keeps (or gets back) its previous
    target, and the new version directory, which never became current, is removed."""
    try:
        if os.path.lexists(tmp_link):
            tmp_link.unlink()
        if legacy is not None and legacy.exists() and not os.path.lexists(link):
            os.replace(legacy, link)
    except OSError:
        log.exception("could not fully undo the promotion of %s", version.name)
    is_current = os.path.lexists(link) and link.resolve() == version.resolve()
    if not is_current:
        shutil.rmtree(version, ignore_errors=True)  # orphan: patient-level data nobody reads
        _remove_if_empty(version.parent)
    discard(stage)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty (other versions or runs) or already gone


def _prune(versions: Path, keep: int, current: Path) -> None:
    ordered = sorted(p for p in versions.iterdir() if p.is_dir())
    for old in ordered[: max(0, len(ordered) - keep)]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    """Remove a run's staging directory (and the period's staging folder once empty)."""
    shutil.rmtree(stage, ignore_errors=True)
    _remove_if_empty(stage.parent)
