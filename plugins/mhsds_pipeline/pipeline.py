"""The pipeline's steps as plain functions: the DAG wires them, the CLI and tests call them.

Each step takes the period as text and returns a small JSON-able summary (what Airflow keeps
in XCom); the data itself moves through files and the warehouse, never through XCom.
"""

from __future__ import annotations

import json
import logging
import time

from mhsds_pipeline.config import Settings, load_settings
from mhsds_pipeline.period import ReportingPeriod

log = logging.getLogger(__name__)


def resolve_period(requested: str | None, logical_date=None, allow_open_period: bool = False) -> str:
    """The period to process: as requested, else the month before the run's logical date.
    A month that has not ended is refused before anything is extracted, unless explicitly
    allowed (a rebuild for inspection, which is never packaged)."""
    if requested and str(requested).strip():
        return str(ReportingPeriod.parse(str(requested)).require_ended(allow_open=allow_open_period))
    today = logical_date.date() if logical_date is not None else None
    return str(ReportingPeriod.latest_complete(today))


def is_open_period(period: str) -> bool:
    """True for a month that has not ended yet (only reachable with ``allow_open_period``)."""
    return not ReportingPeriod.parse(period).has_ended()


def extract(period: str, settings: Settings | None = None) -> dict:
    from mhsds_pipeline.extract import extract_period

    settings = settings or load_settings()
    result = extract_period(settings, ReportingPeriod.parse(period))
    return {
        "period": period,
        "row_counts": {k: v.rows for k, v in result.tables.items()},
        "source_watermark": result.source_watermark,
        "seconds": result.seconds,
    }


def load_raw(period: str, settings: Settings | None = None) -> dict:
    from mhsds_pipeline.warehouse import load_raw as _load

    settings = settings or load_settings()
    t0 = time.perf_counter()
    counts = _load(settings, settings.landing_dir(period))
    return {"period": period, "row_counts": counts, "seconds": round(time.perf_counter() - t0, 3)}


def transform(period: str, source_watermark: str | None, settings: Settings | None = None) -> dict:
    from mhsds_pipeline.transform import build

    settings = settings or load_settings()
    summary = build(settings, ReportingPeriod.parse(period), source_watermark)
    return {"period": period, "counts": summary["counts"], "seconds": summary["seconds"]}


def validate_raw(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """GX ``raw__*`` suites on the landed extract (write-audit-publish: audit the input)."""
    from mhsds_pipeline.quality.gate import validate_raw_extract

    return validate_raw_extract(settings or load_settings(), period, run_id)


def quality(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """The quality gate: MHSDS rules, GX marts suites + Data Docs, DQMI, dq_results, verdict."""
    from mhsds_pipeline.quality.gate import run_quality

    return run_quality(settings or load_settings(), period, run_id)


def publish(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """Stage the MHSDS Parquet (quarantined rows excluded) with its DQ outputs and manifest,
    then promote atomically; refuses when the quality gate did not pass."""
    from mhsds_pipeline.extract import read_extract_result
    from mhsds_pipeline.locks import publication_lock
    from mhsds_pipeline.publish import discard, promote, stage_mhsds, staging_dir
    from mhsds_pipeline.quality.gate import work_dir
    from mhsds_pipeline.transform import BuildResults

    settings = settings or load_settings()
    rp = ReportingPeriod.parse(period)
    extracted = read_extract_result(settings.landing_dir(period))
    built = BuildResults.read(settings, period)
    extra = {
        "source": {
            "url": extracted.source,
            "watermark": extracted.source_watermark,
            "extract_row_counts": extracted.row_counts,
            "extract_sha256": {name: t.sha256 for name, t in extracted.tables.items()},
        },
        "dbt": {"counts": built.counts if built else {}},
    }
    t0 = time.perf_counter()
    try:  # stage_mhsds and promote clean up after themselves; this also covers the unexpected
        stage = stage_mhsds(settings, rp, run_id, extra, quality_dir=work_dir(settings, period, run_id))
        with publication_lock(settings, period, run_id, "publish"):  # vs packaging and MHIS
            version = promote(settings, rp, stage)
    except BaseException:
        discard(staging_dir(settings, rp, run_id))
        raise
    manifest = json.loads((version / "manifest.json").read_text())
    return {
        "period": period,
        "version": version.name,
        "row_counts": {k: v["rows"] for k, v in manifest["tables"].items()},
        "seconds": round(time.perf_counter() - t0, 3),
    }


def run_all(period: str, run_id: str, settings: Settings | None = None) -> dict:
    """Every step in order, without Airflow (benchmarks, tests, debugging)."""
    settings = settings or load_settings()
    timings: dict[str, dict] = {}
    ex = extract(period, settings)
    timings["extract"] = ex
    timings["load_raw"] = load_raw(period, settings)
    timings["validate_raw"] = validate_raw(period, run_id, settings)
    timings["transform"] = transform(period, ex["source_watermark"], settings)
    timings["quality"] = quality(period, run_id, settings)
    timings["publish"] = publish(period, run_id, settings)
    if is_open_period(period):  # a rebuild of an unfinished month is never packaged
        timings["package"] = {"skipped": f"MHSDS {period} has not ended: an open month is never packaged"}
        return timings
    from mhsds_pipeline.submission import package

    timings["package"] = package(period, run_id, settings)
    return timings
