"""The system view on Spark gives the DuckDB path's dq_results, row for row (issue #15).

Two providers' packages are written with ``idb.write_csv`` from small hand-built tables (header,
MPI, referral, with planted defects and one NHS number both providers hold, as in
tests/unit/test_system_sources.py). ``validate_packages`` (DuckDB) and ``validate_packages_spark``
(the same rule engine on a local SparkSession, its SQL transpiled by sqlglot) must give the same
dq_results rows per provider: rule ids, counts, statuses, sample keys. Every loaded table has the
contract's Spark types. GX 1.x through its Spark datasource, with the project's expectations, must
count what the DuckDB engine counts on the filled tables. The transpiler must refuse, naming the
rule, what it cannot carry to Spark, and so must the executor when Spark itself refuses a rule's
SQL. The whole month of tests/system_packages.py through the Spark flow (rules, DQMI, SDCS
reports, dbt-spark's derived tables, LTP measures, the same combine step) must publish the DuckDB
flow's files byte for byte. One SparkSession serves the module (about 5 min in all at load
average ~3 on 2 cores, 2 min 16 s of it the Spark month).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, datetime
from datetime import time as clock
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from system_packages import digests, write_package

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.dialect import SparkTranspileError, spark_fail_predicate, to_spark
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import DBT_PROJECT, load_catalogue
from mhsds_pipeline.submission.idb import table_specs
from mhsds_pipeline.system.spark import (
    SparkWarehouse,
    gx_counts_spark,
    spark_schema_types,
    spark_session,
    spark_table_ddl,
    validate_packages_spark,
)
from mhsds_pipeline.system.validate import RESULTS_FILE, validate_packages

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECS = {s.idb_table: s for s in table_specs(DBT_PROJECT)}
SHARED_NHS = "9434765919"
#: the month of tests/system_packages.py
MONTH = "2026-10"


def _tables(org: str, defects: int) -> dict[str, pa.Table]:
    """Header + MPI + referral for one provider; ``defects`` referrals point at no patient."""
    header = {
        "DatSetVer": "6.0",
        "OrgIDProvider": org,
        "OrgIDSubmit": org,
        "PrimSystemInUse": "=SYS",
        "ReportingPeriodStartDate": date(2026, 10, 1),
        "ReportingPeriodEndDate": date(2026, 10, 31),
        "DateTimeDatSetCreate": datetime(2026, 11, 3, 9, 30, 0),
    }
    mpi = [
        {
            "LocalPatientID": f"{org}P1",
            "OrgIDLocalPatientID": org,
            "NHSNumber": SHARED_NHS,
            "NHSNumberStatus": "01",
            "PersonBirthDate": date(1980, 5, 17),
            "Postcode": "LS1 4AP",
            "GenderIDCode": "1",
            "EthnicCategory": "A",
        },
        {
            "LocalPatientID": f"{org}P2",
            "OrgIDLocalPatientID": org,
            "NHSNumber": None,
            "NHSNumberStatus": "",
            "PersonBirthDate": date(2030, 1, 1),
            "Postcode": "TOO LONG POSTCODE",
            "GenderIDCode": "9",
        },
        {
            "LocalPatientID": f"{org}P2",
            "OrgIDLocalPatientID": org,
            "NHSNumber": "9434765918",
        },  # dup key, bad check digit
    ]
    referrals = [
        {"ServiceRequestID": f"{org}R{i}", "LocalPatientID": f"{org}P{1 + i % 2}", "OrgIDComm": "15F",
         "ReferralRequestReceivedDate": date(2026, 10, 2 + i), "ReferralRequestReceivedTime": clock(9, i),
         "SourceOfReferralMH": "A1", "ClinRespPriorityType": "3", "PrimReasonReferralMH": "01"}
        for i in range(4)
    ] + [
        {"ServiceRequestID": f"{org}X{i}", "LocalPatientID": "NOBODY", "ReferralRequestReceivedDate": date(2026, 9, 1),
         "ServDischDate": date(2026, 12, 1), "ReferralRequestReceivedTime": clock(23, 59, 59)}
        for i in range(defects)
    ]  # fmt: skip
    rows = {"MHS000Header": [header], "MHS001MPI": mpi, "MHS101Referral": referrals}
    return {t: pa.Table.from_pylist(r, schema=SPECS[t].arrow_schema) for t, r in rows.items()}


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """The module's one SparkSession (the process's: a running one is reused)."""
    return spark_session(tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="module")
def both(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("system_spark")
    dirs = [
        write_package(_tables("R1A", defects=1), root / "packages" / "R1A"),
        write_package(_tables("RX4", defects=3), root / "packages" / "RX4"),
    ]
    t0 = time.perf_counter()
    duck = validate_packages(dirs, root / "system.duckdb", output_path=root / "duckdb")
    t1 = time.perf_counter()
    on_spark = validate_packages_spark(dirs, output_path=root / "spark", run_id="system", spark=spark)
    t2 = time.perf_counter()
    print(f"\nvalidate_packages: DuckDB {t1 - t0:.1f} s, Spark {t2 - t1:.1f} s for {len(dirs)} providers")
    for org in sorted(duck.outcomes):
        print(
            f"  {org}: rule engine DuckDB {duck.outcomes[org].seconds:.1f} s, Spark {on_spark.outcomes[org].seconds:.1f} s"
        )
    return SimpleNamespace(root=root, duck=duck, spark=on_spark)


def _rows(path) -> list[dict]:
    rows = pq.read_table(path).to_pylist()
    return sorted(
        rows,
        key=lambda r: tuple(str(r[k]) for k in ("org_id_provider", "check_id", "table_name", "column_name")),
    )


def test_spark_gives_the_duckdb_dq_results_row_for_row(both):
    duck = _rows(both.root / "duckdb" / RESULTS_FILE)
    spark = _rows(both.root / "spark" / RESULTS_FILE)
    assert pq.read_schema(both.root / "spark" / RESULTS_FILE) == pq.read_schema(
        both.root / "duckdb" / RESULTS_FILE
    )
    assert len(spark) == len(duck)
    assert {r["org_id_provider"] for r in spark} == {"R1A", "RX4"}
    for d, s in zip(duck, spark, strict=True):
        assert s == d, {k: (d[k], s[k]) for k in d if d[k] != s.get(k)}
    for org in ("R1A", "RX4"):
        assert both.spark.failures(org) == both.duck.failures(org), org
        assert both.spark.failures(org), f"{org}: the planted defects fire rules"
        assert both.spark.outcomes[org].quarantine_counts() == both.duck.outcomes[org].quarantine_counts()
    # the planted defects differ per provider, and so do the counts: nothing is pooled
    assert both.spark.failures("R1A") != both.spark.failures("RX4")
    # every row-level rule ran on Spark: a result row per catalogue rule per provider
    catalogue = load_catalogue()
    ids = {r.id for r in catalogue.rules}
    for org in ("R1A", "RX4"):
        assert ids <= {r["check_id"] for r in spark if r["org_id_provider"] == org}


def test_loaded_tables_have_the_contract_types(both, spark):
    referral = spark_schema_types(spark, "provider_r1a", SPECS["MHS101Referral"].model)
    assert referral["ReferralRequestReceivedDate"] == "date"
    assert referral["ReferralRequestReceivedTime"].startswith("time")
    header = spark_schema_types(spark, "provider_r1a", SPECS["MHS000Header"].model)
    assert header["DateTimeDatSetCreate"] == "timestamp_ntz"
    # every table, filled (a table) or not (an empty view), has the contract's columns and types:
    # compared with tables created from the contract's DDL
    spark.sql("CREATE DATABASE IF NOT EXISTS contract_types")
    for spec in SPECS.values():
        spark.sql(f"DROP TABLE IF EXISTS contract_types.{spec.model}")
        spark.sql(spark_table_ddl("contract_types", spec))
        expected = spark_schema_types(spark, "contract_types", spec.model)
        assert list(expected) == spec.column_names, spec.idb_table
        assert spark_schema_types(spark, "provider_r1a", spec.model) == expected, spec.idb_table
    rows = spark.sql("SELECT COUNT(*) FROM provider_rx4.mhs101_referral").collect()[0][0]
    assert rows == both.spark.packages["RX4"].rows["MHS101Referral"] == 7


def test_the_transpiler_refuses_loudly_naming_the_rule():
    with pytest.raises(SparkTranspileError, match=r"rule LOCAL_X: function no_such_fn\(\)"):
        to_spark("SELECT 1 FROM t WHERE no_such_fn(t.x)", "LOCAL_X")
    # sqlglot would drop the 'i' option: a case-insensitive check must not become case-sensitive
    with pytest.raises(SparkTranspileError, match="regexp_matches"):
        to_spark("SELECT 1 FROM t WHERE regexp_matches(t.x, '^a$', 'i')", "LOCAL_Y")
    # a catalogue rule whose SQL cannot be carried over is refused by its id, never skipped
    catalogue = load_catalogue()
    rule = next(r for r in catalogue.rules if r.type == "fail_when")
    broken = replace(rule, check={**rule.check, "sql": "list_zip_longest(DatSetVer) IS NULL"})
    ctx = replace(
        sql_context(load_settings(), ReportingPeriod.parse("2026-10")), schema="p", dialect="duckdb"
    )
    with pytest.raises(SparkTranspileError, match=rf"rule {rule.id}:"):
        spark_fail_predicate(broken, ctx)


def test_gx_spark_datasource_counts_equal_the_duckdb_engine(both, spark):
    """GX 1.x's Spark datasource with the project's expectations on the last provider's three
    loaded tables: each rule's unexpected rows equal the DuckDB rule engine's failures."""
    catalogue = load_catalogue()
    settings = replace(load_settings(), warehouse_target="duckdb")
    ctx = replace(
        sql_context(settings, ReportingPeriod.parse("2026-10")),
        schema="provider_rx4",  # validated last: dq.rule_failures holds its failures (references)
        org_id_provider="RX4",
        org_id_submit="RX4",
        dialect="duckdb",
    )
    tables = ["MHS000Header", "MHS001MPI", "MHS101Referral"]
    t0 = time.perf_counter()
    counts, left_out = gx_counts_spark(spark, catalogue, ctx, tables)
    expected = both.duck.failures("RX4")
    rules = [r for t in tables for r in catalogue.for_table(t) if not r.table_level]
    print(
        f"\nGX on Spark: {len(counts)} of {len(rules)} rules of {tables} in {time.perf_counter() - t0:.1f} s; "
        f"left out (no Spark implementation): {left_out}"
    )
    assert set(counts) | set(left_out) == {r.id for r in rules}
    assert len(left_out) <= 2  # the NHS number rule (and nothing else on these tables)
    assert all(v is not None for v in counts.values()), {k: v for k, v in counts.items() if v is None}
    assert {k: v for k, v in counts.items() if v} == {k: v for k, v in expected.items() if k in counts}
    assert any(counts.values()), "the planted defects fire GX expectations too"


def test_spark_refusing_a_rule_names_the_rule(both, spark):
    """sqlglot passes ``SIMILAR TO`` through; Spark refuses it: the error names the rule."""
    conn_sql = (
        "INSERT INTO dq.rule_failures (rule_id, table_name, row_key, severity, cause) "
        "SELECT 'LOCAL_SPARK_REFUSES', 'mhs001_mpi', '*', 'warning', NULL "
        'FROM "provider_rx4"."mhs001_mpi" t WHERE t."Postcode" SIMILAR TO \'LS%\''
    )
    with pytest.raises(SparkTranspileError, match="rule LOCAL_SPARK_REFUSES: Spark refuses"):
        with SparkWarehouse(spark).begin() as conn:
            conn.execute(sa.text(conn_sql))


# ------------------------------------------------------------------ the month, published


@pytest.fixture(scope="module")
def months(tmp_path_factory, spark):
    """The month of tests/system_packages.py (two providers whose LTP answer is known) through the
    DuckDB flow and through the Spark flow (``mhsds system --engine spark``), each published to
    its own folder."""
    from system_packages import write_inbox

    from mhsds_pipeline import cli
    from mhsds_pipeline.system.flow import run_system_month

    root = tmp_path_factory.mktemp("system_month_spark")
    write_inbox(root / "inbox")
    t0 = time.perf_counter()
    run_system_month(root / "inbox", MONTH, root / "duckdb", root / "duckdb_work", run_id="parity")
    t1 = time.perf_counter()
    # the Spark month as a user runs it (the session is the module's: the process has one)
    argv = ["system", "--period", MONTH, "--engine", "spark", "--inbox", str(root / "inbox")]
    argv += ["--output", str(root / "spark"), "--work", str(root / "spark_work"), "--run-id", "parity"]
    assert cli.main(argv) == 0
    t2 = time.perf_counter()
    print(
        f"\nsystem month: DuckDB {t1 - t0:.1f} s, Spark {t2 - t1:.1f} s (rules, DQMI, SDCS, dbt-spark, LTP)"
    )
    return root


def test_the_spark_month_publishes_the_duckdb_month_byte_for_byte(months):
    """Every published file (dq_results, DQMI and LTP per provider and ICB, the SDCS reports, the
    DQMI pages, the manifest with its checksums) is the DuckDB path's, byte for byte."""
    duck, on_spark = digests(months / "duckdb" / MONTH), digests(months / "spark" / MONTH)
    assert len(duck) >= 15 and "ltp_by_icb.parquet" in duck and "sdcs/R1A/validations.csv" in duck
    assert on_spark == duck
    dq = pq.read_table(months / "spark" / MONTH / RESULTS_FILE).to_pylist()
    failed = {(r["org_id_provider"], r["check_id"]): r["numerator"] for r in dq if r["status"] == "failed"}
    # the planted referrals of nobody: 1 at R1A, 2 at RXT (a group rejection of MHS101Referral)
    assert (failed[("R1A", "MHS10101")], failed[("RXT", "MHS10101")]) == (1, 2)


def test_the_spark_month_ran_on_spark_and_measured_the_known_answer(months, spark):
    """The hand-over says Spark held the provider's tables; dbt-spark built the derived tables in
    the session's catalogue; the exact LTP values are the packages' known answer (R1A 7, RXT 3)."""
    from system_packages import CHILDREN

    from mhsds_pipeline.system.handover import ProviderOutcome

    for org, children in CHILDREN.items():
        outcome = ProviderOutcome.read(months / "spark_work", MONTH, org)
        assert outcome.warehouse_file == f"spark:provider_{org.lower()}"
        assert outcome.ltp_exact["MHS95"] == float(children)
    assert spark.table("analytics.der_referral_month").count() > 0
    icb = {
        r["metric_id"]: r["value"]
        for r in pq.read_table(months / "spark" / MONTH / "ltp_by_icb.parquet").to_pylist()
    }
    assert icb["MHS95"] == 10.0
