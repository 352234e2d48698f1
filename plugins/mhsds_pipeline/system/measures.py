"""NHS England's LTP measures for one provider's package, and their aggregation per ICB.

The measures are the finance package's (:mod:`mhsds_pipeline.finance.ltp_metrics`), which read
the national derived tables dbt builds (``models/derived``: RecordNumber, Person_ID, ages,
LADistrictAuth ...) from the published months in schema ``mhsds_published``. For a provider's
package that schema is filled from the rows the rule engine would submit (``dq.<relation>__submit``,
the records SDCS accepts, as the trust's own published Parquet holds), in the provider's own
DuckDB file; dbt then builds the derived tables there and the measures run unchanged. Only
counts leave this module.

Windows: the measures' windows are 12 months or a quarter of submitted months. A system run
reads the period's packages only, so each provider's figures cover the months the inbox gave
(``months_available``) and a window missing months is ``window_complete = False``, as the
trust-level measures label a partial history.

ICB figures (:func:`icb_values`) are the sums of the exact provider counts of the ICB's providers
(the registry's ``icb_code``) whose files SDCS would accept (no "file rejected" rule failed),
before disclosure control; a mean is recomputed from the summed
numerator and denominator. NHS England attributes a person to a sub-ICB, and so to an ICB, by
the person's GP practice (MHS002GP ``OrgIDSubICBLocGP``) and else the residence
(``OrgIDSubICBLocResidence``), and counts a person once per geography (docs/system_view.md,
"ICB attribution"); that needs a sub-ICB -> ICB register the project does not hold yet, so the
ICB rows say which attribution they use (``attribution``).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from mhsds_pipeline.finance import ltp_metrics
from mhsds_pipeline.finance.measure_sql import Metric
from mhsds_pipeline.finance.published import PUBLISHED_SCHEMA, TABLES, _empty_table
from mhsds_pipeline.period import ReportingPeriod

WAREHOUSE_ENV = "MHSDS_WAREHOUSE_PATH"

#: How an ICB figure attributes activity: the provider's ICB in the registry (providers.csv).
ATTRIBUTION = "provider: the registry's icb_code of the provider (sum of the ICB's providers)"

#: Columns of ltp_by_provider.parquet after its key column(s).
MEASURE_FIELDS = [
    pa.field("period", pa.string(), nullable=False),
    pa.field("metric_id", pa.string(), nullable=False),
    pa.field("metric_name", pa.string(), nullable=False),
    pa.field("unit", pa.string(), nullable=False),
    pa.field("window_months", pa.int64(), nullable=False),
    pa.field("months_available", pa.int64(), nullable=False),
    pa.field("window_complete", pa.bool_(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("suppressed", pa.bool_(), nullable=False),
    pa.field("disclosure_controlled", pa.bool_(), nullable=False),
    pa.field("nhs_england_source", pa.string(), nullable=False),
]
PROVIDER_SCHEMA = pa.schema(
    [
        pa.field("org_id_provider", pa.string(), nullable=False),
        pa.field("icb_code", pa.string()),
        pa.field("submission_accepted", pa.bool_(), nullable=False),
        *MEASURE_FIELDS,
    ]
)
ICB_SCHEMA = pa.schema(
    [
        pa.field("icb_code", pa.string(), nullable=False),
        pa.field("icb_name", pa.string()),
        pa.field("region_code", pa.string()),
        pa.field("providers", pa.int64(), nullable=False),  # providers summed (files SDCS would accept)
        *MEASURE_FIELDS,
        pa.field("attribution", pa.string(), nullable=False),
    ]
)


def metrics() -> tuple[Metric, ...]:
    """The measures computed per provider: NHS England's LTP access and length-of-stay measures
    (``ltp_metrics.METRICS``: the 4-week waits need the trust's reference sets and are left out)."""
    return ltp_metrics.METRICS


def submitted_tables(
    read_sql, period: ReportingPeriod, org_id_provider: str, relation_of: dict[str, str]
) -> dict:
    """The provider's submitted rows in the layout of ``finance.published.published_tables``:
    ``months`` plus one table per IDB table the measures read, each row with the UniqMonthID.

    ``read_sql`` runs a DuckDB query in the provider's warehouse after the rule engine ran and
    returns Arrow (on Spark: transpiled first); ``relation_of`` maps IDB table -> warehouse
    relation (the contracts')."""
    from mhsds_pipeline.quality.engine import submit_view

    month = period.uniq_month_id
    out = {
        "months": pa.table(
            {
                "UniqMonthID": pa.array([month], pa.int64()),
                "ReportingPeriod": pa.array([str(period)], pa.string()),
                "ReportingPeriodStartDate": pa.array([period.start], pa.date32()),
                "ReportingPeriodEndDate": pa.array([period.end], pa.date32()),
                "OrgIDProv": pa.array([org_id_provider], pa.string()),
                "Version": pa.array(["system"], pa.string()),
                "Fingerprint": pa.array(["system"], pa.string()),
            }
        )
    }
    for table, (columns, _, _) in TABLES.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        arrow = read_sql(f"SELECT {cols} FROM {submit_view(relation_of[table])}")
        arrow = arrow.cast(_empty_table(table).schema)
        out[table] = arrow.append_column("UniqMonthID", pa.array([month] * arrow.num_rows, pa.int64()))
    return out


PARSE_FILE = "partial_parse.msgpack"


@contextmanager
def _working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def provider_raw_values(
    settings, period: ReportingPeriod, tables: dict, work_dir: Path, parse_cache: Path | None = None
) -> dict[str, int | float | None]:
    """Exact measure values for one provider (internal: never published as they are).

    ``settings`` points at the provider's own DuckDB file; ``tables`` from :func:`submitted_tables`.
    Loads them as ``mhsds_published``, builds the derived tables with dbt (``+tag:derived``) as
    the trust's MHIS run does, and runs the national measures' SQL.

    dbt runs in the folder of the provider's file and is given the file's bare name, so the
    profile dbt hashes (its connection details) is the same for every provider, and the project
    parse that ``parse_cache`` keeps (dbt's ``partial_parse.msgpack``) is reused: a full parse
    of the project costs about 10 s per provider here, a reused one about 1 s."""
    from dataclasses import replace

    from mhsds_pipeline.finance import build_derived
    from mhsds_pipeline.finance.loader import load_schema

    warehouse = Path(settings.warehouse_path).resolve()
    work_dir = Path(work_dir).resolve()
    target = work_dir / "target"
    if parse_cache is not None and (Path(parse_cache) / PARSE_FILE).is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(parse_cache) / PARSE_FILE, target / PARSE_FILE)
    local = replace(settings, warehouse_path=Path(warehouse.name))
    previous = os.environ.get(WAREHOUSE_ENV)  # run_dbt points the process's profile at the file
    with _working_directory(warehouse.parent):
        load_schema(local, PUBLISHED_SCHEMA, tables)
        try:
            build_derived(local, str(period), work_dir)
        finally:
            if previous is None:
                os.environ.pop(WAREHOUSE_ENV, None)
            else:
                os.environ[WAREHOUSE_ENV] = previous
        if parse_cache is not None and (target / PARSE_FILE).is_file():
            _keep_parse(target / PARSE_FILE, Path(parse_cache))
        return measure_values(local, period)


