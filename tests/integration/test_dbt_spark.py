"""The dbt project on Spark (dbt-spark ``session`` method, a local pyspark session): every model
builds, and every MHSDS mart, finance mart and derived-fields table equals the DuckDB build of
the same month, row for row, under its IDB names.

One small synthetic month (scale 0.05) is extracted once and built twice from the same landing
files: on DuckDB as the pipeline does (``transform.build``, then the finance and derived models
on that month published and a synthetic ledger) and on Spark (``spark_warehouse.load_raw_spark``,
``load_tables_spark`` and one ``transform_spark`` with the finance nodes enabled: all 99 models).
One SparkSession serves the whole test session (starting one costs ~10 s). Loopback only, no
Spark UI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import scratch_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERIOD = "2026-10"

#: Every model builds on Spark: the 82 of the monthly run and the 17 finance / derived ones.
SPARK_MODELS_EXPECTED = 99
#: The finance marts and derived-field tables compared with DuckDB beside the MHSDS marts.
FINANCE_TABLES = (
    "mhis_allocation",
    "mhis_outturn",
    "mhis_spend_monthly",
    "der_activity",
    "der_care_activity",
    "der_coded_assessment",
    "der_inpatients",
    "der_person_month",
    "der_referral_month",
    "der_service_team_type",
)


@dataclass
class Builds:
    settings: Any
    duck_seconds: float
    spark_seconds: float
    spark_load_seconds: float
    spark: Any
    nodes: list[Any]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The test session's one SparkSession (local, loopback, in-memory catalogue)."""
    pytest.importorskip("pyspark")
    from mhsds_pipeline.spark_warehouse import local_session

    session = local_session(tmp_path_factory.mktemp("spark_warehouse"))
    yield session
    session.stop()


def _finance_inputs(settings, base: Path) -> tuple[dict, dict]:
    """The month published from the DuckDB marts (the columns the finance measures read) and a
    synthetic ledger: loaded into DuckDB here, returned as Arrow for Spark."""
    from mhsds_pipeline.finance.fixtures import write_published_month
    from mhsds_pipeline.finance.generator import generate as generate_finance
    from mhsds_pipeline.finance.loader import load_raw_finance, read_files
    from mhsds_pipeline.finance.published import TABLES, find_published, load_published, published_tables
    from mhsds_pipeline.warehouse import read_mart

    model_of = {c.idb_table: m for m, c in _marts().items()}
    rows = {idb: read_mart(settings, model_of[idb]).to_pylist() for idb in TABLES}
    write_published_month(settings.output_dir, PERIOD, rows)
    generate_finance(base / "finance", end_period=PERIOD, scale=0.05, seed=3)
    ledger = read_files(base / "finance")
    load_raw_finance(settings, ledger)
    history = find_published(settings.output_dir, PERIOD, 1)
    load_published(settings, history)
    return ledger, published_tables(history, settings.org_id_provider)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Builds:
    from mhsds_pipeline import pipeline
    from mhsds_pipeline.finance.loader import RAW_SCHEMA as FINANCE_SCHEMA
    from mhsds_pipeline.finance.published import PUBLISHED_SCHEMA
    from mhsds_pipeline.period import ReportingPeriod
    from mhsds_pipeline.spark_warehouse import load_raw_spark, load_tables_spark, transform_spark
    from mhsds_pipeline.synthetic.generator import generate
    from mhsds_pipeline.transform import run_dbt

    base = tmp_path_factory.mktemp("dbt_spark")
    generate(
        f"sqlite:///{base / 'epr.sqlite'}",
        scale=0.05,
        seed=7,
        end_period=PERIOD,
        months=1,
        out_dir=base / "epr",
    )
    settings = scratch_settings(base)
    watermark = pipeline.extract(PERIOD, settings)["source_watermark"]
    pipeline.load_raw(PERIOD, settings)
    duck = pipeline.transform(PERIOD, watermark, settings)
    ledger, published = _finance_inputs(settings, base)
    t0 = time.perf_counter()
    ok, nodes = run_dbt(
        settings,
        ["build", "--select", "tag:finance", "+tag:derived"],
        {"finance_enabled": True},
        base / "dbt_fin",
    )
    duck_finance = time.perf_counter() - t0
    assert ok, [(n.unique_id, n.message) for n in nodes if n.status in ("error", "fail")]

    t0 = time.perf_counter()
    load_raw_spark(spark, settings.landing_dir(PERIOD))
    load_tables_spark(spark, FINANCE_SCHEMA, ledger)
    load_tables_spark(spark, PUBLISHED_SCHEMA, published)
    loaded = time.perf_counter() - t0
    built = transform_spark(settings, ReportingPeriod.parse(PERIOD), watermark, spark, finance=True)
    print(
        f"\ndbt build {PERIOD}: DuckDB {duck['seconds']:.1f} s (monthly) + {duck_finance:.1f} s (finance); "
        f"Spark {built['seconds']:.1f} s (both in one invocation) + {loaded:.1f} s registering the inputs"
    )
    return Builds(settings, duck["seconds"] + duck_finance, built["seconds"], loaded, spark, built["nodes"])


