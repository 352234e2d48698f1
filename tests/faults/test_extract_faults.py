"""Faults at the front of the pipeline: the source, the snapshot, the landing zone.

Each case checks that the failure is loud (exception or exit code), that the message names what
is wrong (URL, file, table, period) and what to do, that nothing already good changes (the
published outputs, the warehouse's ``raw_epr``), and that no NHS number leaks into the message.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _fault_helpers import assert_no_nhs_number, assert_tree_unchanged, point_env_at, tree_snapshot
from sqlalchemy import create_engine, insert, select
from sqlalchemy.exc import OperationalError

from mhsds_pipeline import cli
from mhsds_pipeline import extract as ex
from mhsds_pipeline import publish as pub
from mhsds_pipeline.config import Settings, default_source_url
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.source import schema as epr
from mhsds_pipeline.synthetic import generator
from mhsds_pipeline.warehouse import load_raw

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
OCT = ReportingPeriod.parse(PERIOD)
PG_HOST, PG_PORT = "127.0.0.1", 5432


def _pg_reachable() -> bool:
    import socket

    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


needs_postgres = pytest.mark.skipif(not _pg_reachable(), reason="PostgreSQL not reachable on 127.0.0.1:5432")


def publish_last_good(settings: Settings) -> dict:
    """A published version of the period (through the real promote) and its bytes."""
    stage = pub.staging_dir(settings, OCT, "last_good")
    (stage / "mhsds").mkdir(parents=True)
    (stage / "mhsds" / "MHS000Header.parquet").write_bytes(b"last good header bytes")
    (stage / "manifest.json").write_text(json.dumps({"run_id": "last_good"}))
    pub.promote(settings, OCT, stage)
    return tree_snapshot(settings.output_dir)


@pytest.fixture(scope="module")
def epr_template(tmp_path_factory) -> Path:
    """A tiny synthetic EPR (with 999-range NHS numbers), generated once per module."""
    folder = tmp_path_factory.mktemp("epr")
    generator.generate(
        f"sqlite:///{folder / 'epr.sqlite'}",
        scale=0.02,
        seed=7,
        end_period=PERIOD,
        months=1,
        out_dir=folder / "truth",
    )
    return folder / "epr.sqlite"


@pytest.fixture
def source(tmp_settings, epr_template) -> Settings:
    shutil.copy(epr_template, tmp_settings.sqlite_source_path)
    return tmp_settings


# -- the source is never invented ---------------------------------------------------------


def test_missing_configured_sqlite_source_fails_and_nothing_is_invented(
    tmp_settings, tmp_path, monkeypatch, capsys
):
    settings = point_env_at(monkeypatch, tmp_settings)
    before = publish_last_good(settings)
    missing = settings.sqlite_source_path
    monkeypatch.setattr(generator, "generate", _must_not_run("the synthetic EPR generator"))

    try:
        rc = cli.main(["run", "--no-airflow", "--period", PERIOD])
        text = capsys.readouterr().err
    except Exception as exc:  # noqa: BLE001 - the CLI may raise or report; both count as failing
        rc, text = 1, f"{type(exc).__name__}: {exc}"

    assert rc != 0
    assert settings.source_url in text and "does not exist" in text and "MHSDS_SOURCE_URL" in text
    assert_no_nhs_number(text)
    assert not missing.exists()  # not created by connecting, not generated
    assert not settings.epr_dir.exists()
    assert not list(tmp_path.rglob("ground_truth.csv"))
    assert not settings.landing_dir(PERIOD).exists()
    assert_tree_unchanged(settings.output_dir, before)


def _must_not_run(what: str) -> Callable[..., None]:
    def fail(*_args, **_kwargs) -> None:
        raise AssertionError(f"{what} must not run")

    return fail


def test_make_run_builds_only_the_builtin_demo_default(tmp_settings, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(generator, "generate", lambda url, **_kw: calls.append(url))
    cli.ensure_source(tmp_settings, OCT, scale=0.02, seed=1, months=1)  # configured, absent
    assert calls == [] and not tmp_settings.sqlite_source_path.exists()

    demo = replace(tmp_settings, source_url=default_source_url(tmp_settings.data_dir))
    cli.ensure_source(demo, OCT, scale=0.02, seed=1, months=1)
    assert calls == [demo.source_url]


def test_in_memory_sqlite_source_is_refused(tmp_settings):
    with pytest.raises(ex.ExtractError, match="in-memory") as err:
        ex.extract_period(replace(tmp_settings, source_url="sqlite://"), OCT)
    assert_no_nhs_number(str(err.value))


@pytest.mark.postgres
@needs_postgres
def test_missing_configured_postgres_database_names_the_url_without_password(tmp_settings):
    import psycopg2

    name = f"mhsds_fault_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres:not-the-password@{PG_HOST}:{PG_PORT}/{name}"
    settings = replace(tmp_settings, source_url=url)
    before = publish_last_good(settings)
    with pytest.raises(ex.ExtractError) as err:
        ex.extract_period(settings, OCT)
    text = str(err.value)
    assert f"postgresql+psycopg2://postgres:***@{PG_HOST}:{PG_PORT}/{name}" in text
    assert "does not exist" in text and "not-the-password" not in text
    assert_no_nhs_number(text)
    assert not settings.landing_dir(PERIOD).exists()
    assert_tree_unchanged(settings.output_dir, before)
    with psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone()[0] == 0


# -- the landing zone is verified before it is loaded -------------------------------------


def _silent_flip(path: Path) -> None:
    """Flip one bit so that the file still reads, with the same row count, to other values:
    the corruption row-count reconciliation cannot see."""
    data = path.read_bytes()
    original = pq.read_table(io.BytesIO(data))
    for pos in range(4, len(data) - 8):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        try:
            table = pq.read_table(io.BytesIO(bytes(flipped)))
        except Exception:  # noqa: BLE001, S112 - this flip is detected by Parquet itself; try the next
            continue
        if table.num_rows == original.num_rows and not table.equals(original):
            path.write_bytes(bytes(flipped))
            return
    pytest.fail(f"no silent bit flip found in {path.name}")


def _flip_byte(landing: Path) -> None:
    _silent_flip(landing / "patients.parquet")


def _delete_file(landing: Path) -> None:
    (landing / "referrals.parquet").unlink()


def _extra_file(landing: Path) -> None:
    shutil.copy(landing / "patients.parquet", landing / "patients_copy.parquet")


def _sha_mismatch(landing: Path) -> None:
    record = json.loads((landing / "_extract.json").read_text())
    record["tables"]["appointments"]["sha256"] = "0" * 64
    (landing / "_extract.json").write_text(json.dumps(record))


def _record_missing(landing: Path) -> None:
    (landing / "_extract.json").unlink()


LANDING_FAULTS = {
    "flipped_byte": (_flip_byte, r"patients\.parquet has changed since the extract"),
    "deleted_file": (_delete_file, r"referrals\.parquet is missing"),
    "unlisted_file": (_extra_file, r"unlisted file.*patients_copy\.parquet"),
    "sha_mismatch": (_sha_mismatch, r"appointments\.parquet has changed since the extract"),
    "record_missing": (_record_missing, r"has no _extract\.json"),
}


@pytest.fixture
def loaded(source) -> Iterator[tuple[Settings, Path]]:
    """The period extracted and loaded once (the last good ``raw_epr``)."""
    ex.extract_period(source, OCT)
    load_raw(source, source.landing_dir(PERIOD))
    yield source, source.landing_dir(PERIOD)


@pytest.mark.parametrize("fault", list(LANDING_FAULTS))
def test_corrupted_landing_zone_is_refused_before_the_warehouse_changes(loaded, fault):
    settings, landing = loaded
    damage, names_it = LANDING_FAULTS[fault]
    warehouse_before = settings.warehouse_path.read_bytes()
    damage(landing)

    with pytest.raises(ex.LandingError) as err:
        load_raw(settings, landing)

    text = str(err.value)
    assert re.search(names_it, text), text
    assert PERIOD in text and "re-run the extract" in text and "Nothing was loaded" in text
    assert_no_nhs_number(text)
    assert settings.warehouse_path.read_bytes() == warehouse_before  # last good raw_epr untouched

    # the cure the message names: a fresh extract rewrites the landing zone, which then loads
    result = ex.extract_period(settings, OCT)
    assert load_raw(settings, landing) == result.row_counts


def test_pipeline_step_reports_the_landing_fault(loaded):
    from mhsds_pipeline import pipeline

    settings, landing = loaded
    _delete_file(landing)
    with pytest.raises(ex.LandingError, match=rf"{PERIOD}.*referrals\.parquet is missing"):
        pipeline.load_raw(PERIOD, settings)


# -- one snapshot: a write committed during the extract is not seen -----------------------


def _landed(settings: Settings) -> dict[str, bytes]:
    landing = settings.landing_dir(PERIOD)
    return {p.name: p.read_bytes() for p in sorted(landing.glob("*.parquet"))}


def _new_patient_and_referral(settings: Settings) -> tuple[dict, dict]:
    """A new patient with a new in-scope referral, copied from an extracted referral: if the
    referral were seen after ``patients`` had been read, it would land as an orphan."""
    referral_id = pq.read_table(settings.landing_dir(PERIOD) / "referrals.parquet").column(0)[0].as_py()
    engine = create_engine(settings.source_url)
    try:
        with engine.connect() as conn:
            referral = dict(
                conn.execute(select(epr.referrals).where(epr.referrals.c.referral_id == referral_id))
                .mappings()
                .one()
            )
            patient = dict(
                conn.execute(select(epr.patients).where(epr.patients.c.patient_id == referral["patient_id"]))
                .mappings()
                .first()
            )
    finally:
        engine.dispose()
    patient["patient_id"] = "P_NEW_MID_EXTRACT"
    referral.update(referral_id="R_NEW_MID_EXTRACT", patient_id=patient["patient_id"])
    return patient, referral


def _write_during_extract(monkeypatch, settings: Settings, connect_args: dict | None = None) -> dict:
    """Commit the new patient and referral on another connection right after ``patients`` has
    been extracted; returns what happened to the write."""
    patient, referral = _new_patient_and_referral(settings)
    outcome: dict = {}
    real = ex._write_table

    def hooked(conn, name, stmt, dest, chunk_rows):
        written = real(conn, name, stmt, dest, chunk_rows)
        if name == "patients":
            writer = create_engine(settings.source_url, connect_args=connect_args or {})
            try:
                with writer.begin() as wconn:
                    wconn.execute(insert(epr.patients), [patient])
                    wconn.execute(insert(epr.referrals), [referral])
                outcome["committed"] = True
            except OperationalError as exc:
                outcome["committed"], outcome["error"] = False, str(exc.orig)
            finally:
                writer.dispose()
        return written

    monkeypatch.setattr(ex, "_write_table", hooked)
    return outcome


def _referral_ids(settings: Settings) -> set[str]:
    return set(
        pq.read_table(settings.landing_dir(PERIOD) / "referrals.parquet").column("referral_id").to_pylist()
    )


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_sqlite_extract_reads_one_snapshot(source, monkeypatch, journal_mode):
    import sqlite3

    with sqlite3.connect(source.sqlite_source_path) as db:
        db.execute(f"PRAGMA journal_mode={journal_mode}")
    ex.extract_period(source, OCT)
    baseline = _landed(source)

    outcome = _write_during_extract(monkeypatch, source, connect_args={"timeout": 0.2})
    ex.extract_period(source, OCT)

    assert "committed" in outcome, "the concurrent write was not attempted"
    assert _landed(source) == baseline  # byte for byte: nothing of the write was seen
    if journal_mode == "wal":
        assert outcome["committed"]  # readers do not block writers; the snapshot hides the write
        monkeypatch.undo()
        ex.extract_period(source, OCT)
        assert "R_NEW_MID_EXTRACT" in _referral_ids(source)  # the write was real and in scope
    else:
        # rollback journal: the read transaction holds the file, so the write cannot commit
        assert not outcome["committed"] and "locked" in outcome["error"]


@pytest.fixture
def pg_source(tmp_settings) -> Iterator[Settings]:
    import psycopg2

    name = f"mhsds_fault_src_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
        generator.generate(
            url, scale=0.02, seed=7, end_period=PERIOD, months=1, out_dir=tmp_settings.data_dir / "truth"
        )
        yield replace(tmp_settings, source_url=url)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres
@needs_postgres
def test_postgres_extract_reads_one_snapshot(pg_source, monkeypatch):
    ex.extract_period(pg_source, OCT)
    baseline = _landed(pg_source)

    outcome = _write_during_extract(monkeypatch, pg_source)
    ex.extract_period(pg_source, OCT)

    assert outcome == {"committed": True}
    assert _landed(pg_source) == baseline  # REPEATABLE READ: the committed write is not seen
    monkeypatch.undo()
    ex.extract_period(pg_source, OCT)
    assert "R_NEW_MID_EXTRACT" in _referral_ids(pg_source)
