"""Volume anomalies (issue 10, item 13): this month's rows against the previous published months."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mhsds_pipeline.quality import volume as vol
from mhsds_pipeline.quality.results import status_for, to_table

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
PREVIOUS = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
CONTACTS = "MHS201CareContact"


def history(counts: dict[str, list[int | None]], months: list[str] = PREVIOUS) -> vol.VolumeHistory:
    """A history whose month i holds counts[table][i] (None: the table is absent that month)."""
    h = vol.VolumeHistory(PERIOD, list(PREVIOUS))
    for i, month in enumerate(months):
        rows = {t: c[i] for t, c in counts.items() if i < len(c) and c[i] is not None}
        h.months.append(vol.MonthCounts(month, f"v_{month}", rows))
    h.missing = [m for m in PREVIOUS if m not in months]
    return h


STABLE = history({CONTACTS: [30_100, 30_400, 29_800, 30_900, 30_400, 30_600]})


def one(rows, h=STABLE, table=CONTACTS, **kw):
    (result,) = vol.check_volumes(PERIOD, {table: rows}, h, **kw)
    return result


# ------------------------------------------------------------------------------ history shapes


def test_fewer_than_three_months_is_not_applicable_with_the_reason():
    h = history({CONTACTS: [30_000, 31_000]}, months=["2026-08", "2026-09"])
    r = one(15_000, h)
    assert (r.status, r.severity, r.numerator, r.denominator, r.rate) == (
        "not_applicable",
        "warning",
        15_000,
        None,
        None,
    )
    assert "the 2 previous published months in 2026-04..2026-09" in r.description
    assert "2026-04, 2026-05, 2026-06, 2026-07 not published" in r.description
    assert "fewer than the 3 months needed" in r.description


def test_no_history_at_all_is_not_applicable():
    h = vol.VolumeHistory(PERIOD, list(PREVIOUS), missing=list(PREVIOUS))
    r = one(100, h)
    assert r.status == "not_applicable"
    assert "none of the 6 previous months 2026-04..2026-09 published" in r.description


def test_three_months_are_enough():
    h = history({CONTACTS: [30_000, 30_000, 30_000]}, months=PREVIOUS[3:])
    assert one(15_000, h).status == "failed"


def test_stable_month_passes_with_counts_filled():
    r = one(30_000)
    assert r.status == "passed"
    assert (r.numerator, r.denominator, r.threshold) == (30_000, 30_400, 0.3)
    assert r.rate == pytest.approx(30_000 / 30_400)
    assert (r.check_id, r.source, r.measure, r.table_name) == (
        "LOCAL_VOLUME_ANOMALY",
        "volume",
        "rows",
        CONTACTS,
    )
    assert "within the usual volume" in r.description


def test_half_the_contacts_is_a_warning_a_person_can_act_on():
    r = one(15_210)
    assert (r.status, r.severity, r.blocks) == ("failed", "warning", False)
    assert (r.numerator, r.denominator, r.threshold) == (15_210, 30_400, 0.3)
    assert r.rate == pytest.approx(0.5003, abs=1e-4)
    assert r.description.startswith(
        "MHS201CareContact: 15,210 rows vs median 30,400 of the 6 previous published months "
        "2026-04..2026-09 (-50%, threshold ±30%): check the extract covers the whole month"
    )


def test_spike_is_flagged_with_advice_about_duplicates():
    r = one(61_000)
    assert r.status == "failed" and r.rate == pytest.approx(61_000 / 30_400)
    assert "(+101%, threshold ±30%)" in r.description
    assert "duplicated or re-loaded records" in r.description


def test_change_at_the_threshold_passes_and_just_over_fails():
    h = history({CONTACTS: [1000] * 6})
    assert one(1300, h).status == "passed"
    assert one(700, h).status == "passed"
    assert one(1301, h).status == "failed"
    assert one(699, h).status == "failed"


def test_median_ignores_one_anomalous_earlier_month():
    # one half month published before (with its own warning) does not move the baseline
    h = history({CONTACTS: [30_000, 30_200, 15_000, 30_100, 29_900, 30_300]})
    r = one(30_000, h)
    assert r.status == "passed" and r.denominator == 30_050
    assert one(20_000, h).status == "failed"


def test_table_missing_in_some_months_uses_the_months_that_have_it():
    h = history({CONTACTS: [None, None, None, 30_000, 30_000, 30_000]})
    r = one(15_000, h)
    assert r.status == "failed"
    assert "the 3 previous published months in 2026-04..2026-09" in r.description
    assert "(2026-04, 2026-05, 2026-06 not published or without the table)" in r.description
    h = history({CONTACTS: [None, None, None, None, 30_000, 30_000]})
    assert one(15_000, h).status == "not_applicable"


def test_table_absent_from_history_and_table_not_built_this_month():
    h = history({CONTACTS: [30_000] * 6})
    results = vol.check_volumes(PERIOD, {CONTACTS: 30_000, "MHS605SecDiag": 7, "MHS002GP": None}, h)
    by_table = {r.table_name: r for r in results}
    assert [r.table_name for r in results] == ["MHS002GP", "MHS201CareContact", "MHS605SecDiag"]
    assert by_table["MHS605SecDiag"].status == "not_applicable"
    assert by_table["MHS002GP"].status == "not_applicable"
    assert "not built for 2026-10" in by_table["MHS002GP"].description


def test_small_changes_in_small_tables_are_not_news():
    h = history({"MHS605SecDiag": [4, 5, 4, 6, 4, 5]})
    assert one(2, h, table="MHS605SecDiag").status == "passed"  # -56% but 2.5 rows
    assert one(2, h, table="MHS605SecDiag", min_change=1).status == "failed"
    assert one(40, h, table="MHS605SecDiag").status == "failed"


def test_a_table_that_was_empty_and_now_has_rows():
    h = history({"MHS605SecDiag": [0] * 6})
    r = one(45, h, table="MHS605SecDiag")
    assert (r.status, r.numerator, r.denominator, r.rate) == ("failed", 45, 0, None)
    assert "45 rows vs none in the 6 previous published months" in r.description
    assert one(0, h, table="MHS605SecDiag").status == "passed"
    assert one(3, h, table="MHS605SecDiag").status == "passed"


def test_a_table_that_emptied_is_flagged():
    r = one(0)
    assert r.status == "failed" and "(-100%" in r.description


def test_never_critical_whatever_the_shape():
    h = history({CONTACTS: [30_000] * 6, "MHS605SecDiag": [0] * 6})
    current = {CONTACTS: 1, "MHS605SecDiag": 10_000, "MHS002GP": None, "MHS101Referral": 5}
    results = vol.check_volumes(PERIOD, current, h, vol.VolumeThresholds(0.0))
    results += [vol.gate_volume(SimpleNamespace(dbt_project_dir=Path("/nonexistent")), PERIOD, None)[0]]
    assert {r.status for r in results} == {"failed", "not_applicable", "error"}
    assert {r.severity for r in results} == {"warning"}


def test_rows_measure_in_the_shared_vocabulary():
    assert status_for("rows", 70, 100, 0.3) == "passed"
    assert status_for("rows", 69, 100, 0.3) == "failed"
    assert status_for("rows", 131, 100, 0.3) == "failed"
    table = to_table(PERIOD, "run", [one(15_000), one(30_000, table="MHS101Referral")])
    assert table.column("source").to_pylist() == ["volume", "volume"]
    assert table.column("table_name").to_pylist() == ["MHS101Referral", CONTACTS]


def test_anomalies_for_gate_json():
    h = history({CONTACTS: [30_000] * 6, "MHS605SecDiag": [0] * 6, "MHS101Referral": [100] * 6})
    results = vol.check_volumes(PERIOD, {CONTACTS: 15_000, "MHS605SecDiag": 50, "MHS101Referral": 100}, h)
    assert vol.anomalies(results) == {CONTACTS: -0.5, "MHS605SecDiag": None}


# ------------------------------------------------------------------------------ thresholds


def test_threshold_default_and_per_table_overrides():
    t = vol.parse_thresholds(None)
    assert t.for_table(CONTACTS) == 0.3
    t = vol.parse_thresholds(
        "0.5, MHS605SecDiag=1.0,MHS201CareContact=0.2", tables=[CONTACTS, "MHS605SecDiag"]
    )
    assert (t.default, t.for_table(CONTACTS), t.for_table("MHS605SecDiag"), t.for_table("X")) == (
        0.5,
        0.2,
        1.0,
        0.5,
    )
    assert vol.parse_thresholds("MHS201CareContact=0.1").default == 0.3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("thirty", "is not a number"),
        ("-0.1", "must be a fraction >= 0"),
        ("nan", "must be a fraction >= 0"),
        ("MHS201CareContacts=0.2", "'MHS201CareContacts' is not an MHSDS table"),
    ],
)
def test_bad_threshold_is_an_error_naming_the_variable(text, words):
    with pytest.raises(vol.VolumeConfigError, match=words) as err:
        vol.parse_thresholds(text, tables=[CONTACTS])
    assert str(err.value).startswith("MHSDS_VOLUME_THRESHOLD")


def test_threshold_from_env(monkeypatch):
    monkeypatch.setenv("MHSDS_VOLUME_THRESHOLD", "0.6")
    t = vol.thresholds_from_env()
    assert one(15_210, thresholds=t).status == "passed"
    r = one(12_000, thresholds=t)
    assert r.status == "failed" and r.threshold == 0.6 and "threshold ±60%" in r.description
    monkeypatch.setenv("MHSDS_VOLUME_THRESHOLD", "0.6,MHS201CareContact=0.1")
    assert one(27_000, thresholds=vol.thresholds_from_env([CONTACTS])).status == "failed"
    monkeypatch.delenv("MHSDS_VOLUME_THRESHOLD")
    assert vol.thresholds_from_env().default == vol.DEFAULT_THRESHOLD


# ------------------------------------------------------------------------------ reading published months


def _publish(output: Path, period: str, rows: dict[str, int], manifest_rows: bool = True) -> Path:
    """A published month the way publish.py lays it out (symlink -> version dir)."""
    version = output / ".versions" / period / f"20261101T000000Z__run_{period}"
    (version / "mhsds").mkdir(parents=True)
    tables = {}
    for table, n in rows.items():
        pq.write_table(
            pa.table({"x": pa.array(range(n), pa.int64())}), version / "mhsds" / f"{table}.parquet"
        )
        tables[table] = {"path": f"mhsds/{table}.parquet", "rows": n}
    manifest = {"reporting_period": period, "tables": tables if manifest_rows else {}}
    (version / "manifest.json").write_text(json.dumps(manifest))
    os.symlink(os.path.relpath(version, output), output / period)
    return version


def test_published_counts_from_manifests_and_parquet_footers(tmp_path):
    _publish(tmp_path, "2026-05", {CONTACTS: 40, "MHS101Referral": 20})
    _publish(tmp_path, "2026-07", {CONTACTS: 42}, manifest_rows=False)  # legacy manifest
    v = _publish(tmp_path, "2026-08", {CONTACTS: 38})
    manifest = json.loads((v / "manifest.json").read_text())
    manifest["tables"][CONTACTS]["rows"] = 380  # the manifest is what was published
    (v / "manifest.json").write_text(json.dumps(manifest))
    _publish(tmp_path, "2026-10", {CONTACTS: 1})  # the month itself (a re-run): not history
    (tmp_path / "2026-09").mkdir()  # not a published month: no manifest, no tables
    h = vol.published_counts(tmp_path, PERIOD, tables=[CONTACTS, "MHS101Referral"])
    assert h.requested == PREVIOUS
    assert h.missing == ["2026-04", "2026-06", "2026-09"]
    assert [(m.period, dict(m.rows)) for m in h.months] == [
        ("2026-05", {CONTACTS: 40, "MHS101Referral": 20}),
        ("2026-07", {CONTACTS: 42}),
        ("2026-08", {CONTACTS: 380}),
    ]
    assert h.months[0].version == "20261101T000000Z__run_2026-05"
    assert h.counts("MHS101Referral") == [20]
    assert len(vol.published_counts(tmp_path, PERIOD, n_months=3).requested) == 3


def test_gate_volume_reads_the_rule_engine_outcome(tmp_settings, monkeypatch):
    from mhsds_pipeline.contracts import load_contracts

    monkeypatch.delenv("MHSDS_VOLUME_THRESHOLD", raising=False)
    contracts = load_contracts(tmp_settings.dbt_project_dir)
    model = {c.idb_table: c.idb_table for c in contracts.values()}  # the outcome is keyed by IDB table
    out = tmp_settings.output_dir
    out.mkdir(parents=True)
    for month in PREVIOUS[2:]:
        _publish(out, month, {CONTACTS: 400, "MHS101Referral": 100})
    tables = {c.idb_table: SimpleNamespace(present=True, submitted_rows=5) for c in contracts.values()}
    tables[model[CONTACTS]] = SimpleNamespace(present=True, submitted_rows=200)
    tables[model["MHS101Referral"]] = SimpleNamespace(present=True, submitted_rows=101)
    tables[model["MHS002GP"]] = SimpleNamespace(present=False, submitted_rows=0)
    results = vol.gate_volume(tmp_settings, PERIOD, SimpleNamespace(tables=tables))
    by_table = {r.table_name: r for r in results}
    assert set(by_table) == {c.idb_table for c in contracts.values()}
    assert by_table[CONTACTS].status == "failed" and by_table[CONTACTS].rate == 0.5
    assert by_table["MHS101Referral"].status == "passed"
    assert "not built" in by_table["MHS002GP"].description
    assert [r.table_name for r in results if r.status == "failed"] == [CONTACTS]

    monkeypatch.setenv("MHSDS_VOLUME_THRESHOLD", "MHS201CareContacts=0.5")
    (err,) = vol.gate_volume(tmp_settings, PERIOD, SimpleNamespace(tables=tables))
    assert (err.status, err.severity, err.table_name) == ("error", "warning", None)
    assert "MHSDS_VOLUME_THRESHOLD" in err.description and "re-run the quality gate" in err.description
