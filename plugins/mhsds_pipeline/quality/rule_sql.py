"""The SQL of the rules catalogue: each rule compiled into one failing-row predicate.

:func:`fail_predicate` turns a catalogue rule (:mod:`mhsds_pipeline.quality.rules`) into a
condition over one MHSDS mart (alias ``t``), in SQL that DuckDB and PostgreSQL both run; the
check types are tabled in the rules module's docstring and, for the entries stated from the
rules file's wording, in docs/rules.md. The reference seeds the checks read (code lists, the
ODS organisations, assessment tool ranges) are found through :class:`SqlContext`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mhsds_pipeline.formats import ICD10_PATTERN, parse_format
from mhsds_pipeline.quality import sql_identifiers as sqlx

#: a catalogue rule (:class:`mhsds_pipeline.quality.rules.Rule`; not imported: rules imports this)
Rule = Any

REPO = Path(__file__).resolve().parents[3]
SEEDS = REPO / "dbt_project" / "seeds" / "reference"
#: A rejected header rejects the file: a submission without a valid header has none.
HEADER_TABLE = "MHS000Header"
#: The organisations in NHS England's ODS tables, as the trust configures them (a seed the trust
#: refreshes from the public ODS files; scripts/ods_seed.py builds the synthetic trust's).
ODS_SEED = "ref_ods_organisations"
#: Severities that take rows out of the submission (into quarantine), cascading to dependants.
ROW_REJECTING = ("group rejected", "record rejected")


class CatalogueError(ValueError):
    """The rules catalogue is malformed (a rule names an unknown table, column, code or check)."""


@cache
def seed_rows(seed: str, seeds_dir: Path = SEEDS) -> tuple[dict[str, str], ...]:
    """A reference seed's rows (code lists, refsets, tool ranges): the seeds dbt loads, found
    through the settings' dbt project (``SqlContext.seeds_dir``) so a trust's copy is the one read."""
    # the code lists of the tables built from the rules file live in v6/; a project without a
    # copy of a seed (a trust's trimmed project, a test's) reads the one this repository ships
    candidates = [Path(d) / sub / f"{seed}.csv" for d in (seeds_dir, SEEDS) for sub in ("", "v6")]
    path = next((p for p in candidates if p.exists()), candidates[0])
    with path.open(newline="") as fh:
        return tuple(csv.DictReader(fh))


def seed_codes(
    seed: str, column: str = "code", categories: tuple[str, ...] | None = None, seeds_dir: Path = SEEDS
) -> list[str]:
    rows = seed_rows(seed, seeds_dir)
    if categories is not None:
        rows = tuple(r for r in rows if r.get("vodim_category") in categories)
    return sorted({r[column] for r in rows})


def tool_ranges(seed: str = "ref_assessment_tools", seeds_dir: Path = SEEDS) -> dict[str, tuple[int, int]]:
    return {r["concept_id"]: (int(r["min_score"]), int(r["max_score"])) for r in seed_rows(seed, seeds_dir)}


# ------------------------------------------------------------------------------------ SQL


def existing_tables(conn, schema: str) -> set[str]:
    """The tables and views of ``schema`` (a table a month did not build is left out, not failed)."""
    rows = conn.execute(
        sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
    )
    return {r[0] for r in rows}


def q(identifier: str) -> str:
    """A quoted identifier (the marts keep the MHSDS mixed-case column names)."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def in_list(values: list[str]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


