"""Read the published MHSDS months (``output/<YYYY-MM>/mhsds/*.parquet``) for rolling metrics.

Each month's current version is resolved once (the symlink may be switched by a re-publication
while we read) and recorded, so an MHIS output says exactly which MHSDS versions it used.
Months that are not published are reported as missing, never invented: the metrics are computed
on what is there and flagged as incomplete windows.

The months are combined in an in-memory DuckDB database with ``read_parquet``. A record that
appears in several months (an open referral, a person, a team, a spell) is taken from the latest
month; a care contact is kept once per CareContactID. Only the columns the metrics need are
read, and nothing patient-level leaves this module: callers get aggregates.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.period import ReportingPeriod

#: IDB table -> (columns read, key for "latest month wins", tie-break order)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "MHS001MPI": (
        ("LocalPatientID", "PersonBirthDate", "GenderIDCode", "GenderSameAtBirth", "Gender"),
        ("LocalPatientID",),
        "PersonBirthDate NULLS LAST",
    ),
    "MHS101Referral": (
        (
            "ServiceRequestID",
            "LocalPatientID",
            "CareProfTeamLocalID",
            "ReferralRequestReceivedDate",
            "ServDischDate",
        ),
        ("ServiceRequestID",),
        "LocalPatientID",
    ),
    "MHS201CareContact": (
        (
            "CareContactID",
            "ServiceRequestID",
            "CareContDate",
            "CareContTime",
            "OtherCareProfTeamLocalID",
            "ConsMechanismMH",
            "AttendStatus",
        ),
        ("CareContactID",),
        "ServiceRequestID, CareContDate, CareContTime",
    ),
    "MHS202CareActivity": (("CareActID", "CareContactID", "Procedure"), ("CareActID",), "CareContactID"),
    "MHS501HospProvSpell": (
        ("HospProvSpellID", "ServiceRequestID", "StartDateHospProvSpell", "DischDateHospProvSpell"),
        ("HospProvSpellID",),
        "ServiceRequestID",
    ),
    "MHS502WardStay": (
        ("WardStayID", "HospProvSpellID", "StartDateWardStay", "EndDateWardStay", "MHAdmittedPatientClass"),
        ("WardStayID",),
        "HospProvSpellID",
    ),
    "MHS902ServiceTeamDetails": (
        ("CareProfTeamLocalID", "ServTeamTypeMH", "ServTeamIntAgeGroup"),
        ("CareProfTeamLocalID",),
        "ServTeamTypeMH",
    ),
}


class PublishedDataError(RuntimeError):
    """No usable published MHSDS month for the requested window."""


@dataclass(frozen=True)
class PublishedMonth:
    period: str
    version: str  # name of the immutable version directory
    path: Path  # resolved version directory
    run_id: str | None
    code_version: str | None


@dataclass
class PublishedHistory:
    period: str
    requested: list[str]  # months asked for, oldest first
    months: list[PublishedMonth] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # not published, or lacking a table

    @property
    def available(self) -> list[str]:
        return [m.period for m in self.months]

    def missing_in(self, start: str, end: str) -> list[str]:
        return [m for m in self.missing if start <= m <= end]

    def available_in(self, start: str, end: str) -> list[str]:
        return [m for m in self.available if start <= m <= end]


def months_back(period: str, n: int) -> list[str]:
    """The n months ending at period, oldest first."""
    rp = ReportingPeriod.parse(period)
    return [str(rp.shift(-k)) for k in range(n - 1, -1, -1)]


def find_published(output_dir: Path, period: str, n_months: int) -> PublishedHistory:
    """The published versions of the n months to ``period`` (resolved), and the missing ones."""
    history = PublishedHistory(period=period, requested=months_back(period, n_months))
    for month in history.requested:
        link = Path(output_dir) / month
        if not link.exists():
            history.missing.append(month)
            continue
        real = Path(os.path.realpath(link))
        tables = real / "mhsds"
        if not all((tables / f"{t}.parquet").exists() for t in TABLES):
            history.missing.append(month)
            continue
        manifest = {}
        if (real / "manifest.json").exists():
            manifest = json.loads((real / "manifest.json").read_text())
        history.months.append(
            PublishedMonth(month, real.name, real, manifest.get("run_id"), manifest.get("code_version"))
        )
    return history


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_history(history: PublishedHistory):
    """An in-memory DuckDB connection holding the de-duplicated MHSDS tables of the history.

    Views for the metrics: ``mhsds_person``, ``mhsds_referral``, ``mhsds_contact`` (with the
    delivering team, falling back to the referral's team, and the person), ``mhsds_care_activity``,
    ``mhsds_spell``, ``mhsds_ward_stay``, ``mhsds_team``; macros ``age_on(dob, d)`` (completed
    years: a person born 29 February turns a year older on 1 March in other years),
    ``fy_start(d)`` and ``fy_end(d)``.
    """
    import duckdb

    if not history.months:
        raise PublishedDataError(
            f"No published MHSDS month in {history.requested[0]}..{history.requested[-1]} under the "
            "output directory; publish the months first (`mhsds run --period YYYY-MM`)."
        )
    con = duckdb.connect()
    for table, (columns, key, tiebreak) in TABLES.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        union = " UNION ALL BY NAME ".join(
            f"SELECT {cols}, {_literal(m.period)} AS _period "
            f"FROM read_parquet({_literal(str(m.path / 'mhsds' / (table + '.parquet')))})"
            for m in history.months
        )
        part = ", ".join(f'"{k}"' for k in key)
        con.execute(
            f'CREATE TABLE "{table}" AS SELECT * EXCLUDE (_rn) FROM ('
            f"SELECT *, row_number() OVER (PARTITION BY {part} ORDER BY _period DESC, {tiebreak}) AS _rn "
            f"FROM ({union})) WHERE _rn = 1"
        )
    con.execute(
        """
        CREATE MACRO age_on(dob, d) AS
            date_diff('year', dob, d)
            - CASE WHEN month(d) * 100 + day(d) < month(dob) * 100 + day(dob) THEN 1 ELSE 0 END;
        CREATE MACRO fy_start(d) AS make_date(year(d) - CASE WHEN month(d) < 4 THEN 1 ELSE 0 END, 4, 1);
        CREATE MACRO fy_end(d) AS make_date(year(d) + CASE WHEN month(d) < 4 THEN 0 ELSE 1 END, 3, 31);
        CREATE VIEW mhsds_person AS SELECT * FROM "MHS001MPI";
        CREATE VIEW mhsds_referral AS SELECT * FROM "MHS101Referral";
        CREATE VIEW mhsds_team AS SELECT * FROM "MHS902ServiceTeamDetails";
        CREATE VIEW mhsds_care_activity AS SELECT * FROM "MHS202CareActivity";
        CREATE VIEW mhsds_spell AS SELECT * FROM "MHS501HospProvSpell";
        CREATE VIEW mhsds_ward_stay AS SELECT * FROM "MHS502WardStay";
        CREATE VIEW mhsds_contact AS
            SELECT c.*, r.LocalPatientID,
                   coalesce(c.OtherCareProfTeamLocalID, r.CareProfTeamLocalID) AS team_id
            FROM "MHS201CareContact" c
            JOIN "MHS101Referral" r ON r.ServiceRequestID = c.ServiceRequestID;
        """
    )
    return con
