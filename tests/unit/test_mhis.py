"""MHIS arithmetic on hand-checked cases, the rule variants by year, exclusions, the seeds'
consistency with the synthetic EPR, the synthetic finance generator and the DAG wiring."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from mhsds_pipeline.finance import mhis, periods_from_asset_events
from mhsds_pipeline.finance.mhis import (
    MhisError,
    RuleVariant,
    forecast_outturn,
    meets_standard,
    mhis_position,
    mhis_target,
    rule_variants_from_csv,
)
from mhsds_pipeline.finance.schema import financial_year, fy_months

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "dbt_project" / "seeds" / "finance"
D = Decimal

RULE_2023 = RuleVariant("2023/24", "MHIS-2023-24", nhse_target_precedence=True)
RULE_2022 = RuleVariant("2022/23", "MHIS-2022-23", comparison="gt")
RULE_2019 = RuleVariant(
    "2019/20", "MHIS-2019-20", additional_uplift_pct=D("0.7"), add_prior_year_shortfall=True
)


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------


def test_target_is_baseline_grown_by_allocation_growth():
    t = mhis_target("1000000.00", "3.5", RULE_2023)
    assert t.target_gbp == D("1035000.00") and t.target_basis == "calculated"
    assert mhis_target("333.33", "3.5", RULE_2023).target_gbp == D("345.00")  # 344.99655 -> half up


def test_2019_20_adds_0_7_points_and_the_prior_year_shortfall():
    t = mhis_target("10000000.00", "2.0", RULE_2019, prior_year_shortfall="50000.00")
    # 10,000,000 x (1 + 2.0% + 0.7%) + 50,000
    assert t.target_gbp == D("10320000.00")
    assert t.prior_year_shortfall_gbp == D("50000.00")


def test_shortfall_is_ignored_when_the_year_rule_does_not_add_it():
    assert mhis_target("10000000.00", "2.0", RULE_2023, prior_year_shortfall="50000").target_gbp == D(
        "10200000.00"
    )


def test_2022_23_needs_spend_above_the_target_2023_24_at_least_equal():
    target = mhis_target("1000000.00", "3.5", RULE_2023).target_gbp
    assert meets_standard(target, target, RULE_2023.comparison)
    assert not meets_standard(target, target, RULE_2022.comparison)
    assert meets_standard(target + D("0.01"), target, RULE_2022.comparison)
    assert not meets_standard(target - D("0.01"), target, RULE_2023.comparison)


def test_nhse_target_takes_precedence_only_where_the_rule_says():
    t = mhis_target("1000000.00", "3.5", RULE_2023, nhse_target="1040000.00")
    assert t.target_gbp == D("1040000.00") and t.target_basis == "nhse"
    assert t.calculated_target_gbp == D("1035000.00")
    rule_2021 = RuleVariant("2021/22", "MHIS-2021-22")
    assert mhis_target("1000000.00", "3.5", rule_2021, nhse_target="1040000.00").target_basis == "calculated"


def test_forecast_is_the_year_to_date_run_rate():
    assert forecast_outturn("700000.00", 7) == D("1200000.00")
    assert forecast_outturn("100.00", 3) == D("400.00")
    assert forecast_outturn("1234.56", 12) == D("1234.56")
    with pytest.raises(MhisError):
        forecast_outturn("1", 0)


def test_rule_variants_seed():
    rules = rule_variants_from_csv(SEEDS / "ref_mhis_rule_variant.csv")
    assert [f"{y}/{(y + 1) % 100:02d}" for y in range(2018, 2027)] == sorted(rules)
    assert rules["2019/20"].additional_uplift_pct == D("0.7") and rules["2019/20"].add_prior_year_shortfall
    assert rules["2022/23"].comparison == "gt"
    assert all(rules[y].comparison == "gte" for y in rules if y != "2022/23")
    assert all(rules[y].nhse_target_precedence for y in ("2023/24", "2024/25", "2025/26", "2026/27"))
    assert not any(rules[y].add_prior_year_shortfall for y in rules if y != "2019/20")
    with pytest.raises(MhisError):
        RuleVariant("2030/31", "X", comparison="ge")


# ---------------------------------------------------------------------------------------------
# The position from mart rows (exclusions, forecast, prior year, missing months)
# ---------------------------------------------------------------------------------------------


def _spend(month: str, category: str, amount: str, in_scope: bool = True, reason: str | None = None) -> dict:
    return {
        "month_start": date.fromisoformat(month + "-01"),
        "mhis_category": category,
        "in_mhis_scope": in_scope,
        "exclusion_reason": reason,
        "amount_gbp": D(amount),
    }


def _outturn(fy: str, category: str, amount: str, in_scope: bool = True, reason: str | None = None) -> dict:
    return {
        "financial_year": fy,
        "mhis_category": category,
        "in_mhis_scope": in_scope,
        "exclusion_reason": reason,
        "outturn_gbp": D(amount),
    }


def _allocation(fy: str, growth: str, rule: RuleVariant, nhse: str | None = None) -> dict:
    return {
        "financial_year": fy,
        "base_growth_pct": D(growth),
        "nhse_target_gbp": D(nhse) if nhse else None,
        "rule_version": rule.rule_version,
        "additional_uplift_pct": rule.additional_uplift_pct,
        "add_prior_year_shortfall": rule.add_prior_year_shortfall,
        "comparison": rule.comparison,
        "nhse_target_precedence": rule.nhse_target_precedence,
    }


LD = "Learning disability: outside MHIS (categories 18a-18c)"
SDF = "Funded by service development funding (SDF/transformation): excluded"
RULE_2026 = RuleVariant("2026/27", "MHIS-2026-27", nhse_target_precedence=True)
RULE_2025 = RuleVariant("2025/26", "MHIS-2025-26", nhse_target_precedence=True)


def _case():
    outturn = [
        _outturn("2024/25", "CYP_MH", "400000.00"),
        _outturn("2024/25", "ADULT_COMMUNITY", "600000.00"),
        _outturn("2025/26", "CYP_MH", "420000.00"),
        _outturn("2025/26", "ADULT_COMMUNITY", "600000.00"),
        _outturn("2025/26", "LEARNING_DISABILITY", "99999.00", False, LD),
        _outturn("2025/26", "CYP_MH", "5000.00", False, SDF),
    ]
    spend = []
    for month in ("2026-04", "2026-05", "2026-06"):
        spend += [
            _spend(month, "CYP_MH", "36000.00"),
            _spend(month, "ADULT_COMMUNITY", "52000.00"),
            _spend(month, "LEARNING_DISABILITY", "9000.00", False, LD),
            _spend(month, "CYP_MH", "1000.00", False, SDF),
        ]
    spend.append(_spend("2026-07", "CYP_MH", "99999.00"))  # after the period: ignored
    allocations = [_allocation("2025/26", "2.0", RULE_2025), _allocation("2026/27", "3.0", RULE_2026)]
    return spend, outturn, allocations


def test_position_hand_checked():
    spend, outturn, allocations = _case()
    result = mhis_position(spend, outturn, allocations, "2026-06")
    prior, cur = result.position
    # 2025/26 final: baseline 1,000,000 x 1.02 = 1,020,000; outturn 1,020,000 (LD and SDF excluded): met (>=)
    assert prior["financial_year"] == "2025/26" and prior["target_gbp"] == D("1020000.00")
    assert prior["forecast_outturn_gbp"] == D("1020000.00") and prior["meets_standard"] is True
    assert prior["mhis_growth_pct"] == 2.0
    # 2026/27: baseline 1,020,000 x 1.03 = 1,050,600; YTD 3 x 88,000 = 264,000; forecast 1,056,000
    assert cur["baseline_outturn_gbp"] == D("1020000.00")
    assert cur["target_gbp"] == D("1050600.00")
    assert cur["ytd_mhis_spend_gbp"] == D("264000.00")
    assert cur["ytd_target_gbp"] == D("262650.00")
    assert cur["forecast_outturn_gbp"] == D("1056000.00")
    assert cur["forecast_variance_gbp"] == D("5400.00")
    assert cur["meets_standard"] is True and cur["months_with_ledger_data"] == 3
    # exclusions reported, never dropped
    excl = {(e["exclusion_reason"], e["mhis_category"]): e for e in result.exclusions}
    assert excl[(LD, "LEARNING_DISABILITY")]["ytd_excluded_gbp"] == D("27000.00")
    assert excl[(LD, "LEARNING_DISABILITY")]["prior_year_excluded_gbp"] == D("99999.00")
    assert excl[(SDF, "CYP_MH")]["ytd_excluded_gbp"] == D("3000.00")
    # category targets: the target apportioned by baseline share; they add up to the target
    cats = {c["mhis_category"]: c for c in result.categories}
    assert cats["CYP_MH"]["target_gbp"] == D("432600.00")  # 1,050,600 x 420/1020
    assert cats["ADULT_COMMUNITY"]["target_gbp"] == D("618000.00")
    assert cats["CYP_MH"]["ytd_excluded_gbp"] == D("3000.00")
    assert (
        cats["LEARNING_DISABILITY"]["in_mhis_scope"] is False
        and cats["LEARNING_DISABILITY"]["target_gbp"] is None
    )
    assert sum(c["target_gbp"] for c in cats.values() if c["target_gbp"] is not None) == cur["target_gbp"]


def test_a_strict_year_fails_on_equality_and_a_missing_month_is_reported():
    spend, outturn, _ = _case()
    spend = [s for s in spend if s["month_start"].month != 5]  # no May postings
    rule = RuleVariant("2026/27", "STRICT", comparison="gt")
    allocations = [_allocation("2025/26", "2.0", RULE_2025), _allocation("2026/27", "3.0", rule)]
    result = mhis_position(spend, outturn, allocations, "2026-06")
    cur = result.current
    assert cur["months_with_ledger_data"] == 2 and cur["ledger_months_missing"] == "2026-05"
    assert result.ledger_months_missing == ["2026-05"] and any("2026-05" in n for n in result.notes)
    assert cur["forecast_outturn_gbp"] == D("1056000.00")  # run rate over the months with data
    exact = [_spend("2026-04", "CYP_MH", "87550.00")]  # 87,550 x 12 = 1,050,600 = target
    assert mhis_position(exact, outturn, allocations, "2026-04").current["meets_standard"] is False
    allocations[1] = _allocation("2026/27", "3.0", RULE_2026)
    assert mhis_position(exact, outturn, allocations, "2026-04").current["meets_standard"] is True


def test_nhse_target_and_shortfall_in_the_position():
    spend, outturn, _ = _case()
    allocations = [
        _allocation("2025/26", "5.0", RULE_2025),  # target 1,050,000 vs outturn 1,020,000: short 30,000
        _allocation(
            "2026/27", "3.0", RuleVariant("2026/27", "WITH-SHORTFALL", add_prior_year_shortfall=True)
        ),
    ]
    result = mhis_position(spend, outturn, allocations, "2026-06")
    assert result.position[0]["meets_standard"] is False
    assert result.current["prior_year_shortfall_gbp"] == D("30000.00")
    assert result.current["target_gbp"] == D("1080600.00")  # 1,050,600 + 30,000
    allocations[1] = _allocation("2026/27", "3.0", RULE_2026, nhse="1060000.00")
    cur = mhis_position(spend, outturn, allocations, "2026-06").current
    assert cur["target_gbp"] == D("1060000.00") and cur["target_basis"] == "nhse"


def test_actionable_errors():
    spend, outturn, allocations = _case()
    no_rule = [dict(a, rule_version=None) if a["financial_year"] == "2026/27" else a for a in allocations]
    with pytest.raises(MhisError, match="ref_mhis_rule_variant.csv"):
        mhis_position(spend, outturn, no_rule, "2026-06")
    with pytest.raises(MhisError, match="no outturn for 2025/26"):
        mhis_position(spend, [o for o in outturn if o["financial_year"] != "2025/26"], allocations, "2026-06")
    with pytest.raises(MhisError, match="no programme allocation for 2026/27"):
        mhis_position(spend, outturn, allocations[:1], "2026-06")
    result = mhis_position(
        spend, [o for o in outturn if o["financial_year"] == "2025/26"], allocations, "2026-06"
    )
    assert len(result.position) == 1 and any("no final result for 2025/26" in n for n in result.notes)


def test_financial_year_helpers():
    assert financial_year("2026-03") == "2025/26" and financial_year("2026-04") == "2026/27"
    assert financial_year("2099-12") == "2099/00"
    assert fy_months("2026/27")[0] == "2026-04" and fy_months("2026/27")[-1] == "2027-03"


# ---------------------------------------------------------------------------------------------
# Seeds: scope, exclusions and consistency with the synthetic EPR's teams
# ---------------------------------------------------------------------------------------------


def _seed(name: str) -> list[dict]:
    return mhis.read_seed(SEEDS / f"{name}.csv")


def test_every_exclusion_of_the_standard_is_out_of_scope_with_a_reason():
    cats = {c["mhis_category"]: c for c in _seed("ref_mhis_category")}
    for code in (
        "LEARNING_DISABILITY",
        "NEURODEVELOPMENTAL",
        "DEMENTIA",
        "SPECIALISED_COMMISSIONING",
        "UNMAPPED",
    ):
        assert cats[code]["in_mhis_scope"] == "false" and cats[code]["exclusion_reason"]
    assert all(c["exclusion_reason"] == "" for c in cats.values() if c["in_mhis_scope"] == "true")
    funds = {f["funding_source"]: f for f in _seed("ref_mhis_funding_source")}
    assert funds["BASELINE"]["in_mhis_scope"] == "true"
    for code in ("SDF", "SR", "COVID", "IN_YEAR"):
        assert funds[code]["in_mhis_scope"] == "false" and funds[code]["exclusion_reason"]


def test_cost_centre_and_team_type_maps_agree_for_every_epr_team():
    """Spend (cost centre map) and activity (team type map) must land in the same category."""
    from mhsds_pipeline.finance.generator import cost_centres
    from mhsds_pipeline.synthetic import codes

    cats = {c["mhis_category"] for c in _seed("ref_mhis_category")}
    cc_map = {r["cost_centre"]: r["mhis_category"] for r in _seed("ref_mhis_cost_centre_map")}
    tt = _seed("ref_mhis_team_type_map")
    exact = {(r["serv_team_type_mh"], r["serv_team_int_age_group"]): r["mhis_category"] for r in tt}
    ages = {
        r["local_age_group"]: r["code"]
        for r in csv.DictReader(open(REPO / "dbt_project/seeds/reference/ref_team_age_group_map.csv"))
    }
    assert set(cc_map.values()) <= cats and {r["mhis_category"] for r in tt} <= cats
    for cc in cost_centres():
        assert cc.cost_centre in cc_map, f"{cc.cost_centre} missing from ref_mhis_cost_centre_map"
        if cc.team_local_id is None:
            continue
        svc = codes.SERVICES[next(t.service for t in codes.TEAMS if t.team_id == cc.team_local_id)]
        age = ages[svc.age_group]
        activity_cat = exact.get((svc.team_type, age)) or exact.get((svc.team_type, "*"))
        assert activity_cat == cc_map[cc.cost_centre], cc


def test_trajectory_and_metric_code_seeds_are_well_formed():
    trajectories = _seed("ref_ltp_trajectory")
    assert {t["direction"] for t in trajectories} <= {"at_least", "at_most"}
    readme = {
        ("MHS91", "2023/24"): "1301",
        ("MHS95", "2021/22"): "4937",
        ("MHS108", "2022/23"): "3464",
        ("MHS116", "2023/24"): "742",
        ("MHS156b", "2022/23"): "32",
    }
    got = {(t["metric_id"], t["financial_year"]): t["trajectory_value"] for t in trajectories}
    assert all(got[k] == v for k, v in readme.items())
    code_lists = {(c["metric_id"], c["code_list"]) for c in _seed("ref_ltp_metric_code")}
    # Der_DirectContact (MHS95, MHS108, MHS116, 4-week waits) and MHS91's own face-to-face/video list
    for metric in ("Der_DirectContact", "MHS91"):
        assert (metric, "attend_status") in code_lists and (metric, "cons_mechanism") in code_lists
    assert ("MRS01", "serv_team_type") in code_lists and ("MHS108", "serv_team_type") in code_lists


# ---------------------------------------------------------------------------------------------
# Synthetic finance extract
# ---------------------------------------------------------------------------------------------


def test_generator_is_deterministic_and_month_figures_do_not_depend_on_the_end_period():
    from mhsds_pipeline.finance.generator import generate_finance

    a = generate_finance(end_period="2026-10", scale=0.05, seed=7)
    b = generate_finance(end_period="2026-10", scale=0.05, seed=7)
    c = generate_finance(end_period="2026-12", scale=0.05, seed=7)
    assert all(a.tables[k].equals(b.tables[k]) for k in a.tables)
    key = ("period", "cost_centre", "subjective_code", "funding_source")
    la = {tuple(r[k] for k in key): r["amount_gbp"] for r in a.tables["ledger_lines"].to_pylist()}
    lc = {tuple(r[k] for k in key): r["amount_gbp"] for r in c.tables["ledger_lines"].to_pylist()}
    assert la and all(lc[k] == v for k, v in la.items())
    assert a.tables["outturn"].equals(c.tables["outturn"])
    assert {r["period"] for r in a.tables["ledger_lines"].to_pylist()} == set(fy_months("2025/26")) | {
        m for m in fy_months("2026/27") if m <= "2026-10"
    }
    assert (
        generate_finance(end_period="2026-10", scale=0.05, seed=8).tables["ledger_lines"]
        != a.tables["ledger_lines"]
    )


def test_generator_covers_the_epr_teams_and_every_exclusion():
    from mhsds_pipeline.finance.generator import generate_finance
    from mhsds_pipeline.synthetic import codes

    ex = generate_finance(end_period="2026-10", scale=0.1)
    cc = ex.tables["cost_centres"].to_pylist()
    assert {r["team_local_id"] for r in cc if r["team_local_id"]} == {t.team_id for t in codes.TEAMS}
    team_lines = {t.team_id: codes.SERVICES[t.service].service_line for t in codes.TEAMS}
    assert all(team_lines[r["team_local_id"]] == r["service_line"] for r in cc if r["team_local_id"])
    funds = {r["funding_source"] for r in ex.tables["ledger_lines"].to_pylist()}
    assert funds == {"BASELINE", "SDF", "IN_YEAR", "COVID"}
    assert {r["financial_year"] for r in ex.tables["outturn"].to_pylist()} == {"2024/25", "2025/26"}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_finance_files_round_trip(tmp_path, fmt):
    from mhsds_pipeline.finance.generator import generate_finance, write_files
    from mhsds_pipeline.finance.loader import read_files

    ex = generate_finance(end_period="2026-06", scale=0.02)
    write_files(ex, tmp_path, fmt)
    back = read_files(tmp_path)
    assert all(back[k].equals(ex.tables[k]) for k in ex.tables)


def test_finance_database_round_trip(tmp_path):
    from mhsds_pipeline.finance.config import FinanceSettings
    from mhsds_pipeline.finance.generator import generate, generate_finance
    from mhsds_pipeline.finance.loader import FinanceSourceError, read_source
    from mhsds_pipeline.finance.schema import MONEY

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    summary = generate(url, end_period="2026-06", scale=0.02)
    fin = FinanceSettings(url, None, 1.0, "test", 24, SEEDS)
    tables = read_source(fin)
    assert {k: t.num_rows for k, t in tables.items()} == summary["written"]
    assert tables["ledger_lines"].schema.field("amount_gbp").type == MONEY
    assert tables["ledger_lines"].equals(
        generate_finance(end_period="2026-06", scale=0.02).tables["ledger_lines"]
    )
    with pytest.raises(FinanceSourceError, match="cost_centres not found in .*MHSDS_FINANCE_SOURCE"):
        read_source(FinanceSettings(str(tmp_path / "nowhere"), None, 1.0, "test", 24, SEEDS))


# ---------------------------------------------------------------------------------------------
# Period from the asset event; DAG wiring
# ---------------------------------------------------------------------------------------------


def test_period_comes_from_the_triggering_asset_events_then_the_param():
    events = {
        "mhsds_published": [
            SimpleNamespace(extra={"period": "2026-10"}),
            SimpleNamespace(extra={"period": "2026-09"}),
        ]
    }
    assert periods_from_asset_events(events, "2025-01") == ["2026-09", "2026-10"]
    assert periods_from_asset_events({"x": [{"extra": {"period": "2026-10"}}]}) == ["2026-10"]
    assert periods_from_asset_events({}, "2026-07") == ["2026-07"]
    assert periods_from_asset_events(None, None, SimpleNamespace(date=lambda: date(2026, 11, 5))) == [
        "2026-10"
    ]


def test_period_from_airflow_triggering_asset_events_accessor():
    """The real Airflow 3 context object, as the task receives it."""
    from datetime import UTC, datetime

    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from mhsds_pipeline.assets import MHSDS_PUBLISHED

    event = AssetEventDagRunReferenceResult(
        asset={"name": MHSDS_PUBLISHED.name, "uri": MHSDS_PUBLISHED.uri, "extra": {}},
        extra={"period": "2026-10"},
        source_task_id="publish",
        source_dag_id="mhsds_monthly",
        source_run_id="scheduled__x",
        source_map_index=-1,
        source_aliases=[],
        timestamp=datetime(2026, 11, 5, 6, 30, tzinfo=UTC),
    )
    accessor = TriggeringAssetEventsAccessor.build([event])
    assert periods_from_asset_events(accessor, "2025-01") == ["2026-10"]
    assert periods_from_asset_events(TriggeringAssetEventsAccessor.build([]), "2026-07") == ["2026-07"]


def test_cli_parser_registers_mhis():
    import argparse

    from mhsds_pipeline.finance import add_parser, cmd_mhis

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["mhis", "--period", "2026-10"])
    assert ns.period == "2026-10" and ns.func is cmd_mhis


def test_mhis_dag_is_asset_scheduled_and_thin():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "mhsds_mhis.py"))
    assert bag.import_errors == {}
    dag = bag.dags["mhsds_mhis"]
    assert "mhsds_published" in repr(dag.timetable.asset_condition)
    assert dag.get_task("build_finance").downstream_task_ids == {"publish_mhis"}
    assert "build_finance" in dag.get_task("load_finance").downstream_task_ids
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "print(','.join(m for m in ('pandas','dbt','duckdb','pyarrow','openpyxl') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "mhsds_mhis.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout


def test_cmd_mhis_refuses_an_unpublished_period_before_any_work(tmp_settings, monkeypatch, capsys):
    import mhsds_pipeline.finance as finance

    monkeypatch.setattr(finance, "load_settings", lambda: tmp_settings)
    assert finance.cmd_mhis(SimpleNamespace(period="2026-10", run_id=None)) == 1
    assert "not published" in capsys.readouterr().err
    assert not (tmp_settings.data_dir / "finance").exists()  # nothing generated or loaded
