"""The rules catalogue: well formed, compiles for both warehouses, matches the committed suites."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.gx_suites import EXPORT_DIR, EXPORT_PERIOD, render_suites
from mhsds_pipeline.quality.rules import SEVERITY_OF, fail_predicate, load_catalogue

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _ctx(dialect: str):
    settings = replace(load_settings(), org_id_provider="R1A", warehouse_target=dialect)
    return sql_context(settings, ReportingPeriod.parse(EXPORT_PERIOD))


def test_every_rule_names_real_tables_and_columns(catalogue):
    contracts = load_contracts(load_settings().dbt_project_dir)
    assert len(catalogue.rules) >= 80
    for rule in catalogue.rules:
        assert rule.table in contracts, rule.id
        if rule.column:
            assert rule.column in contracts[rule.table].column_names, rule.id
        assert rule.severity == SEVERITY_OF[rule.consequence]
    assert set(catalogue.cascade_order) == set(contracts)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_every_rule_compiles_to_sql(catalogue, dialect):
    ctx = _ctx(dialect)
    for rule in catalogue.rules:
        if rule.table_level:
            continue
        sql = fail_predicate(rule, ctx)
        assert sql and "%%" not in sql, rule.id
        if rule.type == "references":
            assert "dq.rule_failures" in sql  # a rejected parent counts as missing


def test_mhsds_consequences_follow_the_specification(catalogue):
    by_id = {r.id: r for r in catalogue.rules}
    assert by_id["MHS00165"].consequence == "record_rejected"  # NHS number wrong format
    assert by_id["MHS00111"].consequence == "warning"  # NHS number blank: Severity 1 warning
    assert by_id["MHS10101"].consequence == "group_rejected"  # referral without valid MPI
    assert by_id["MHS20167"].consequence == "record_rejected"  # contact before the RP
    assert by_id["MHS00025"].severity == "critical"  # more than one header: file rejected


def test_committed_suites_match_the_catalogue(catalogue):
    rendered = render_suites(catalogue, _ctx("duckdb"))
    committed = {p.stem: json.loads(p.read_text()) for p in EXPORT_DIR.glob("*.json")}
    assert set(committed) == set(rendered)
    for name, doc in rendered.items():
        assert json.loads(json.dumps(doc, sort_keys=True, default=str)) == committed[name], (
            f"{name}: expectations/suites is stale; run scripts/export_gx_suites.py"
        )


def test_sql_rule_expectations_query_the_gx_batch_and_build_silently(capsys):
    """Every SQL-only rule's GX query runs over ``{batch}`` (the validated table), so GX does
    not print "unexpected_rows_query should contain the {batch} parameter" once per rule (it
    filled the quality_gate task log with about 1,400 such lines)."""
    catalogue = load_catalogue()
    rendered = render_suites(catalogue, _ctx("duckdb"))
    queries = [
        e["kwargs"]["unexpected_rows_query"]
        for doc in rendered.values()
        for e in doc["expectations"]
        if "unexpected_rows_query" in e.get("kwargs", {})
    ]
    assert queries, "no SQL-only rules rendered"
    assert all(" FROM (SELECT * FROM {batch}) t WHERE " in q for q in queries)
    out = capsys.readouterr()
    assert "should contain the {batch}" not in out.out + out.err
