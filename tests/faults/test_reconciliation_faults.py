"""Nothing lost, nothing wrong: every extracted row is published or quarantined (issue 10, item 1).

One small synthetic month goes through extract -> load -> dbt -> quality gate -> publish
(in process). Then:

* the orphans the generator planted (spells, ward stays, diagnoses, other teams, referral-level
  assessments whose referral or spell is missing from the EPR or closed before the month) are
  extracted and reach quarantine with their national group-rejection rule id, exactly them;
* the manifest's reconciliation holds for every EPR table (``extracted = published +
  quarantined``), counted against the landing record and the files written;
* a row that disappears between extract and the gate (deleted from a mart) fails the gate as
  critical, naming period, tables and counts; one that disappears after the gate stops
  publication; either way the last good outputs stay byte for byte, and no NHS number is in any
  error text.

The destructive cases run on a copy of the warehouse, so the module's good run stays intact.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _fault_helpers import (
    assert_no_leftovers,
    assert_no_nhs_number,
    assert_tree_unchanged,
    tree_snapshot,
)
from conftest import scratch_settings

from mhsds_pipeline import pipeline
from mhsds_pipeline.publish import PublicationError
from mhsds_pipeline.quality.gate import QualityGateError
from mhsds_pipeline.quality.reconcile import (
    RULE_ID,
    SOURCES,
    Reconciliation,
    SourceReconciliation,
    TableCount,
    distinct_quarantined_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERIOD = "2026-10"

#: planted orphan rule -> (IDB table, national rule id, how to read its MHSDS key from the source)
ORPHANS = {
    "ORPHAN_SPELL": ("MHS501HospProvSpell", "MHS50102"),
    "ORPHAN_WARD_STAY": ("MHS502WardStay", "MHS50203"),
    "ORPHAN_DIAGNOSIS": ("MHS604PrimDiag", "MHS60412"),
    "ORPHAN_REFERRAL_TEAM": ("MHS102OtherServiceType", "MHS10228"),
    "ORPHAN_ASSESSMENT": ("MHS606CodedScoreAssessmentRefer", "MHS60612"),
    "ORPHAN_INDIRECT_ACTIVITY": ("MHS204IndirectActivity", "MHS20403"),
}
KEY_COLUMNS = {
    "MHS501HospProvSpell": ["HospProvSpellID"],
    "MHS502WardStay": ["WardStayID"],
    "MHS604PrimDiag": ["ServiceRequestID", "CodedDiagTimestamp", "PrimDiag"],
    "MHS102OtherServiceType": ["ServiceRequestID", "OtherCareProfTeamLocalID"],
    "MHS606CodedScoreAssessmentRefer": ["ServiceRequestID", "CodedAssToolType", "AssToolCompTimestamp"],
    "MHS204IndirectActivity": [
        "ServiceRequestID",
        "OtherCareProfTeamLocalID",
        "IndirectActDate",
        "IndirectActTime",
    ],
}


def _text(v) -> str:
    return "" if v is None else (str(v)[:19] if hasattr(v, "hour") else str(v))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small month with planted orphans, published once (the last good outputs)."""
    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("recon")
    settings = scratch_settings(base)
    generate(settings.source_url, scale=0.03, seed=23, end_period=PERIOD, months=1, out_dir=base / "epr")
    ex = pipeline.extract(PERIOD, settings)
    pipeline.load_raw(PERIOD, settings)
    pipeline.validate_raw(PERIOD, "recon_good", settings)
    pipeline.transform(PERIOD, ex["source_watermark"], settings)
    pipeline.quality(PERIOD, "recon_good", settings)
    pipeline.publish(PERIOD, "recon_good", settings)
    return base, settings


@pytest.fixture
def scratch(good, tmp_path):
    """The good run's settings on a private copy of the warehouse (safe to break)."""
    _base, settings = good
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    return replace(settings, warehouse_path=copy)


