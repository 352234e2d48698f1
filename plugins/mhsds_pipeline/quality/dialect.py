"""The rules catalogue's SQL in Spark SQL: DuckDB's SQL transpiled by sqlglot, with fix-ups.

The catalogue is compiled into SQL once (:mod:`mhsds_pipeline.quality.rule_sql`, DuckDB dialect);
this module turns that SQL, and the rule engine's own statements, into Spark SQL with sqlglot
(``read="duckdb", write="spark"``), so NHS England's Spark platform runs the very same rules.

sqlglot gets most of it right (``regexp_matches`` -> ``RLIKE`` with Spark's backslash escaping in
literals, ``strpos`` -> ``LOCATE``, ``VARCHAR`` -> ``STRING``, ``TIMESTAMP`` -> ``TIMESTAMP_NTZ``).
The fix-ups below are the few places where it does not, each applied to the parsed tree:

1. ``TIME`` stays ``TIME``. sqlglot writes ``TIMESTAMP`` for it (older Sparks had no time type);
   Spark 4 has one (``spark.sql.timeType.enabled``), and the package tables hold it.
2. ``DATE + TIME`` (``rule_sql._stamp``: a date and a time of day as one timestamp) becomes
   ``make_timestamp_ntz(date, time)``: Spark has no ``+`` between the two types.
3. ``EXTRACT(MICROSECONDS FROM x)`` (DuckDB: the sub-minute microseconds, seconds included)
   becomes ``CAST(EXTRACT(SECOND FROM x) * 1000000 AS BIGINT)``: Spark's ``SECOND`` carries the
   fraction (``DECIMAL(8,6)``), and it has no ``MICROSECONDS`` field for timestamps or times.
4. ``DROP TABLE ... CASCADE`` loses ``CASCADE``: Spark has none for tables, and its views are
   stored as text, so nothing depends on the dropped table (the engine recreates its views).
5. The recursion limit is raised while transpiling: the SNOMED CT identifier checks (Verhoeff
   check digit) are deeply nested expressions that exceed Python's default in sqlglot.

Anything else sqlglot cannot carry over fails loudly (:class:`SparkTranspileError`, naming the
rule when there is one): sqlglot's own unsupported-feature errors are raised, not logged, and a
function sqlglot does not know (it would pass it through under its DuckDB name, to fail later in
Spark or, worse, mean something else) is refused by name, and so is ``regexp_matches`` with
options (sqlglot would drop them). Spark itself refusing a statement is reported by the
executor (:mod:`mhsds_pipeline.system.spark`) with the rule's id. A rule is never skipped.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

READ = "duckdb"
WRITE = "spark"
_RECURSION_LIMIT = 20_000


class SparkTranspileError(ValueError):
    """A statement (a rule's, when ``rule_id`` is given) that cannot be written as Spark SQL."""

    def __init__(self, message: str, rule_id: str | None = None):
        super().__init__(f"rule {rule_id}: {message}" if rule_id else message)
        self.rule_id = rule_id


@contextmanager
def deep_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, _RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _is_type(node: exp.Expression, *types: exp.DataType.Type) -> bool:
    return isinstance(node, exp.Cast) and node.to.this in types


def _fix(node: exp.Expression) -> exp.Expression:
    # (2) DATE + TIME -> make_timestamp_ntz(date, time)
    if isinstance(node, exp.Add):
        left, right = node.this, node.expression
        right_inner = right.this if isinstance(right, exp.Coalesce) else right
        if _is_type(left, exp.DataType.Type.DATE) and _is_type(right_inner, exp.DataType.Type.TIME):
            return exp.Anonymous(this="make_timestamp_ntz", expressions=[left, right])
    # (3) EXTRACT(MICROSECONDS FROM x) -> CAST(EXTRACT(SECOND FROM x) * 1000000 AS BIGINT)
    if isinstance(node, exp.Extract) and node.this.name.upper() in ("MICROSECONDS", "MICROSECOND"):
        seconds = exp.Extract(this=exp.var("SECOND"), expression=node.expression)
        return exp.cast(exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)), "BIGINT")
    # (4) DROP TABLE ... CASCADE -> DROP TABLE ...
    if isinstance(node, exp.Drop) and node.args.get("cascade"):
        node.set("cascade", False)
    return node


def _refuse_unknown_functions(tree: exp.Expression, rule_id: str | None) -> None:
    for rx in tree.find_all(exp.RegexpLike):
        if rx.args.get("flag") is not None or rx.args.get("full_match"):
            # sqlglot drops regexp_matches' options (e.g. 'i') when writing RLIKE: refuse, do not
            # let a case-insensitive rule become case-sensitive on Spark
            raise SparkTranspileError(
                "regexp_matches() with options cannot be written as Spark's RLIKE without changing "
                "its meaning; put the option in the pattern, e.g. '(?i)...'",
                rule_id,
            )
    for fn in tree.find_all(exp.Anonymous):
        name = fn.name.lower()
        if name != "make_timestamp_ntz":  # our own fix-up (2)
            raise SparkTranspileError(
                f"function {fn.name}() is not known to sqlglot's DuckDB dialect, so it cannot be "
                "carried to Spark SQL; add a fix-up in quality/dialect.py or rewrite the rule's SQL",
                rule_id,
            )


class _TimeSpark(sqlglot.dialects.Spark):
    """Spark as sqlglot writes it, except that ``TIME`` stays ``TIME`` (fix-up 1)."""

    class Generator(sqlglot.dialects.Spark.Generator):
        TYPE_MAPPING = {**sqlglot.dialects.Spark.Generator.TYPE_MAPPING, exp.DataType.Type.TIME: "TIME"}


@lru_cache(maxsize=8192)
def to_spark(sql: str, rule_id: str | None = None) -> str:
    """One DuckDB statement as Spark SQL (cached: the catalogue's SQL repeats per provider)."""
    with deep_recursion():
        try:
            trees = sqlglot.parse(sql, read=READ, error_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            raise SparkTranspileError(f"DuckDB SQL does not parse: {exc}", rule_id) from exc
        if len(trees) != 1 or trees[0] is None:
            raise SparkTranspileError(f"expected one statement, got {len(trees)}", rule_id)
        tree = trees[0].transform(_fix)
        _refuse_unknown_functions(tree, rule_id)
        try:
            return _TimeSpark().generate(tree, unsupported_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            raise SparkTranspileError(f"cannot be written as Spark SQL: {exc}", rule_id) from exc


def spark_fail_predicate(rule, ctx) -> str:
    """A rule's failing-row query (``SELECT 1 FROM <table> t WHERE <fails>``) as Spark SQL."""
    from mhsds_pipeline.quality.rule_sql import failing_rows_sql

    return to_spark(failing_rows_sql(rule, ctx), rule.id)


def compile_catalogue(catalogue, ctx) -> dict[str, str]:
    """Every row-level rule's failing-row query in Spark SQL, rule id -> SQL; raises on the first
    rule that cannot be transpiled (so a run never starts with a rule silently missing)."""
    return {r.id: spark_fail_predicate(r, ctx) for r in catalogue.rules if not r.table_level}
