"""The whole v6 data set (issue #13): every table of NHS England's v6.0 rules file has a contract,
the generated files are current, the catalogue evaluates the file's rules, and the checks the
generated entries added fire on the rows they describe (DuckDB, hand-made rows)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.nhs_rules import load_nhs_rules
from mhsds_pipeline.quality.rules import Rule, SqlContext, fail_predicate, load_catalogue

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

#: The rules the catalogue does not evaluate, each with why (docs/submission.md "Rules left out").
LEFT_OUT = {
    "MHS00223": "needs a per-patient sequence of GP registrations",
    "MHS20149": "SiteIDOfTreat against ODS sites",
    "MHS30128": "SiteIDOfTreat against ODS sites",
    "MHS50127": "a postcode against the ONS postcode directory",
    "MHS50132": "a postcode against the ONS postcode directory",
}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def test_generated_files_are_current():
    """scripts/v6_tables.py --check: the contracts, models, sources and catalogue entries on disk
    are what the rules file and the code-list seeds give today."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "v6_tables.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_table_of_the_rules_file_has_a_contract_and_is_in_the_cascade(catalogue):
    nhs = load_nhs_rules()
    tables = {r.table for r in nhs.values()}
    assert len(tables) == 61  # 62 names in the file; MHS205 is spelled two ways
    contracts = {c.idb_table for c in load_contracts(load_settings().dbt_project_dir).values()}
    assert tables <= contracts
    assert tables <= set(catalogue.cascade_order)


def test_at_least_1100_rules_evaluated_and_the_rest_named(catalogue):
    nhs = load_nhs_rules()
    evaluated = {r.id for r in catalogue.rules if r.nhs}
    assert len(evaluated) >= 1100
    assert set(nhs) - evaluated == set(LEFT_OUT)
    assert len(nhs) == 1134


def test_generated_contracts_declare_real_keys_parents_and_scope():
    contracts = {c.idb_table: c for c in load_contracts(load_settings().dbt_project_dir).values()}
    from mhsds_pipeline.source.schema_v6 import generated_contracts

    models = generated_contracts()
    assert len(models) == 46
    for m in models:
        meta = m["config"]["meta"]
        cols = [c["name"] for c in m["columns"]]
        assert meta["key"] and set(meta["key"]) <= set(cols), meta["idb_table"]
        for p in meta.get("parents") or ():
            assert set(p["columns"]) <= set(cols), meta["idb_table"]
            assert p["table"] in contracts, meta["idb_table"]
        scope = meta["scope"]
        for k in ("start", "end", "date"):
            if k in scope:
                assert scope[k] in cols, meta["idb_table"]
    # MHS401: a period table, keyed by its own identifier, under the patient
    mha = next(m["config"]["meta"] for m in models if m["name"] == "mhs401_mh_act_period")
    assert mha["key"] == ["MHActLegalStatusClassPeriodID"]
    assert mha["scope"] == {
        "kind": "period",
        "start": "StartDateMHActLegalStatusClass",
        "end": "EndDateMHActLegalStatusClass",
    }
    assert mha["parents"] == [{"table": "MHS001MPI", "columns": ["LocalPatientID"]}]


def test_the_mha_tables_follow_the_rules_file(catalogue):
    by_id = {r.id: r for r in catalogue.rules}
    assert (
        by_id["MHS40101"].type == "not_null" and by_id["MHS40101"].column == "MHActLegalStatusClassPeriodID"
    )
    assert by_id["MHS40125"].type == "references" and by_id["MHS40125"].check["parent"] == "mhs001_mpi"
    assert by_id["MHS40126"].type == "unique"
    assert by_id["MHS40117"].check == {"type": "date_order", "before": "StartDateMHActLegalStatusClass",
                                       "after": "EndDateMHActLegalStatusClass", "before_time": "StartTimeMHActLegalStatusClass",
                                       "after_time": "EndTimeMHActLegalStatusClass"}  # fmt: skip
    assert by_id["MHS40122"].type == "code_list"
    assert by_id["MHS60815"].type == "always" and by_id["MHS60815"].severity == "group rejected"


# ------------------------------------------------------------------ new checks, on DuckDB rows


def _ctx() -> SqlContext:
    settings = replace(load_settings(), org_id_provider="R1A", org_id_submit="R1A", warehouse_target="duckdb")
    return replace(sql_context(settings, ReportingPeriod.parse("2026-10")), schema="m")


