"""MHSDS reporting periods.

An MHSDS reporting period is a calendar month. NHS England numbers months with
``UniqMonthID`` (0001 = April 1900, so 1489 = April 2024, the first v6 month); we carry it so
outputs can be joined to national extracts.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A reporting period string that is not a valid ``YYYY-MM`` month."""


@dataclass(frozen=True, order=True)
class ReportingPeriod:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> ReportingPeriod:
        m = _PERIOD_RE.match(text.strip())
        if not m:
            raise PeriodError(f"Reporting period {text!r} is not of the form YYYY-MM (e.g. 2026-10).")
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"Reporting period {text!r} has month {month}; months run 01-12.")
        if year < 2016:
            raise PeriodError(f"Reporting period {text!r} predates MHSDS (January 2016).")
        return cls(year, month)

    @classmethod
    def latest_complete(cls, today: date | None = None) -> ReportingPeriod:
        """The most recent month that has ended: the month MHSDS would submit now."""
        today = today or date.today()
        first = today.replace(day=1)
        prev = first - timedelta(days=1)
        return cls(prev.year, prev.month)

    @classmethod
    def resolve(cls, text: str | None, today: date | None = None) -> ReportingPeriod:
        return cls.parse(text) if text and text.strip() else cls.latest_complete(today)

    def has_ended(self, today: date | None = None) -> bool:
        """True once the month's last day is in the past: only ended months are submitted."""
        return self.end < (today or date.today())

    def require_ended(self, today: date | None = None, allow_open: bool = False) -> ReportingPeriod:
        """The period itself, or :class:`PeriodError` if it has not ended (unless allowed)."""
        if not allow_open and not self.has_ended(today):
            raise PeriodError(
                f"Reporting period {self} has not ended yet (its last day is {self.end.isoformat()}): "
                "MHSDS submits complete months, so nothing was extracted. To rebuild an unfinished "
                "month for inspection, allow an open period (`allow_open_period` in Airflow, "
                "`--allow-open-period` on the CLI); such a month is never packaged or sent to finance."
            )
        return self

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def start_ts(self) -> datetime:
        return datetime(self.year, self.month, 1)

    @property
    def end_exclusive_ts(self) -> datetime:
        """Midnight after the last day: timestamps in the period are ``start_ts <= ts < this``."""
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time())

    @property
    def uniq_month_id(self) -> int:
        return (self.year - 1900) * 12 + self.month - 3

    def shift(self, months: int) -> ReportingPeriod:
        idx = self.year * 12 + (self.month - 1) + months
        return ReportingPeriod(idx // 12, idx % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
