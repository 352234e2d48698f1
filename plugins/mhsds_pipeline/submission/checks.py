"""Pre-submission checks: refuse a package SDCS Cloud would reject as a file, before it is built.

SDCS rejects a whole file (not single records) when the header is wrong or the structure is
altered (mhsds.md 5.1): more than one MHS000Header row (MHS00025), a reporting period other than
the one chosen at upload, an OrgIDProvider other than the login organisation, a creation time
before the period ends or after the upload. We add the checks that make the package trustworthy
as evidence: the Parquet is byte-for-byte what the pipeline promoted (sha256 and row counts from
``manifest.json``), every contracted table is there in IDB column order and types, the mandatory
tables (MHS000/001/002/101) have data, no row the quality gate quarantined is still in the data,
and the gate did not fail.

Every check runs and every failure is reported (one :class:`CheckFailure` each: period, table,
check id, what to do); messages carry row numbers and rule ids, never patient identifiers.

Check ids: ``source_missing``, ``source_manifest``, ``manifest_period``, ``manifest_provider``,
``spec_version``, ``dq_gate``, ``unknown_table``, ``table_missing``, ``mandatory_table``,
``manifest_sha256``, ``manifest_rows``, ``columns``, ``format_precision``, ``header_rows``,
``header_dataset_version``, ``header_reporting_period``, ``header_provider``,
``header_created``, ``quarantine_unreadable``, ``quarantined_key_present``, ``value_format``,
``header_submitter``.

``value_format`` is the last line behind the quality gate's v6 format rules: a value longer or
shorter than its contract format, with a control character or line break, not digits where the
format is ``n``, or not an ODS code where the contract says so, refuses the package (the gate
should already have quarantined the record). The header's OrgIDProvider and OrgIDSubmit must be
ODS codes and the configured organisations.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.config import MHSDS_SPEC_VERSION, Settings
from mhsds_pipeline.formats import (
    safe_detail,
)
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.submission.idb import TableSpec, mandatory_tables
from mhsds_pipeline.submission.manifest import CheckFailure, SubmissionError

HEADER = "MHS000Header"
DQ_RESULTS_PATH = Path("dq") / "dq_results.parquet"
QUARANTINE_DIR = "quarantine"
_EXAMPLES = 5


@dataclass
class Source:
    """The promoted outputs of one period, resolved once (the period symlink may move on)."""

    period: ReportingPeriod
    link: Path
    version_dir: Path
    manifest: dict
    manifest_sha256: str
    dq: dict
    gate_error: str | None = None
    quarantine: dict[str, Path] = field(default_factory=dict)
    table_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> dict:
        """Hashes of everything the package is built from (for the manifest and audit log)."""
        return {
            "version_dir": self.version_dir.name,
            "manifest_sha256": self.manifest_sha256,
            "source_run_id": self.manifest.get("run_id"),
            "tables": dict(self.table_sha256),
            "quarantine": {t: sha256_file(p) for t, p in sorted(self.quarantine.items())},
            "gate_sha256": self.dq.get("gate_sha256"),
            "dq_results_sha256": self.dq.get("dq_results_sha256"),
        }


def _read_gate(version_dir: Path) -> tuple[dict, str | None]:
    """The published quality verdict (``dq/gate.json``) as the package manifest's ``dq`` block."""
    from mhsds_pipeline.quality.verdict import GATE_FILE, GateVerdict, VerdictError

    gate_path = version_dir / GATE_FILE
    results = version_dir / DQ_RESULTS_PATH
    dq: dict = {
        "gate_status": "not_available",
        "gate_sha256": None,
        "dq_results_sha256": sha256_file(results) if results.is_file() else None,
    }
    if not gate_path.is_file():
        return dq, None
    dq["gate_sha256"] = sha256_file(gate_path)
    try:
        verdict = GateVerdict.read(gate_path)
    except VerdictError as exc:
        dq["gate_status"] = "unreadable"
        return dq, str(exc)
    dq.update(
        gate_status=verdict.status,
        blocking=len(verdict.blocking),
        blocking_checks=verdict.failed_rules[:20],
        warnings=verdict.warnings,
        rejected_rows=dict(verdict.rejected_rows),
    )
    return dq, None