@dataclass(frozen=True)
class SqlContext:
    """What a rule's SQL needs besides the rule: where the marts are and the period."""

    schema: str
    rp_start: date
    rp_end: date
    org_id_provider: str
    dialect: str  # duckdb | postgresql
    failures_table: str = "dq.rule_failures"
    #: the extract's unreadable cells, resolved to MHSDS rows and rules (warehouse.load_raw)
    cell_errors_table: str = 'raw_epr."_cell_errors"'
    columns: dict[str, list[str]] = field(default_factory=dict)  # table -> column names
    seeds_dir: Path = SEEDS  # reference seeds (code lists): the settings' dbt project
    keys: dict[str, list[str]] = field(default_factory=dict)  # table -> key columns
    #: the organisation the Submission Portal login belongs to (the configured submitting org)
    org_id_submit: str | None = None

    header_model: str = "mhs000_header"

    def table(self, name: str) -> str:
        return f"{q(self.schema)}.{q(name)}"

    def key_expr(self, table: str, alias: str = "t") -> str:
        """The row key as one text value (``a|b|c``), the same in both dialects."""
        cols = self.keys.get(table) or []
        if not cols:
            return "'*'"
        parts = [f"COALESCE(CAST({alias}.{q(c)} AS VARCHAR), '')" for c in cols]
        return parts[0] if len(parts) == 1 else "(" + " || '|' || ".join(parts) + ")"

    def sa_dialect(self):
        # "named" paramstyle: literal SQL with single '%' (sa.text escapes it again for psycopg2).
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.dialect(paramstyle="named")
        from duckdb_engine import Dialect

        return Dialect(paramstyle="named")


def _compile(expr: sa.ColumnElement, ctx: SqlContext) -> str:
    return str(expr.compile(dialect=ctx.sa_dialect(), compile_kwargs={"literal_binds": True}))


def _text(column: str) -> str:
    return f"CAST(t.{q(column)} AS VARCHAR)"


def _regex_fails(expr: str, regex: str, ctx: SqlContext) -> str:
    if ctx.dialect == "postgresql":
        return f"NOT ({expr} ~ {lit(regex)})"
    return f"NOT regexp_matches({expr}, {lit(regex)})"


def _regex_finds(expr: str, regex: str, ctx: SqlContext) -> str:
    if ctx.dialect == "postgresql":
        return f"({expr} ~ {lit(regex)})"
    return f"regexp_matches({expr}, {lit(regex)})"


def _control_chars_regex(ctx: SqlContext) -> str:
    """formats.CONTROL_CHARS as each engine's regex escapes (PostgreSQL text cannot hold NUL)."""
    if ctx.dialect == "postgresql":
        return r"[\x01-\x1f\x7f-\x9f\u2028\u2029]"
    return r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


def _format_fails(col: str, check: dict, ctx: SqlContext) -> str:
    """SQL twin of ``formats.ValueFormat.problem``: true when a non-NULL value breaks it."""
    x = f"t.{q(col)}"
    data_type = check.get("data_type", "varchar")
    fmt = parse_format(check.get("format"), data_type, check.get("pattern"))
    parts: list[str] = []
    if fmt.kind in ("date", "timestamp"):
        parts.append(f"EXTRACT(YEAR FROM {x}) NOT BETWEEN 1 AND 9999")
    if fmt.kind in ("time", "timestamp"):
        parts.append(f"CAST(EXTRACT(MICROSECONDS FROM {x}) AS BIGINT) % 1000000 <> 0")
    if fmt.kind in ("an", "n") and data_type in ("integer", "int", "bigint"):
        parts.append(f"{x} < 0 OR {x} > {10**fmt.max_length - 1}")
        if fmt.min_length and fmt.min_length > 1:
            parts.append(f"{x} < {10 ** (fmt.min_length - 1)}")
    elif fmt.kind in ("an", "n"):
        text = _text(col)
        parts.append(f"LENGTH({text}) < {fmt.min_length} OR LENGTH({text}) > {fmt.max_length}")
        parts.append(_regex_finds(text, _control_chars_regex(ctx), ctx))
        if fmt.kind == "n":
            parts.append(_regex_fails(text, "^[0-9]+$", ctx))
        if fmt.pattern == "ods":
            parts.append(_regex_fails(text, "^[A-Z0-9]+$", ctx))
    return f"{x} IS NOT NULL AND (" + " OR ".join(f"({p})" for p in parts) + ")"


def _source_cell_unreadable(rule: Rule, ctx: SqlContext) -> str:
    """True for a row whose EPR cell behind this rule could not be read at extract (it landed
    as NULL; see mhsds_pipeline.source_cells): the load resolved it to this rule and row key."""
    return (
        f"EXISTS (SELECT 1 FROM {ctx.cell_errors_table} e WHERE e.rule_id = {lit(rule.id)} "
        f"AND e.table_name = {lit(rule.model)} AND e.row_key = {ctx.key_expr(rule.model)})"
    )


