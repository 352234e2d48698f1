"""MHIS investment tracking and Long Term Plan access metrics for finance (issue #5).

``run_mhis(period)`` runs the three steps for a reporting period that has been published:

1. ``load_finance``: the finance extract (files or a ledger database, ``MHSDS_FINANCE_SOURCE``;
   the synthetic one is generated when the embedded synthetic EPR is in use) is loaded into the
   warehouse schema ``raw_finance``;
2. ``build_finance``: a separate ``dbt build --select tag:finance --vars {finance_enabled: true}``
   builds the finance seeds, staging, intermediate and the contracted marts ``mhis_spend_monthly``,
   ``mhis_outturn``, ``mhis_allocation`` (critical tests block publication);
3. ``publish_mhis_outputs``: the MHIS position (mhis.py), the LTP metrics (ltp_metrics.py) and
   the activity linkage (activity.py) over the published MHSDS months, written as Parquet, an
   Excel workbook and an HTML report into ``output/<YYYY-MM>/mhis/`` as a new immutable version.

Importing this package is cheap (no pandas, pyarrow, duckdb or dbt at import time), so the CLI
and the DAG can import it freely.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from mhsds_pipeline.config import Settings, load_settings
from mhsds_pipeline.period import ReportingPeriod

log = logging.getLogger(__name__)

__all__ = [
    "add_parser",
    "build_finance",
    "cmd_mhis",
    "load_finance",
    "periods_from_asset_events",
    "publish_mhis_outputs",
    "run_mhis",
]

FINANCE_SEED = 42


# ---------------------------------------------------------------------------------------------
# Period from the triggering asset events (Airflow 3) with a param fallback
# ---------------------------------------------------------------------------------------------


def periods_from_asset_events(
    events: Mapping | None, requested: str | None = None, logical_date=None
) -> list[str]:
    """The period(s) to process: the ``period`` extra of each triggering ``mhsds_published``
    event (sorted, de-duplicated; several months published before the run each get one), else
    the ``period`` param, else the month before the logical date. Events for a month that has
    not ended (``open_period``: a rebuild that is never packaged) are not finance's: when only
    those triggered the run, the list is empty."""
    found: set[str] = set()
    ignored = 0
    for asset_events in (events or {}).values():
        for event in asset_events or ():
            extra = getattr(event, "extra", None)
            if extra is None and isinstance(event, Mapping):
                extra = event.get("extra")
            period = (extra or {}).get("period")
            if period and (extra or {}).get("open_period"):
                ignored += 1
            elif period:
                found.add(str(ReportingPeriod.parse(str(period))))
    if found or ignored:
        return sorted(found)
    from mhsds_pipeline.pipeline import resolve_period

    return [resolve_period(requested, logical_date)]


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


def _ensure_synthetic_source(settings: Settings, source: Path, period: str) -> dict | None:
    """Generate the synthetic finance extract into ``source`` when it is absent (embedded
    synthetic set-up only) or is a synthetic one that does not cover the period. A real extract
    (no synthetic generation summary) is never touched."""
    from mhsds_pipeline.finance.config import epr_scale
    from mhsds_pipeline.finance.generator import generate
    from mhsds_pipeline.finance.loader import FinanceSourceError
    from mhsds_pipeline.finance.schema import TABLE_NAMES, financial_year

    present = all((source / f"{t}.parquet").exists() or (source / f"{t}.csv").exists() for t in TABLE_NAMES)
    summary_path = source / "generation_summary.json"
    if present:
        if not summary_path.exists():
            return None
        summary = json.loads(summary_path.read_text())
        if not summary.get("synthetic"):
            return None
        end = summary.get("end_period", "")
        if end >= period and financial_year(end) == financial_year(period):
            return None
    elif not settings.is_demo_default_source:  # a configured source is read, never invented
        raise FinanceSourceError(
            f"MHIS {period}: no finance extract at {source}. Set MHSDS_FINANCE_SOURCE to the extract "
            "directory or the ledger database URL."
        )
    scale = epr_scale(settings) or 1.0
    log.info("generating the synthetic finance extract for %s (scale %g) into %s", period, scale, source)
    return generate(source, end_period=period, scale=scale, seed=FINANCE_SEED)


def history_for(settings: Settings, period: str):
    """The published months the period's MHIS run reads: every point of the 12-month series has
    its own 12-month window, so at least 23 months."""
    from mhsds_pipeline.finance import ltp_metrics
    from mhsds_pipeline.finance.config import load_finance_settings
    from mhsds_pipeline.finance.published import find_published

    fin = load_finance_settings(settings)
    months = max(fin.history_months, 2 * ltp_metrics.WINDOW_MONTHS - 1)
    return find_published(settings.output_dir, period, months)


def load_finance(period: str, settings: Settings | None = None) -> dict:
    """Step 1: finance extract -> warehouse ``raw_finance``; the published MHSDS months of the
    history -> warehouse ``mhsds_published`` (for the national derived fields)."""
    from mhsds_pipeline.config import redact_url
    from mhsds_pipeline.finance.config import load_finance_settings
    from mhsds_pipeline.finance.loader import load_raw_finance, read_source
    from mhsds_pipeline.finance.published import load_published

    settings = settings or load_settings()
    period = str(ReportingPeriod.parse(period))
    fin = load_finance_settings(settings)
    t0 = time.perf_counter()
    generated = None if fin.source_is_url else _ensure_synthetic_source(settings, Path(fin.source), period)
    counts = load_raw_finance(settings, read_source(fin))
    history = history_for(settings, period)
    published = load_published(settings, history)
    return {
        "period": period,
        "published_months": history.available,
        "published_rows": published,
        "source": redact_url(fin.source) if fin.source_is_url else fin.source,
        "generated_synthetic": bool(generated),
        "row_counts": counts,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def build_finance(period: str, settings: Settings | None = None) -> dict:
    """Step 2: the finance dbt models (separate invocation, ``tag:finance``)."""
    from mhsds_pipeline.finance.loader import build_finance_marts

    settings = settings or load_settings()
    period = str(ReportingPeriod.parse(period))
    return {"period": period, **build_finance_marts(settings, period)}


def ensure_derived(settings: Settings, history) -> list[str]:
    """Make the warehouse's derived fields describe exactly the published months ``history``
    reads: when a month is missing from the load or was re-published since, reload the published
    months and rebuild the derived models (``+tag:derived``). Returns the months refreshed."""
    from mhsds_pipeline.finance.published import load_published, stale_months

    stale = stale_months(settings, history)
    if not stale:
        return []
    log.info(
        "MHIS %s: published month(s) %s not as loaded; reloading the history and rebuilding the derived fields",
        history.period,
        ", ".join(stale),
    )
    load_published(settings, history)
    build_derived(
        settings,
        f"MHIS {history.period}",
        settings.data_dir / "dbt" / "finance" / f"{history.period}-derived",
    )
    return stale


def build_derived(settings: Settings, label: str, work_dir: Path) -> None:
    """dbt builds the national derived tables (``+tag:derived``: they and what they read) from
    ``mhsds_published`` in the warehouse ``settings`` names (DuckDB, PostgreSQL or Spark); a
    failed build raises TransformError naming each failed node and ``label`` (what it was for)."""
    from mhsds_pipeline.transform import TransformError, run_dbt

    ok, nodes = run_dbt(settings, ["build", "--select", "+tag:derived"], {"finance_enabled": True}, work_dir)
    if not ok:
        failed = [f"{n.unique_id} ({n.status}: {n.message})" for n in nodes if n.status in ("error", "fail")]
        raise TransformError(
            f"dbt build of the derived fields failed for {label}: "
            + "; ".join(failed or ["see the dbt logs"])
            + f". Logs: {Path(work_dir) / 'logs'}"
        )


def compute_outputs(settings: Settings, period: str):
    """The MHIS position, LTP metrics and activity linkage for ``period`` (not yet written)."""
    from mhsds_pipeline.finance import activity, ltp_metrics, mhis
    from mhsds_pipeline.finance.config import load_finance_settings
    from mhsds_pipeline.finance.loader import read_marts
    from mhsds_pipeline.finance.published import open_history
    from mhsds_pipeline.finance.report import MhisOutputs
    from mhsds_pipeline.publish import code_version

    fin = load_finance_settings(settings)
    marts = {name: table.to_pylist() for name, table in read_marts(settings).items()}
    categories = mhis.read_seed(fin.seed_dir / "ref_mhis_category.csv")
    names = {c["mhis_category"]: c["category_name"] for c in categories}
    result = mhis.mhis_position(
        marts["mhis_spend_monthly"], marts["mhis_outturn"], marts["mhis_allocation"], period, names
    )
    short = {c["mhis_category"]: c.get("short_name") for c in categories}
    for row in result.categories:
        row["short_name"] = short.get(row["mhis_category"]) or row["category_name"]

    history = history_for(settings, period)
    ensure_derived(settings, history)
    derived = ltp_metrics.open_derived(settings)
    try:
        metrics, series = ltp_metrics.ltp_metrics(
            derived,
            history,
            ltp_metrics.load_metric_codes(fin.seed_dir),
            ltp_metrics.load_trajectories(fin.seed_dir),
            fin.trajectory_scale,
            settings.dbt_project_dir / "seeds" / "reference",
        )
    finally:
        derived.close()
    con = open_history(history)
    try:
        act, teams = activity.activity_by_category(
            con,
            history,
            marts["mhis_spend_monthly"],
            mhis.read_seed(fin.seed_dir / "ref_mhis_team_type_map.csv"),
            categories,
        )
    finally:
        con.close()

    _, _, window_months = ltp_metrics.window(period)
    published = {m.period: m for m in history.months}
    sources = [
        {
            "kind": "MHSDS",
            "period": m,
            "status": "published" if m in published else "missing",
            "version": published[m].version if m in published else None,
            "run_id": published[m].run_id if m in published else None,
            "code_version": published[m].code_version if m in published else None,
        }
        for m in history.requested
        if m in window_months or m in published
    ]
    sources.append(
        {
            "kind": "Finance ledger",
            "period": f"{result.ledger_months[0]}..{result.ledger_months[-1]}",
            "status": "missing: " + ",".join(result.ledger_months_missing)
            if result.ledger_months_missing
            else "complete",
            "version": None,
            "run_id": None,
            "code_version": None,
        }
    )
    notes = list(result.notes)
    missing_window = history.missing_in(window_months[0], window_months[-1])
    if missing_window:
        notes.append(f"MHSDS months not published in the 12-month window: {', '.join(missing_window)}.")
    outputs = MhisOutputs(
        period=period,
        financial_year=result.financial_year,
        position=result.position,
        categories=result.categories,
        exclusions=result.exclusions,
        activity=act,
        teams=teams,
        metrics=metrics,
        series=series,
        sources=sources,
        notes=notes,
        trajectory_scale_basis=fin.trajectory_scale_basis,
        code_version=code_version(settings.home),
    )
    inputs = {
        "mhsds_months": {m.period: m.version for m in history.months},
        "mhsds_months_missing_in_window": missing_window,
        "ledger_months": result.ledger_months,
        "ledger_months_missing": result.ledger_months_missing,
        "trajectory_scale": fin.trajectory_scale,
        "trajectory_scale_basis": fin.trajectory_scale_basis,
    }
    return outputs, inputs


def publish_mhis_outputs(period: str, run_id: str | None = None, settings: Settings | None = None) -> dict:
    """Step 3: compute and publish ``output/<period>/mhis/`` as a new version of the period."""
    from mhsds_pipeline.finance.outputs import publish_mhis
    from mhsds_pipeline.locks import publication_lock

    settings = settings or load_settings()
    period = str(ReportingPeriod.parse(period))
    run_id = run_id or f"mhis__{uuid.uuid4().hex[:12]}"
    t0 = time.perf_counter()
    outputs, inputs = compute_outputs(settings, period)
    with publication_lock(settings, period, run_id, "publish_mhis"):  # vs publish and packaging
        version = publish_mhis(settings, outputs, run_id, inputs)
    cur = outputs.current
    return {
        "period": period,
        "financial_year": outputs.financial_year,
        "version": version.name,
        "output_dir": str(settings.output_dir / period / "mhis"),
        "target_gbp": str(cur["target_gbp"]),
        "ytd_mhis_spend_gbp": str(cur["ytd_mhis_spend_gbp"]),
        "forecast_outturn_gbp": str(cur["forecast_outturn_gbp"]),
        "meets_standard_forecast": cur["meets_standard"],
        "prior_year": (
            {
                "financial_year": outputs.prior["financial_year"],
                "meets_standard": outputs.prior["meets_standard"],
            }
            if outputs.prior
            else None
        ),
        "metrics": {
            m["metric_id"]: {"value": m["value"], "trajectory": m["trajectory"], "status": m["status"]}
            for m in outputs.metrics
        },
        "mhsds_months_missing": inputs["mhsds_months_missing_in_window"],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def run_mhis(period: str, settings: Settings | None = None, run_id: str | None = None) -> dict:
    """Load the finance extract, build the finance marts and publish the MHIS outputs of a
    published period; returns a JSON-able summary (also what the DAG keeps in XCom)."""
    from mhsds_pipeline.publish import PublicationError, current_dir

    settings = settings or load_settings()
    rp = ReportingPeriod.parse(period)
    period = str(rp)
    if not current_dir(settings, rp).exists():
        raise PublicationError(
            f"MHIS {period}: the MHSDS month is not published ({current_dir(settings, rp)} is missing); "
            f"publish it first (`mhsds run --period {period}`)."
        )
    loaded = load_finance(period, settings)
    built = build_finance(period, settings)
    published = publish_mhis_outputs(period, run_id, settings)
    return {**published, "load_finance": loaded, "build_finance": built}


# ---------------------------------------------------------------------------------------------
# CLI: `mhsds mhis --period YYYY-MM` (registered by cli.py with add_parser)
# ---------------------------------------------------------------------------------------------


def cmd_mhis(ns: argparse.Namespace) -> int:
    from mhsds_pipeline.failures import WarehouseBusyError
    from mhsds_pipeline.finance.loader import FinanceSourceError
    from mhsds_pipeline.finance.mhis import MhisError
    from mhsds_pipeline.finance.published import PublishedDataError
    from mhsds_pipeline.locks import warehouse_lock
    from mhsds_pipeline.publish import PublicationError
    from mhsds_pipeline.transform import TransformError

    period = str(ReportingPeriod.resolve(getattr(ns, "period", "") or ""))
    run_id = getattr(ns, "run_id", None) or f"mhis__{uuid.uuid4().hex[:12]}"
    try:
        with warehouse_lock(load_settings(), run_id, period=period, step="mhsds mhis", wait_seconds=0):
            result = run_mhis(period, run_id=run_id)
    except (
        FinanceSourceError,
        MhisError,
        PublishedDataError,
        PublicationError,
        TransformError,
        WarehouseBusyError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    cur = "met" if result["meets_standard_forecast"] else "NOT met"
    print(
        f"\nMHIS {result['financial_year']} at {period}: forecast {result['forecast_outturn_gbp']} vs target "
        f"{result['target_gbp']} -> {cur}. Outputs: {result['output_dir']}"
    )
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``mhis`` on the ``mhsds`` command's subparsers."""
    p = subparsers.add_parser(
        "mhis",
        help="MHIS spend vs target and LTP access metrics for a published period (finance outputs)",
    )
    p.add_argument("--period", default="", help="YYYY-MM (published); default: the latest complete month")
    p.add_argument("--run-id", default=None)
    p.set_defaults(func=cmd_mhis)
    return p
