"""A month with half the usual care contacts does not publish silently (issue 10, item 13).

Six small months are published the way the publisher lays them out (``output/<YYYY-MM>``
symlink -> version directory with its Parquet and manifest). Then the quality gate runs for the
next month, whose care contacts are half the usual number and every other table as usual. The
gate's warehouse steps (rule engine, reconciliation, DQMI, GX) are replaced by their outcome,
so the test runs in a second: what is under test is the volume check and its place in the gate.

Expected: exactly one failed volume row (MHS201CareContact, -50%, severity warning), the gate
passes, gate.json counts the warning and names the anomaly, the log says what to check, and no
NHS number appears in any text the gate writes.
"""

from __future__ import annotations

import json
import logging

import pyarrow.parquet as pq
import pytest
from _fault_helpers import assert_no_nhs_number

from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.finance.fixtures import write_published_month
from mhsds_pipeline.finance.published import TABLES
from mhsds_pipeline.quality import dqmi, engine, gate, gx_suites, reconcile, sdcs
from mhsds_pipeline.quality.engine import RulesOutcome, TableOutcome
from mhsds_pipeline.quality.results import CheckResult

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
PREVIOUS = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]

#: rows per month of the tables the fixture publishes; contacts vary a little month to month
USUAL = {
    "MHS001MPI": 15,
    "MHS101Referral": 20,
    "MHS201CareContact": 40,
    "MHS202CareActivity": 40,
    "MHS501HospProvSpell": 3,
    "MHS502WardStay": 4,
    "MHS902ServiceTeamDetails": 5,
}
CONTACTS_BY_MONTH = [38, 41, 40, 42, 39, 40]  # median 40


def _rows(table: str, n: int, month: str) -> list[dict]:
    if table == "MHS001MPI":  # test-range NHS-like values: they must never reach a description
        return [{"LocalPatientID": f"999{i:07d}"} for i in range(n)]
    return [{"CareContactID": f"{month}-{i}"} if table == "MHS201CareContact" else {} for i in range(n)]


@pytest.fixture
def published(tmp_settings):
    out = tmp_settings.output_dir
    out.mkdir(parents=True)
    for month, contacts in zip(PREVIOUS, CONTACTS_BY_MONTH, strict=True):
        counts = {**USUAL, "MHS201CareContact": contacts}
        write_published_month(out, month, {t: _rows(t, n, month) for t, n in counts.items()})
    return tmp_settings


def _stub_warehouse_steps(monkeypatch, settings, submitted: dict[str, int]) -> None:
    """The gate's warehouse steps give their outcome: every contracted table built, the given
    rows submitted (nothing quarantined), every rule passed."""
    model = {c.idb_table: m for m, c in load_contracts(settings.dbt_project_dir).items()}
    tables = {
        idb: TableOutcome(idb, present=True, rows=submitted.get(idb, 1), submitted_rows=submitted.get(idb, 1))
        for idb in model
    }  # the rule engine's outcome is keyed by IDB table
    passed = CheckResult(
        check_id="MHS00165",
        source="mhsds_rule",
        severity="record rejected",
        status="passed",
        count_rule_engine=0,
    )
    outcome = RulesOutcome("test", tables, failures={}, samples={}, checks=[passed])
    monkeypatch.setattr(engine, "run_rules", lambda *a, **k: outcome)
    monkeypatch.setattr(reconcile, "gate_reconciliation", lambda *a, **k: (None, []))
    result = dqmi.DqmiResult("2026-10", "analytics", None, True, "test", (), 95.0, None, "test")
    monkeypatch.setattr(dqmi, "compute_dqmi", lambda *a, **k: result)
    monkeypatch.setattr(dqmi, "compute_submission_dqmi", lambda *a, **k: result)
    monkeypatch.setattr(dqmi, "write_dqmi", lambda *a, **k: None)
    monkeypatch.setattr(dqmi, "to_check_results", lambda *a, **k: [])
    monkeypatch.setattr(
        gx_suites,
        "validate_marts",
        lambda *a, **k: gx_suites.GxOutcome([], True, 0.0, None, counts={"MHS00165": 0}),
    )
    monkeypatch.setattr(sdcs, "write_sdcs_reports", lambda *a, **k: [])


def _run_gate(settings, caplog) -> tuple[dict, list[dict], dict, str]:
    with caplog.at_level(logging.INFO):
        verdict = gate.run_quality(settings, PERIOD, "manual__volume")
    dq = gate.work_dir(settings, PERIOD, "manual__volume") / "dq"
    rows = pq.read_table(dq / "dq_results.parquet").to_pylist()
    return verdict, rows, json.loads((dq / "gate.json").read_text()), caplog.text