def _truth(base: Path) -> list[dict]:
    with open(base / "epr" / "ground_truth.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["period"] == PERIOD]


def _mhsds_key(src: sqlite3.Connection, rule: str, epr_key: str) -> str:
    """The MHSDS row key of a planted orphan (as the published columns read)."""
    if rule == "ORPHAN_DIAGNOSIS":
        ref, at, code = src.execute(
            "SELECT referral_id, diagnosed_at, code FROM diagnoses WHERE diagnosis_id = ?", (epr_key,)
        ).fetchone()
        return f"{ref}|{at[:19]}|{code}"
    if rule == "ORPHAN_ASSESSMENT":
        ref, tool, at = src.execute(
            "SELECT referral_id, tool_snomed, completed_at FROM assessments WHERE assessment_id = ?",
            (epr_key,),
        ).fetchone()
        return f"{ref}|{tool}|{at[:19]}"
    if rule == "ORPHAN_INDIRECT_ACTIVITY":
        ref, team, at = src.execute(
            "SELECT referral_id, team_id, start_at FROM indirect_activities WHERE indirect_activity_id = ?",
            (epr_key,),
        ).fetchone()
        return f"{ref}|{team}|{at[:10]}|{at[11:19]}"
    return epr_key  # spells, ward stays: the EPR id; other teams: referral|team code


def _rows(path: Path, columns: list[str]) -> list[dict]:
    return pq.read_table(path).to_pylist() if path.exists() else []


# -- orphans reach quarantine with their rule ---------------------------------------------------------


def test_orphans_are_extracted_and_quarantined_with_their_rule_id(good):
    base, settings = good
    out = settings.output_dir / PERIOD
    truth = _truth(base)
    src = sqlite3.connect(base / "epr.sqlite")
    for rule, (idb, rule_id) in ORPHANS.items():
        planted = {_mhsds_key(src, rule, r["epr_key"]) for r in truth if r["rule"] == rule}
        assert len(planted) >= 3, f"{rule}: the generator should plant some every month"
        cols = KEY_COLUMNS[idb]
        quarantined = _rows(out / "quarantine" / f"{idb}.parquet", cols)
        direct = {
            "|".join(_text(q[c]) for c in cols)
            for q in quarantined
            if q["_rule_id"] == rule_id and q["_cause"] == "missing_parent"
        }
        # exactly the planted orphans, as group rejections
        assert direct == planted, (
            f"{idb} {rule_id}: quarantined {sorted(direct)} vs planted {sorted(planted)}"
        )
        assert {q["_severity"] for q in quarantined if q["_rule_id"] == rule_id} == {"group rejected"}
        published = {
            "|".join(_text(v) for v in row.values())
            for row in pq.read_table(out / "mhsds" / f"{idb}.parquet", columns=cols).to_pylist()
        }
        assert not planted & published, f"{idb}: an orphan was published"
    # an orphan spell's ward stay follows it into quarantine (group rejection cascade)
    spells = {r["epr_key"] for r in truth if r["rule"] == "ORPHAN_SPELL"}
    stays = _rows(out / "quarantine" / "MHS502WardStay.parquet", [])
    cascaded = {s["HospProvSpellID"] for s in stays if s["_cause"] == "rejected_parent"}
    assert spells <= cascaded


def test_manifest_reconciles_every_epr_table(good):
    _base, settings = good
    out = settings.output_dir / PERIOD
    manifest = json.loads((out / "manifest.json").read_text())
    gate = json.loads((out / "dq" / "gate.json").read_text())
    landing = json.loads((settings.landing_dir(PERIOD) / "_extract.json").read_text())
    block = manifest["reconciliation"]
    assert block["status"] == "balanced" and block["invariant"] == "extracted = published + quarantined"
    assert gate["reconciliation"]["status"] == "balanced"
    assert set(block["sources"]) == set(SOURCES)
    model_rows = {t["dbt_model"]: t["rows"] for t in manifest["tables"].values()}
    for epr_table, entry in block["sources"].items():
        assert entry["extracted"] == landing["row_counts"][epr_table], epr_table
        assert entry["extracted"] == entry["published"] + entry["quarantined"], epr_table
        assert entry["published"] == sum(model_rows[m] for m in SOURCES[epr_table]), epr_table
    assert block["lookups"] == {"wards": landing["row_counts"]["wards"]}
    for epr_table in ("admissions", "ward_movements", "diagnoses", "referral_teams", "assessments"):
        assert block["sources"][epr_table]["quarantined"] >= 3, epr_table  # the planted orphans
    # one blocking dq_results row per EPR table, all passed
    results = pq.read_table(out / "dq" / "dq_results.parquet").to_pylist()
    recon = {r["table_name"]: r for r in results if r["check_id"] == RULE_ID}
    assert set(recon) == set(SOURCES)
    assert {(r["severity"], r["blocks"], r["status"]) for r in recon.values()} == {
        ("file rejected", True, "passed")
    }


# -- rows that vanish -----------------------------------------------------------------------------


def _delete_clean_rows(settings, table: str, key: str, n: int) -> None:
    """Delete ``n`` rows that no rule rejected from a built mart (rows lost behind the pipeline)."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        keys = [
            r[0]
            for r in con.execute(
                f'SELECT "{key}" FROM analytics.{table} WHERE "{key}" NOT IN '
                f"(SELECT row_key FROM dq.rule_failures WHERE table_name = '{table}') "
                f'ORDER BY "{key}" LIMIT {n}'
            ).fetchall()
        ]
        assert len(keys) == n
        con.execute(f'DELETE FROM analytics.{table} WHERE "{key}" IN ({", ".join("?" * n)})', keys)


def _assert_names_the_lost_rows(message: str, epr_table: str, idb_table: str, lost: int) -> None:
    """The error names period, rule, the EPR table and its MHSDS table and how many rows were lost,
    and no NHS number."""
    assert_no_nhs_number(message)
    assert PERIOD in message and RULE_ID in message
    assert epr_table in message and idb_table in message
    assert f"{lost} row(s) lost between extract and publish" in message


def test_rows_lost_before_the_gate_fail_it_critical_and_keep_last_good(good, scratch):
    _base, settings = good
    before = tree_snapshot(settings.output_dir)
    current = (settings.output_dir / PERIOD).resolve()
    _delete_clean_rows(scratch, "mhs502_ward_stay", "WardStayID", 2)

    with pytest.raises(QualityGateError) as err:
        pipeline.quality(PERIOD, "recon_lost", scratch)
    message = str(err.value)
    _assert_names_the_lost_rows(message, "ward_movements", "MHS502WardStay", 2)
    gate = json.loads((scratch.data_dir / "dq" / PERIOD / "recon_lost" / "dq" / "gate.json").read_text())
    assert gate["status"] == "failed"
    lost = [c for c in gate["blocking"] if c["check_id"] == RULE_ID]
    assert [(c["table"], c["count"]) for c in lost] == [("ward_movements", 2)]
    entry = gate["reconciliation"]["sources"]["ward_movements"]
    assert entry["extracted"] == entry["published"] + entry["quarantined"] + 2
    assert re.search(rf"{entry['extracted']} extracted, {entry['published']} published", message)

    with pytest.raises(PublicationError, match="quality gate failed") as err:
        pipeline.publish(PERIOD, "recon_lost", scratch)
    assert_no_nhs_number(str(err.value))
    assert (settings.output_dir / PERIOD).resolve() == current
    assert_tree_unchanged(settings.output_dir, before)


def test_rows_lost_after_the_gate_stop_publication_and_keep_last_good(good, scratch):
    _base, settings = good
    before = tree_snapshot(settings.output_dir)
    current = (settings.output_dir / PERIOD).resolve()
    pipeline.quality(PERIOD, "recon_late", scratch)  # balanced when the gate ran
    _delete_clean_rows(scratch, "mhs501_hosp_prov_spell", "HospProvSpellID", 1)

    with pytest.raises(PublicationError) as err:
        pipeline.publish(PERIOD, "recon_late", scratch)
    message = str(err.value)
    _assert_names_the_lost_rows(message, "admissions", "MHS501HospProvSpell", 1)
    assert "\n" not in message
    assert (settings.output_dir / PERIOD).resolve() == current
    assert_tree_unchanged(settings.output_dir, before)
    assert_no_leftovers(settings, PERIOD, "recon_late")


def test_without_an_extract_record_nothing_can_be_reconciled(good, tmp_path):
    """No ``_extract.json`` for the period: the gate cannot show nothing was lost (critical)."""
    import sqlalchemy as sa

    from mhsds_pipeline.period import ReportingPeriod
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.reconcile import gate_reconciliation

    _base, settings = good
    elsewhere = replace(settings, data_dir=tmp_path / "data")
    engine = sa.create_engine("duckdb:///:memory:")
    try:
        recon, checks = gate_reconciliation(
            elsewhere, PERIOD, engine, sql_context(elsewhere, ReportingPeriod.parse(PERIOD))
        )
    finally:
        engine.dispose()
    assert recon is None
    assert [(c.check_id, c.severity, c.blocks, c.status) for c in checks] == [
        (RULE_ID, "file rejected", True, "error")
    ]
    assert PERIOD in checks[0].description and "re-run the extract" in checks[0].description


# -- the arithmetic ---------------------------------------------------------------------------------


def test_quarantine_rows_are_counted_once_per_rejected_row():
    table = pa.table(
        {
            "CareContactID": ["C1", "C1", "C1", "C1", "C2"],
            "CareContDate": ["d", "d", "d", "d", "e"],
            # C1 submitted twice (duplicate id) and both copies broke two rules; C2 one rule
            "_rule_id": ["DUP", "DUP", "REF", "REF", "REF"],
            "_severity": ["group rejected"] * 5,
        }
    )
    assert distinct_quarantined_rows(table) == 3
    assert distinct_quarantined_rows(table.slice(0, 0)) == 0


def test_reconciliation_round_trips_and_names_what_was_lost():
    recon = Reconciliation(
        PERIOD,
        {
            "diagnoses": SourceReconciliation(
                "diagnoses",
                extracted=10,
                published=6,
                quarantined=2,
                mhsds_tables={
                    "mhs604_prim_diag": TableCount(8, 6, 2),
                    "mhs605_sec_diag": TableCount(0, 0, 0),
                },
            )
        },
        {"wards": 4},
    )
    again = Reconciliation.from_json(json.loads(json.dumps(recon.to_json())))
    assert again == recon and not again.balanced
    [check] = again.checks({"mhs604_prim_diag": "MHS604PrimDiag", "mhs605_sec_diag": "MHS605SecDiag"})
    assert (check.check_id, check.status, check.numerator, check.table_name) == (
        RULE_ID,
        "failed",
        2,
        "diagnoses",
    )
    assert check.description == (
        "2026-10 EPR diagnoses -> MHS604PrimDiag, MHS605SecDiag: 10 extracted, 6 published + "
        "2 quarantined = 8; 2 row(s) lost between extract and publish"
    )
    written = again.with_outputs({"mhs604_prim_diag": 8}, {"mhs604_prim_diag": 2})
    assert written.balanced and written.sources["diagnoses"].published == 8
