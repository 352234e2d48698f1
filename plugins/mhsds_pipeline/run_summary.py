"""The summary ``mhsds run`` prints after the task lines: one screen, read from the outputs.

Everything comes from the published files of the period (manifest, gate verdict, MHIS Parquet),
so the summary says what was actually promoted, not what a task hoped to write. Counts are
operational totals for the person running the job; nothing names a patient or a record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mhsds_pipeline.config import Settings
from mhsds_pipeline.period import ReportingPeriod


def _rel(path: Path) -> str:
    """A path as short as it can be for the reader: relative to the working directory when inside."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def _gbp_m(value) -> str:
    return "n/a" if value in (None, "") else f"£{float(value) / 1e6:,.1f}m"


def summary_lines(settings: Settings, period: ReportingPeriod, run_log: Path | None = None) -> list[str]:
    out = settings.output_dir / str(period)
    manifest = json.loads((out / "manifest.json").read_text())
    quality = manifest.get("quality") or {}
    rejected = {t: n for t, n in (quality.get("rejected_rows") or {}).items() if n}
    tables = manifest["tables"]
    submitted = sum(int(info["rows"]) for info in tables.values())
    lines = [
        f"MHSDS {period} published to {_rel(out)} (run {manifest['run_id']})",
        f"  Submission    {len(tables)} tables, {submitted:,} rows; {sum(rejected.values()):,} rows quarantined "
        f"in {len(rejected)} tables",
    ]
    if rejected:
        top = sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        lines.append("                most quarantined: " + ", ".join(f"{t} {n:,}" for t, n in top))
    lines += _gate_lines(out)
    lines += _mhis_lines(out, period)
    lines += ["", "Where to look"]
    for label, path in (
        ("IG page", out / "dq" / "index.html"),
        ("Data Docs", out / "data_docs" / "index.html"),
        ("DQMI report", out / "dq" / "dqmi_report.html"),
        ("dbt docs", out / "dbt_docs" / "index.html"),
        ("MHIS report", out / "mhis" / "mhis_report.html"),
        ("MHIS workbook", out / "mhis" / f"mhis_{period}.xlsx"),
        ("SDCS reports", out / "dq" / "sdcs"),
        ("Parquet", out / "mhsds"),
        ("Package", settings.output_dir / "submissions" / str(period)),
    ):
        if path.exists():
            lines.append(f"  {label:<15}{_rel(path)}")
    if run_log is not None:
        lines.append(f"  {'Airflow log':<15}{_rel(run_log)}")
        lines.append(
            f"  {'':<15}(task logs also in the Airflow UI: `make airflow-ui`, http://localhost:8080)"
        )
    return lines


def _gate_lines(out: Path) -> list[str]:
    from mhsds_pipeline.quality.verdict import GATE_FILE, GateVerdict, VerdictError

    try:
        verdict = GateVerdict.read(out / GATE_FILE)
    except (OSError, VerdictError):
        return []
    lines = [
        f"  Quality gate  {verdict.status}: {verdict.checks:,} checks, {len(verdict.blocking)} blocking, "
        f"{verdict.warnings} warning checks fired (rules catalogue {verdict.rules_catalogue_version})"
    ]
    if verdict.dqmi_dataset_score is not None:
        lines.append(
            f"  DQMI          data set score {verdict.dqmi_dataset_score:.1f} (NHS England's method)"
        )
    return lines


def _mhis_lines(out: Path, period: ReportingPeriod) -> list[str]:
    position, metrics = out / "mhis" / "mhis_position.parquet", out / "mhis" / "ltp_metric.parquet"
    if not position.exists():
        return []
    import pyarrow.parquet as pq

    rows = pq.read_table(position).to_pylist()
    cur = rows[-1]
    verdict = {True: "meets the standard", False: "does NOT meet the standard", None: "not assessed"}[
        cur.get("meets_standard")
    ]
    lines = [
        f"  MHIS          {cur.get('financial_year', '')} forecast outturn {_gbp_m(cur.get('forecast_outturn_gbp'))} "
        f"vs target {_gbp_m(cur.get('target_gbp'))}: {verdict}"
    ]
    if metrics.exists():
        ltp = [r for r in pq.read_table(metrics).to_pylist() if r["status"] != "not_measurable"]
        count = {s: sum(1 for r in ltp if r["status"] == s) for s in ("met", "not_met", "incomplete")}
        missing = sorted({m for r in ltp for m in (r.get("missing_months") or "").split(",") if m})
        text = (
            f"  LTP measures  {len(ltp)}: {count['met']} met, {count['not_met']} not met, "
            f"{count['incomplete']} incomplete"
        )
        lines.append(text)
        if missing:
            lines.append(
                f"                {len(missing)} month(s) of the windows not published ({missing[0]}..{missing[-1]}): "
                f"`make backfill PERIOD={period} MONTHS=12` completes them"
            )
    return lines
