"""The gate's one-pass floor counts what the rule engine counts (issue #15).

One small DuckDB warehouse holds, in all 61 marts at once, the rows that break each catalogue
rule (the same rows tests/unit/test_every_rule_fires.py builds for each rule on its own). Those
rows also break many other rules (most of their columns are blank), and many parents are
themselves rejected, so their children's ``references`` rules fail through the cascade.

The rule engine (:func:`run_rules`) then runs, and the floor (:func:`floor_counts`) must give,
for every rule it covers:

* with ``cascade=True`` (reading the parents' rejections the engine recorded): the engine's
  own count per rule, exactly;
* by default, before the cascade: the engine's count less the rows it recorded with cause
  ``rejected_parent`` (a child whose parent exists but was rejected), i.e. like with like.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from test_every_rule_fires import PERIOD, _breaking, _lit

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.quality.engine import FAILURES, run_rules
from mhsds_pipeline.quality.floor import SUBQUERIES_PER_SELECT, floor_counts, floor_sql, scan_kinds
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import load_catalogue
from mhsds_pipeline.warehouse import CELL_ERROR_COLUMNS

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    settings = replace(load_settings(), org_id_provider="R1A", org_id_submit="R1A", warehouse_target="duckdb")
    ctx = replace(sql_context(settings, PERIOD), schema="m")
    contracts = load_contracts(settings.dbt_project_dir)
    catalogue = load_catalogue()
    rows: dict[str, list[dict]] = {m: [] for m in contracts}
    cells: list[tuple] = []
    for rule in catalogue.rules:
        if rule.table_level:
            continue
        tables, rule_cells = _breaking(rule, ctx, contracts)
        for model, model_rows in tables.items():
            rows[model] += model_rows
        cells += rule_cells
    engine = sa.create_engine(f"duckdb:///{tmp_path_factory.mktemp('floor') / 'w.duckdb'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA m"))
        conn.execute(sa.text("CREATE SCHEMA raw_epr"))
        conn.execute(
            sa.text(
                'CREATE TABLE raw_epr."_cell_errors" ('
                + ", ".join(f"{c} VARCHAR" for c in CELL_ERROR_COLUMNS)
                + ")"
            )
        )
        for rule_id, table, key in cells:
            conn.execute(
                sa.text(
                    'INSERT INTO raw_epr."_cell_errors" (rule_id, table_name, row_key) VALUES (:r, :t, :k)'
                ),
                {"r": rule_id, "t": table, "k": key},
            )
        for model, contract in contracts.items():
            cols = contract.columns
            conn.execute(
                sa.text(f"CREATE TABLE m.{model} (" + ", ".join(f'"{c}" {t}' for c, t in cols) + ")")
            )
            if rows[model]:
                values = ", ".join(
                    "(" + ", ".join(_lit(row.get(c), t) for c, t in cols) + ")" for row in rows[model]
                )
                conn.execute(sa.text(f"INSERT INTO m.{model} VALUES {values}"))
    outcome = run_rules(engine, catalogue, ctx)
    yield engine, catalogue, ctx, outcome
    engine.dispose()


def _row_level(catalogue, outcome) -> list:
    return [r for r in catalogue.rules if not r.table_level and outcome.tables[r.table].present]


def test_floor_with_the_cascade_equals_the_rule_engine_for_every_rule(warehouse):
    engine, catalogue, ctx, outcome = warehouse
    floor = floor_counts(engine, catalogue, ctx, cascade=True)
    rules = _row_level(catalogue, outcome)
    assert len(rules) >= 1100
    differ = {
        r.id: (floor.counts.get(r.id), outcome.failures.get(r.id, 0))
        for r in rules
        if floor.counts.get(r.id) != outcome.failures.get(r.id, 0)
    }
    assert not differ, f"{len(differ)} rules: floor vs engine {dict(list(differ.items())[:10])}"
    # the data is not trivially clean: most rules fail somewhere
    assert sum(1 for r in rules if floor.counts[r.id]) > 0.8 * len(rules)
    # the row-count rule reads the same scan's count(*)
    for rule in catalogue.rules:
        if rule.table_level:
            assert floor.counts[rule.id] == outcome.tables[rule.table].rows
    assert set(floor.per_table_seconds) == {t for t, o in outcome.tables.items() if o.present}


def test_floor_before_the_cascade_equals_the_engine_less_rejected_parents(warehouse):
    engine, catalogue, ctx, outcome = warehouse
    floor = floor_counts(engine, catalogue, ctx)
    with engine.connect() as conn:
        before = dict(
            conn.execute(
                sa.text(
                    f"SELECT rule_id, COUNT(*) FROM {FAILURES} "
                    "WHERE cause IS DISTINCT FROM 'rejected_parent' GROUP BY rule_id"
                )
            ).fetchall()
        )
    rules = _row_level(catalogue, outcome)
    differ = {
        r.id: (floor.counts[r.id], before.get(r.id, 0))
        for r in rules
        if floor.counts[r.id] != before.get(r.id, 0)
    }
    assert not differ, f"{len(differ)} rules: floor vs engine {dict(list(differ.items())[:10])}"
    # the cascade did happen here, so the two comparisons test different things
    cascaded = [r.id for r in rules if outcome.failures.get(r.id, 0) != before.get(r.id, 0)]
    assert cascaded and all(r.type == "references" for r in catalogue.rules if r.id in cascaded)


def test_the_literal_one_select_floor_counts_the_same(warehouse):
    """``batch=None``: one SELECT per table, every predicate in it (slow to plan, same counts)."""
    engine, catalogue, ctx, outcome = warehouse
    tables = ["MHS001MPI", "MHS102OtherServiceType", "MHS501HospProvSpell"]
    for table in tables:
        (sql,) = floor_sql(catalogue, ctx, table, batch=None)
        assert sql.startswith("SELECT count(*)") and sql.count(" FILTER (WHERE ") == sum(
            1 for r in catalogue.for_table(table) if not r.table_level
        )
    small = replace(
        catalogue, rules=tuple(r for r in catalogue.rules if r.table in tables), cascade_order=tuple(tables)
    )
    literal = floor_counts(engine, small, ctx, cascade=True, batch=None)
    batched = floor_counts(engine, small, ctx, cascade=True)
    assert literal.counts == batched.counts and set(literal.per_table_seconds) == set(tables)


def test_every_rule_has_a_scan_kind_and_each_subquery_batch_is_bounded(warehouse):
    _, catalogue, ctx, _ = warehouse
    kinds = scan_kinds(catalogue, ctx)
    assert sum(kinds.values()) == len(catalogue.rules)
    assert set(kinds) <= {"one_pass", "side", "joined", "table"}
    assert kinds["table"] == sum(1 for r in catalogue.rules if r.table_level)
    for table in catalogue.cascade_order:
        selects = floor_sql(catalogue, ctx, table)
        assert selects[0].startswith('SELECT count(*) AS "__rows"')
        assert sum(s.count(" FILTER (WHERE ") for s in selects) == sum(
            1 for r in catalogue.for_table(table) if not r.table_level
        )
        assert all(s.upper().count("SELECT ") <= 1 + 2 * SUBQUERIES_PER_SELECT for s in selects[1:])


def test_gx_counts_without_fetching_rows_or_samples_nobody_sees(warehouse):
    """gx_suites.count_only_results: an UnexpectedRowsExpectation's query runs once, for the count,
    under the gate's result format (COMPLETE still returns the rows), and a map expectation asks
    for no sample of unexpected values when the format shows none."""
    import great_expectations as gx

    from mhsds_pipeline.quality.gx_suites import (
        RESULT_FORMAT,
        ROWS_METRIC,
        _context,
        _datasource,
        expectation_for,
    )

    engine, catalogue, ctx, outcome = warehouse
    rule = next(r for r in catalogue.for_table("MHS101Referral") if r.type == "references")
    assert outcome.failures.get(rule.id, 0) > 0
    context = _context(None)
    source = _datasource(context, engine.url.render_as_string(hide_password=False))
    asset = source.add_query_asset(name="referral", query=f"SELECT * FROM {ctx.table(rule.model)}")
    batch = asset.add_batch_definition_whole_table("whole").get_batch()
    expectation = expectation_for(rule, ctx)
    for fmt, asks_rows in ((RESULT_FORMAT, False), ({"result_format": "COMPLETE"}, True)):
        deps = expectation.get_validation_dependencies(runtime_configuration={"result_format": fmt})
        assert (ROWS_METRIC in deps.get_metric_names()) is asks_rows
    suite = gx.ExpectationSuite(name="one", expectations=[expectation])
    summary = batch.validate(suite, result_format=RESULT_FORMAT).results[0]
    assert summary.result["observed_value"] == outcome.failures[rule.id]
    complete = batch.validate(suite, result_format="COMPLETE").results[0]
    assert len(complete.result["details"]["unexpected_rows"]) == outcome.failures[rule.id]
    # a map expectation: no sample of unexpected values is queried when none is shown
    column_rule = next(r for r in catalogue.for_table("MHS101Referral") if r.type == "not_null")
    mapped = expectation_for(column_rule, ctx)
    sample = f"{mapped.map_metric}.unexpected_values"
    for fmt, asks_sample in ((RESULT_FORMAT, False), ({"result_format": "SUMMARY"}, True)):
        deps = mapped.get_validation_dependencies(runtime_configuration={"result_format": fmt})
        assert (sample in deps.get_metric_names()) is asks_sample
    counted = batch.validate(
        gx.ExpectationSuite(name="two", expectations=[mapped]), result_format=RESULT_FORMAT
    )
    assert counted.results[0].result["unexpected_count"] >= 0
    assert counted.results[0].result.get("partial_unexpected_list", []) == []  # always empty before