def _marts() -> dict[str, Any]:
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.contracts import load_contracts

    return load_contracts(load_settings().dbt_project_dir)


def _family(t: pa.DataType) -> str:
    """An Arrow type without the engine's spelling (string width, time/timestamp unit)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_timestamp(t):
        return f"timestamp tz={t.tz}"
    return str(t)


def _rows(table: pa.Table) -> list[tuple]:
    def key(row: tuple) -> tuple:
        return tuple((v is None, str(v)) for v in row)

    return sorted(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True), key=key)


def test_every_model_seed_and_test_builds_on_spark(builds: Builds) -> None:
    failed = [(n.unique_id, n.status, n.message) for n in builds.nodes if n.status not in ("success", "pass")]
    assert not failed
    models = {n.unique_id.split(".")[-1] for n in builds.nodes if n.resource_type == "model"}
    assert len(models) == SPARK_MODELS_EXPECTED, sorted(models)
    assert set(_marts()) | set(FINANCE_TABLES) <= models
    tests = [n for n in builds.nodes if n.resource_type == "test"]
    assert tests and all(n.status == "pass" for n in tests)


def test_spark_tables_keep_idb_names_and_contract_types(builds: Builds) -> None:
    """The catalogue holds each mart with its mixed-case IDB column names, in contract order,
    with the contract's types as Spark names them."""
    spark_type = {"varchar": "string", "integer": "int", "bigint": "bigint", "date": "date"}
    spark_type |= {"time": "time(6)", "timestamp": "timestamp_ntz"}
    for model, contract in _marts().items():
        fields = builds.spark.table(f"analytics.{model}").schema.fields
        got = [(f.name, f.dataType.simpleString()) for f in fields]
        want = [(name, spark_type[data_type]) for name, data_type in contract.columns]
        assert got == want, model


def _assert_equal(builds: Builds, model: str) -> int:
    from mhsds_pipeline.warehouse import read_mart

    duck = read_mart(builds.settings, model)
    spark = builds.spark.table(f"analytics.{model}").toArrow()
    assert spark.column_names == duck.column_names, model
    assert [_family(f.type) for f in spark.schema] == [_family(f.type) for f in duck.schema], model
    assert spark.num_rows == duck.num_rows, model
    assert _rows(spark) == _rows(duck), model
    return duck.num_rows


def test_each_mart_equals_the_duckdb_build_row_for_row(builds: Builds) -> None:
    marts = _marts()
    assert len(marts) == 61
    compared = sum(_assert_equal(builds, model) for model in sorted(marts))
    assert compared > 1000  # the month is not empty


def test_finance_marts_and_derived_fields_equal_the_duckdb_build(builds: Builds) -> None:
    compared = {model: _assert_equal(builds, model) for model in FINANCE_TABLES}
    assert compared["der_person_month"] > 0 and compared["mhis_spend_monthly"] > 0, compared


def test_time_items_survive_on_spark(builds: Builds) -> None:
    """CareContTime is a TIME on both engines (Spark >= 4.1, spark.sql.timeType.enabled)."""
    table = builds.spark.table("analytics.mhs201_care_contact").toArrow()
    values = [v for v in table.column("CareContTime").to_pylist() if v is not None]
    assert values and all(isinstance(v, dtime) for v in values)


def test_spark_build_time_is_reported(builds: Builds) -> None:
    assert builds.duck_seconds > 0 and builds.spark_seconds > 0
    assert Path(builds.settings.data_dir / "dbt_spark" / PERIOD / "target" / "manifest.json").is_file()


def test_contract_enforcement_fails_on_a_wrong_type_on_spark(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The YAML contracts are enforced on Spark too: a mart whose contract says `date` for a
    text column fails to build, naming the column (in a schema of its own: dbt-spark drops a
    Parquet table before re-creating it)."""
    import shutil
    from dataclasses import replace

    from mhsds_pipeline.transform import run_dbt

    project = tmp_path / "dbt_project"
    shutil.copytree(
        builds.settings.dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    yml = project / "models" / "marts" / "mhsds" / "_mhsds__models.yml"
    text = yml.read_text()
    at = text.index("data_type: varchar", text.index("name: GMPReg"))
    yml.write_text(text[:at] + "data_type: date" + text[at + len("data_type: varchar") :])
    monkeypatch.setenv("MHSDS_SPARK_SCHEMA", "contract_check")
    settings = replace(builds.settings, warehouse_target="spark", dbt_project_dir=project)
    ok, nodes = run_dbt(settings, ["build", "--select", "+mhs002_gp"], {}, tmp_path / "dbt")
    failed = {n.unique_id: n.message or "" for n in nodes if n.status == "error"}
    assert not ok and list(failed) == ["model.mhsds.mhs002_gp"], failed
    assert (
        "enforced contract" in failed["model.mhsds.mhs002_gp"] and "GMPReg" in failed["model.mhsds.mhs002_gp"]
    )