def _failing(con, rule: Rule, ctx: SqlContext) -> list:
    sql = f"SELECT t.* FROM {ctx.table(rule.model)} t WHERE {fail_predicate(rule, ctx)}"
    return con.execute(sql).fetchall()


@pytest.fixture()
def warehouse():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA m; CREATE SCHEMA dq")
    con.execute("CREATE TABLE dq.rule_failures (table_name VARCHAR, row_key VARCHAR, severity VARCHAR)")
    con.execute(
        'CREATE SCHEMA raw_epr; CREATE TABLE raw_epr."_cell_errors" (rule_id VARCHAR, table_name VARCHAR, column_name VARCHAR, row_key VARCHAR)'
    )
    yield con
    con.close()


def test_org_live_rejects_codes_not_in_the_ods_seed_or_closed(catalogue, warehouse):
    rule = next(r for r in catalogue.rules if r.id == "MHS10110")  # MHS101 OrgIDComm
    ctx = _ctx()
    warehouse.execute('CREATE TABLE m.mhs101_referral ("ServiceRequestID" VARCHAR, "OrgIDComm" VARCHAR)')
    warehouse.execute(
        "INSERT INTO m.mhs101_referral VALUES ('R1','18C'), ('R2','05T'), ('R3','ZZZ'), ('R4', NULL)"
    )
    assert [r[0] for r in _failing(warehouse, rule, ctx)] == ["R2", "R3"]  # 05T closed in 2022


def test_parent_date_order_compares_a_date_with_its_parents(catalogue, warehouse):
    # MHS50914: home leave starting before its ward stay started
    rule = next(r for r in catalogue.rules if r.id == "MHS50914")
    assert rule.type == "parent_date_order" and rule.check["other"] == "StartDateWardStay"
    ctx = _ctx()
    warehouse.execute('CREATE TABLE m.mhs509_home_leave ("WardStayID" VARCHAR, "StartDateHomeLeave" DATE)')
    warehouse.execute('CREATE TABLE m.mhs502_ward_stay ("WardStayID" VARCHAR, "StartDateWardStay" DATE)')
    warehouse.execute("INSERT INTO m.mhs502_ward_stay VALUES ('W1', DATE '2026-10-10'), ('W2', NULL)")
    warehouse.execute(
        "INSERT INTO m.mhs509_home_leave VALUES ('W1', DATE '2026-10-09'), ('W1', DATE '2026-10-10'), "
        "('W2', DATE '2026-10-01'), ('W9', DATE '2026-10-01')"
    )
    assert [str(r[1]) for r in _failing(warehouse, rule, ctx)] == ["2026-10-09"]


def test_age_range_and_always(catalogue, warehouse):
    ctx = _ctx()
    age = next(r for r in catalogue.rules if r.id == "MHS00171")
    warehouse.execute('CREATE TABLE m.mhs001_mpi ("LocalPatientID" VARCHAR, "PersonBirthDate" DATE)')
    warehouse.execute(
        "INSERT INTO m.mhs001_mpi VALUES ('A', DATE '1895-10-31'), ('B', DATE '1895-11-01'), ('C', DATE '2026-11-01'), ('D', DATE '2026-10-31')"
    )
    assert [r[0] for r in _failing(warehouse, age, ctx)] == ["A", "C"]
    always = next(r for r in catalogue.rules if r.id == "MHS60815")
    warehouse.execute('CREATE TABLE m.mhs608_anon_self_assess ("PersScore" VARCHAR)')
    warehouse.execute("INSERT INTO m.mhs608_anon_self_assess VALUES ('1'), ('2')")
    assert len(_failing(warehouse, always, ctx)) == 2


def test_dates_after_the_dataset_was_created_are_rejected(catalogue, warehouse):
    ctx = _ctx()
    rule = next(r for r in catalogue.rules if r.id == "MHS10131")  # ServDischDate after creation
    warehouse.execute('CREATE TABLE m.mhs000_header ("DateTimeDatSetCreate" TIMESTAMP)')
    warehouse.execute("INSERT INTO m.mhs000_header VALUES (TIMESTAMP '2026-11-01 00:00:00')")
    warehouse.execute('CREATE TABLE m.mhs101_referral ("ServiceRequestID" VARCHAR, "ServDischDate" DATE)')
    warehouse.execute(
        "INSERT INTO m.mhs101_referral VALUES ('R1', DATE '2026-11-01'), ('R2', DATE '2026-11-02'), ('R3', NULL)"
    )
    assert [r[0] for r in _failing(warehouse, rule, ctx)] == ["R2"]
    assert date(2026, 10, 31) == ReportingPeriod.parse("2026-10").end