def open_source(settings: Settings, rp: ReportingPeriod) -> Source:
    """Resolve ``output/<P>`` to its version directory and read its manifest and DQ outputs."""
    link = settings.output_dir / str(rp)
    manifest_path = link / "manifest.json"
    if not manifest_path.is_file():
        raise SubmissionError(
            str(rp),
            [
                CheckFailure(
                    str(rp),
                    None,
                    "source_missing",
                    f"no promoted MHSDS output at {link} (manifest.json missing). Run the pipeline "
                    f"for the period first: mhsds run --period {rp}",
                )
            ],
        )
    version_dir = link.resolve()
    raw = (version_dir / "manifest.json").read_bytes()
    manifest_sha = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest.get("tables"), dict):
            raise ValueError("no 'tables' object")
    except ValueError as exc:
        raise SubmissionError(
            str(rp),
            [CheckFailure(str(rp), None, "source_manifest", f"{manifest_path} is unreadable: {exc}")],
            inputs={"manifest_sha256": manifest_sha},
        ) from exc
    dq, gate_error = _read_gate(version_dir)
    qdir = version_dir / QUARANTINE_DIR
    quarantine = {p.stem: p for p in sorted(qdir.glob("*.parquet"))} if qdir.is_dir() else {}
    return Source(rp, link, version_dir, manifest, manifest_sha, dq, gate_error, quarantine)


def run_checks(
    settings: Settings,
    rp: ReportingPeriod,
    source: Source,
    specs: tuple[TableSpec, ...],
    now: datetime | None = None,
) -> None:
    """Run every pre-submission check; raise :class:`SubmissionError` listing all failures."""
    failures: list[CheckFailure] = []

    def fail(table: str | None, check: str, message: str) -> None:
        failures.append(CheckFailure(str(rp), table, check, message))

    m = source.manifest
    expected = (str(rp), rp.start.isoformat(), rp.end.isoformat())
    found = (m.get("reporting_period"), m.get("reporting_period_start"), m.get("reporting_period_end"))
    if found != expected:
        fail(
            None,
            "manifest_period",
            f"manifest.json is for {found}, not {expected}; package the right period.",
        )
    if m.get("org_id_provider") != settings.org_id_provider:
        fail(
            None,
            "manifest_provider",
            f"manifest.json provider {safe_detail(m.get('org_id_provider'))} is not the configured provider "
            f"{settings.org_id_provider!r} (MHSDS_ORG_ID_PROVIDER); SDCS rejects a file whose provider "
            "is not the login organisation.",
        )
    if m.get("spec_version") != MHSDS_SPEC_VERSION:
        fail(
            None,
            "spec_version",
            f"outputs are MHSDS {m.get('spec_version')}, this IDB is {MHSDS_SPEC_VERSION}.",
        )
    _check_gate(source, fail)

    known = {s.idb_table for s in specs}
    for name in sorted(t for t in set(m["tables"]) - known if not t.startswith("_")):
        fail(
            name,
            "unknown_table",
            "table is in manifest.json but has no dbt contract; the IDB has no such table.",
        )

    for spec in specs:
        _check_table(settings, rp, source, spec, fail, now or datetime.now())

    if failures:
        raise SubmissionError(str(rp), failures, inputs=source.inputs)


def _check_gate(source: Source, fail) -> None:
    if source.gate_error:
        fail(
            None,
            "dq_gate",
            f"dq/gate.json is unreadable ({source.gate_error}); re-run the quality gate for the period.",
        )
    elif source.dq.get("gate_status") not in ("passed", "not_available"):
        rules = ", ".join(source.dq.get("blocking_checks") or []) or "see dq/gate.json"
        fail(
            None,
            "dq_gate",
            f"the quality gate status is {source.dq.get('gate_status')!r} with {source.dq.get('blocking', 0)} "
            f"blocking check(s) ({rules}). Fix the data (or the rule) and re-run the pipeline; only a "
            "passed gate is submitted.",
        )


