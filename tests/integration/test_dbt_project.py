"""Integration tests of the dbt project (dbt_project/) on a tiny hand-written EPR extract.

The fixture is a few patients, referrals and contacts for reporting period 2026-10, clean except
for planted defects that must reach the marts untouched and must NOT fail (or warn) any dbt test:
dbt tests are structural only (DBT_* ids in meta.check_id); the MHSDS rules that find these
defects are defined once, in expectations/rules/mhsds_v6_rules.yml, and run by the quality gate.

* appointment A003 starts in September but was keyed in October (CONTACT_OUTSIDE_PERIOD, MHS20167);
* appointment A004 points at a referral that does not exist (ORPHAN_CONTACT, MHS20142);
* appointment id A001 appears twice (DUPLICATE_CONTACT_ID, MHS20143);
* one row for each other defect type of the generator's ground truth (GROUND_TRUTH_RULES).

dbt runs in-process through ``dbtRunner`` against a temporary DuckDB file (and, when PostgreSQL is
reachable on 127.0.0.1:5432, against a throwaway database).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
MARTS_YML = PROJECT_DIR / "models" / "marts" / "mhsds" / "_mhsds__models.yml"
MART_SCHEMA = "analytics"
RP_VARS = {
    "rp_start": "2026-10-01",
    "rp_end": "2026-10-31",
    "org_id_provider": "R1A",
    "org_id_submit": "R1A",
    "prim_system_in_use": "SYNTHETIC EPR",
    "dataset_created_at": "2026-11-05 06:00:00",
    "dataset_version": "6.0",
}

# --------------------------------------------------------------------------------------------
# The tiny EPR extract (column order as in plugins/mhsds_pipeline/source/schema.py)
# --------------------------------------------------------------------------------------------
D, T = date, datetime
# One EPR row per line reads better than one value per line.
# fmt: off
RAW_ROWS: dict[str, list[tuple[Any, ...]]] = {
    "teams": [
        ("T01", "Adult CMHT", "ADULT", "A06", "ADULT", D(2020, 1, 1), None),
        ("T02", "CAMHS eating disorders", "CAMHS", "C10", "CYP", D(2020, 1, 1), None),
        ("T03", "Single point of access", "CRISIS", "A18", "ALL", D(2020, 1, 1), None),
    ],
    "wards": [("W01", "Oak ward", "R1A01", "200", 20)],
    "patients": [
        ("P001", "9990000018", "01", D(1980, 5, 1), "WR1 1AA", "1", "1", "A", "en", "S", None,
         T(2020, 1, 1), T(2026, 10, 1)),
        ("P002", "9990000026", "01", D(2012, 3, 9), "WR2 4BB", "2", "2", "H", "en", "S", None,
         T(2021, 1, 1), T(2026, 10, 1)),
        ("P003", "9990000034", "01", D(1950, 7, 20), "B60 1CC", "2", "2", "N", "pl", "M", None,
         T(2019, 6, 1), T(2026, 10, 1)),
        # NHS_NUMBER_INVALID (check digit 8 -> 9), POSTCODE_DEFAULT, ETHNICITY_NOT_KNOWN
        ("P004", "9990000019", "01", D(1975, 1, 2), "ZZ99 3VZ", "1", "1", "99", "en", "S", None,
         T(2020, 1, 1), T(2026, 10, 1)),
        # NHS_NUMBER_MISSING (status 07 not set), POSTCODE_INVALID
        ("P005", None, "01", D(1990, 2, 3), "NOT A PC", "2", "2", "B", "en", "S", None, T(2020, 1, 1),
         T(2026, 10, 1)),
    ],
    "gp_registrations": [
        ("P001", "M81001", D(2010, 1, 1), None),
        ("P002", "M81002", D(2012, 4, 1), None),
        ("P003", "M81003", D(1990, 1, 1), None),
        ("P004", "M81001", D(2001, 1, 1), None),
        ("P005", "M81002", D(2005, 1, 1), None),
    ],
    "referrals": [
        ("R001", "P001", "T01", T(2026, 8, 3, 9, 30), "A1", "04", "3", "18C", None, None, None, None,
         T(2026, 8, 3, 10)),
        ("R002", "P002", "T02", T(2026, 9, 14, 14, 0), "F1", "12", "2", "18C", T(2026, 10, 20, 16, 0),
         None, None, "01", T(2026, 10, 20, 16)),
        ("R003", "P003", "T03", T(2026, 9, 1, 11, 15), "H1", "18", "1", "18C", None, None, None, None,
         T(2026, 9, 1, 12)),
        # DATE_ORDER_REFERRAL: discharged before received
        ("R004", "P004", "T01", T(2026, 10, 10, 9, 0), "A1", "05", "3", "18C", T(2026, 10, 5, 9, 0),
         None, None, "02", T(2026, 10, 10, 9)),
        ("R005", "P005", "T01", T(2026, 7, 1, 9, 0), "B1", "04", "3", "18C", None, None, None, None,
         T(2026, 7, 1, 9)),
        # ORPHAN_REFERRAL: patient P999 has no patients row
        ("R006", "P999", "T03", T(2026, 10, 1, 9, 0), "A1", "18", "1", "18C", None, None, None, None,
         T(2026, 10, 1, 9)),
    ],
    "referral_teams": [("R001", "T03", D(2026, 8, 10), None, None, None, None)],
    "appointments": [
        ("A001", "R001", "T01", "C01", T(2026, 10, 6, 10, 0), 60, "02", "01", "A01", "5", None, None,
         T(2026, 10, 6, 12)),
        ("A002", "R002", "T02", "C02", T(2026, 10, 8, 15, 30), 45, "01", "11", "B01", "6", None, None,
         T(2026, 10, 8, 17)),
        # CONTACT_OUTSIDE_PERIOD: dated in September, keyed in October
        ("A003", "R001", "T01", "C01", T(2026, 9, 20, 9, 0), 30, "02", "02", "A01", "5", None, None,
         T(2026, 10, 3, 9)),
        # ORPHAN_CONTACT: referral R999 exists nowhere
        ("A004", "R999", "T03", "C03", T(2026, 10, 12, 11, 0), 20, "01", "02", "A01", "3", None, None,
         T(2026, 10, 12, 12)),
        # DUPLICATE_CONTACT_ID: a second row with id A001
        ("A001", "R003", "T03", "C03", T(2026, 10, 15, 13, 0), 30, "02", "01", "A01", "5", None, None,
         T(2026, 10, 15, 14)),
    ],
    "interventions": [
        ("I001", "A001", "390773006", "04", "35489007", 50, T(2026, 10, 6, 12)),
        ("I002", "A002", "1111811000000109", None, None, 40, T(2026, 10, 8, 17)),
        # SNOMED_CHECK_DIGIT: 390773006 with the check digit changed (not in the value set)
        ("I003", "A002", "390773007", None, None, 5, T(2026, 10, 8, 17)),
    ],
    "indirect_activities": [
        ("IA001", "R002", "T02", "C02", T(2026, 10, 7, 11, 0), 30, "02", "1111811000000109", None, None,
         T(2026, 10, 7, 15)),
        # INDIRECT_OUTSIDE_PERIOD: dated in September, keyed in October
        ("IA002", "R001", "T01", "C01", T(2026, 9, 29, 9, 15), 15, "01", None, "01", "F32.1",
         T(2026, 10, 2, 9)),
        # INDIRECT_DATE_MISSING: no date, keyed in October
        ("IA003", "R001", "T03", "C03", None, 20, "03", None, None, None, T(2026, 10, 9, 10)),
    ],
    "assessments": [
        ("S001", "R001", None, "720433000", "12", T(2026, 10, 6, 10, 30), "C01"),
        ("S002", "R002", "I002", "445455005", "9", T(2026, 10, 8, 16, 0), "C02"),
        # ASSESSMENT_SCORE_OUT_OF_RANGE: PHQ-9 runs 0-27
        ("S003", "R002", None, "720433000", "30", T(2026, 10, 9, 10, 0), "C02"),
    ],
    "admissions": [
        ("H001", "R003", T(2026, 9, 27, 18, 0), T(2026, 9, 28, 10, 0), "19", "21", D(2026, 10, 15),
         T(2026, 10, 10, 12, 0), "1", "19"),
        # DATE_ORDER_SPELL: discharged before admitted
        ("H002", "R005", None, T(2026, 10, 12, 10, 0), "19", "21", None, T(2026, 10, 11, 10, 0), "1", "19"),
    ],
    "ward_movements": [
        ("WS001", "H001", "W01", T(2026, 9, 28, 10, 0), T(2026, 10, 10, 12, 0), None),
        # DATE_ORDER_WARD_STAY: ends before it starts
        ("WS002", "H001", "W01", T(2026, 10, 5, 10, 0), T(2026, 10, 4, 10, 0), "202"),
    ],
    "diagnoses": [
        ("D001", "R001", "02", "F32.1", "P", T(2026, 10, 2, 9, 0)),
        ("D002", "R001", "06", "35489007", "S", T(2026, 10, 2, 9, 0)),
    ],
}
# fmt: on

#: mart -> (EPR table, predicate on the raw row selecting the rows it carries)
MART_SOURCES = {
    "mhs001_mpi": ("patients", None),
    "mhs002_gp": ("gp_registrations", None),
    "mhs101_referral": ("referrals", None),
    "mhs102_other_service_type": ("referral_teams", None),
    "mhs201_care_contact": ("appointments", None),
    "mhs202_care_activity": ("interventions", None),
    "mhs204_indirect_activity": ("indirect_activities", None),
    "mhs501_hosp_prov_spell": ("admissions", None),
    "mhs502_ward_stay": ("ward_movements", None),
    "mhs604_prim_diag": ("diagnoses", lambda r: r[4] == "P"),
    "mhs605_sec_diag": ("diagnoses", lambda r: r[4] == "S"),
    "mhs606_coded_score_assessment_refer": ("assessments", lambda r: r[2] is None),
    "mhs607_coded_score_assessment_act": ("assessments", lambda r: r[2] is not None),
    "mhs902_service_team_details": ("teams", None),
}

#: structural dbt tests (meta.check_id) that must run and pass on the dirty fixture: nothing lost
#: between staging and marts, one header row, EPR keys present, diagnoses routed, age groups mapped
EXPECTED_STRUCTURAL = {
    "DBT_MHS000_ONE_ROW",
    *(f"DBT_ROWS_CARRIED_{mart.split('_')[0].upper()}" for mart in MART_SOURCES),
    "DBT_ROWS_CARRIED_INT_WARD_STAYS",
    "DBT_INT_DIAGNOSES_ROUTED",
    "DBT_INT_TEAMS_AGE_GROUP_MAPPED",
    "DBT_STG_APPOINTMENTS_KEY_NOT_NULL",
    "DBT_STG_PATIENTS_KEY_NOT_NULL",
    "DBT_STG_REFERRALS_KEY_NOT_NULL",
    "DBT_STG_WARDS_KEY_UNIQUE",
}
#: a structural test's own id; never an MHSDS rule code (those live in the rules catalogue)
CHECK_ID = re.compile(r"^(DBT|FIN)_[A-Z0-9_]+$")

#: contract data_type -> DuckDB information_schema data_type
DUCKDB_TYPES = {
    "varchar": "VARCHAR",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "integer": "INTEGER",
    "bigint": "BIGINT",
}


def _epr_columns() -> dict[str, list[tuple[str, str]]]:
    """EPR table -> [(column, warehouse type)], from the single schema definition."""
    from sqlalchemy import Date, DateTime, Integer, String

    from mhsds_pipeline.source import schema

    types = ((DateTime, "timestamp"), (Date, "date"), (Integer, "bigint"), (String, "varchar"))
    out = {}
    for name in schema.TABLE_NAMES:
        cols = []
        for col in schema.metadata.tables[name].columns:
            cols.append((col.name, next(t for cls, t in types if isinstance(col.type, cls))))
        out[name] = cols
    return out


def _load_raw_epr(execute, executemany) -> None:
    """Create schema raw_epr with the EPR tables as the pipeline loads them, and insert the rows."""
    execute("create schema if not exists raw_epr")
    for table, cols in _epr_columns().items():
        ddl = ", ".join(f"{c} {t}" for c, t in cols)
        execute(f"create table raw_epr.{table} ({ddl})")
        rows = RAW_ROWS.get(table, [])  # the generated v6 tables: no rows here
        assert all(len(r) == len(cols) for r in rows), f"fixture row width for {table}"
        if rows:
            executemany(f"insert into raw_epr.{table} values ({', '.join(['%s'] * len(cols))})", rows)


def _marts_contract() -> dict[str, dict[str, Any]]:
    """Every contracted mart: the hand-built ones and those generated from the v6.0 rules file."""
    models = []
    for path in (MARTS_YML, MARTS_YML.with_name("_mhsds_v6__models.yml")):
        models += yaml.safe_load(path.read_text())["models"]
    return {m["name"]: m for m in models}


@dataclass
class DbtRun:
    success: bool
    results: list[Any]
    exception: BaseException | None
    seconds: float

    def by_check(self) -> dict[str, list[str]]:
        """check_id -> statuses of the tests carrying it."""
        out: dict[str, list[str]] = {}
        for r in self.results:
            if r.node.resource_type == "test":
                check = (r.node.config.meta or {}).get("check_id")
                out.setdefault(check, []).append(str(r.status))
        return out


def _dbt(args: list[str], work: Path, env: dict[str, str]) -> DbtRun:
    from dbt.cli.main import dbtRunner

    cmd = args + [
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        started = time.perf_counter()
        res = dbtRunner().invoke(cmd)
        seconds = time.perf_counter() - started
    results = list(getattr(res.result, "results", None) or [])
    return DbtRun(bool(res.success), results, res.exception, seconds)


def _vars() -> str:
    return yaml.safe_dump(RP_VARS, default_flow_style=True).strip()


# --------------------------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------------------------
@dataclass
class DuckBuild:
    run: DbtRun
    warehouse: Path
    work: Path


@pytest.fixture(scope="module")
def duck_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckBuild]:
    import duckdb

    work = tmp_path_factory.mktemp("dbt_duckdb")
    warehouse = work / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        _load_raw_epr(con.execute, lambda sql, rows: con.executemany(sql.replace("%s", "?"), rows))
    finally:
        con.close()
    run = _dbt(
        ["build", "--target", "duckdb", "--vars", _vars()], work, {"MHSDS_WAREHOUSE_PATH": str(warehouse)}
    )
    yield DuckBuild(run, warehouse, work)


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_build_succeeds_on_dirty_data(duck_build: DuckBuild) -> None:
    run = duck_build.run
    assert run.exception is None, run.exception
    failed = [
        (r.node.unique_id, str(r.status), r.message)
        for r in run.results
        if str(r.status) in ("error", "fail", "runtime error", "skipped")
    ]
    assert run.success, failed
    assert not failed
    print(f"dbt build on the tiny fixture: {run.seconds:.1f} s, {len(run.results)} nodes")


def test_marts_have_exactly_the_contract_columns_in_order(duck_build: DuckBuild) -> None:
    contract = _marts_contract()
    assert len(contract) == 61  # every table of the v6.0 rules file (15 by hand, 46 generated)
    for name, model in contract.items():
        rows = _query(
            duck_build.warehouse,
            f"""
            select column_name, data_type from information_schema.columns
            where table_schema = '{MART_SCHEMA}' and table_name = '{name}'
            order by ordinal_position""",
        )
        expected = [(c["name"], DUCKDB_TYPES[c["data_type"]]) for c in model["columns"]]
        assert rows == expected, name


def test_header_row_comes_from_vars(duck_build: DuckBuild) -> None:
    rows = _query(duck_build.warehouse, f"select * from {MART_SCHEMA}.mhs000_header")
    assert rows == [
        (
            "6.0",
            "R1A",
            "R1A",
            "SYNTHETIC EPR",
            date(2026, 10, 1),
            date(2026, 10, 31),
            datetime(2026, 11, 5, 6, 0, 0),
        )
    ]


def test_every_extracted_row_is_carried(duck_build: DuckBuild) -> None:
    for mart, (table, keep) in MART_SOURCES.items():
        expected = len([r for r in RAW_ROWS[table] if keep is None or keep(r)])
        ((count,),) = _query(duck_build.warehouse, f"select count(*) from {MART_SCHEMA}.{mart}")
        assert count == expected, mart
    # the planted defects are still in the mart, for the quality gate to quarantine
    ids = sorted(
        r[0]
        for r in _query(
            duck_build.warehouse, f'select "CareContactID" from {MART_SCHEMA}.mhs201_care_contact'
        )
    )
    assert ids == ["A001", "A001", "A002", "A003", "A004"]


def test_care_contact_date_and_time_are_split(duck_build: DuckBuild) -> None:
    rows = _query(
        duck_build.warehouse,
        f"""
        select "CareContDate", "CareContTime", "AttendStatus", "ConsMechanismMH", "ClinContDurOfCareCont"
        from {MART_SCHEMA}.mhs201_care_contact where "CareContactID" = 'A002'""",
    )
    assert [(r[0], r[1].isoformat(), *r[2:]) for r in rows] == [
        (date(2026, 10, 8), "15:30:00", "6", "11", 45)
    ]


def test_team_age_group_mapped_to_national_code(duck_build: DuckBuild) -> None:
    rows = _query(
        duck_build.warehouse,
        f"""
        select "CareProfTeamLocalID", "ServTeamTypeMH", "ServTeamIntAgeGroup", "OrgIDCareProfTeamLocalID"
        from {MART_SCHEMA}.mhs902_service_team_details order by 1""",
    )
    assert rows == [("T01", "A06", "01", "R1A"), ("T02", "C10", "02", "R1A"), ("T03", "A18", "03", "R1A")]


def test_structural_tests_pass_on_the_planted_defects(duck_build: DuckBuild) -> None:
    """dbt tests are structural: the planted MHSDS defects (orphans, duplicate ids, dates outside
    the RP, bad NHS numbers, ...) trip none of them; the quality gate's rules find those."""
    by_check = duck_build.run.by_check()
    assert EXPECTED_STRUCTURAL <= set(by_check), EXPECTED_STRUCTURAL - set(by_check)
    not_passed = {check: statuses for check, statuses in by_check.items() if set(statuses) != {"pass"}}
    assert not not_passed
    # every test carries its own structural id, never an MHSDS rule code or our old severity words
    for r in duck_build.run.results:
        if r.node.resource_type == "test":
            meta = r.node.config.meta or {}
            assert CHECK_ID.match(meta.get("check_id") or ""), r.node.unique_id
            assert not re.search(r"MHS\d{5}", meta["check_id"]), r.node.unique_id
            assert "rule_id" not in meta and "severity" not in meta, r.node.unique_id
    assert all(len(statuses) == 1 for statuses in by_check.values()), by_check  # ids are unique
    # no MHSDS rule test (code list, dates, orphans, uniqueness of MHSDS keys) runs on a mart
    rule_tests = {
        "accepted_values",
        "relationships",
        "unique",
        "unique_combination",
        "value_in_code_list",
        "date_in_reporting_period",
        "date_order",
        "expression_is_true",
        "matches_pattern",
        "nhs_number_valid",
        "score_within_tool_range",
    }
    on_marts = [
        r.node.unique_id
        for r in duck_build.run.results
        if r.node.resource_type == "test"
        and (r.node.test_metadata.name if r.node.test_metadata else "") in rule_tests
        and any(dep.split(".")[-1] in MART_SOURCES for dep in r.node.depends_on.nodes)
    ]
    assert not on_marts


