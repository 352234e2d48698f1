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
        (
            "LocalPatientID",
            "NHSNumber",
            "PersonBirthDate",
            "Postcode",
            "GenderIDCode",
            "GenderSameAtBirth",
            "Gender",
        ),
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
    "MHS102OtherServiceType": (
        ("ServiceRequestID", "OtherCareProfTeamLocalID"),
        ("ServiceRequestID", "OtherCareProfTeamLocalID"),
        "ServiceRequestID",
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
    "MHS204IndirectActivity": (
        (
            "ServiceRequestID",
            "OtherCareProfTeamLocalID",
            "IndirectActDate",
            "IndirectActTime",
            "IndActProcedure",
        ),
        ("ServiceRequestID", "IndirectActDate", "IndirectActTime", "OtherCareProfTeamLocalID"),
        "ServiceRequestID",
    ),
    "MHS606CodedScoreAssessmentRefer": (
        ("ServiceRequestID", "CodedAssToolType", "AssToolCompTimestamp"),
        ("ServiceRequestID", "CodedAssToolType", "AssToolCompTimestamp"),
        "ServiceRequestID",
    ),
    "MHS607CodedScoreAssessmentAct": (
        ("CareActID", "CodedAssToolType"),
        ("CareActID", "CodedAssToolType"),
        "CareActID",
    ),
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


#: Tables a month may lack because it was published before the pipeline built them (read as empty,
#: and named in the metrics' caveats).
OPTIONAL_TABLES = frozenset({"MHS204IndirectActivity"})

#: Warehouse schema the published months are loaded into for the national derived fields (dbt).
PUBLISHED_SCHEMA = "mhsds_published"


class PublishedDataError(RuntimeError):
    """No usable published MHSDS month for the requested window."""


@dataclass(frozen=True)
class PublishedMonth:
    period: str
    version: str  # name of the immutable version directory
    path: Path  # resolved version directory
    run_id: str | None
    code_version: str | None
    org_id_provider: str | None = None
    #: What the month's MHSDS tables are: the digest of their sha256s in the manifest (an MHIS
    #: re-publication makes a new version with the same tables), else the version name.
    fingerprint: str = ""

    def table_path(self, table: str) -> Path | None:
        """The month's Parquet of ``table``; None for an optional table it was published without."""
        path = self.path / "mhsds" / f"{table}.parquet"
        return path if path.exists() else None


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

    def without_table(self, table: str) -> list[str]:
        """Published months whose version lacks an optional table (published before it was built)."""
        return [m.period for m in self.months if m.table_path(table) is None]

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
        if not all((tables / f"{t}.parquet").exists() for t in TABLES if t not in OPTIONAL_TABLES):
            history.missing.append(month)
            continue
        manifest = {}
        if (real / "manifest.json").exists():
            manifest = json.loads((real / "manifest.json").read_text())
        history.months.append(
            PublishedMonth(
                month,
                real.name,
                real,
                manifest.get("run_id"),
                manifest.get("code_version"),
                manifest.get("org_id_provider"),
                _fingerprint(manifest, real.name),
            )
        )
    return history


def _fingerprint(manifest: dict, version: str) -> str:
    import hashlib

    tables = {t: info.get("sha256") for t, info in (manifest.get("tables") or {}).items()}
    if not tables:
        return version
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


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
        parts = [
            f"SELECT {cols}, {_literal(m.period)} AS _period FROM read_parquet({_literal(str(path))})"
            for m in history.months
            if (path := m.table_path(table)) is not None
        ]
        if not parts:  # an optional table no month of the history has: empty, typed as published
            con.register("_empty", _empty_table(table))
            parts = [f"SELECT {cols}, NULL::VARCHAR AS _period FROM _empty"]
        union = " UNION ALL BY NAME ".join(parts)
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


def arrow_type(column: str):
    """The published type of a column read here (as the contracts type them)."""
    import pyarrow as pa

    if column.endswith("Timestamp"):
        return pa.timestamp("us")
    if column.endswith("Time"):
        return pa.time64("us")
    if "Date" in column:
        return pa.date32()
    return pa.string()


def _empty_table(table: str):
    import pyarrow as pa

    columns = TABLES[table][0]
    return pa.table({c: pa.array([], type=arrow_type(c)) for c in columns})


def published_tables(history: PublishedHistory, default_org: str) -> dict:
    """The history's months as Arrow tables for the warehouse: ``months`` (UniqMonthID, reporting
    period dates, provider, version) and one table per IDB table holding every month's rows with
    the ``UniqMonthID`` of the month they were submitted in (the national tables' layout). With no
    month published the tables are empty (the MHIS computation then says what to publish)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rps = [ReportingPeriod.parse(m.period) for m in history.months]
    out = {
        "months": pa.table(
            {
                "UniqMonthID": pa.array([rp.uniq_month_id for rp in rps], pa.int64()),
                "ReportingPeriod": pa.array([m.period for m in history.months], pa.string()),
                "ReportingPeriodStartDate": pa.array([rp.start for rp in rps], pa.date32()),
                "ReportingPeriodEndDate": pa.array([rp.end for rp in rps], pa.date32()),
                "OrgIDProv": pa.array(
                    [m.org_id_provider or default_org for m in history.months], pa.string()
                ),
                "Version": pa.array([m.version for m in history.months], pa.string()),
                "Fingerprint": pa.array([m.fingerprint or m.version for m in history.months], pa.string()),
            }
        )
    }
    for table, (columns, _, _) in TABLES.items():
        parts = []
        for m, rp in zip(history.months, rps, strict=True):
            path = m.table_path(table)
            t = pq.read_table(path, columns=list(columns)) if path else _empty_table(table)
            t = t.select(list(columns)).cast(_empty_table(table).schema)
            parts.append(
                t.append_column("UniqMonthID", pa.array([rp.uniq_month_id] * t.num_rows, pa.int64()))
            )
        out[table] = (
            pa.concat_tables(parts)
            if parts
            else _empty_table(table).append_column("UniqMonthID", pa.array([], pa.int64()))
        )
    return out


def load_published(settings, history: PublishedHistory) -> dict[str, int]:
    """Replace schema ``mhsds_published`` in the warehouse with the history's months (row counts)."""
    from mhsds_pipeline.finance.loader import load_schema

    return load_schema(settings, PUBLISHED_SCHEMA, published_tables(history, settings.org_id_provider))


def stale_months(settings, history: PublishedHistory) -> list[str]:
    """Months of ``history`` the warehouse's ``mhsds_published`` does not hold as published now:
    not loaded (an earlier period of a multi-period MHIS run reaches further back than the latest
    period's load), or re-published since (its tables' fingerprint changed). Later months loaded
    for another period do not matter: every measure selects its months by UniqMonthID."""
    from mhsds_pipeline.warehouse import read_mart

    if settings.warehouse_target == "duckdb" and not settings.warehouse_path.exists():
        return sorted(m.period for m in history.months)  # no warehouse yet: nothing loaded
    exists = read_mart(
        settings,
        "months",
        "(SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{PUBLISHED_SCHEMA}' AND table_name = 'months') AS t",
    ).num_rows
    loaded = read_mart(settings, "months", f'"{PUBLISHED_SCHEMA}"."months"').to_pylist() if exists else []
    have = {r["ReportingPeriod"]: r["Fingerprint"] for r in loaded}
    stale = [m.period for m in history.months if have.get(m.period) != (m.fingerprint or m.version)]
    stale += [p for p in history.missing if p in have]  # loaded, since withdrawn
    return sorted(stale)