def _check_table(settings, rp, source: Source, spec: TableSpec, fail, now: datetime) -> None:
    name = spec.idb_table
    entry = source.manifest["tables"].get(name)
    path = source.version_dir / "mhsds" / f"{name}.parquet"
    if entry is None or not path.is_file():
        where = "manifest.json" if entry is None else f"mhsds/{path.name}"
        if spec.mandatory:
            fail(
                name, "mandatory_table", f"mandatory table missing from {where}; SDCS rejects the submission."
            )
        else:
            fail(name, "table_missing", f"contracted table missing from {where}; re-run publication.")
        return

    sha = sha256_file(path)
    source.table_sha256[name] = sha
    if sha != entry.get("sha256"):
        fail(
            name,
            "manifest_sha256",
            f"mhsds/{path.name} sha256 {sha[:12]}... differs from manifest.json {str(entry.get('sha256'))[:12]}...: "
            "the promoted output changed after promotion. Re-run the pipeline for the period; do not edit outputs.",
        )
    pf = pq.ParquetFile(path)
    rows = pf.metadata.num_rows
    if rows != entry.get("rows"):
        fail(
            name,
            "manifest_rows",
            f"{rows} rows in mhsds/{path.name}, manifest.json says {entry.get('rows')}.",
        )
    schema = pf.schema_arrow
    if schema.names != spec.column_names:
        fail(
            name,
            "columns",
            f"columns {schema.names} are not the IDB order {spec.column_names}; the IDB structure "
            "must not change. Re-run publication with the current contracts.",
        )
        return
    wrong = [f.name for f, t in zip(schema, spec.arrow_schema.types, strict=True) if f.type != t]
    if wrong:
        fail(name, "columns", f"column type(s) of {wrong} differ from the dbt contract.")
        return
    if spec.mandatory and rows == 0 and name != HEADER:
        fail(
            name,
            "mandatory_table",
            f"mandatory table has no rows; SDCS needs data in {', '.join(t for t in mandatory_tables() if t != HEADER)}.",
        )

    _check_precision(spec, path, fail)
    _check_rules(settings, rp, spec, path, fail)
    if name == HEADER:
        _check_upload_time(settings, path, fail, now)
    listed = ((source.manifest.get("quality") or {}).get("quarantine") or {}).get(name)
    if listed and name not in source.quarantine:
        fail(
            name, "quarantine_unreadable", f"manifest.json lists quarantine/{name}.parquet but it is missing."
        )
    if name in source.quarantine:
        qpath = source.quarantine[name]
        if listed and listed.get("sha256") and sha256_file(qpath) != listed["sha256"]:
            fail(
                name,
                "manifest_sha256",
                f"quarantine/{qpath.name} differs from its sha256 in manifest.json; re-run the pipeline.",
            )
        _check_quarantine(spec, path, qpath, fail)


def _check_precision(spec: TableSpec, path: Path, fail) -> None:
    cols = [c.name for c in spec.columns if c.data_type in ("time", "timestamp")]
    if not cols:
        return
    table = pq.read_table(path, columns=cols)
    for c in cols:
        arr = table.column(c)
        unit = pa.timestamp("us") if pa.types.is_timestamp(arr.type) else pa.time64("us")
        micros = pc.cast(pc.cast(arr, unit), pa.int64())
        bad = int(pc.sum(pc.not_equal(pc.remainder(micros, 1_000_000), 0)).as_py() or 0)
        if bad:
            fail(
                spec.idb_table,
                "format_precision",
                f"{c}: {bad} value(s) have a fraction of a second; the IDB format is whole seconds. "
                "Truncate in the dbt model if that is intended.",
            )


