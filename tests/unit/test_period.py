from datetime import date, datetime

import pytest

from mhsds_pipeline.period import PeriodError, ReportingPeriod

pytestmark = pytest.mark.unit


def test_parse_and_bounds():
    p = ReportingPeriod.parse("2024-02")
    assert (p.start, p.end) == (date(2024, 2, 1), date(2024, 2, 29))  # leap year
    assert p.end_exclusive_ts == datetime(2024, 3, 1)
    assert str(p) == "2024-02"


@pytest.mark.parametrize(
    "text,uniq", [("2024-04", 1489), ("2021-10", 1459), ("2018-04", 1417), ("2022-07", 1468)]
)
def test_uniq_month_id_matches_nhs_england_numbering(text, uniq):
    # mhsds.md section 1: 1417 = Apr 2018, 1459 = Oct 2021, 1489 = Apr 2024 (first v6 month), 1468 = Jul 2022
    assert ReportingPeriod.parse(text).uniq_month_id == uniq


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-10", "2026/10", "", "2015-12"])
def test_rejects_bad_periods_with_a_clear_message(bad):
    with pytest.raises(PeriodError, match="period"):
        ReportingPeriod.parse(bad)


def test_latest_complete_month_and_resolve():
    assert str(ReportingPeriod.latest_complete(date(2026, 11, 23))) == "2026-10"
    assert str(ReportingPeriod.latest_complete(date(2027, 1, 1))) == "2026-12"
    assert str(ReportingPeriod.resolve("", date(2026, 11, 1))) == "2026-10"
    assert str(ReportingPeriod.resolve("2026-05", date(2026, 11, 1))) == "2026-05"


def test_shift_across_year_boundary():
    assert str(ReportingPeriod.parse("2026-01").shift(-1)) == "2025-12"
    assert str(ReportingPeriod.parse("2026-12").shift(1)) == "2027-01"
