"""The one-pass floor of the quality gate: every rule's failure count from one SELECT per table.

Issue #15 asks how close the gate (the rule engine, GX and its Data Docs, DQMI) comes to the
least work that still counts every rule: one ``SELECT count(*) FILTER (WHERE <rule fails>) AS
"<rule id>", ... FROM <mart> t`` per MHSDS table, whose predicates are the rule engine's own
(:func:`~mhsds_pipeline.quality.rule_sql.fail_predicate`, not a second implementation). The
benchmark prints it beside the gate; a test holds its counts equal to the rule engine's.

Measured, that literal floor was not a floor: DuckDB took longer to *plan* a table's SELECT with
its 30-odd correlated cell-error lookups than the rule engine took to run every rule (8.4 s for
the catalogue against 3.7 s, scale 1). So by default the predicates that hold a subquery go
:data:`SUBQUERIES_PER_SELECT` to a SELECT beside the one that counts the rest (``batch=None``
gives the literal one SELECT per table, for the comparison).

Not every predicate reads only its own row. The rows are still read once, but DuckDB joins:

* ``side``: a row-level check that also looks up a small side relation, the extract's unreadable
  cells (``not_null``, ``format``, ``source_cell``) or the header's creation date;
* ``joined``: a check that reads another mart or re-aggregates its own (``references``,
  ``has_child``, ``parent_date_order``, ``unique``): a join or a GROUP BY inside the same SELECT;
* ``table``: the row count rule, read from the same scan's ``count(*)``.

:func:`scan_kinds` says which rule is which, so the benchmark can say how many are truly one-pass.

The group-rejection cascade (a child of a rejected parent is rejected too) needs the parents'
verdicts before a child's, which no single scan per table has. By default the floor counts
*before* the cascade: a ``references`` rule fails only rows whose parent is missing, which is the
rule engine's failures less those it recorded with cause ``rejected_parent``. With
``cascade=True`` the predicates read the parents' rejections the rule engine recorded
(``ctx.failures_table``), so the counts are the engine's own, cascade included; that needs
:func:`~mhsds_pipeline.quality.engine.run_rules` to have run first.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import NamedTuple

import sqlalchemy as sa

from mhsds_pipeline.quality.rules import Catalogue, Rule, SqlContext, existing_tables, fail_predicate, q

__all__ = ["FloorCounts", "NO_REJECTIONS", "SUBQUERIES_PER_SELECT", "floor_counts", "floor_sql", "scan_kinds"]

#: An empty relation shaped like ``dq.rule_failures``: no parent is rejected (before the cascade).
NO_REJECTIONS = (
    "(SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS row_key, "
    "CAST(NULL AS VARCHAR) AS severity WHERE 1 = 0)"
)
ROWS_COLUMN = "__rows"
#: Predicates with a subquery per SELECT (measured at scale 1, 2026-10: 1 -> 2.6 s for the
#: catalogue, 4 -> 2.1 s, 8 -> 2.4 s, 12 -> 2.6 s, all in one -> 8.4 s); see :func:`floor_sql`.
SUBQUERIES_PER_SELECT = 4

_JOINED = ("references", "has_child", "parent_date_order", "unique")
_SIDE = ("source_cell", "after_dataset_created")


class FloorCounts(NamedTuple):
    counts: dict[str, int]  # rule id -> failing rows (a row-count rule: the table's rows)
    seconds: float
    per_table_seconds: dict[str, float]  # IDB table -> seconds of its one SELECT


def scan_kind(rule: Rule, ctx: SqlContext) -> str:
    """``one_pass`` | ``side`` | ``joined`` | ``table`` (see the module docstring)."""
    if rule.table_level:
        return "table"
    if rule.type in _JOINED:
        return "joined"
    if rule.type in _SIDE:
        return "side"
    if rule.type in ("not_null", "format") and "EXISTS" in fail_predicate(rule, ctx):
        return "side"
    return "one_pass"


def scan_kinds(catalogue: Catalogue, ctx: SqlContext) -> dict[str, int]:
    """How many rules of each scan kind the floor evaluates."""
    out: dict[str, int] = {}
    for rule in catalogue.rules:
        kind = scan_kind(rule, ctx)
        out[kind] = out.get(kind, 0) + 1
    return out


def floor_sql(
    catalogue: Catalogue, ctx: SqlContext, table: str, batch: int | None = SUBQUERIES_PER_SELECT
) -> list[str]:
    """The SELECTs that count every failure of ``table``'s rules (IDB name).

    ``batch=None``: the literal floor, one SELECT. Otherwise the predicates without a subquery
    share the first SELECT (with the table's ``count(*)``) and those with one come ``batch`` to a
    SELECT: DuckDB 2.0 plans a statement's correlated subqueries in time that grows far faster
    than their number (EXPLAIN alone of MHS201CareContact's 32 cell-error lookups: 2.4 s; 16:
    0.1 s; 8: 0.02 s), which made the literal one-SELECT floor slower than the rule engine."""
    rules = [r for r in catalogue.for_table(table) if not r.table_level]
    predicates = [(r.id, fail_predicate(r, ctx)) for r in rules]
    if batch is None:
        groups = [predicates]
    else:
        plain = [(i, p) for i, p in predicates if "SELECT " not in p.upper()]
        sub = [(i, p) for i, p in predicates if "SELECT " in p.upper()]
        groups = [plain] + [sub[n : n + batch] for n in range(0, len(sub), batch)]
    frm = f" FROM {ctx.table(catalogue.model(table))} t"
    out = []
    for n, group in enumerate(groups):
        parts = [f"count(*) AS {q(ROWS_COLUMN)}"] if n == 0 else []
        parts += [f"count(*) FILTER (WHERE {p}) AS {q(i)}" for i, p in group]
        if parts:
            out.append(f"SELECT {', '.join(parts)}{frm}")
    return out


def floor_counts(
    engine: sa.Engine,
    catalogue: Catalogue,
    ctx: SqlContext,
    cascade: bool = False,
    batch: int | None = SUBQUERIES_PER_SELECT,
) -> FloorCounts:
    """Every rule's failing rows, by the SELECTs of :func:`floor_sql`; tables not built are left out."""
    if not cascade:
        ctx = replace(ctx, failures_table=NO_REJECTIONS)
    t0 = time.perf_counter()
    counts: dict[str, int] = {}
    per_table: dict[str, float] = {}
    with engine.connect() as conn:
        present = existing_tables(conn, ctx.schema)
        for table in catalogue.cascade_order:
            if catalogue.model(table) not in present:
                continue
            t1 = time.perf_counter()
            row: dict = {}
            for sql in floor_sql(catalogue, ctx, table, batch):
                row.update(conn.execute(sa.text(sql)).mappings().one())
            per_table[table] = round(time.perf_counter() - t1, 4)
            rows = int(row[ROWS_COLUMN])
            for rule in catalogue.for_table(table):
                counts[rule.id] = rows if rule.table_level else int(row[rule.id])
    return FloorCounts(counts, round(time.perf_counter() - t0, 3), per_table)