def _check_rules(settings: Settings, rp: ReportingPeriod, spec: TableSpec, path: Path, fail) -> None:
    """The catalogue's rules that one file can judge, in one pass over it: every header rule
    (a failure rejects the file) and every table's v6 format rules (the gate rejected such
    records, so a failure means the file changed after the gate)."""
    from mhsds_pipeline.quality.engine import check_file
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.rules import load_catalogue

    catalogue = load_catalogue()
    name = spec.idb_table
    if name not in catalogue.cascade_order:
        return
    types = None if name == HEADER else ("format",)
    for rule_id, count in check_file(catalogue, sql_context(settings, rp), name, path, types).items():
        if not count:
            continue
        rule = catalogue.rule(rule_id)
        if rule.type == "format" and name != HEADER:
            fail(
                name,
                "value_format",
                f"{count} value(s) break rule {rule_id} ({rule.text}). The quality gate rejects such "
                "records; re-run the gate and publication for the period.",
            )
        else:
            fail(name, rule_id, f"{rule.text} SDCS rejects the file.")


def _check_upload_time(settings: Settings, path: Path, fail, now: datetime) -> None:
    """What only upload time can tell about the header: the submitting organisation configured
    for the portal login and a creation time not after the upload."""
    rows = pq.read_table(path, columns=["OrgIDSubmit", "DateTimeDatSetCreate"]).to_pylist()
    if len(rows) != 1:
        return
    submitter, created = rows[0]["OrgIDSubmit"], rows[0]["DateTimeDatSetCreate"]
    if submitter != settings.org_id_submit:
        fail(
            HEADER,
            "header_submitter",
            f"OrgIDSubmit {safe_detail(submitter)} is not the configured submitting organisation "
            f"{settings.org_id_submit!r} (MHSDS_ORG_ID_SUBMIT).",
        )
    if created is not None and created > now:
        fail(
            HEADER,
            "header_created",
            f"DateTimeDatSetCreate {created} is after the upload ({now:%Y-%m-%d %H:%M}); SDCS rejects the file.",
        )


def _check_quarantine(spec: TableSpec, path: Path, qpath: Path, fail) -> None:
    """No row the gate quarantined may still be in the data. Rows are matched on the table's
    key; a quarantined row whose key has a NULL part cannot be told apart by key (the gate's
    uniqueness rules skip NULL keys), so it is matched on all its columns instead."""
    key = list(spec.key) or spec.column_names
    try:
        q = pq.read_table(qpath)
        missing = [c for c in spec.column_names if c not in q.column_names]
        if missing:
            raise ValueError(f"lacks column(s) {missing} of the table")
        types = dict(zip(spec.column_names, spec.arrow_schema.types, strict=True))
        qcols = {c: pc.cast(q.column(c), types[c]).to_pylist() for c in spec.column_names}
    except (OSError, ValueError, pa.ArrowException) as exc:
        fail(spec.idb_table, "quarantine_unreadable", f"quarantine/{qpath.name} cannot be checked: {exc}")
        return
    if q.num_rows == 0:
        return
    rules = q.column("_rule_id").to_pylist() if "_rule_id" in q.column_names else [None] * q.num_rows
    by_key: dict[tuple, set] = {}
    by_row: dict[tuple, set] = {}
    for i, rule in enumerate(rules):
        k = tuple(qcols[c][i] for c in key)
        if None in k:
            by_row.setdefault(tuple(qcols[c][i] for c in spec.column_names), set()).add(rule)
        else:
            by_key.setdefault(k, set()).add(rule)
    data = pq.read_table(path, columns=spec.column_names if by_row else key)
    values = {c: data.column(c).to_pylist() for c in data.column_names}
    hits, hit_rules = [], set()
    for i in range(data.num_rows):
        k = tuple(values[c][i] for c in key)
        if None not in k:
            found = by_key.get(k)
        else:
            found = by_row.get(tuple(values[c][i] for c in spec.column_names)) if by_row else None
        if found:
            hits.append(i + 1)
            hit_rules |= found
    if hits:
        shown = ", ".join(map(str, hits[:_EXAMPLES])) + (" ..." if len(hits) > _EXAMPLES else "")
        rule_text = ", ".join(sorted(str(r) for r in hit_rules if r)) or "unknown rule"
        fail(
            spec.idb_table,
            "quarantined_key_present",
            f"{len(hits)} row(s) with a key ({', '.join(key)}) the quality gate quarantined ({rule_text}) are "
            f"still in mhsds/{path.name} (row {shown}). Quarantined rows must not be submitted: "
            "re-run the gate and publication for the period.",
        )
