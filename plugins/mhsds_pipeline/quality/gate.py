"""The quality gate: run every check for a period, write the DQ outputs, decide on promotion.

Order (write-audit-publish): the MHSDS rules run in the warehouse and split each mart into
submit / quarantine views (:mod:`.engine`); GX validates the same rules by pushdown and builds
Data Docs (:mod:`.gx_suites`); DQMI is computed in SQL (:mod:`.dqmi`); dbt's test results and
the raw-extract checks are folded in. Everything lands in one ``dq_results.parquet`` and a
``gate.json`` verdict in the run's work directory (``data/dq/<period>/<run>/``); the publisher
copies them beside the Parquet it promotes.

A critical failure (file-level rejection, a mandatory table missing or empty, a systematic
rejection share, a critical check GX could not evaluate) raises :class:`QualityGateError`
naming period, table, rule and count: promotion does not happen and the last good outputs of
the period stay in place. Warnings and quarantined rows never block.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa

from mhsds_pipeline.config import Settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.results import CheckResult, to_table
from mhsds_pipeline.quality.rules import SqlContext, load_catalogue
from mhsds_pipeline.warehouse import mart_schema, sqlalchemy_url

log = logging.getLogger(__name__)


class QualityGateError(RuntimeError):
    """A critical data-quality failure: the period is not promoted."""


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def work_dir(settings: Settings, period: str, run_id: str) -> Path:
    return settings.data_dir / "dq" / period / _safe(run_id)


def sql_context(settings: Settings, period: ReportingPeriod) -> SqlContext:
    contracts = load_contracts(settings.dbt_project_dir)
    return SqlContext(
        schema=mart_schema(settings),
        rp_start=period.start,
        rp_end=period.end,
        org_id_provider=settings.org_id_provider,
        dialect="postgresql" if settings.warehouse_target == "postgres" else "duckdb",
        columns={m: c.column_names for m, c in contracts.items()},
        keys={m: list(c.key) for m, c in contracts.items()},
    )


# ------------------------------------------------------------------------------ raw extract


def validate_raw_extract(settings: Settings, period: str, run_id: str) -> dict:
    """GX ``raw__*`` suites on the landed extract; blocks only when the month cannot be built."""
    from mhsds_pipeline.quality.gx_suites import validate_raw

    out = work_dir(settings, period, run_id)
    out.mkdir(parents=True, exist_ok=True)
    outcome = validate_raw(sqlalchemy_url(settings))
    (out / "raw_checks.json").write_text(json.dumps([asdict(c) for c in outcome.checks], indent=1))
    bad = [c for c in outcome.checks if c.severity == "critical" and c.status in ("failed", "error")]
    if bad:
        raise QualityGateError(
            f"Reporting period {period}: the raw extract cannot be built: "
            + "; ".join(f"{c.suite} {c.check_id} ({c.description})" for c in bad)
            + ". Nothing was published; the last good outputs are untouched."
        )
    return {"period": period, "checks": len(outcome.checks), "seconds": outcome.seconds}


# ------------------------------------------------------------------------------ dbt results


_TABLE_IN_NAME = re.compile(r"(mhs\d{3}_[a-z_]+?)(?:_[0-9a-f]{8,}|__|$)")


def dbt_checks(settings: Settings, period: str) -> list[CheckResult]:
    """dbt test results as dq_results rows (dbt tests are the build-time layer of checks)."""
    path = settings.data_dir / "dbt" / period / "dbt_results.json"
    if not path.exists():
        return []
    checks = []
    for node in json.loads(path.read_text()).get("nodes", []):
        if not str(node.get("resource_type", "")).endswith("test"):
            continue
        name = node["unique_id"].split(".")[2]
        m = _TABLE_IN_NAME.search(name)
        status = {"pass": "passed", "warn": "failed", "fail": "failed", "error": "error"}.get(
            node["status"], "not_applicable"
        )
        # A dbt test that only warns cannot be critical: the rule it mirrors is enforced by
        # quarantine in the gate (errors already stopped `dbt build`).
        severity = (
            "critical"
            if node["status"] in ("fail", "error")
            else ("info" if node.get("severity") == "info" else "warning")
        )
        checks.append(
            CheckResult(
                check_id=node.get("rule_id") or name,
                source="dbt",
                suite=name,
                table_name=m.group(1) if m else None,
                severity=severity,
                status=status,
                numerator=node.get("failures"),
                description=f"dbt test {name}: {node.get('message') or node['status']}",
            )
        )
    return checks


# ------------------------------------------------------------------------------ the gate


def run_quality(settings: Settings, period_text: str, run_id: str) -> dict:
    """Every check for the period; writes dq/ and data_docs/ into the run's work dir."""
    from mhsds_pipeline.quality import dqmi as dqmi_mod
    from mhsds_pipeline.quality.engine import run_rules
    from mhsds_pipeline.quality.gx_suites import validate_marts
    from mhsds_pipeline.quality.reconcile import gate_reconciliation
    from mhsds_pipeline.quality.volume import anomalies, gate_volume

    t0 = time.perf_counter()
    period = ReportingPeriod.parse(period_text)
    out = work_dir(settings, period_text, run_id)
    dq_dir = out / "dq"
    if dq_dir.exists():
        shutil.rmtree(dq_dir)
    dq_dir.mkdir(parents=True)
    catalogue = load_catalogue()
    ctx = sql_context(settings, period)
    url = sqlalchemy_url(settings)

    # One engine for the rules and DQMI: DuckDB refuses a second connection to the same file
    # with another configuration (e.g. read-only) inside one process.
    engine = sa.create_engine(url)
    try:
        rules = run_rules(engine, catalogue, ctx)
        # extracted = published + quarantined, per EPR table (critical when it does not hold)
        recon, recon_checks = gate_reconciliation(settings, period_text, engine, ctx)
        t_dqmi = time.perf_counter()
        dqmi_result = dqmi_mod.compute_dqmi(engine, schema=ctx.schema, period=period)
        dqmi_mod.write_dqmi(dqmi_result, dq_dir)
        dqmi_seconds = round(time.perf_counter() - t_dqmi, 3)
        log.info(
            "DQMI: data set score %s in %.1f s", getattr(dqmi_result, "dataset_score", None), dqmi_seconds
        )
        table_rows = {t: o.rows for t, o in rules.tables.items() if o.present}
        gx = validate_marts(url, catalogue, ctx, rules.failures, table_rows, out / "data_docs")
    finally:
        engine.dispose()

    raw_path = out / "raw_checks.json"
    raw = [CheckResult(**c) for c in json.loads(raw_path.read_text())] if raw_path.exists() else []
    checks = raw + dbt_checks(settings, period_text) + rules.checks + recon_checks + gx.checks
    checks += dqmi_mod.to_check_results(dqmi_result)
    checks += gate_volume(settings, period_text, rules)  # warnings only: never blocks
    pq.write_table(to_table(period_text, run_id, checks), dq_dir / "dq_results.parquet")

    critical = [c for c in checks if c.severity == "critical" and c.status in ("failed", "error")]
    gate = {
        "period": period_text,
        "run_id": run_id,
        "status": "failed" if critical else "passed",
        "rules_catalogue_version": catalogue.version,
        "critical": [
            {
                "check_id": c.check_id,
                "source": c.source,
                "table": c.table_name,
                "count": c.numerator,
                "status": c.status,
                "description": c.description,
            }
            for c in critical
        ],
        "warnings": sum(1 for c in checks if c.severity == "warning" and c.status == "failed"),
        "volume_anomalies": anomalies(checks),  # IDB table -> change vs the previous months
        "checks": len(checks),
        "rejected_rows": rules.quarantine_counts(),
        "submitted_rows": {t: o.submitted_rows for t, o in rules.tables.items() if o.present},
        "reconciliation": recon.to_json() if recon else None,
        "dqmi_dataset_score": getattr(dqmi_result, "dataset_score", None),
        "seconds": {
            "rules_sql": rules.seconds,
            "gx_marts": gx.seconds,
            "dqmi": dqmi_seconds,
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    (dq_dir / "gate.json").write_text(json.dumps(gate, indent=2, sort_keys=True, default=str))
    log.info(
        "Quality gate %s for %s: %d checks, %d critical, %d warnings, %s rows quarantined",
        gate["status"],
        period_text,
        len(checks),
        len(critical),
        gate["warnings"],
        sum(gate["rejected_rows"].values()),
    )
    if critical:
        detail = "; ".join(
            f"table {c['table'] or '-'} rule {c['check_id']} ({c['status']}, count {c['count']}): {c['description']}"
            for c in gate["critical"]
        )
        raise QualityGateError(
            f"Quality gate failed for reporting period {period_text}: {detail}. Promotion stopped; the last "
            f"good outputs of {period_text} are untouched. Reports: {dq_dir} and {out / 'data_docs' / 'index.html'}"
        )
    return {k: gate[k] for k in ("period", "status", "warnings", "checks", "rejected_rows", "seconds")}