def test_half_the_contacts_is_one_warning_and_the_gate_passes(published, monkeypatch, caplog):
    monkeypatch.delenv("MHSDS_VOLUME_THRESHOLD", raising=False)
    _stub_warehouse_steps(monkeypatch, published, {**USUAL, "MHS201CareContact": 20})
    verdict, rows, gate_json, log_text = _run_gate(published, caplog)

    volume = [r for r in rows if r["source"] == "volume"]
    failed = [r for r in volume if r["status"] == "failed"]
    assert [(r["table_name"], r["severity"], r["numerator"], r["denominator"]) for r in failed] == [
        ("MHS201CareContact", "warning", 20, 40)
    ]
    (contacts,) = failed
    assert (contacts["check_id"], contacts["measure"], contacts["rate"], contacts["threshold"]) == (
        "LOCAL_VOLUME_ANOMALY",
        "rows",
        0.5,
        0.3,
    )
    assert contacts["description"].startswith(
        "MHS201CareContact: 20 rows vs median 40 of the 6 previous published months 2026-04..2026-09 "
        "(-50%, threshold ±30%): check the extract covers the whole month"
    )
    # every other table the fixture published passes (write_published_month writes every table the
    # finance reader needs, those not in USUAL empty); the rest were never published before
    statuses = {r["table_name"]: r["status"] for r in volume}
    assert set(statuses) == {c.idb_table for c in load_contracts(published.dbt_project_dir).values()}
    assert {t for t, s in statuses.items() if s == "passed"} == set(TABLES) - {"MHS201CareContact"}
    assert {s for t, s in statuses.items() if t not in TABLES} == {"not_applicable"}
    assert {r["severity"] for r in volume} == {"warning"}

    # never blocks: the gate passes, counts the warning and names the anomaly
    assert verdict["status"] == gate_json["status"] == "passed"
    assert gate_json["blocking"] == []
    assert verdict["warnings"] == gate_json["warnings"] == 1
    assert gate_json["volume_anomalies"] == {"MHS201CareContact": -0.5}
    assert f"1 of {len(statuses)} tables outside the usual volume; MHS201CareContact -50%" in log_text
    assert "Volume anomaly: MHS201CareContact: 20 rows vs median 40" in log_text
    assert "Quality gate passed for 2026-10" in log_text and "1 warnings" in log_text

    texts = [json.dumps(gate_json), log_text] + [r["description"] or "" for r in rows]
    assert_no_nhs_number(*texts)


def test_a_usual_month_has_no_volume_warning(published, monkeypatch, caplog):
    monkeypatch.delenv("MHSDS_VOLUME_THRESHOLD", raising=False)
    _stub_warehouse_steps(monkeypatch, published, {**USUAL, "MHS201CareContact": 43})
    verdict, rows, gate_json, _ = _run_gate(published, caplog)
    assert [r for r in rows if r["source"] == "volume" and r["status"] == "failed"] == []
    assert (verdict["status"], verdict["warnings"], gate_json["volume_anomalies"]) == ("passed", 0, {})


def test_a_looser_threshold_for_contacts_silences_it(published, monkeypatch, caplog):
    monkeypatch.setenv("MHSDS_VOLUME_THRESHOLD", "0.3,MHS201CareContact=0.6")
    _stub_warehouse_steps(monkeypatch, published, {**USUAL, "MHS201CareContact": 20})
    verdict, rows, gate_json, _ = _run_gate(published, caplog)
    (contacts,) = [r for r in rows if r["source"] == "volume" and r["table_name"] == "MHS201CareContact"]
    assert (contacts["status"], contacts["threshold"]) == ("passed", 0.6)
    assert (verdict["status"], verdict["warnings"]) == ("passed", 0)


def test_a_broken_threshold_is_an_error_row_not_a_blocked_month(published, monkeypatch, caplog):
    monkeypatch.setenv("MHSDS_VOLUME_THRESHOLD", "thirty percent")
    _stub_warehouse_steps(monkeypatch, published, {**USUAL, "MHS201CareContact": 20})
    verdict, rows, gate_json, _ = _run_gate(published, caplog)
    (error,) = [r for r in rows if r["source"] == "volume"]
    assert (error["status"], error["severity"]) == ("error", "warning")
    assert "MHSDS_VOLUME_THRESHOLD" in error["description"]
    assert verdict["status"] == "passed" and gate_json["blocking"] == []


def test_the_first_months_are_not_compared(tmp_settings, monkeypatch, caplog):
    tmp_settings.output_dir.mkdir(parents=True)
    for month in PREVIOUS[-2:]:
        write_published_month(
            tmp_settings.output_dir, month, {t: _rows(t, n, month) for t, n in USUAL.items()}
        )
    _stub_warehouse_steps(monkeypatch, tmp_settings, {**USUAL, "MHS201CareContact": 20})
    verdict, rows, _, _ = _run_gate(tmp_settings, caplog)
    (contacts,) = [r for r in rows if r["source"] == "volume" and r["table_name"] == "MHS201CareContact"]
    assert contacts["status"] == "not_applicable"
    assert "fewer than the 3 months needed" in contacts["description"]
    assert verdict["status"] == "passed"