def test_contract_enforcement_fails_on_a_wrong_type(duck_build: DuckBuild, tmp_path: Path) -> None:
    """A mart whose SQL returns a type other than its contract's must fail the build."""
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    sql = project / "models" / "marts" / "mhsds" / "mhs201_care_contact.sql"
    text = sql.read_text()
    assert "cast(contact_date as date)" in text
    sql.write_text(text.replace("cast(contact_date as date)", "cast(contact_date as varchar)"))

    from dbt.cli.main import dbtRunner

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MHSDS_WAREHOUSE_PATH", str(duck_build.warehouse))
        res = dbtRunner().invoke(
            [
                "run",
                "--select",
                "mhs201_care_contact",
                "--target",
                "duckdb",
                "--vars",
                _vars(),
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(tmp_path / "target"),
                "--log-path",
                str(tmp_path / "logs"),
            ]
        )
    assert not res.success
    messages = " ".join(str(r.message) for r in res.result.results)
    assert "contract" in messages.lower(), messages
    assert "CareContDate" in messages, messages


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------
PG_HOST, PG_PORT = "127.0.0.1", 5432


def _pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_build_on_postgres_keeps_mixed_case_idb_names(tmp_path: Path) -> None:
    import psycopg2

    user = os.environ.get("MHSDS_PG_USER", "postgres")
    password = os.environ.get("MHSDS_PG_PASSWORD", "")
    dbname = f"mhsds_dbt_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, password=password, dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'create database "{dbname}"')
    try:
        con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, password=password, dbname=dbname)
        try:
            with con, con.cursor() as cur:
                _load_raw_epr(cur.execute, cur.executemany)
        finally:
            con.close()

        run = _dbt(
            ["build", "--target", "postgres", "--vars", _vars()],
            tmp_path,
            {
                "MHSDS_PG_HOST": PG_HOST,
                "MHSDS_PG_PORT": str(PG_PORT),
                "MHSDS_PG_USER": user,
                "MHSDS_PG_PASSWORD": password,
                "MHSDS_PG_DBNAME": dbname,
            },
        )
        assert run.exception is None, run.exception
        assert run.success, [
            (r.node.unique_id, str(r.status), r.message)
            for r in run.results
            if str(r.status) in ("error", "fail")
        ]
        print(f"dbt build on PostgreSQL: {run.seconds:.1f} s")
        warned = {check for check, statuses in run.by_check().items() if "warn" in statuses}
        assert warned == set()

        con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, password=password, dbname=dbname)
        try:
            with con.cursor() as cur:
                for name, model in _marts_contract().items():
                    cur.execute(
                        """
                        select column_name from information_schema.columns
                        where table_schema = %s and table_name = %s order by ordinal_position""",
                        (MART_SCHEMA, name),
                    )
                    assert [r[0] for r in cur.fetchall()] == [c["name"] for c in model["columns"]], name
                cur.execute(
                    f'select "CareContactID", "CareContDate" from {MART_SCHEMA}.mhs201_care_contact '
                    "where \"CareContactID\" = 'A003'"
                )
                assert cur.fetchall() == [("A003", date(2026, 9, 20))]
        finally:
            con.close()
    finally:
        admin.cursor().execute(f'drop database if exists "{dbname}" with (force)')
        admin.close()
