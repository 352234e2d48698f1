"""MHIS end to end on a temporary workspace: synthetic finance extract -> raw_finance -> dbt
finance marts (DuckDB; PostgreSQL when reachable) -> MHIS position, LTP metrics and activity over
11 published MHSDS months (one missing) -> Parquet, workbook and HTML as a new version.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import scratch_settings

from mhsds_pipeline.finance import build_finance, load_finance, ltp_metrics, publish_mhis_outputs, run_mhis
from mhsds_pipeline.finance.fixtures import write_published_month
from mhsds_pipeline.finance.generator import generate
from mhsds_pipeline.finance.published import months_back

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PERIOD = "2026-10"
MISSING = "2026-03"
SHEETS = [
    "Summary",
    "Spend vs target",
    "Exclusions",
    "Activity",
    "Team unit costs",
    "LTP metrics",
    "LTP monthly",
    "LTP trajectory",
    "Sources",
]
IDENTIFIERS = (
    "LocalPatientID",
    "NHSNumber",
    "ServiceRequestID",
    "CareContactID",
    "PersonBirthDate",
    "Postcode",
)


def _settings(root: Path):
    return scratch_settings(root)


# Teams as the synthetic EPR has them (MHS902): id, type, intended age group
TEAMS = [
    ("T001", "A06", "02"),
    ("T009", "A06", "01"),
    ("T018", "A17", "01"),
    ("T019", "C02", "01"),
    ("T025", "D05", "01"),
    ("T028", "A10", "01"),
]


def _publish_history(output: Path) -> None:
    """A deterministic little trust: 12 months to PERIOD, MISSING not published."""
    rng = random.Random(5)
    teams = [
        {"CareProfTeamLocalID": t, "ServTeamTypeMH": ty, "ServTeamIntAgeGroup": ag} for t, ty, ag in TEAMS
    ]
    people, referrals, contacts, spells, stays = [], [], [], [], []
    for k in range(160):
        team, team_type, age_group = TEAMS[k % len(TEAMS)]
        born = date(2010, 1, 1) if age_group == "02" else date(1975, 1, 1)
        people.append(
            {
                "LocalPatientID": f"P{k:04d}",
                "PersonBirthDate": born + timedelta(days=rng.randrange(2000)),
                "GenderIDCode": "2" if team_type == "C02" else rng.choice(["1", "2"]),
                "Gender": None,
                "GenderSameAtBirth": None,
            }
        )
        received = date(2025, 10, 1) + timedelta(days=rng.randrange(300))
        referrals.append(
            {
                "ServiceRequestID": f"R{k:04d}",
                "LocalPatientID": f"P{k:04d}",
                "CareProfTeamLocalID": team,
                "ReferralRequestReceivedDate": received,
            }
        )
        for j in range(rng.randrange(1, 6)):
            day = received + timedelta(days=7 + 21 * j)
            contacts.append(
                {
                    "CareContactID": f"C{k:04d}{j}",
                    "ServiceRequestID": f"R{k:04d}",
                    "CareContDate": day,
                    "CareContTime": None,
                    "OtherCareProfTeamLocalID": team,
                    "AttendStatus": rng.choice(["5", "5", "5", "6", "3"]),
                    "ConsMechanismMH": rng.choice(["01", "01", "02", "11"]),
                }
            )
        if team_type == "A10":
            discharged = received + timedelta(days=rng.randrange(5, 60))
            spells.append(
                {
                    "HospProvSpellID": f"H{k:04d}",
                    "ServiceRequestID": f"R{k:04d}",
                    "StartDateHospProvSpell": received,
                    "DischDateHospProvSpell": discharged,
                }
            )
            stays.append(
                {
                    "WardStayID": f"W{k:04d}",
                    "HospProvSpellID": f"H{k:04d}",
                    "StartDateWardStay": received,
                    "EndDateWardStay": discharged,
                    "MHAdmittedPatientClass": "200",
                }
            )
    for month in months_back(PERIOD, 12):
        if month == MISSING:
            continue
        first = date.fromisoformat(month + "-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        in_month = [c for c in contacts if first <= c["CareContDate"] <= last]
        write_published_month(
            output,
            month,
            {
                "MHS902ServiceTeamDetails": teams,
                "MHS001MPI": people,
                "MHS101Referral": referrals,
                "MHS201CareContact": in_month,
                "MHS202CareActivity": [],
                "MHS501HospProvSpell": [s for s in spells if s["StartDateHospProvSpell"] <= last],
                "MHS502WardStay": [w for w in stays if w["StartDateWardStay"] <= last],
            },
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("mhis")
    settings = _settings(root)
    _publish_history(settings.output_dir)
    generate(settings.data_dir / "finance", end_period=PERIOD, scale=0.05)
    before = os.path.realpath(settings.output_dir / PERIOD)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MHSDS_TRAJECTORY_SCALE", "0.01")
        mp.delenv("MHSDS_FINANCE_SOURCE", raising=False)
        result = run_mhis(PERIOD, settings, run_id="mhis__it1")
    return settings, result, Path(before)


def _out(settings) -> Path:
    return settings.output_dir / PERIOD / "mhis"


def test_run_publishes_a_new_version_with_the_mhsds_files_untouched(workspace):
    settings, result, before = workspace
    current = Path(os.path.realpath(settings.output_dir / PERIOD))
    assert current != before and current.name.endswith("mhis__it1")
    for f in (before / "mhsds").iterdir():
        assert os.stat(current / "mhsds" / f.name).st_ino == os.stat(f).st_ino  # hard link, not a copy
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["mhis"]["based_on_version"] == before.name
    assert manifest["mhis"]["inputs"]["mhsds_months_missing_in_window"] == [MISSING]
    for name in ("mhis_position", "mhis_category", "mhis_exclusion", "mhis_activity", "ltp_metric"):
        assert (_out(settings) / f"{name}.parquet").exists()
    assert (
        result["build_finance"]["counts"].get("error", 0) == 0
        and result["build_finance"]["counts"]["pass"] > 30
    )
    assert result["load_finance"]["generated_synthetic"] is False  # the extract covered the period


def test_position_matches_the_rule(workspace):
    settings, result, _ = workspace
    rows = pq.read_table(_out(settings) / "mhis_position.parquet").to_pylist()
    prior, cur = rows
    assert (prior["financial_year"], cur["financial_year"]) == ("2025/26", "2026/27")
    expected = (cur["baseline_outturn_gbp"] * (1 + Decimal(str(cur["base_growth_pct"])) / 100)).quantize(
        Decimal("0.01")
    )
    assert cur["target_gbp"] == expected and cur["months_with_ledger_data"] == 7
    assert cur["forecast_outturn_gbp"] == (cur["ytd_mhis_spend_gbp"] / 7 * 12).quantize(Decimal("0.01"))
    assert cur["meets_standard"] == (cur["forecast_outturn_gbp"] >= cur["target_gbp"])
    assert cur["baseline_outturn_gbp"] == prior["forecast_outturn_gbp"]  # last year's outturn is the baseline
    assert result["target_gbp"] == str(cur["target_gbp"])
    excluded = {
        r["exclusion_reason"] for r in pq.read_table(_out(settings) / "mhis_exclusion.parquet").to_pylist()
    }
    assert any("Learning disability" in r for r in excluded) and any(
        "service development" in r for r in excluded
    )


def test_metrics_report_the_missing_month_and_follow_disclosure_control(workspace):
    settings, _, _ = workspace
    metrics = {r["metric_id"]: r for r in pq.read_table(_out(settings) / "ltp_metric.parquet").to_pylist()}
    assert metrics["MHS95"]["months_available"] == 11 and metrics["MHS95"]["missing_months"] == MISSING
    assert not metrics["MHS95"]["window_complete"]
    assert metrics["MHS95"]["trajectory"] == pytest.approx(62.7)  # 6,265 x 0.01, 2023/24 carried forward
    assert metrics["SMI_PHC"]["status"] == "not_measurable"
    for name in ("ltp_metric", "ltp_metric_monthly", "mhis_activity", "mhis_team_unit_cost"):
        table = pq.read_table(_out(settings) / f"{name}.parquet")
        assert not any(i.lower() in c.lower() for c in table.column_names for i in IDENTIFIERS), name
        for row in table.to_pylist():
            for col in ("contacts", "people_in_contact", "referrals"):
                assert row.get(col) is None or row[col] % 5 == 0
            means = ("MHS156b", "MHS156b_12M")
            if name.startswith("ltp") and row.get("metric_id") not in means and row.get("value") is not None:
                assert row["value"] % 5 == 0 and row["value"] >= 5
            if name.startswith("ltp") and row.get("metric_id") in means and row.get("value") is not None:
                assert row["value"] == int(row["value"])  # whole days
    # a window with an unpublished month is incomplete, never "not met"
    assert metrics["MHS95"]["status"] == "incomplete" and metrics["MHS108"]["status"] == "incomplete"
    assert metrics["MHS156b"]["window_months"] == 3 and metrics["MHS156b"]["window_complete"]
    assert all(m["nhs_england_source"] for m in metrics.values() if m["status"] != "not_measurable")


def test_workbook_has_the_sheets_and_the_published_numbers(workspace):
    from openpyxl import load_workbook

    settings, _, _ = workspace
    wb = load_workbook(_out(settings) / f"mhis_{PERIOD}.xlsx")
    assert wb.sheetnames == SHEETS
    position = pq.read_table(_out(settings) / "mhis_position.parquet").to_pylist()[-1]
    summary = {row[0].value: row[1].value for row in wb["Summary"].iter_rows(min_row=2)}
    assert summary["MHIS target (GBP)"] == pytest.approx(float(position["target_gbp"]))
    assert summary["Forecast outturn from run rate (GBP)"] == pytest.approx(
        float(position["forecast_outturn_gbp"])
    )
    assert summary["MHIS 2026/27 (forecast)"] == ("Met" if position["meets_standard"] else "Not met")
    categories = pq.read_table(_out(settings) / "mhis_category.parquet").to_pylist()
    assert wb["Spend vs target"].max_row == len(categories) + 1
    metrics = {r[0].value: r for r in wb["LTP metrics"].iter_rows(min_row=2)}
    published = {
        r["metric_id"]: r["value"] for r in pq.read_table(_out(settings) / "ltp_metric.parquet").to_pylist()
    }
    for metric_id in ("MHS95", "MHS91", "MHS108", "MHS116"):
        cell = metrics[metric_id][5].value
        assert cell == ("*" if published[metric_id] is None else published[metric_id])
    sources = [r[2].value for r in wb["Sources"].iter_rows(min_row=2)]
    assert "missing" in sources
    # finance reads it in Excel: native charts, coloured statuses, real £, % and date cells
    assert len(wb["Summary"]._charts) == 1 and len(wb["LTP trajectory"]._charts) >= 4
    assert summary["Programme allocation base growth (%)"] == pytest.approx(position["base_growth_pct"] / 100)
    money = [r[1] for r in wb["Summary"].iter_rows(min_row=2) if r[0].value and "(GBP" in r[0].value]
    assert all("£" in c.number_format for c in money) and len(money) >= 10
    mhs95 = metrics["MHS95"]
    assert mhs95[11].value == "Incomplete (months not published)" and mhs95[2].is_date
    assert list(wb["LTP metrics"].conditional_formatting)
    for ws in wb:
        assert ws.tables, ws.title
    monthly = pq.read_table(_out(settings) / "ltp_metric_monthly.parquet").to_pylist()
    assert wb["LTP monthly"].max_row == len(monthly) + 1
    shown = {c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert not shown & {"not_met", "incomplete", "no_trajectory", "not_measurable"}


def test_html_report_is_self_contained(workspace):
    settings, _, _ = workspace
    page = (_out(settings) / "mhis_report.html").read_text()
    assert page.count("<svg") >= 2 and PERIOD in page
    lowered = page.lower()
    assert (
        "<script" not in lowered
        and "<link" not in lowered
        and "src=" not in lowered
        and "@import" not in lowered
    )
    # the only URIs are the SVG and XLink namespace names (identifiers, never fetched)
    uris = set(re.findall(r"https?://[^\"'\s)]*", lowered))
    assert uris == {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, uris
    # matplotlib charts: spend vs target and the LTP metrics with a trajectory line
    assert 'aria-label="MHIS spend against target by category' in page
    assert 'aria-label="MHS95 by month, people (rolling 12 months), against trajectory 62.7"' in page
    assert page.count('id="mhis-trajectory"') >= 4 and page.count('id="mhis-series"') >= 4
    assert "not published (shaded): 2026-03" in page
    text = re.sub(r"<style>.*?</style>|<svg\b.*?</svg>|<[^>]+>", " ", page, flags=re.S)
    assert "Not met" in text and "not_met" not in text and "£" in text


def test_republishing_gives_the_same_parquet_bytes(workspace, monkeypatch):
    settings, _, _ = workspace
    monkeypatch.setenv("MHSDS_TRAJECTORY_SCALE", "0.01")
    first = json.loads((settings.output_dir / PERIOD / "manifest.json").read_text())["mhis"]["files"]
    publish_mhis_outputs(PERIOD, "mhis__it2", settings)
    second = json.loads((settings.output_dir / PERIOD / "manifest.json").read_text())["mhis"]
    assert second["based_on_version"].endswith("mhis__it1")
    for name, info in first.items():
        if info["path"].endswith(".parquet"):
            assert second["files"][name]["sha256"] == info["sha256"], name


def test_finance_nodes_are_disabled_without_the_var(tmp_path):
    """The monthly `dbt build` (no selector, no var) must neither need raw_finance nor build these."""
    from dbt.cli.main import dbtRunner

    common = ["--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project")]
    common += ["--log-path", str(tmp_path / "logs"), "--quiet"]
    plain = dbtRunner().invoke(["ls", *common, "--target-path", str(tmp_path / "a"), "--output", "name"])
    enabled = dbtRunner().invoke(
        ["ls", *common, "--target-path", str(tmp_path / "b"), "--output", "name", "--select", "tag:finance"]
        + ["--vars", '{"finance_enabled": true}']
    )
    assert plain.success and enabled.success
    assert not [n for n in plain.result if "finance" in n or "mhis" in n or n.startswith("ref_ltp")]
    assert {"mhis_spend_monthly", "mhis_outturn", "mhis_allocation", "ref_mhis_rule_variant"} <= set(
        enabled.result
    )


def test_an_unmapped_cost_centre_blocks_publication(tmp_path):
    import pyarrow as pa

    from mhsds_pipeline.finance.generator import generate_finance, write_files
    from mhsds_pipeline.transform import TransformError

    settings = _settings(tmp_path)
    extract = generate_finance(end_period=PERIOD, scale=0.02)
    cc = extract.tables["cost_centres"]
    extract.tables["cost_centres"] = pa.concat_tables(
        [
            cc,
            pa.table(
                {
                    "cost_centre": ["CC9999"],
                    "cost_centre_name": ["New ward"],
                    "service_line": ["INPATIENT"],
                    "team_local_id": [None],
                },
                schema=cc.schema,
            ),
        ]
    )
    write_files(extract, settings.data_dir / "finance")
    load_finance(PERIOD, settings)
    with pytest.raises(TransformError, match="FIN_UNMAPPED_COST_CENTRE"):
        build_finance(PERIOD, settings)


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_postgres_ledger_and_warehouse_give_the_same_position(workspace, tmp_path, monkeypatch):
    """Ledger in PostgreSQL (SQLAlchemy URL) -> PostgreSQL warehouse -> same MHIS position."""
    import psycopg2

    from mhsds_pipeline.finance import mhis
    from mhsds_pipeline.finance.loader import read_marts

    duck_settings, result, _ = workspace
    user = os.environ.get("MHSDS_PG_USER", "postgres")
    password = os.environ.get("MHSDS_PG_PASSWORD", "")
    dbname = f"mhsds_mhis_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user=user, password=password, dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'create database "{dbname}"')
    try:
        url = f"postgresql+psycopg2://{user}{':' + password if password else ''}@127.0.0.1:5432/{dbname}"
        generate(url, end_period=PERIOD, scale=0.05)
        monkeypatch.setenv("MHSDS_FINANCE_SOURCE", url)
        monkeypatch.setenv("MHSDS_PG_DBNAME", dbname)
        # the same published months: the national derived fields are built by dbt on PostgreSQL
        settings = replace(
            _settings(tmp_path), warehouse_target="postgres", output_dir=duck_settings.output_dir
        )
        load_finance(PERIOD, settings)
        build_finance(PERIOD, settings)
        marts = {k: t.to_pylist() for k, t in read_marts(settings).items()}
        position = mhis.mhis_position(
            marts["mhis_spend_monthly"], marts["mhis_outturn"], marts["mhis_allocation"], PERIOD
        )
        assert str(position.current["target_gbp"]) == result["target_gbp"]
        assert str(position.current["forecast_outturn_gbp"]) == result["forecast_outturn_gbp"]
        codes = ltp_metrics.load_metric_codes(REPO / "dbt_project" / "seeds" / "finance")
        pg, duck = ltp_metrics.open_derived(settings), ltp_metrics.open_derived(duck_settings)
        try:
            assert ltp_metrics.raw_values(pg, PERIOD, codes) == ltp_metrics.raw_values(duck, PERIOD, codes)
            assert pg.execute("SELECT count(*) FROM der_activity").fetchone()[0] > 0
        finally:
            pg.close()
            duck.close()
    finally:
        admin.cursor().execute(f'drop database if exists "{dbname}" with (force)')
        admin.close()
