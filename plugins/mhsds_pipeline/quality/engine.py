"""Run the MHSDS validation rules in the warehouse and derive what may be submitted.

Everything happens by SQL pushdown in the warehouse that holds the marts (DuckDB or
PostgreSQL): for each table in cascade order (parents before children) every rule inserts the
keys of its failing rows into ``dq.rule_failures``. A ``references`` rule looks for a *valid*
parent, one that exists and is not itself rejected, so a rejection cascades down the tree exactly
as SDCS applies group rejections (no MPI -> no referral -> no contact -> no activity -> no
assessment). Two views per table then split the mart:

* ``dq.<table>__submit``: the rows that go into the submission (no rejecting failure);
* ``dq.<table>__quarantine``: each rejected row with ``_rule_id``, ``_severity`` and
  ``_cause`` (``missing_parent`` / ``rejected_parent`` for group rejections), one row per rule.

Only counts and a few keys (pseudonymised before they leave this module) come back to Python.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import sqlalchemy as sa

from mhsds_pipeline.privacy import pseudonymise
from mhsds_pipeline.quality.results import CheckResult, status_for
from mhsds_pipeline.quality.rules import (
    ROW_REJECTING,
    Catalogue,
    Rule,
    SqlContext,
    existing_tables,
    fail_predicate,
    in_list,
    lit,
    parent_cause,
    q,
)

log = logging.getLogger(__name__)

DQ_SCHEMA = "dq"
FAILURES = f"{DQ_SCHEMA}.rule_failures"
#: The rows that would be submitted, each table under its relation name (views over the
#: ``__submit`` views): what NHS England's national data set holds, so DQMI is scored on it.
SUBMITTED_SCHEMA = "dq_submitted"
SAMPLE_KEYS = 5


@dataclass
class TableOutcome:
    table: str
    present: bool
    rows: int = 0
    rejected_rows: int = 0
    submitted_rows: int = 0

    @property
    def rejected_share(self) -> float:
        return self.rejected_rows / self.rows if self.rows else 0.0


@dataclass
class RulesOutcome:
    catalogue_version: str
    tables: dict[str, TableOutcome]
    failures: dict[str, int]  # rule id -> failing rows
    samples: dict[str, list[str]]  # rule id -> pseudonymised keys
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    def quarantine_counts(self) -> dict[str, int]:
        return {t: o.rejected_rows for t, o in self.tables.items() if o.rejected_rows}


def submit_view(table: str) -> str:
    return f"{q(DQ_SCHEMA)}.{q(table + '__submit')}"


def quarantine_view(table: str) -> str:
    return f"{q(DQ_SCHEMA)}.{q(table + '__quarantine')}"


def _reset(conn) -> None:
    from mhsds_pipeline.warehouse import ensure_cell_errors_sql

    for sql in ensure_cell_errors_sql():  # unreadable source cells, read by the format rules
        conn.execute(sa.text(sql))
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(DQ_SCHEMA)}"))
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(SUBMITTED_SCHEMA)}"))
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {FAILURES} CASCADE"))
    conn.execute(
        sa.text(
            f"CREATE TABLE {FAILURES} (rule_id VARCHAR NOT NULL, table_name VARCHAR NOT NULL, "
            "row_key VARCHAR NOT NULL, severity VARCHAR NOT NULL, cause VARCHAR)"
        )
    )


def _insert_failures(conn, rule: Rule, ctx: SqlContext) -> None:
    sql = (
        f"INSERT INTO {FAILURES} (rule_id, table_name, row_key, severity, cause) "
        f"SELECT {lit(rule.id)}, {lit(rule.model)}, {ctx.key_expr(rule.model)}, {lit(rule.severity)}, "
        f"{parent_cause(rule, ctx)} FROM {ctx.table(rule.model)} t WHERE {fail_predicate(rule, ctx)}"
    )
    conn.execute(sa.text(sql))


def _rejected_match(ctx: SqlContext, table: str) -> str:
    return (
        f"SELECT 1 FROM {FAILURES} f WHERE f.table_name = {lit(table)} "
        f"AND f.severity IN {in_list(list(ROW_REJECTING))} AND f.row_key = {ctx.key_expr(table)}"
    )


def _create_views(conn, ctx: SqlContext, table: str) -> None:
    conn.execute(sa.text(f"DROP VIEW IF EXISTS {q(SUBMITTED_SCHEMA)}.{q(table)}"))
    conn.execute(sa.text(f"DROP VIEW IF EXISTS {submit_view(table)}"))
    conn.execute(sa.text(f"DROP VIEW IF EXISTS {quarantine_view(table)}"))
    conn.execute(
        sa.text(
            f"CREATE VIEW {submit_view(table)} AS SELECT t.* FROM {ctx.table(table)} t "
            f"WHERE NOT EXISTS ({_rejected_match(ctx, table)})"
        )
    )
    conn.execute(
        sa.text(
            f"CREATE VIEW {quarantine_view(table)} AS SELECT t.*, f.rule_id AS _rule_id, "
            f"f.severity AS _severity, f.cause AS _cause FROM {ctx.table(table)} t "
            # DISTINCT: duplicate-key rows each failed the uniqueness rule under the same key.
            f"JOIN (SELECT DISTINCT rule_id, table_name, row_key, severity, cause FROM {FAILURES}) f "
            f"ON f.table_name = {lit(table)} "
            f"AND f.severity IN {in_list(list(ROW_REJECTING))} AND f.row_key = {ctx.key_expr(table)}"
        )
    )
    conn.execute(
        sa.text(f"CREATE VIEW {q(SUBMITTED_SCHEMA)}.{q(table)} AS SELECT * FROM {submit_view(table)}")
    )


def run_rules(engine: sa.Engine, catalogue: Catalogue, ctx: SqlContext) -> RulesOutcome:
    """Evaluate the catalogue in the warehouse; returns counts and dq_results rows."""
    t0 = time.perf_counter()
    tables: dict[str, TableOutcome] = {}
    with engine.begin() as conn:
        present = existing_tables(conn, ctx.schema)
        _reset(conn)
        for table in catalogue.cascade_order:  # IDB names; SQL reads each one's relation
            if catalogue.model(table) not in present:
                tables[table] = TableOutcome(table, present=False)
                continue
            for rule in catalogue.for_table(table):
                if not rule.table_level:
                    _insert_failures(conn, rule, ctx)
            _create_views(conn, ctx, catalogue.model(table))
        failures = {
            r[0]: int(r[1])
            for r in conn.execute(sa.text(f"SELECT rule_id, COUNT(*) FROM {FAILURES} GROUP BY rule_id"))
        }
        samples: dict[str, list[str]] = {}
        ranked = conn.execute(
            sa.text(
                "SELECT rule_id, table_name, row_key FROM (SELECT rule_id, table_name, row_key, ROW_NUMBER() "
                f"OVER (PARTITION BY rule_id ORDER BY row_key) AS n FROM {FAILURES}) s WHERE n <= {SAMPLE_KEYS} "
                "ORDER BY rule_id, n"  # the samples in key order on every engine (Spark's came unordered)
            )
        )
        for rule_id, table, key in ranked:
            samples.setdefault(rule_id, []).append(pseudonymise(table, key))
        for table in catalogue.cascade_order:
            if table in tables:  # not built
                continue
            model = catalogue.model(table)
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {ctx.table(model)}")).scalar_one()
            submitted = conn.execute(sa.text(f"SELECT COUNT(*) FROM {submit_view(model)}")).scalar_one()
            tables[table] = TableOutcome(
                table,
                present=True,
                rows=int(rows),
                rejected_rows=int(rows - submitted),
                submitted_rows=int(submitted),
            )
    outcome = RulesOutcome(catalogue.version, tables, failures, samples)
    outcome.checks = _checks(catalogue, outcome)
    outcome.seconds = round(time.perf_counter() - t0, 3)
    log.info(
        "MHSDS rules: %d rules, %d failing rows, %d rows quarantined in %.2fs",
        len(catalogue.rules),
        sum(failures.values()),
        sum(o.rejected_rows for o in tables.values()),
        outcome.seconds,
    )
    return outcome


def _checks(catalogue: Catalogue, outcome: RulesOutcome) -> list[CheckResult]:
    checks: list[CheckResult] = []
    for rule in catalogue.rules:
        table = outcome.tables[rule.table]
        if not table.present:
            checks.append(rule.result("not_applicable", description=f"{rule.description} (table not built)"))
        elif rule.table_level:
            lo, hi = rule.check.get("min", 0), rule.check.get("max")
            bad = table.rows < lo or (hi is not None and table.rows > hi)
            checks.append(
                rule.result(
                    "failed" if bad else "passed",
                    column_name=None,
                    numerator=table.rows,
                    count_rule_engine=table.rows,
                    description=f"{rule.description} (rows: {table.rows})",
                )
            )
        else:
            n = outcome.failures.get(rule.id, 0)
            checks.append(
                rule.result(
                    status_for("violations", n, table.rows) if table.rows else "not_applicable",
                    numerator=n,
                    count_rule_engine=n,
                    denominator=table.rows,
                    threshold=0.0,
                    sample_keys=outcome.samples.get(rule.id, []),
                )
            )
    # File level: mandatory tables, and a systematic rejection share.
    for table in catalogue.mandatory_tables:
        t = outcome.tables.get(table)
        ok = bool(t and t.present and t.submitted_rows > 0)
        checks.append(
            CheckResult(
                check_id="LOCAL_FILE_MANDATORY_TABLE",
                source="file",
                table_name=table,
                dimension="completeness",
                severity="file rejected",
                status="passed" if ok else "failed",
                numerator=t.submitted_rows if t else 0,
                description="Mandatory table present with at least one valid row",
            )
        )
    for table, t in outcome.tables.items():
        if not t.present or not t.rows:
            continue
        small = t.rows < catalogue.block_min_rows
        checks.append(
            CheckResult(
                check_id="LOCAL_FILE_REJECTED_SHARE",
                source="file",
                table_name=table,
                dimension="validity",
                severity="file rejected",
                measure="violations",
                numerator=t.rejected_rows,
                denominator=t.rows,
                threshold=catalogue.block_rejected_share,
                status="not_applicable"
                if small
                else status_for("violations", t.rejected_rows, t.rows, catalogue.block_rejected_share),
                description=(
                    f"Share of rows quarantined by record/group rejections must not exceed "
                    f"{catalogue.block_rejected_share:.0%} (a higher share means a systematic extract fault)"
                    + (f"; not applied under {catalogue.block_min_rows} rows" if small else "")
                ),
            )
        )
    return checks


# ------------------------------------------------------------------------------ files


#: Rule types that need other tables (parents, children, the extract's cell list) and so
#: cannot be judged from one file: the gate evaluated them in the warehouse.
_NEEDS_WAREHOUSE = ("references", "has_child", "source_cell")


def check_file(catalogue: Catalogue, ctx: SqlContext, table: str, path, types=None) -> dict[str, int]:
    """Evaluate ``table``'s catalogue rules on a written Parquet file: rule id -> failing rows.

    Publication and packaging re-check what they are about to hand over (the header, formats,
    row counts) with the catalogue's own SQL, in an in-memory DuckDB over the file, so a rule
    has one implementation whether it runs in the warehouse or on a file. ``types`` limits the
    rules by check type.
    """
    import duckdb

    from mhsds_pipeline.warehouse import ensure_cell_errors_sql

    model = catalogue.model(table)
    # the same context (period, provider, columns, keys, seeds), pointed at the file's schema
    file_ctx = replace(ctx, schema="file", dialect="duckdb")
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE SCHEMA file")
        for sql in ensure_cell_errors_sql():  # empty: no cell of a written file is unreadable
            con.execute(sql)
        con.execute(f"CREATE VIEW {file_ctx.table(model)} AS SELECT * FROM read_parquet({lit(str(path))})")
        rows = con.execute(f"SELECT COUNT(*) FROM {file_ctx.table(model)}").fetchone()[0]
        # A column the file lacks is a structure failure the callers report (contract schema).
        present = {r[0] for r in con.execute(f"DESCRIBE {file_ctx.table(model)}").fetchall()}
        out: dict[str, int] = {}
        for rule in catalogue.for_table(table):
            if rule.type in _NEEDS_WAREHOUSE or (types is not None and rule.type not in types):
                continue
            if rule.column and rule.column not in present:
                continue
            if rule.table_level:
                lo, hi = rule.check.get("min", 0), rule.check.get("max")
                out[rule.id] = int(rows) if rows < lo or (hi is not None and rows > hi) else 0
                continue
            sql = f"SELECT COUNT(*) FROM {file_ctx.table(model)} t WHERE {fail_predicate(rule, file_ctx)}"
            out[rule.id] = int(con.execute(sql).fetchone()[0])
        return out
    finally:
        con.close()
