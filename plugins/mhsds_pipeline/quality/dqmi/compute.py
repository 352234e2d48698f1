"""compute_dqmi: one period's DQMI, from the warehouse counts to a scored :class:`DqmiResult`.

The orchestration between the other modules: read the period the warehouse holds, load the
seed items active for it (:mod:`.items`), run one counting query per table and the SNOMED CT
query (:mod:`.sql`), and score the counts (:mod:`.scoring`). Kept apart so that neither the
SQL nor the scoring needs to know about the other.

The SQL reads warehouse relations (each item's ``table_name``); the result names tables by their
IDB names (each item's ``idb_table``, from the dbt contracts), so nothing downstream of this
module shows a relation name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.dqmi.items import (
    _IDENT_RE,
    CATEGORIES,
    DqmiItem,
    _snomed_finding_schemes,
    load_dqmi_config,
    with_idb_names,
)
from mhsds_pipeline.quality.dqmi.scoring import (
    DqmiResult,
    ItemResult,
    SnomedCoverage,
    VodimCounts,
    _fmt,
    coverage_ratio,
    item_score_from_vodim,
)
from mhsds_pipeline.quality.dqmi.sql import (
    HEADER_TABLE,
    MPI_TABLE,
    REFERRAL_TABLE,
    _category_expr,
    _Ctx,
    _engine,
    _population_expr,
    _read_header,
    _reflect_tables,
    _snomed_query,
    _table_query,
)

# The package's single logger, under the name the one-module dqmi.py logged as.
log = logging.getLogger(__package__)


def compute_dqmi(
    engine_or_url: Engine | sa.Connection | str | sa.URL,
    schema: str = "analytics",
    period: ReportingPeriod | str | None = None,
    items: Sequence[DqmiItem | str] | None = None,
    *,
    expected_records: Mapping[str, int] | None = None,
    seed_dir: Path | None = None,
) -> DqmiResult:
    """Count VODIM per DQMI item in the warehouse and score the period's MHSDS submission.

    ``engine_or_url``: a SQLAlchemy engine/connection or URL (``warehouse.sqlalchemy_url``);
    DuckDB files are opened read-only. ``period``: the reporting period (default: the one the
    warehouse's MHS000Header holds; a different period is an error, not a zero). ``items``:
    DqmiItem objects or item ids to restrict to (default: every seed row active for the period).
    ``expected_records``: optional ``{table: expected monthly records}`` (e.g. from national
    volumes), the table by its IDB name (``MHS101Referral``) or warehouse relation; a table
    listed there gets coverage ``min(1, records / expected)``, others the submission coverage
    (1 if the header is present, else 0). ``DqmiResult.table_records`` is keyed by IDB name.

    A missing table or column marks its items ``error`` (with the reason) instead of aborting,
    so one absent optional table does not hide the rest of the index.
    """
    rp = ReportingPeriod.parse(period) if isinstance(period, str) else period
    if not _IDENT_RE.match(schema):
        raise ValueError(f"schema {schema!r} is not a plain schema name")
    bind, owned = _engine(engine_or_url)
    try:
        with bind.connect() if isinstance(bind, Engine) else nullcontext(bind) as conn:
            probe = _reflect_tables(conn, schema, [HEADER_TABLE])
            rp, provider, submitted = _read_header(conn, probe, rp)
            config = load_dqmi_config(rp, seed_dir)
            selected = _select_items(config.items, items, config.idb_tables)
            counted = [i for i in selected if not i.not_applicable]
            wanted = {i.table_name for i in counted} | {HEADER_TABLE, REFERRAL_TABLE, MPI_TABLE}
            if config.snomed is not None:
                wanted |= {config.snomed.table_name, config.snomed.rule_arg or ""}
            ctx = _Ctx(period=rp, tables=_reflect_tables(conn, schema, wanted), idb=config.idb_tables)
            counts, errors, records = _count_items(conn, ctx, counted)
            snomed = _snomed(conn, ctx, config.snomed, seed_dir) if config.snomed is not None else None
    finally:
        if owned:
            bind.dispose()  # type: ignore[union-attr]

    base_coverage = 1.0 if submitted else 0.0
    relation_of = {idb: rel for rel, idb in config.idb_tables.items()}
    expected = {relation_of.get(t, t): n for t, n in (expected_records or {}).items()}
    results: list[ItemResult] = []
    for item in selected:
        if item.not_applicable:  # listed in the DQMI, not scored here: the seed row says why
            results.append(ItemResult(item, None, base_coverage, None, "not_applicable"))
            continue
        if item.item_id in errors:
            results.append(ItemResult(item, None, base_coverage, None, "error", errors[item.item_id]))
            continue
        c = counts[item.item_id]
        if item.table_name in expected:
            coverage = coverage_ratio(records.get(item.table_name, 0), expected[item.table_name])
        else:
            coverage = base_coverage
        score = item_score_from_vodim(c, item.default_threshold_pct)
        if score is None:
            status = "not_applicable"
        else:
            status = "passed" if score >= item.target_score else "failed"
        results.append(ItemResult(item, c, coverage, score, status))

    if expected:
        basis = (
            "expected records per table (min(1, records / expected)) for "
            + ", ".join(sorted(config.idb_tables.get(t, t) for t in expected))
            + "; other tables: submission header present"
        )
    else:
        basis = (
            "submission header present for the period (1) or not (0); national expected volumes not applied"
        )
    result = DqmiResult(
        period=str(rp),
        schema=schema,
        provider=provider,
        submitted=submitted,
        method_version=config.version,
        items=tuple(results),
        dataset_target=config.dataset_target,
        snomed=snomed,
        coverage_basis=basis,
        table_records={config.idb_tables.get(t, t): n for t, n in records.items()},
    )
    log.info(
        "DQMI %s: %d items scored, data set score %s, SNOMED CT coverage %s",
        result.period,
        len(result.scored_items),
        _fmt(result.dataset_score),
        _fmt(snomed.coverage_pct if snomed else None),
    )
    return result


def compute_submission_dqmi(
    engine: Engine | sa.Connection, *, schema: str, submitted_schema: str, period: ReportingPeriod | str
) -> DqmiResult:
    """The DQMI as NHS England scores it, on the national data set: the records SDCS would accept
    (``submitted_schema``, after record and group rejections), with the score over every row of
    ``schema`` kept beside it (``score_before_rejections``: what the rejections cost). The trust's
    gate and the system view's provider step both score this way."""
    from dataclasses import replace

    before = compute_dqmi(engine, schema=schema, period=period)
    return replace(
        compute_dqmi(engine, schema=submitted_schema, period=period),
        records_basis="the records SDCS would accept (after record and group rejections), as NHS England "
        "scores the national data set",
        score_before_rejections=before.dataset_score,
    )


def _select_items(
    active: Sequence[DqmiItem], items: Sequence[DqmiItem | str] | None, idb_tables: Mapping[str, str]
) -> list[DqmiItem]:
    if items is None:
        return list(active)
    by_id = {i.item_id: i for i in active}
    out: list[DqmiItem] = []
    for it in items:
        if isinstance(it, DqmiItem):
            out.append(it if it.idb_table else with_idb_names(it, idb_tables))
        elif it in by_id:
            out.append(by_id[it])
        else:
            raise KeyError(f"DQMI item {it!r} is not active for this period; known: {sorted(by_id)}")
    return out


def _count_items(
    conn: sa.Connection, ctx: _Ctx, items: Sequence[DqmiItem]
) -> tuple[dict[str, VodimCounts], dict[str, str], dict[str, int]]:
    counts: dict[str, VodimCounts] = {}
    errors: dict[str, str] = {}
    records: dict[str, int] = {}
    by_table: dict[str, list[DqmiItem]] = {}
    for item in items:
        by_table.setdefault(item.table_name, []).append(item)
    for table, table_items in by_table.items():
        buildable: list[DqmiItem] = []
        for item in table_items:
            try:
                _category_expr(item, ctx)
                _population_expr(item, ctx)
            except LookupError as exc:
                errors[item.item_id] = str(exc)
                log.warning("DQMI %s item %s not computed: %s", ctx.period, item.item_id, exc)
                continue
            buildable.append(item)
        if not buildable:
            continue
        row = conn.execute(_table_query(buildable, ctx, table)).mappings().one()
        records[table] = int(row["records"] or 0)
        for n, item in enumerate(buildable):
            counts[item.item_id] = VodimCounts(**{cat: int(row[f"c{n}_{cat}"] or 0) for cat in CATEGORIES})
    return counts, errors, records


def _snomed(conn: sa.Connection, ctx: _Ctx, spec: DqmiItem, seed_dir: Path | None) -> SnomedCoverage:
    schemes = _snomed_finding_schemes(seed_dir)
    try:
        query = _snomed_query(spec, ctx, schemes)
    except LookupError as exc:
        log.warning("DQMI %s SNOMED CT coverage not computed: %s", ctx.period, exc)
        return SnomedCoverage(
            0,
            0,
            spec.target_score,
            spec.valid_values,
            spec.source,
            error=str(exc),
            table_name=spec.idb_table,
            activity_table=spec.rule_arg_idb_table,
        )
    row = conn.execute(query).one()
    return SnomedCoverage(
        int(row.attended or 0),
        int(row.with_snomed or 0),
        spec.target_score,
        spec.valid_values,
        spec.source,
        table_name=spec.idb_table,
        activity_table=spec.rule_arg_idb_table,
    )