def measure_values(settings, period: ReportingPeriod, read=None) -> dict[str, int | float | None]:
    """The measures' exact values from the derived tables dbt built (``read``: name -> Arrow
    table, default the warehouse of ``settings``), by NHS England's measure SQL."""
    from mhsds_pipeline.finance.config import load_finance_settings

    seed_dir = load_finance_settings(settings).seed_dir
    con = ltp_metrics.open_derived(settings, read)
    try:
        raw = ltp_metrics.raw_values(con, str(period), ltp_metrics.load_metric_codes(seed_dir))
    finally:
        con.close()
    return {m.metric_id: raw[m.metric_id]["value"] for m in metrics()}


def _keep_parse(parsed: Path, cache: Path) -> None:
    """Keep dbt's parse for the next provider: written beside, then renamed (providers running
    side by side may both keep one; each rename is whole)."""
    cache.mkdir(parents=True, exist_ok=True)
    if (cache / PARSE_FILE).is_file():
        return
    tmp = cache / f".{PARSE_FILE}.{os.getpid()}"
    shutil.copyfile(parsed, tmp)
    os.replace(tmp, cache / PARSE_FILE)


def icb_values(per_provider: list[dict[str, int | float | None]]) -> dict[str, int | float | None]:
    """An ICB's exact values from its providers': counts summed; a mean recomputed from its summed
    numerator over the summed count it is the mean of (MHS156b = MHS156a bed days / MHS156)."""
    out: dict[str, int | float | None] = {}
    for m in metrics():
        if m.kind == "count":
            out[m.metric_id] = sum(int(v.get(m.metric_id) or 0) for v in per_provider)
    for m in metrics():
        if m.kind == "mean":
            denominator = _denominator_of(m)
            num, den = out.get(m.numerator or ""), out.get(denominator)
            out[m.metric_id] = (num / den) if num is not None and den else None
    return out


def _denominator_of(metric: Metric) -> str:
    """The count a mean is taken over: the measure with the numerator's id less its suffix letter
    (MHS156a -> MHS156)."""
    return (metric.numerator or "")[:-1]


def publishable_rows(
    period: ReportingPeriod, values: dict[str, int | float | None], months_available: int
) -> list[dict]:
    """One row per measure as it may be published: NHS England's provider-level disclosure control
    (``ltp_metrics.publishable``: counts under 5 suppressed, the rest to the nearest 5; a mean
    suppressed on its numerator, else a whole number)."""
    raw = {k: {"value": v} for k, v in values.items()}
    rows = []
    for m in metrics():
        value = ltp_metrics.publishable(m, raw)
        rows.append(
            {
                "period": str(period),
                "metric_id": m.metric_id,
                "metric_name": m.name,
                "unit": m.unit,
                "window_months": m.months,
                "months_available": min(months_available, m.months),
                "window_complete": months_available >= m.months,
                "value": None if value is None else float(value),
                "suppressed": value is None,
                "disclosure_controlled": True,
                "nhs_england_source": m.source,
            }
        )
    return rows
