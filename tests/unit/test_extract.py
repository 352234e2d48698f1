"""The extract pushes the period scope down to the source and streams in bounded chunks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.exc import OperationalError

from mhsds_pipeline.config import default_source_url
from mhsds_pipeline.extract import (
    ExtractError,
    extract_period,
    read_extract_result,
    sha256_file,
    source_engine,
    verify_landing,
)
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.source import schema as epr

pytestmark = pytest.mark.unit

OCT = ReportingPeriod.parse("2026-10")
T = datetime


def _source(url: str) -> None:
    engine = create_engine(url)
    epr.metadata.create_all(engine)
    ts = T(2026, 1, 1)
    rows = {
        "teams": [
            dict(
                team_id="T1",
                team_name="CMHT",
                service_line="ADULT",
                team_type_code="A06",
                age_group="ADULT",
                active_from=date(2020, 1, 1),
            )
        ],
        "wards": [dict(ward_code="W1", ward_name="Ward 1", site_code="R1A01", patient_class="200", beds=20)],
        "patients": [
            dict(patient_id=p, nhs_number=None, created_at=ts, updated_at=ts)
            for p in ("P1", "P2", "P3", "P4")
        ],
        "gp_registrations": [
            dict(
                patient_id="P1", practice_code="M81001", registered_on=date(2010, 1, 1), deregistered_on=None
            ),
            dict(
                patient_id="P1",
                practice_code="M81002",
                registered_on=date(2000, 1, 1),
                deregistered_on=date(2009, 12, 31),
            ),
            dict(
                patient_id="P3", practice_code="M81003", registered_on=date(2010, 1, 1), deregistered_on=None
            ),
        ],
        "referrals": [
            # open through October
            dict(referral_id="R1", patient_id="P1", team_id="T1", received_at=T(2025, 5, 1), updated_at=ts),
            # discharged on the first day of the period: in scope
            dict(
                referral_id="R2",
                patient_id="P2",
                team_id="T1",
                received_at=T(2025, 5, 1),
                discharged_at=T(2026, 10, 1, 9),
                updated_at=ts,
            ),
            # discharged before the period: out
            dict(
                referral_id="R3",
                patient_id="P3",
                team_id="T1",
                received_at=T(2025, 5, 1),
                discharged_at=T(2026, 9, 30, 17),
                updated_at=ts,
            ),
            # received on the last day of the period: in
            dict(
                referral_id="R4",
                patient_id="P4",
                team_id="T1",
                received_at=T(2026, 10, 31, 23, 59),
                updated_at=ts,
            ),
            # received after the period: out
            dict(
                referral_id="R5",
                patient_id="P4",
                team_id="T1",
                received_at=T(2026, 11, 1, 0, 0),
                updated_at=ts,
            ),
        ],
        "appointments": [
            dict(
                appointment_id="C1",
                referral_id="R1",
                team_id="T1",
                start_at=T(2026, 10, 1, 0, 0),
                recorded_at=T(2026, 10, 1, 1),
            ),
            dict(
                appointment_id="C2",
                referral_id="R1",
                team_id="T1",
                start_at=T(2026, 10, 31, 23, 59),
                recorded_at=T(2026, 11, 1, 8),
            ),
            dict(
                appointment_id="C3",
                referral_id="R1",
                team_id="T1",
                start_at=T(2026, 11, 1, 0, 0),
                recorded_at=T(2026, 11, 1, 0, 0),
            ),
            # keyed in late: dated September, recorded October -> extracted with October
            dict(
                appointment_id="C4",
                referral_id="R1",
                team_id="T1",
                start_at=T(2026, 9, 20, 10),
                recorded_at=T(2026, 10, 2, 9),
            ),
            # orphan: referral does not exist, still extracted
            dict(
                appointment_id="C5",
                referral_id="RX",
                team_id="T1",
                start_at=T(2026, 10, 5, 10),
                recorded_at=T(2026, 10, 5, 11),
            ),
            dict(
                appointment_id="C6",
                referral_id="R1",
                team_id="T1",
                start_at=T(2026, 9, 5, 10),
                recorded_at=T(2026, 9, 5, 11),
            ),
        ],
        "interventions": [
            dict(
                intervention_id="I1",
                appointment_id="C1",
                snomed_procedure="405780009",
                recorded_at=T(2026, 10, 1),
            ),
            dict(
                intervention_id="I6",
                appointment_id="C6",
                snomed_procedure="405780009",
                recorded_at=T(2026, 9, 5),
            ),
        ],
        "assessments": [
            dict(
                assessment_id="S1",
                referral_id="R1",
                intervention_id="I1",
                tool_snomed="720433000",
                score="9",
                completed_at=T(2026, 10, 1),
            ),
            dict(
                assessment_id="S2",
                referral_id="R1",
                intervention_id=None,
                tool_snomed="720433000",
                score="9",
                completed_at=T(2026, 10, 15),
            ),
            dict(
                assessment_id="S3",
                referral_id="R1",
                intervention_id=None,
                tool_snomed="720433000",
                score="9",
                completed_at=T(2026, 9, 15),
            ),
        ],
        "admissions": [
            dict(admission_id="H1", referral_id="R1", admitted_at=T(2026, 9, 20), discharged_at=None),
            dict(
                admission_id="H2", referral_id="R1", admitted_at=T(2026, 8, 1), discharged_at=T(2026, 8, 30)
            ),
        ],
        "ward_movements": [
            dict(
                ward_stay_id="WS1",
                admission_id="H1",
                ward_code="W1",
                start_at=T(2026, 9, 20),
                end_at=T(2026, 9, 25),
            ),
            dict(ward_stay_id="WS2", admission_id="H1", ward_code="W1", start_at=T(2026, 9, 25), end_at=None),
        ],
        "diagnoses": [
            dict(
                diagnosis_id="D1",
                referral_id="R1",
                scheme="02",
                code="F32.1",
                rank="P",
                diagnosed_at=T(2025, 6, 1),
            ),
            dict(
                diagnosis_id="D3",
                referral_id="R3",
                scheme="02",
                code="F41.1",
                rank="P",
                diagnosed_at=T(2025, 6, 1),
            ),
        ],
    }
    with engine.begin() as conn:
        for name, values in rows.items():
            table = epr.metadata.tables[name]
            # executemany takes its column list from the first row: give every row every column
            full = [{c.name: v.get(c.name) for c in table.columns} for v in values]
            conn.execute(insert(table), full)
    engine.dispose()


def _keys(landing, table, column):
    return sorted(pq.read_table(landing / f"{table}.parquet").column(column).to_pylist())


@pytest.fixture
def extracted(tmp_settings):
    _source(tmp_settings.source_url)
    settings = replace(tmp_settings, extract_chunk_rows=2)
    return settings, extract_period(settings, OCT)


def test_scope_follows_the_source_contract(extracted):
    settings, result = extracted
    landing = settings.landing_dir("2026-10")
    assert _keys(landing, "referrals", "referral_id") == ["R1", "R2", "R4"]
    assert _keys(landing, "patients", "patient_id") == ["P1", "P2", "P4"]
    assert _keys(landing, "gp_registrations", "practice_code") == ["M81001"]
    # boundaries, late-keyed contact and orphan contact all land; November and September do not
    assert _keys(landing, "appointments", "appointment_id") == ["C1", "C2", "C4", "C5"]
    assert _keys(landing, "interventions", "intervention_id") == ["I1"]
    assert _keys(landing, "assessments", "assessment_id") == ["S1", "S2"]
    assert _keys(landing, "admissions", "admission_id") == ["H1"]
    assert _keys(landing, "ward_movements", "ward_stay_id") == ["WS2"]
    assert _keys(landing, "diagnoses", "diagnosis_id") == ["D1"]
    assert result.tables["appointments"].rows == 4


def test_chunks_become_row_groups_and_types_are_explicit(extracted):
    settings, result = extracted
    f = pq.ParquetFile(settings.landing_dir("2026-10") / "appointments.parquet")
    assert f.metadata.num_row_groups == 2  # 4 rows in chunks of 2: memory bounded by the chunk
    schema = f.schema_arrow
    assert str(schema.field("start_at").type) == "timestamp[us]"
    assert str(schema.field("duration_minutes").type) == "int64"
    assert result.tables["appointments"].row_groups == 2


def test_empty_table_still_written_with_schema(extracted):
    settings, result = extracted
    t = pq.read_table(settings.landing_dir("2026-10") / "referral_teams.parquet")
    assert t.num_rows == 0 and "assigned_on" in t.column_names


def test_extract_is_deterministic(extracted):
    settings, _ = extracted
    landing = settings.landing_dir("2026-10")
    before = {p.name: p.read_bytes() for p in landing.glob("*.parquet")}
    extract_period(settings, OCT)
    after = {p.name: p.read_bytes() for p in landing.glob("*.parquet")}
    assert before == after


def test_watermark_and_summary_file(extracted):
    settings, result = extracted
    # latest recorded/updated timestamp before the end of October (C2 recorded 1 Nov is after the period end)
    assert result.source_watermark == "2026-10-05 11:00:00"
    assert (settings.landing_dir("2026-10") / "_extract.json").exists()


def test_missing_source_tables_give_an_actionable_error(tmp_settings):
    create_engine(tmp_settings.source_url).connect().close()  # an empty database file
    with pytest.raises(ExtractError, match="has no table.*mhsds generate"):
        extract_period(tmp_settings, OCT)


def test_missing_source_file_is_an_error_and_is_not_created(tmp_settings):
    path = tmp_settings.sqlite_source_path
    with pytest.raises(ExtractError, match="does not exist") as err:
        extract_period(tmp_settings, OCT)
    assert str(path) in str(err.value)
    assert not path.exists()  # SQLite would have created it on connect
    assert not tmp_settings.landing_dir("2026-10").exists()


def test_source_is_opened_read_only(tmp_settings):
    _source(tmp_settings.source_url)
    engine = source_engine(tmp_settings)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(insert(epr.teams).values(team_id="TX", team_name="x"))
    finally:
        engine.dispose()


def test_only_the_builtin_default_is_the_demo_source(tmp_settings, tmp_path):
    assert not tmp_settings.is_demo_default_source  # a configured SQLite file elsewhere
    default = replace(tmp_settings, source_url=default_source_url(tmp_settings.data_dir))
    assert default.is_demo_default_source
    assert default.sqlite_source_path == tmp_settings.data_dir / "epr" / "epr.sqlite"
    same_file_other_spelling = replace(
        tmp_settings, source_url=f"sqlite:///{tmp_settings.data_dir}/epr/../epr/epr.sqlite"
    )
    assert same_file_other_spelling.is_demo_default_source
    pg = replace(tmp_settings, source_url="postgresql+psycopg2://reader@db:5432/epr")
    assert not pg.is_demo_default_source and pg.sqlite_source_path is None


def test_extract_records_sha256_and_landing_verifies(extracted):
    settings, result = extracted
    landing = settings.landing_dir("2026-10")
    recorded = read_extract_result(landing)
    assert set(recorded.tables) == set(epr.TABLE_NAMES)
    for name, table in recorded.tables.items():
        path = landing / f"{name}.parquet"
        assert table.path == path.name
        assert table.sha256 == sha256_file(path) and table.bytes == path.stat().st_size
    assert recorded.row_counts == {k: v.rows for k, v in result.tables.items()}
    assert verify_landing(landing).row_counts == recorded.row_counts


def test_extract_clears_stale_landing_files(extracted):
    settings, _ = extracted
    landing = settings.landing_dir("2026-10")
    (landing / "old_table.parquet").write_bytes(b"stale")
    (landing / "appointments.parquet.tmp").write_bytes(b"half-written")
    extract_period(settings, OCT)
    assert not (landing / "old_table.parquet").exists()
    assert not (landing / "appointments.parquet.tmp").exists()
    verify_landing(landing)
