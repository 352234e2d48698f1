"""DQMI SQL: VODIM classification and SNOMED CT coverage counted in the warehouse.

The index needs only counts, so the classification of every record into Valid, Other, Default,
Invalid or Missing is pushed down to the warehouse as SQLAlchemy expressions (one SELECT per
table, codes as bound parameters) that run the same on DuckDB and PostgreSQL; nothing but counts
leaves the warehouse. This module also reads what it must know of the warehouse first: column
types from ``information_schema`` and the period the MHS000Header holds. It builds queries from
:mod:`.items` and never scores: :mod:`.compute` runs the queries and :mod:`.scoring` scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.dqmi.items import CATEGORIES, DqmiItem
from mhsds_pipeline.quality.sql_identifiers import nhs_number_valid_expr, sctid_valid_expr

HEADER_TABLE: Final[str] = "mhs000_header"
REFERRAL_TABLE: Final[str] = "mhs101_referral"
MPI_TABLE: Final[str] = "mhs001_mpi"

_EATING_DISORDER_REASON: Final[str] = "12"  # ref_primary_reason_referral: 12 Eating disorders
_CYP_AGE_LIMIT: Final[int] = 19  # dqmi_snomed.md A2.3: clinical response priority for under-19s
_MHSDS_START: Final[date] = date(2016, 1, 1)

_CAT_CODE: Final[dict[str, int]] = {c: i + 1 for i, c in enumerate(CATEGORIES)}
_UPPER: Final[str] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS: Final[str] = "0123456789"


def _lit(value: str) -> ColumnElement[str]:
    """A bound string parameter (codes come from the seed; never spliced into SQL text)."""
    return sa.literal(value, sa.String)


def _text(column: ColumnElement) -> ColumnElement[str]:
    return column if isinstance(column.type, sa.String) else sa.cast(column, sa.String)


def _trimmed(column: ColumnElement) -> ColumnElement[str]:
    return sa.func.trim(_text(column))


def _as_date(column: ColumnElement) -> ColumnElement[date]:
    return (
        column
        if isinstance(column.type, sa.Date) and not isinstance(column.type, sa.DateTime)
        else sa.cast(column, sa.Date)
    )


def _as_time(column: ColumnElement) -> ColumnElement:
    """A TIME (or TIMESTAMP) column as it is; anything else (text) cast to TIME."""
    return column if isinstance(column.type, sa.Time | sa.DateTime) else sa.cast(column, sa.Time)


def _on_the_hour(column: ColumnElement, hours: Iterable[int] | None = None) -> ColumnElement[bool]:
    """Minute 0 (NHS Digital's integrity test ``MINUTE(t) = 0``: 09:00:40 counts, as there), and,
    given ``hours``, the hour one of them. EXTRACT runs the same on DuckDB and PostgreSQL."""
    t = _as_time(column)
    on_hour = sa.extract("minute", t) == 0
    if hours is None:
        return on_hour
    return sa.and_(on_hour, sa.extract("hour", t).in_([sa.literal(h, sa.Integer) for h in hours]))


def _shape(text: ColumnElement[str]) -> ColumnElement[str]:
    """Letters -> 'A', digits -> '9' (e.g. 'WR2 4GD' -> 'AA9 9AA'): a portable character-class match."""
    return sa.func.translate(sa.func.upper(text), _lit(_UPPER + _DIGITS), _lit("A" * 26 + "9" * 10))


def _in(expr: ColumnElement[str], values: Iterable[str]) -> ColumnElement[bool] | None:
    values = list(values)
    return expr.in_([_lit(v) for v in values]) if values else None


def _matches_defaults(text: ColumnElement[str], defaults: Sequence[str]) -> ColumnElement[bool] | None:
    """Exact default codes, and prefixes written with a trailing '%' (e.g. ZZ99%), case-insensitive."""
    exact = [d for d in defaults if not d.endswith("%")]
    prefixes = [d for d in defaults if d.endswith("%")]
    clauses: list[ColumnElement[bool]] = []
    if exact:
        clauses.append(text.in_([_lit(d) for d in exact]))
    for p in prefixes:
        clauses.append(sa.func.upper(text).like(_lit(p.upper())))
    return sa.or_(*clauses) if clauses else None


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February in a non-leap year
        return d.replace(year=d.year - years, day=28)


@dataclass
class _Ctx:
    """What the SQL builders need: the period and the warehouse tables as SQLAlchemy objects.

    ``idb`` (warehouse relation -> IDB table name) is for messages only: a reason an item was
    not computed reaches the report and dq_results, which name tables by their IDB names.
    """

    period: ReportingPeriod
    tables: dict[str, sa.TableClause]
    idb: Mapping[str, str] = field(default_factory=dict)

    def shown(self, table: str) -> str:
        return self.idb.get(table, table)


def _column(ctx: _Ctx, table: str, column: str) -> ColumnElement:
    tbl = ctx.tables.get(table)
    if tbl is None:
        raise LookupError(
            f"table {ctx.shown(table)} is not in the warehouse schema; did dbt build run for {ctx.period}?"
        )
    if column not in tbl.c:
        raise LookupError(
            f"column {ctx.shown(table)}.{column} is not in the warehouse; check the mart contract"
        )
    return tbl.c[column]


def _case(
    missing: ColumnElement[bool], *branches: tuple[ColumnElement[bool] | None, str], else_: str = "invalid"
) -> ColumnElement[int]:
    whens = [(missing, _CAT_CODE["missing"])]
    whens += [(cond, _CAT_CODE[cat]) for cond, cat in branches if cond is not None]
    return sa.case(*whens, else_=_CAT_CODE[else_])


def _category_expr(item: DqmiItem, ctx: _Ctx) -> ColumnElement[int]:
    """SQL returning the VODIM category code (1-5) of the item's value in each row.

    Tests run in the order missing, default, other, valid, so a code listed as a default is
    never counted valid by an overlapping shape (ZZ99 3VZ is postcode-shaped). Every branch is
    a positive test: a NULL sub-result falls through to 'invalid', never to NULL.
    """
    col = _column(ctx, item.table_name, item.column_name)
    rule = item.rule
    if rule in ("code_list", "code_list_first_char", "code_shape", "ods_code", "nhs_number"):
        t = _trimmed(col)
        missing = sa.or_(col.is_(None), t == _lit(""))
        default = _matches_defaults(t, item.default_values)
        if rule == "code_list":
            return _case(
                missing,
                (default, "default"),
                (_in(t, item.other_values), "other"),
                (_in(t, item.valid_values), "valid"),
            )
        if rule == "code_list_first_char":
            first = sa.func.substr(t, 1, 1)
            return _case(
                missing,
                (default, "default"),
                (_in(first, item.other_values), "other"),
                (_in(first, item.valid_values), "valid"),
            )
        if rule == "code_shape":
            return _case(missing, (default, "default"), (_in(_shape(t), item.valid_values), "valid"))
        if rule == "ods_code":
            # ODS codes: upper-case letters/digits of an accepted length (3 or 5 for organisations,
            # the row's rule_arg for sites): format only, no ODS extract (see the seed's source).
            well_formed = sa.and_(
                sa.func.length(t).in_([sa.literal(n, sa.Integer) for n in item.ods_code_lengths]),
                sa.func.translate(t, _lit(_UPPER + _DIGITS), _lit("")) == _lit(""),
            )
            return _case(missing, (default, "default"), (well_formed, "valid"))
        return _case(missing, (nhs_number_valid_expr(t), "valid"))
    if rule == "birth_date":
        d = _as_date(col)
        max_age = int(item.rule_arg or 120)
        oldest_invalid = _years_before(ctx.period.end, max_age + 1)  # turns max_age + 1 on this day
        plausible = sa.and_(d > sa.literal(oldest_invalid, sa.Date), d <= sa.literal(ctx.period.end, sa.Date))
        return _case(col.is_(None), (plausible, "valid"))
    if rule == "date_not_before":
        d = _as_date(col)
        other = _as_date(_column(ctx, item.table_name, item.rule_arg or ""))
        return _case(col.is_(None), (d >= other, "valid"))
    if rule == "date_in_referral":
        d = _as_date(col)
        key = _column(ctx, item.table_name, "ServiceRequestID")
        ref_key = _column(ctx, REFERRAL_TABLE, "ServiceRequestID")
        received = _as_date(_column(ctx, REFERRAL_TABLE, "ReferralRequestReceivedDate"))
        discharge_col = _column(ctx, REFERRAL_TABLE, "ServDischDate")
        within = (
            sa.exists()
            .where(ref_key == key)
            .where(received <= d)
            .where(sa.or_(discharge_col.is_(None), d <= _as_date(discharge_col)))
        )
        return _case(col.is_(None), (within, "valid"))
    if rule == "time_not_on_hour":
        # NHS Digital integrity measures (dimension 7): a time recorded exactly on the hour (XX:00)
        # is suspect; the seed's default_values (HH:00, e.g. 00:00 midnight, the time an EPR
        # writes when only a date was known) are counted apart as defaults. Blank = missing.
        missing = col.is_(None)
        if isinstance(col.type, sa.String):
            missing = sa.or_(missing, _trimmed(col) == _lit(""))
        placeholder_hours = [int(v[:2]) for v in item.default_values]
        default = _on_the_hour(col, placeholder_hours) if placeholder_hours else None
        return _case(missing, (default, "default"), (sa.not_(_on_the_hour(col)), "valid"))
    raise ValueError(f"item {item.item_id!r}: rule {rule!r} has no SQL")


def _population_expr(item: DqmiItem, ctx: _Ctx) -> ColumnElement[bool] | None:
    pop = item.population
    if pop == "all":
        return None
    if pop == "referrals_received_from_2016":
        return _as_date(_column(ctx, item.table_name, "ReferralRequestReceivedDate")) >= sa.literal(
            _MHSDS_START, sa.Date
        )
    if pop == "discharged_referrals":
        return _column(ctx, item.table_name, "ServDischDate").is_not(None)
    if pop == "closed_other_services":
        return _column(ctx, item.table_name, "ReferClosureDate").is_not(None)
    if pop == "column_populated":
        return _column(ctx, item.table_name, item.column_name).is_not(None)
    if pop == "discharge_plan_created":
        return _column(ctx, item.table_name, "DischPlanCreationDate").is_not(None)
    if pop == "discharged_spells":
        return _column(ctx, item.table_name, "DischDateHospProvSpell").is_not(None)
    if pop == "not_scottish_gp_practice":
        gp = _column(ctx, item.table_name, item.column_name)
        return sa.or_(gp.is_(None), sa.not_(sa.func.upper(_trimmed(gp)).like(_lit("S%"))))
    if pop == "cyp_eating_disorder_referrals":
        reason = _trimmed(_column(ctx, item.table_name, "PrimReasonReferralMH"))
        patient = _column(ctx, item.table_name, "LocalPatientID")
        youngest_adult = _years_before(ctx.period.end, _CYP_AGE_LIMIT)  # born on/before: 19+ at RP end
        under_19 = (
            sa.exists()
            .where(_column(ctx, MPI_TABLE, "LocalPatientID") == patient)
            .where(_as_date(_column(ctx, MPI_TABLE, "PersonBirthDate")) > sa.literal(youngest_adult, sa.Date))
        )
        return sa.and_(reason == _lit(_EATING_DISORDER_REASON), under_19)
    raise ValueError(f"item {item.item_id!r}: population {pop!r} has no SQL")


def _table_query(items: Sequence[DqmiItem], ctx: _Ctx, table: str) -> sa.Select:
    """One SELECT counting V/O/D/I/M for every item of ``table`` plus the table's row count.

    Inner query: one category column per item (NULL outside the item's population). Outer
    query: five conditional sums per item. Only these counts come back.
    """
    tbl = ctx.tables[table]
    inner_cols = [sa.literal(1, sa.Integer).label("one")]
    for n, item in enumerate(items):
        category = _category_expr(item, ctx)
        population = _population_expr(item, ctx)
        if population is not None:
            category = sa.case((population, category), else_=sa.null())
        inner_cols.append(category.label(f"c{n}"))
    sub = sa.select(*inner_cols).select_from(tbl).subquery("vodim")
    outer: list[ColumnElement] = [sa.func.count().label("records")]
    for n in range(len(items)):
        cat_col = sub.c[f"c{n}"]
        for cat, code in _CAT_CODE.items():
            outer.append(sa.func.sum(sa.case((cat_col == code, 1), else_=0)).label(f"c{n}_{cat}"))
    return sa.select(*outer).select_from(sub)


def _snomed_focus(column: ColumnElement) -> ColumnElement[str]:
    """The focus concept of a SNOMED CT expression: text before the first ':' and any '|term|'."""
    t = _trimmed(column)
    before_colon = sa.case(
        (sa.func.strpos(t, _lit(":")) > 0, sa.func.substr(t, 1, sa.func.strpos(t, _lit(":")) - 1)), else_=t
    )
    before_pipe = sa.case(
        (
            sa.func.strpos(before_colon, _lit("|")) > 0,
            sa.func.substr(before_colon, 1, sa.func.strpos(before_colon, _lit("|")) - 1),
        ),
        else_=before_colon,
    )
    return sa.func.trim(before_pipe)


def _snomed_query(spec: DqmiItem, ctx: _Ctx, snomed_finding_schemes: Sequence[str]) -> sa.Select:
    """Distinct attended contacts, and how many have >= 1 care activity holding a valid SCTID.

    The focus concepts are extracted once in a subquery and validated there, so the Verhoeff
    SQL runs on a plain column instead of repeating the extraction at each of its steps.
    """
    contact_id = _column(ctx, spec.table_name, "CareContactID")
    attend = _trimmed(_column(ctx, spec.table_name, spec.column_name))
    act_table = spec.rule_arg or ""
    act = ctx.tables.get(act_table)
    if act is None:
        raise LookupError(
            f"table {ctx.shown(act_table)} is not in the warehouse; did dbt build run for {ctx.period}?"
        )
    if "CareContactID" not in act.c:
        raise LookupError(
            f"column {ctx.shown(act_table)}.CareContactID is not in the warehouse; check the mart contract"
        )
    codes: list[ColumnElement[str]] = []
    if "Procedure" in act.c:
        codes.append(_snomed_focus(act.c.Procedure).label("procedure_focus"))
    if "Observation" in act.c:
        codes.append(_snomed_focus(act.c.Observation).label("observation_focus"))
    if "Finding" in act.c and "FindSchemeInUse" in act.c and snomed_finding_schemes:
        in_snomed_scheme = _trimmed(act.c.FindSchemeInUse).in_([_lit(s) for s in snomed_finding_schemes])
        codes.append(
            sa.case((in_snomed_scheme, _trimmed(act.c.Finding)), else_=sa.null()).label("snomed_finding")
        )
    if not codes:
        raise LookupError(
            f"{ctx.shown(act_table)} has none of Procedure, Observation, Finding: "
            "SNOMED CT coverage cannot be measured"
        )
    acts = (
        sa.select(act.c.CareContactID.label("contact_id"), *codes).select_from(act).subquery("activity_codes")
    )
    coded = (
        sa.select(acts.c.contact_id)
        .where(sa.or_(*(sctid_valid_expr(acts.c[c.name]) for c in codes)))
        .distinct()
        .subquery("coded_contacts")
    )
    attended = (
        sa.select(contact_id.label("contact_id"))
        .select_from(ctx.tables[spec.table_name])
        .where(contact_id.is_not(None))
        .where(attend.in_([_lit(c) for c in spec.valid_values]))
        .distinct()
        .subquery("attended_contacts")
    )
    return sa.select(
        sa.func.count().label("attended"), sa.func.count(coded.c.contact_id).label("with_snomed")
    ).select_from(attended.outerjoin(coded, attended.c.contact_id == coded.c.contact_id))


# --------------------------------------------------------------------------------------------
# Reading the warehouse: connection, column types, the period held
# --------------------------------------------------------------------------------------------


def _engine(engine_or_url: Engine | sa.Connection | str | sa.URL) -> tuple[Engine | sa.Connection, bool]:
    if isinstance(engine_or_url, Engine | sa.Connection) or hasattr(engine_or_url, "execute"):
        return engine_or_url, False  # an open connection, or one standing in for it (Spark's)
    url = sa.make_url(engine_or_url)
    connect_args = {"read_only": True} if url.get_backend_name() == "duckdb" else {}
    return sa.create_engine(url, connect_args=connect_args), True


def _sql_type(data_type: str) -> sa.types.TypeEngine:
    """information_schema data type (DuckDB or PostgreSQL spelling) -> the SQLAlchemy type we branch on."""
    t = data_type.lower()
    if "char" in t or t in ("text", "string", "varchar"):
        return sa.String()
    if t.startswith("timestamp"):
        return sa.DateTime()
    if t == "date":
        return sa.Date()
    if t.startswith("time"):
        return sa.Time()
    if "int" in t:
        return sa.Integer()
    return sa.types.NullType()


def _reflect_tables(conn: sa.Connection, schema: str, names: Iterable[str]) -> dict[str, sa.TableClause]:
    """Lightweight table objects with the warehouse's column types (no data read).

    Read from ``information_schema.columns`` rather than the SQLAlchemy inspector: both engines
    have it, whereas duckdb_engine's inspector queries PostgreSQL catalogs DuckDB lacks.
    """
    wanted = sorted({n for n in names if n})
    cols = sa.table(
        "columns",
        sa.column("table_schema", sa.String),
        sa.column("table_name", sa.String),
        sa.column("column_name", sa.String),
        sa.column("data_type", sa.String),
        sa.column("ordinal_position", sa.Integer),
        schema="information_schema",
    )
    rows = conn.execute(
        sa.select(cols.c.table_name, cols.c.column_name, cols.c.data_type)
        .where(cols.c.table_schema == schema, cols.c.table_name.in_(wanted))
        .order_by(cols.c.table_name, cols.c.ordinal_position)
    ).all()
    by_table: dict[str, list[sa.ColumnClause]] = {}
    for table_name, column_name, data_type in rows:
        by_table.setdefault(table_name, []).append(sa.column(column_name, _sql_type(data_type)))
    return {name: sa.table(name, *columns, schema=schema) for name, columns in by_table.items()}


def _read_header(
    conn: sa.Connection, tables: dict[str, sa.TableClause], period: ReportingPeriod | None
) -> tuple[ReportingPeriod, str | None, bool]:
    """The period the warehouse holds and whether it has this period's submission header."""
    hdr = tables.get(HEADER_TABLE)
    if hdr is None:
        raise LookupError(
            f"{HEADER_TABLE} is not in the warehouse: run dbt build for the period before the DQMI"
        )
    if "ReportingPeriodStartDate" not in hdr.c:
        raise LookupError(f"{HEADER_TABLE} has no ReportingPeriodStartDate column; check the mart contract")
    provider = hdr.c.OrgIDProvider if "OrgIDProvider" in hdr.c else sa.null()
    rp_start = _as_date(hdr.c.ReportingPeriodStartDate)
    rows = conn.execute(
        sa.select(rp_start.label("rp_start"), sa.func.min(provider).label("provider"))
        .group_by(rp_start)
        .order_by(rp_start)
    ).all()
    held = {
        ReportingPeriod(r.rp_start.year, r.rp_start.month): r.provider for r in rows if r.rp_start is not None
    }
    if period is None:
        if len(held) != 1:
            raise LookupError(
                f"{HEADER_TABLE} holds {len(held)} reporting periods ({sorted(map(str, held))}); pass period= explicitly"
            )
        period = next(iter(held))
    if held and period not in held:
        raise ValueError(
            f"The warehouse holds MHSDS period(s) {sorted(map(str, held))}, not {period}: "
            f"run the pipeline (extract, dbt build) for {period} before computing its DQMI."
        )
    return period, held.get(period), period in held
