"""The quality gate: run every check for a period, write the DQ outputs, decide on promotion.

Order (write-audit-publish): the MHSDS rules run in the warehouse and split each mart into
submit / quarantine views (:mod:`.engine`); GX validates the same rules by pushdown and builds
Data Docs (:mod:`.gx_suites`), and its count is folded into each rule's row; DQMI is computed in
SQL (:mod:`.dqmi`); dbt's structural test results and the raw-extract checks are added.
Everything lands in one ``dq_results.parquet`` (one row per check per table), the SDCS-shaped
reports (``dq/sdcs/``, :mod:`.sdcs`) and the typed verdict (:class:`.verdict.GateVerdict`,
``gate.json``) in the run's work directory (``data/dq/<period>/<run>/``); the publisher copies
them beside the Parquet it promotes.

A blocking failure (severity ``file rejected``: a header rule, a mandatory table missing or
empty, a systematic rejection share, an unreconciled extract, a blocking check that could not
be evaluated) raises :class:`QualityGateError` carrying the verdict: promotion does not happen
and the last good outputs of the period stay in place. Record and group rejections quarantine
rows; warnings are reported; neither blocks.
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
from mhsds_pipeline.quality.results import CheckResult, failing, to_table
from mhsds_pipeline.quality.rules import Catalogue, SqlContext, load_catalogue
from mhsds_pipeline.quality.verdict import BlockingCheck, GateVerdict, QualityGateError
from mhsds_pipeline.warehouse import mart_schema, sqlalchemy_url

__all__ = ["QualityGateError", "dbt_checks", "run_quality", "sql_context", "validate_raw_extract", "work_dir"]

log = logging.getLogger(__name__)


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
        org_id_submit=settings.org_id_submit,
        dialect="postgresql" if settings.warehouse_target == "postgres" else "duckdb",
        columns={m: c.column_names for m, c in contracts.items()},
        keys={m: list(c.key) for m, c in contracts.items()},
        seeds_dir=settings.dbt_project_dir / "seeds" / "reference",
    )


# ------------------------------------------------------------------------------ raw extract


def validate_raw_extract(settings: Settings, period: str, run_id: str) -> dict:
    """GX ``raw__*`` suites on the landed extract; blocks only when the month cannot be built."""
    from mhsds_pipeline.quality.gx_suites import validate_raw

    out = work_dir(settings, period, run_id)
    out.mkdir(parents=True, exist_ok=True)
    outcome = validate_raw(sqlalchemy_url(settings))
    (out / "raw_checks.json").write_text(json.dumps([asdict(c) for c in outcome.checks], indent=1))
    bad = failing(outcome.checks)
    if bad:
        raise QualityGateError(
            f"Reporting period {period}: the raw extract cannot be built: "
            + "; ".join(f"{c.suite} {c.check_id} ({c.description})" for c in bad)
            + ". Nothing was published; the last good outputs are untouched.",
            rules=tuple(c.check_id for c in bad),
        )
    return {"period": period, "checks": len(outcome.checks), "seconds": outcome.seconds}


# ------------------------------------------------------------------------------ dbt results


def dbt_checks(settings: Settings, period: str) -> list[CheckResult]:
    """dbt's structural test results as dq_results rows.

    dbt tests check structure only (contracts, join keys, nothing lost between layers) and carry
    their own ``DBT_*`` ids in ``meta.check_id``; the table is the IDB table of the model they
    test (``meta.idb_table`` of its contract). A failing test already stopped ``dbt build``; one
    that only warns is reported as a warning.
    """
    from mhsds_pipeline.transform import BuildResults

    built = BuildResults.read(settings, period)
    if built is None:
        return []
    idb = {m: c.idb_table for m, c in load_contracts(settings.dbt_project_dir).items()}
    checks = []
    for node in built.nodes:
        if not node.resource_type.endswith("test"):
            continue
        name = node.unique_id.split(".")[2]
        status = {"pass": "passed", "warn": "failed", "fail": "failed", "error": "error"}.get(
            node.status, "not_applicable"
        )
        checks.append(
            CheckResult(
                check_id=node.check_id or name,
                source="dbt",
                suite=name,
                table_name=idb.get(node.model, node.model),
                column_name=node.column,
                dimension="integrity",
                severity="file rejected" if node.status in ("fail", "error") else "warning",
                status=status,
                numerator=node.failures,
                description=f"dbt test {name}: {node.message or node.status}",
            )
        )
    return checks


# ------------------------------------------------------------------------------ the gate


def run_quality(settings: Settings, period_text: str, run_id: str) -> dict:
    """Every check for the period; writes dq/ and data_docs/ into the run's work dir."""
    from mhsds_pipeline.quality import dqmi as dqmi_mod
    from mhsds_pipeline.quality.engine import SUBMITTED_SCHEMA, run_rules
    from mhsds_pipeline.quality.gx_suites import cross_check, validate_marts
    from mhsds_pipeline.quality.reconcile import gate_reconciliation
    from mhsds_pipeline.quality.sdcs import write_sdcs_reports
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

    # One engine for the rules, DQMI and the SDCS reports: DuckDB refuses a second connection
    # to the same file with another configuration (e.g. read-only) inside one process.
    engine = sa.create_engine(url)
    try:
        rules = run_rules(engine, catalogue, ctx)
        # extracted = published + quarantined, per EPR table (blocks when it does not hold)
        recon, recon_checks = gate_reconciliation(settings, period_text, engine, ctx)
        t_dqmi = time.perf_counter()
        # NHS England scores DQMI on the national data set: the records SDCS accepted. The score
        # over every built row is kept beside it, labelled: it shows what the rejections cost.
        dqmi_result = dqmi_mod.compute_submission_dqmi(
            engine, schema=ctx.schema, submitted_schema=SUBMITTED_SCHEMA, period=period
        )
        dqmi_mod.write_dqmi(dqmi_result, dq_dir)
        dqmi_seconds = round(time.perf_counter() - t_dqmi, 3)
        log.info(
            "DQMI: data set score %s in %.1f s", getattr(dqmi_result, "dataset_score", None), dqmi_seconds
        )
        table_rows = {t: o.rows for t, o in rules.tables.items() if o.present}
        gx = validate_marts(url, catalogue, ctx, table_rows, out / "data_docs", run_name=run_id)
        rule_checks = cross_check(rules.checks, gx)
        sdcs_files = write_sdcs_reports(engine, catalogue, ctx, rules, dq_dir / "sdcs")
    finally:
        engine.dispose()

    raw_path = out / "raw_checks.json"
    raw = [CheckResult(**c) for c in json.loads(raw_path.read_text())] if raw_path.exists() else []
    checks = raw + dbt_checks(settings, period_text) + rule_checks + recon_checks
    checks += dqmi_mod.to_check_results(dqmi_result)
    checks += gate_volume(settings, period_text, rules)  # warnings only: never blocks
    pq.write_table(to_table(period_text, run_id, checks), dq_dir / "dq_results.parquet")

    blocking = failing(checks)
    verdict = GateVerdict(
        period=period_text,
        run_id=run_id,
        status="failed" if blocking else "passed",
        rules_catalogue_version=catalogue.version,
        checks=len(checks),
        warnings=sum(
            1 for c in checks if c.status == "failed" and c.severity in ("severity 1 warning", "warning")
        ),
        blocking=tuple(BlockingCheck.of(c) for c in blocking),
        rejected_rows=rules.quarantine_counts(),
        submitted_rows={t: o.submitted_rows for t, o in rules.tables.items() if o.present},
        volume_anomalies=anomalies(checks),
        reconciliation=recon.to_json() if recon else None,
        dqmi_dataset_score=getattr(dqmi_result, "dataset_score", None),
        seconds={
            "rules_sql": rules.seconds,
            "gx_marts": gx.seconds,
            "dqmi": dqmi_seconds,
            "total": round(time.perf_counter() - t0, 3),
        },
    )
    verdict.write(dq_dir)
    _write_ig_page(dq_dir, settings, catalogue, gate_failed=bool(blocking))
    log.info(
        "Quality gate %s for %s: %d checks, %d blocking, %d warnings, %s rows quarantined; SDCS reports %s",
        verdict.status,
        period_text,
        len(checks),
        len(blocking),
        verdict.warnings,
        sum(verdict.rejected_rows.values()),
        ", ".join(p.name for p in sdcs_files),
    )
    if blocking:
        raise QualityGateError(
            f"Quality gate failed for reporting period {period_text}: "
            + "; ".join(b.describe() for b in verdict.blocking)
            + f". Promotion stopped; the last good outputs of {period_text} are untouched. Reports: "
            f"{dq_dir / 'index.html'} (the IG page) and {out / 'data_docs' / 'index.html'}",
            verdict,
        )
    return verdict.summary()


def _write_ig_page(dq_dir: Path, settings: Settings, catalogue: Catalogue, gate_failed: bool) -> None:
    """``dq/index.html``, the one page IG reviewers read, also (above all) when the gate failed.

    When the gate failed its error is the one to raise: a page that could not be written is
    logged instead of hiding it. When it passed, no page means nothing may be published."""
    from mhsds_pipeline.quality.ig_page import write_ig_page

    try:
        write_ig_page(dq_dir, settings.output_dir, catalogue)
    except Exception:
        if not gate_failed:
            raise
        log.exception("the IG page of this failed run could not be written")
