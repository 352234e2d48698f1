"""Publish the MHIS outputs beside the period's MHSDS files, as a new immutable version.

``output/<YYYY-MM>`` is a symlink to an immutable version directory. The MHIS run does not write
into it: it stages a new version holding hard links to the current version's files (the MHSDS
Parquet are not copied or changed), the ``mhis/`` directory and ``manifest.json`` with an
``mhis`` section added, then promotes it with the same atomic symlink switch as the MHSDS
publisher (``publish.promote``). If the period is re-published while MHIS runs, promotion is
refused (the new publication triggers a fresh MHIS run through the asset event).

Layout added::

    output/<YYYY-MM>/mhis/mhis_position.parquet        prior year (final) and this year (forecast)
    output/<YYYY-MM>/mhis/mhis_category.parquet        spend vs indicative target by MHIS category
    output/<YYYY-MM>/mhis/mhis_exclusion.parquet       spend outside MHIS by reason and category
    output/<YYYY-MM>/mhis/mhis_activity.parquet        spend, contacts, people, referrals, unit costs
    output/<YYYY-MM>/mhis/mhis_team_unit_cost.parquet  the same by cost centre / service line / team
    output/<YYYY-MM>/mhis/ltp_metric.parquet           LTP metrics at the period vs trajectory
    output/<YYYY-MM>/mhis/ltp_metric_monthly.parquet   rolling-12 series of the last 12 months
    output/<YYYY-MM>/mhis/mhis_<YYYY-MM>.xlsx          finance workbook
    output/<YYYY-MM>/mhis/mhis_report.html             self-contained HTML report
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.config import Settings
from mhsds_pipeline.finance.report import MhisOutputs
from mhsds_pipeline.finance.report_html import build_html
from mhsds_pipeline.finance.workbook import build_workbook
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.publish import PublicationError, current_dir, promote, staging_dir

MONEY = pa.decimal128(18, 2)
S, INT, F, B, D = pa.string(), pa.int32(), pa.float64(), pa.bool_(), pa.date32()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields])


SCHEMAS: dict[str, pa.Schema] = {
    "mhis_position": _schema(
        ("period", S),
        ("financial_year", S),
        ("basis", S),
        ("months_with_ledger_data", INT),
        ("ledger_months_missing", S),
        ("rule_version", S),
        ("comparison", S),
        ("baseline_outturn_gbp", MONEY),
        ("base_growth_pct", F),
        ("additional_uplift_pct", F),
        ("prior_year_shortfall_gbp", MONEY),
        ("calculated_target_gbp", MONEY),
        ("nhse_target_gbp", MONEY),
        ("target_gbp", MONEY),
        ("target_basis", S),
        ("ytd_mhis_spend_gbp", MONEY),
        ("ytd_target_gbp", MONEY),
        ("ytd_variance_gbp", MONEY),
        ("forecast_outturn_gbp", MONEY),
        ("forecast_variance_gbp", MONEY),
        ("mhis_growth_pct", F),
        ("meets_standard", B),
    ),
    "mhis_category": _schema(
        ("period", S),
        ("financial_year", S),
        ("mhis_category", S),
        ("category_name", S),
        ("in_mhis_scope", B),
        ("prior_year_outturn_gbp", MONEY),
        ("prior_year_mhis_outturn_gbp", MONEY),
        ("target_gbp", MONEY),
        ("ytd_spend_gbp", MONEY),
        ("ytd_mhis_spend_gbp", MONEY),
        ("ytd_excluded_gbp", MONEY),
        ("ytd_target_gbp", MONEY),
        ("ytd_variance_gbp", MONEY),
        ("forecast_outturn_gbp", MONEY),
        ("forecast_variance_gbp", MONEY),
    ),
    "mhis_exclusion": _schema(
        ("period", S),
        ("financial_year", S),
        ("exclusion_reason", S),
        ("mhis_category", S),
        ("category_name", S),
        ("ytd_excluded_gbp", MONEY),
        ("prior_year_excluded_gbp", MONEY),
    ),
    "mhis_activity": _schema(
        ("period", S),
        ("window_start", D),
        ("window_end", D),
        ("mhis_category", S),
        ("category_name", S),
        ("in_mhis_scope", B),
        ("spend_gbp", MONEY),
        ("contacts", pa.int64()),
        ("people_in_contact", pa.int64()),
        ("referrals", pa.int64()),
        ("spend_per_contact_gbp", MONEY),
        ("spend_per_person_gbp", MONEY),
        ("has_mhsds_activity", B),
        ("note", S),
    ),
    "mhis_team_unit_cost": _schema(
        ("period", S),
        ("cost_centre", S),
        ("service_line", S),
        ("team_local_id", S),
        ("mhis_category", S),
        ("activity_mhis_category", S),
        ("spend_gbp", MONEY),
        ("contacts", pa.int64()),
        ("people_in_contact", pa.int64()),
        ("referrals", pa.int64()),
        ("spend_per_contact_gbp", MONEY),
        ("spend_per_person_gbp", MONEY),
    ),
    "ltp_metric": _schema(
        ("period", S),
        ("metric_id", S),
        ("metric_name", S),
        ("unit", S),
        ("window_start", D),
        ("window_end", D),
        ("months_available", INT),
        ("window_complete", B),
        ("missing_months", S),
        ("value", F),
        ("trajectory", F),
        ("trajectory_financial_year", S),
        ("trajectory_carried_forward", B),
        ("trajectory_local_value", F),
        ("trajectory_scale", F),
        ("direction", S),
        ("local_measure", S),
        ("pct_of_trajectory", F),
        ("status", S),
        ("caveat", S),
        ("window_months", INT),
        ("nhs_england_source", S),
    ),
    "ltp_metric_monthly": _schema(
        ("metric_id", S),
        ("period", S),
        ("window_start", D),
        ("window_end", D),
        ("months_available", INT),
        ("window_complete", B),
        ("value", F),
        ("trajectory", F),
        ("status", S),
    ),
}

#: The person/activity counts in each output (null = suppressed under disclosure control).
COUNT_COLUMNS = {
    "mhis_activity": ("contacts", "people_in_contact", "referrals"),
    "mhis_team_unit_cost": ("contacts", "people_in_contact", "referrals"),
    "ltp_metric": ("value",),
    "ltp_metric_monthly": ("value",),
}


def to_tables(outputs: MhisOutputs) -> dict[str, pa.Table]:
    rows = {
        "mhis_position": [dict(r, period=outputs.period) for r in outputs.position],
        "mhis_category": outputs.categories,
        "mhis_exclusion": [dict(r, period=outputs.period) for r in outputs.exclusions],
        "mhis_activity": outputs.activity,
        "mhis_team_unit_cost": outputs.teams,
        "ltp_metric": outputs.metrics,
        "ltp_metric_monthly": outputs.series,
    }
    return {
        name: pa.Table.from_pylist(
            [{k: r.get(k) for k in SCHEMAS[name].names} for r in data], schema=SCHEMAS[name]
        )
        for name, data in rows.items()
    }


def write_outputs(outputs: MhisOutputs, directory: Path) -> dict[str, dict]:
    """Write the Parquet files, the workbook and the HTML into ``directory`` (the mhis/ dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for name, table in to_tables(outputs).items():
        path = directory / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        files[name] = {"path": f"mhis/{path.name}", "rows": table.num_rows}
    build_workbook(outputs, directory / f"mhis_{outputs.period}.xlsx")
    files["workbook"] = {"path": f"mhis/mhis_{outputs.period}.xlsx"}
    build_html(outputs, directory / "mhis_report.html")
    files["html"] = {"path": "mhis/mhis_report.html"}
    for info in files.values():
        info["sha256"] = sha256_file(directory.parent / info["path"])
    return files


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of ``src`` into ``dst`` (copy when links are not possible), except
    a previous ``mhis/`` and the manifest (rewritten)."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if rel.parts[0] == "mhis" or rel == Path("manifest.json"):
            continue
        target = dst / rel
        if path.is_symlink():  # e.g. submission -> ../../../submissions/<P>/vNNN (same depth)
            if not any(parent.is_symlink() for parent in path.parents if src in parent.parents):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(path), target)
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def publish_mhis(settings: Settings, outputs: MhisOutputs, run_id: str, inputs: dict) -> Path:
    """Stage a new version of the period = current MHSDS files + mhis/, then promote it."""
    rp = ReportingPeriod.parse(outputs.period)
    link = current_dir(settings, rp)
    if not link.exists():
        raise PublicationError(
            f"MHIS {outputs.period}: the MHSDS month is not published ({link} is missing); "
            f"publish it first (`mhsds run --period {outputs.period}`)."
        )
    base = Path(os.path.realpath(link))
    stage = staging_dir(settings, rp, run_id if run_id.startswith("mhis") else f"mhis__{run_id}")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        _link_tree(base, stage)
        files = write_outputs(outputs, stage / "mhis")
        manifest = (
            json.loads((base / "manifest.json").read_text()) if (base / "manifest.json").exists() else {}
        )
        manifest["mhis"] = {
            "run_id": run_id,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "based_on_version": base.name,
            "financial_year": outputs.financial_year,
            "meets_standard_forecast": outputs.current["meets_standard"],
            "files": files,
            "inputs": inputs,
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        if Path(os.path.realpath(link)) != base:
            raise PublicationError(
                f"MHIS {outputs.period}: the month was re-published while MHIS ran "
                f"({base.name} -> {Path(os.path.realpath(link)).name}); not promoting stale outputs. "
                "The new publication triggers its own MHIS run; or re-run `mhsds mhis`."
            )
        return promote(settings, rp, stage)
    except Exception:
        shutil.rmtree(stage, ignore_errors=True)
        raise