def _stamp(date_col: str, time_col: str | None) -> str:
    if not time_col:
        return f"CAST(t.{q(date_col)} AS TIMESTAMP)"
    # date + time -> timestamp in both DuckDB and PostgreSQL
    return f"(CAST(t.{q(date_col)} AS DATE) + COALESCE(CAST(t.{q(time_col)} AS TIME), TIME '00:00:00'))"


def _quote_columns(sql: str, columns: list[str], alias: str = "t") -> str:
    """Quote bare column names in a catalogue's SQL condition (skipping literals)."""
    names = sorted(columns, key=len, reverse=True)
    if not names:
        return sql
    pattern = re.compile(r"'(?:[^']|'')*'|\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: f"{alias}.{q(m.group(1))}" if m.group(1) else m.group(0), sql)


def fail_predicate(rule: Rule, ctx: SqlContext) -> str:
    """SQL condition true for each row of ``rule.model`` (alias ``t``) that fails the rule."""
    c = rule.check
    col = rule.column
    kind = rule.type
    if kind == "not_null":
        if rule.table == HEADER_TABLE:  # built by dbt, not read from the EPR
            return f"t.{q(col)} IS NULL"
        # A cell the extract could not read also lands as NULL, but it was not blank at source:
        # its own rule (the column's format rule or LOCAL_*_SOURCE_CELL) rejects the row instead.
        unreadable = (
            f"SELECT 1 FROM {ctx.cell_errors_table} e WHERE e.table_name = {lit(rule.model)} "
            f"AND (e.column_name = {lit(col)} OR e.column_name IS NULL) AND e.row_key = {ctx.key_expr(rule.model)}"
        )
        return f"t.{q(col)} IS NULL AND NOT EXISTS ({unreadable})"
    if kind in ("code_list", "code_list_default"):
        if kind == "code_list":
            codes = seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir)
            return f"t.{q(col)} IS NOT NULL AND {_text(col)} NOT IN {in_list(codes)}"
        codes = seed_codes(c["seed"], c.get("seed_column", "code"), ("default",), ctx.seeds_dir)
        return f"{_text(col)} IN {in_list(codes)}"
    if kind == "pattern":
        return f"t.{q(col)} IS NOT NULL AND {_regex_fails(_text(col), c['regex'], ctx)}"
    if kind == "nhs_number":
        valid = _compile(sqlx.nhs_number_valid_expr(sa.literal_column(f"t.{q(col)}")), ctx)
        return f"t.{q(col)} IS NOT NULL AND NOT ({valid})"
    if kind == "sctid":
        valid = _compile(
            sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), tuple(c.get("partitions", ("00", "10")))),
            ctx,
        )
        return f"t.{q(col)} IS NOT NULL AND NOT ({valid})"
    if kind == "value_set":
        codes = seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir)
        cond = f"t.{q(col)} IS NOT NULL AND {_text(col)} NOT IN {in_list(codes)}"
        if c.get("require_valid_sctid", True):
            valid = _compile(sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), ("00", "10")), ctx)
            cond += f" AND ({valid})"
        return cond
    if kind == "score_range":
        tool = q(c["tool_column"])
        ranges = tool_ranges(c["seed"], ctx.seeds_dir)
        valid = _compile(
            sqlx.score_in_tool_range_expr(
                sa.literal_column(f"t.{tool}"), sa.literal_column(f"t.{q(col)}"), ranges
            ),
            ctx,
        )
        # Only tools in the list are range-checked; an unknown tool is the tool rule's failure.
        return f"t.{q(col)} IS NOT NULL AND CAST(t.{tool} AS VARCHAR) IN {in_list(sorted(ranges))} AND NOT ({valid})"
    if kind == "date_in_period":
        value = f"CAST(t.{q(col)} AS DATE)"
        bound = c.get("bound", "both")
        parts = []
        if bound in ("start", "both"):
            parts.append(f"{value} < {lit(ctx.rp_start)}")
        if bound in ("end", "both"):  # grace_days: "after the ReportingPeriodEndDate plus 24 hours"
            parts.append(f"{value} > {lit(ctx.rp_end + timedelta(days=int(c.get('grace_days', 0))))}")
        return f"t.{q(col)} IS NOT NULL AND ({' OR '.join(parts)})"
    if kind == "date_order":
        before = _stamp(c["before"], c.get("before_time"))
        after = _stamp(c["after"], c.get("after_time"))
        return f"t.{q(c['before'])} IS NOT NULL AND t.{q(c['after'])} IS NOT NULL AND {after} < {before}"
    if kind == "unique":
        cols = c["columns"]
        nonnull = " AND ".join(f"t.{q(x)} IS NOT NULL" for x in cols)
        match = " AND ".join(f"d.{q(x)} = t.{q(x)}" for x in cols)
        # ``where``: only rows meeting the condition count (MHS00222: open registrations only)
        names = ctx.columns.get(rule.model, [])
        inner = f" WHERE {_quote_columns(c['where'], names, 'u')}" if c.get("where") else ""
        outer = f" AND ({_quote_columns(c['where'], names)})" if c.get("where") else ""
        dup = (
            f"SELECT {', '.join(q(x) for x in cols)} FROM {ctx.table(rule.model)} u{inner} "
            f"GROUP BY {', '.join(q(x) for x in cols)} HAVING COUNT(*) > 1"
        )
        return f"{nonnull}{outer} AND EXISTS (SELECT 1 FROM ({dup}) d WHERE {match})"
    if kind == "references":
        parent = c["parent"]
        match = " AND ".join(f"p.{q(pc)} = t.{q(cc)}" for cc, pc in c["columns"].items())
        nonnull = " AND ".join(f"t.{q(cc)} IS NOT NULL" for cc in c["columns"])
        rejected = (
            f"SELECT 1 FROM {ctx.failures_table} f WHERE f.table_name = {lit(parent)} "
            f"AND f.severity IN {in_list(list(ROW_REJECTING))} AND f.row_key = {ctx.key_expr(parent, 'p')}"
        )
        valid_parent = f"SELECT 1 FROM {ctx.table(parent)} p WHERE {match} AND NOT EXISTS ({rejected})"
        return f"{nonnull} AND NOT EXISTS ({valid_parent})"
    if kind == "has_child":
        child = c["child"]
        match = " AND ".join(f"ch.{q(cc)} = t.{q(pc)}" for pc, cc in c["columns"].items())
        return f"NOT EXISTS (SELECT 1 FROM {ctx.table(child)} ch WHERE {match})"
    if kind == "format":
        if rule.table == HEADER_TABLE:  # built by dbt, not read from the EPR
            return _format_fails(col, c, ctx)
        return f"(({_format_fails(col, c, ctx)}) OR {_source_cell_unreadable(rule, ctx)})"
    if kind == "source_cell":
        return _source_cell_unreadable(rule, ctx)
    if kind == "diagnosis_code":
        scheme = f"CAST(t.{q(c['scheme_column'])} AS VARCHAR)"
        sctid = _compile(sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), ("00", "10")), ctx)
        icd10, snomed = lit(str(c.get("icd10_code", "02"))), lit(str(c.get("snomed_code", "06")))
        return (
            f"t.{q(col)} IS NOT NULL AND (({scheme} = {icd10} AND {_regex_fails(_text(col), ICD10_PATTERN.pattern, ctx)}) "
            f"OR ({scheme} = {snomed} AND NOT ({sctid})))"
        )
    if kind == "always":  # MHS60815: no assessment tools are in scope, every record is rejected
        return "TRUE"
    if kind == "org_live":
        # "not for a current live organisation in national tables": the ODS reference seed the
        # trust refreshes from NHS England's ODS files (docs/rules.md "Organisations").
        rows = seed_rows(c.get("seed", ODS_SEED), ctx.seeds_dir)
        if c.get("during_period"):
            live = [
                r["code"] for r in rows
                if (not r.get("open_date") or r["open_date"] <= ctx.rp_end.isoformat())
                and (not r.get("close_date") or r["close_date"] >= ctx.rp_start.isoformat())
            ]  # fmt: skip
        else:
            live = [
                r["code"] for r in rows
                if (not r.get("open_date") or r["open_date"] <= ctx.rp_end.isoformat())
                and (not r.get("close_date") or r["close_date"] > ctx.rp_end.isoformat())
            ]  # fmt: skip
        return f"t.{q(col)} IS NOT NULL AND UPPER({_text(col)}) NOT IN {in_list(sorted(live))}"
    if kind == "parent_date_order":
        # this row's date against a parent's (or grandparent's) date, through its parent links
        joins, prev = [], "t"
        for n, hop in enumerate(c["path"]):
            alias = f"p{n}"
            match = " AND ".join(f"{alias}.{q(pc)} = {prev}.{q(pc)}" for pc in hop["columns"])
            joins.append((alias, hop["table"], match))
            prev = alias
        last = joins[-1][0]
        this, other = f"CAST(t.{q(col)} AS DATE)", f"CAST({last}.{q(c['other'])} AS DATE)"
        cmp = f"{this} < {other}" if c["relation"] == "before" else f"{this} > {other}"
        frm = f"{ctx.table(joins[0][1])} {joins[0][0]}"
        on = [joins[0][2]]
        for alias, table, match in joins[1:]:
            frm += f" JOIN {ctx.table(table)} {alias} ON {match}"
        return (
            f"t.{q(col)} IS NOT NULL AND EXISTS (SELECT 1 FROM {frm} WHERE {' AND '.join(on)} "
            f"AND {last}.{q(c['other'])} IS NOT NULL AND {cmp})"
        )
    if kind == "after_dataset_created":
        created = f'(SELECT MAX(CAST(h."DateTimeDatSetCreate" AS DATE)) FROM {ctx.table(ctx.header_model)} h)'
        return f"t.{q(col)} IS NOT NULL AND CAST(t.{q(col)} AS DATE) > {created}"
    if kind == "after_upload":  # the upload is now or later: a creation time in the future fails
        return (
            f"t.{q(col)} IS NOT NULL AND CAST(t.{q(col)} AS TIMESTAMP) > CAST(CURRENT_TIMESTAMP AS TIMESTAMP)"
        )
    if kind == "age_range":
        lo, hi = int(c.get("min_years", 0)), int(c.get("max_years", 130))
        born = f"CAST(t.{q(col)} AS DATE)"
        oldest = ctx.rp_end.replace(year=ctx.rp_end.year - hi - 1) + timedelta(days=1)
        youngest = ctx.rp_end.replace(year=ctx.rp_end.year - lo) if lo else ctx.rp_end
        return f"t.{q(col)} IS NOT NULL AND ({born} < {lit(oldest)} OR {born} > {lit(youngest)})"
    if kind == "fail_when":
        sql = c["sql"].format(
            rp_start=lit(ctx.rp_start),
            rp_end=lit(ctx.rp_end),
            org_id_provider=lit(ctx.org_id_provider),
            org_id_submit=lit(ctx.org_id_submit or ctx.org_id_provider),
        )
        return "(" + _quote_columns(sql, ctx.columns.get(rule.model, [])) + ")"
    raise CatalogueError(f"rule {rule.id}: unknown check type {kind!r}")


def parent_cause(rule: Rule, ctx: SqlContext) -> str:
    """For a ``references`` failure: 'rejected_parent' when the parent exists, else 'missing_parent'."""
    if rule.type != "references":
        return "NULL"
    parent = rule.check["parent"]
    match = " AND ".join(f"p.{q(pc)} = t.{q(cc)}" for cc, pc in rule.check["columns"].items())
    return (
        f"CASE WHEN EXISTS (SELECT 1 FROM {ctx.table(parent)} p WHERE {match}) "
        "THEN 'rejected_parent' ELSE 'missing_parent' END"
    )


def failing_rows_sql(rule: Rule, ctx: SqlContext, select: str = "1") -> str:
    """``SELECT <select> FROM <table> t WHERE <rule fails>``."""
    return f"SELECT {select} FROM {ctx.table(rule.model)} t WHERE {fail_predicate(rule, ctx)}"
