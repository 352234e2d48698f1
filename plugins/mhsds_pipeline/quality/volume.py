"""Volume anomalies: this month's row counts against the previous published months.

A month with half the usual care contacts passes every row-level rule: each row is valid, there
are just too few of them (a feed that stopped mid-month, an extract cut short, a team's activity
recorded late). This check compares, for every MHSDS table, the rows that will be published (the
rule engine's submit view: extracted minus quarantined) with the **median** of the same table in
the previous ``n_months`` published months, and writes one ``dq_results`` row per table
(source ``volume``, measure ``rows``, check ``LOCAL_VOLUME_ANOMALY``):

* ``numerator`` rows this month, ``denominator`` the median (rounded), ``rate`` their ratio,
  ``threshold`` the allowed relative change: failed when ``|rate - 1| > threshold`` and the
  change is at least ``min_change`` rows (a table of 4 diagnoses that has 2 is not news);
* severity ``warning`` always: a volume change can be real (a new service, a closed ward), so a
  person looks at it; it never blocks the gate;
* ``not_applicable`` with the reason when fewer than ``min_months`` previous months are published
  with the table, or the table was not built this month.

Median rather than mean: one earlier month that was itself anomalous (a half month published with
this warning, a backlog loaded twice) would drag the mean towards it and hide the next anomaly, or
raise one that is not there; the median of six months ignores up to two such months.

The previous months are the ``n_months`` calendar months before the period, each read from its
current published version (``output/<YYYY-MM>`` symlink, resolved once): the row count recorded in
its ``manifest.json`` (``tables.<IDB table>.rows``), or, for a manifest without it, the row count
in the Parquet footer. Months not published are named in the description, never invented.

Threshold: ``MHSDS_VOLUME_THRESHOLD``, a fraction (default ``0.3`` = ±30%), optionally followed by
per-table overrides in IDB names: ``0.3,MHS605SecDiag=1.0,MHS201CareContact=0.2``. Only counts are
read: nothing patient-level is opened, and no identifier can reach a description.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.results import CheckResult, status_for

log = logging.getLogger(__name__)

CHECK_ID = "LOCAL_VOLUME_ANOMALY"
ENV_THRESHOLD = "MHSDS_VOLUME_THRESHOLD"
DEFAULT_THRESHOLD = 0.3
DEFAULT_MONTHS = 6
MIN_MONTHS = 3
#: changes smaller than this many rows are never flagged, whatever the share (small tables)
MIN_CHANGE_ROWS = 10

_DESCRIPTION = "Rows this month against the median of the previous published months"


class VolumeConfigError(ValueError):
    """MHSDS_VOLUME_THRESHOLD cannot be read (reported as an ``error`` row; never blocks)."""


# ------------------------------------------------------------------------------ thresholds


@dataclass(frozen=True)
class VolumeThresholds:
    default: float = DEFAULT_THRESHOLD
    per_table: Mapping[str, float] = field(default_factory=dict)

    def for_table(self, table: str) -> float:
        return self.per_table.get(table, self.default)


def _fraction(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise VolumeConfigError(
            f"{ENV_THRESHOLD}: {where} {text!r} is not a number (use a fraction, e.g. 0.3 for ±30%)"
        ) from None
    if not (math.isfinite(value) and value >= 0):
        raise VolumeConfigError(f"{ENV_THRESHOLD}: {where} {text!r} must be a fraction >= 0 (0.3 = ±30%)")
    return value


def parse_thresholds(text: str | None, tables: Iterable[str] | None = None) -> VolumeThresholds:
    """``"0.3"`` or ``"0.3,MHS605SecDiag=1.0"`` (either part optional); ``tables``: the IDB
    names an override may use (a misspelt table would otherwise be silently ignored)."""
    default, per_table = DEFAULT_THRESHOLD, {}
    known = set(tables) if tables is not None else None
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        if "=" not in part:
            default = _fraction(part, "default threshold")
            continue
        table, value = (s.strip() for s in part.split("=", 1))
        if known is not None and table not in known:
            raise VolumeConfigError(
                f"{ENV_THRESHOLD}: {table!r} is not an MHSDS table (use IDB names, e.g. MHS201CareContact)"
            )
        per_table[table] = _fraction(value, f"threshold for {table}")
    return VolumeThresholds(default, per_table)


def thresholds_from_env(
    tables: Iterable[str] | None = None, environ: Mapping[str, str] | None = None
) -> VolumeThresholds:
    return parse_thresholds((os.environ if environ is None else environ).get(ENV_THRESHOLD), tables)


# ------------------------------------------------------------------------------ history


@dataclass(frozen=True)
class MonthCounts:
    period: str
    version: str  # the version directory the counts were read from
    rows: Mapping[str, int]  # IDB table -> rows published


@dataclass
class VolumeHistory:
    period: str  # the month being checked
    requested: list[str]  # the previous months, oldest first
    months: list[MonthCounts] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # not published (or unreadable)

    def counts(self, table: str) -> list[int]:
        return [m.rows[table] for m in self.months if table in m.rows]

    def span(self) -> str:
        return f"{self.requested[0]}..{self.requested[-1]}" if self.requested else "-"


def _parquet_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, ValueError):
        return None


def _month_counts(version_dir: Path, tables: Iterable[str] | None) -> dict[str, int]:
    manifest: dict = {}
    try:
        manifest = json.loads((version_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        log.warning("volume check: %s has no readable manifest; counting rows in its Parquet", version_dir)
    listed = manifest.get("tables") if isinstance(manifest, dict) else None
    listed = listed if isinstance(listed, dict) else {}
    names = set(tables) if tables is not None else set(listed)
    if tables is None and (version_dir / "mhsds").is_dir():
        names |= {p.stem for p in (version_dir / "mhsds").glob("*.parquet")}
    counts: dict[str, int] = {}
    for table in sorted(names):
        entry = listed.get(table)
        rows = entry.get("rows") if isinstance(entry, dict) else None
        if not isinstance(rows, int) or isinstance(rows, bool):
            path = version_dir / "mhsds" / f"{table}.parquet"
            rows = _parquet_rows(path) if path.is_file() else None
        if rows is not None:
            counts[table] = rows
    return counts


def published_counts(
    output_dir: Path, period: str, n_months: int = DEFAULT_MONTHS, tables: Iterable[str] | None = None
) -> VolumeHistory:
    """Row counts per table of the ``n_months`` published months before ``period``."""
    rp = ReportingPeriod.parse(period)
    tables = list(tables) if tables is not None else None
    history = VolumeHistory(period, [str(rp.shift(-k)) for k in range(n_months, 0, -1)])
    for month in history.requested:
        link = Path(output_dir) / month
        if not link.exists():
            history.missing.append(month)
            continue
        real = Path(os.path.realpath(link))  # resolved once: a re-publication may switch the link
        counts = _month_counts(real, tables)
        if counts:
            history.months.append(MonthCounts(month, real.name, counts))
        else:
            history.missing.append(month)
    return history


# ------------------------------------------------------------------------------ the check


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _baseline(history: VolumeHistory, table: str) -> str:
    have = [m.period for m in history.months if table in m.rows]
    absent = [m for m in history.requested if m not in have]
    if not have:
        return f"none of the {len(history.requested)} previous months {history.span()} published with it"
    text = f"the {len(have)} previous published month{'s' if len(have) != 1 else ''}"
    if not absent:
        return f"{text} {history.span()}"
    return f"{text} in {history.span()} ({', '.join(absent)} not published or without the table)"


def _advice(change: float) -> str:
    if change < 0:
        return (
            "check the extract covers the whole month (a feed that stopped, a late-loading EPR, a team "
            "whose activity is not yet recorded) before submitting"
        )
    return (
        "check for duplicated or re-loaded records and that the extract holds only this month and "
        "this provider, or note the reason (a new service or team) before submitting"
    )


def _row(table: str | None, status: str, description: str, **fields) -> CheckResult:
    return CheckResult(
        check_id=CHECK_ID,
        source="volume",
        suite="volume",
        table_name=table,
        dimension="consistency",
        severity="warning",
        measure="rows",
        status=status,
        description=description,
        **fields,
    )


def check_table(
    period: str,
    table: str,
    rows: int | None,
    history: VolumeHistory,
    threshold: float = DEFAULT_THRESHOLD,
    min_months: int = MIN_MONTHS,
    min_change: int = MIN_CHANGE_ROWS,
) -> CheckResult:
    """The row of one table (``rows``: to be published this month; None when not built)."""
    if rows is None:
        return _row(table, "not_applicable", f"{table}: not built for {period}; volume not compared")
    counts = history.counts(table)
    base = _baseline(history, table)
    if len(counts) < min_months:
        return _row(
            table,
            "not_applicable",
            f"{table}: {_n(rows)} rows; volume not compared: {base} give fewer than the "
            f"{min_months} months needed",
            numerator=rows,
            threshold=threshold,
        )
    median = statistics.median(counts)
    if median == 0:
        flagged = rows >= max(min_change, 1)
        text = f"{table}: {_n(rows)} rows vs none in {base}"
        return _row(
            table,
            "failed" if flagged else "passed",
            f"{text}: {_advice(1)}" if flagged else f"{text}: as before",
            numerator=rows,
            denominator=0,
            threshold=threshold,
        )
    change = rows / median - 1
    flagged = status_for("rows", rows, median, threshold) == "failed" and abs(rows - median) >= min_change
    text = (
        f"{table}: {_n(rows)} rows vs median {_n(median)} of {base} "
        f"({change:+.0%}, threshold ±{threshold:.0%})"
    )
    return _row(
        table,
        "failed" if flagged else "passed",
        f"{text}: {_advice(change)}" if flagged else f"{text}: within the usual volume",
        numerator=rows,
        denominator=round(median),
        rate=rows / median,
        threshold=threshold,
    )


def check_volumes(
    period: str,
    current: Mapping[str, int | None],
    history: VolumeHistory,
    thresholds: VolumeThresholds | None = None,
    min_months: int = MIN_MONTHS,
    min_change: int = MIN_CHANGE_ROWS,
) -> list[CheckResult]:
    """One warning-severity row per table of ``current`` (IDB table -> rows to publish; None
    when the table was not built this month)."""
    thresholds = thresholds or VolumeThresholds()
    return [
        check_table(period, t, current[t], history, thresholds.for_table(t), min_months, min_change)
        for t in sorted(current)
    ]


def anomalies(checks: Iterable[CheckResult]) -> dict[str, float | None]:
    """IDB table -> relative change (None: the table was empty before) of the flagged tables,
    for ``gate.json``."""
    return {
        c.table_name: (round(c.rate - 1, 4) if c.rate is not None else None)
        for c in checks
        if c.source == "volume" and c.status == "failed" and c.table_name
    }


def gate_volume(settings, period: str, rules, n_months: int = DEFAULT_MONTHS) -> list[CheckResult]:
    """The quality gate's volume rows: ``rules`` is the rule engine's outcome (rows submitted
    per IDB table). Never raises: whatever goes wrong is one ``error`` row of severity warning,
    because a volume check must never stop a month from being published."""
    from mhsds_pipeline.contracts import load_contracts

    try:
        idb = {m: c.idb_table for m, c in load_contracts(settings.dbt_project_dir).items()}
        names = set(idb.values())
        current = {
            t: (o.submitted_rows if o.present else None) for t, o in rules.tables.items() if t in names
        }
        current.update({name: None for name in idb.values() if name not in current})
        thresholds = thresholds_from_env(idb.values())
        history = published_counts(settings.output_dir, period, n_months, idb.values())
        checks = check_volumes(period, current, history, thresholds)
    except Exception as exc:  # noqa: BLE001 - reported as a row, never blocks the gate
        log.exception("volume check for %s could not run", period)
        return [
            _row(
                None,
                "error",
                f"{period}: volume check could not run ({type(exc).__name__}: {exc}); volumes were "
                f"not compared with earlier months. Fix {ENV_THRESHOLD} or the output directory and "
                "re-run the quality gate.",
            )
        ]
    flagged = anomalies(checks)
    log.info(
        "Volume check for %s against %s (%d published): %d of %d tables outside the usual volume%s",
        period,
        history.span(),
        len(history.months),
        len(flagged),
        len(checks),
        "".join(f"; {t} {'new' if c is None else f'{c:+.0%}'}" for t, c in sorted(flagged.items())),
    )
    for c in checks:
        if c.status == "failed":
            log.warning("Volume anomaly: %s", c.description)
    return checks
