"""Two providers' packages whose LTP answer is known by reading them, for the system flow's
tests on DuckDB (tests/unit/test_system_flow.py) and on Spark (tests/integration/test_spark_system.py).

Each package is written with ``idb.write_csv`` from small hand-built tables (header, MPI, GP,
referral, care contact, team): provider R1A has 7 children with an attended direct contact and
RXT has 3, both in ICB QWE (the registry also lists a provider of ICB QKK that sent nothing; both
are live organisations in the ODS seed, else rule MHS00035 rejects the file). Each provider also
carries planted defects that fire rules (a referral of no patient).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.rules import DBT_PROJECT
from mhsds_pipeline.submission.idb import table_specs, write_csv

PERIOD = "2026-10"
RP = ReportingPeriod.parse(PERIOD)
SPECS = {s.idb_table: s for s in table_specs(DBT_PROJECT)}
CHILDREN = {"R1A": 7, "RXT": 3}
REGISTRY = (
    "org_id_provider,provider_name,icb_code,icb_name,region_code,region_name,scale\n"
    "R1A,Synthetic Trust A,QWE,Synthetic ICB QWE,Y56,London,0.1\n"
    "RXT,Synthetic Trust X,QWE,Synthetic ICB QWE,Y56,London,0.1\n"
    "RY2,Synthetic Trust Y,QKK,Synthetic ICB QKK,Y56,London,0.1\n"
)


def provider_tables(org: str, children: int, defects: int) -> dict[str, pa.Table]:
    """Header, MPI, referrals, contacts and one team: ``children`` people aged under 18 with an
    attended face-to-face contact; ``defects`` referrals pointing at no patient."""
    header = {
        "DatSetVer": "6.0",
        "OrgIDProvider": org,
        "OrgIDSubmit": org,
        "PrimSystemInUse": "SYS",
        "ReportingPeriodStartDate": RP.start,
        "ReportingPeriodEndDate": RP.end,
        "DateTimeDatSetCreate": datetime(2026, 11, 3, 9, 30, 0),
    }
    mpi, gp, referrals, contacts = [], [], [], []
    for i in range(children):
        pid = f"{org}P{i}"
        mpi.append(
            {"LocalPatientID": pid, "OrgIDLocalPatientID": org, "NHSNumber": None, "NHSNumberStatus": "07",
             "PersonBirthDate": date(2012, 1 + i % 12, 1 + i), "Postcode": None, "GenderIDCode": "1",
             "EthnicCategory": "A"}
        )  # fmt: skip
        gp.append({"LocalPatientID": pid, "GMPReg": "M81601", "StartDateGMPRegistration": date(2015, 1, 1)})
        referrals.append(
            {"ServiceRequestID": f"{org}R{i}", "LocalPatientID": pid, "OrgIDComm": "04Y",
             "CareProfTeamLocalID": f"{org}T1", "ReferralRequestReceivedDate": date(2026, 10, 1 + i),
             "ReferralRequestReceivedTime": time(9, 15), "SourceOfReferralMH": "A1",
             "ClinRespPriorityType": "3", "PrimReasonReferralMH": "01"}
        )  # fmt: skip
        contacts.append(
            {"CareContactID": f"{org}C{i}", "ServiceRequestID": f"{org}R{i}", "CareContDate": date(2026, 10, 20),
             "CareContTime": time(10, 15), "AdminCatCode": "01", "ConsType": "01", "CareContSubj": "01",
             "ConsMechanismMH": "01", "ActLocTypeCode": "A01", "AttendStatus": "5", "ClinContDurOfCareCont": 30}
        )  # fmt: skip
    referrals += [
        {"ServiceRequestID": f"{org}X{i}", "LocalPatientID": "NOBODY", "ReferralRequestReceivedDate": date(2026, 9, 1)}
        for i in range(defects)
    ]  # fmt: skip
    team = [{"CareProfTeamLocalID": f"{org}T1", "OrgIDCareProfTeamLocalID": org, "ServTeamTypeMH": "C01",
             "ServTeamIntAgeGroup": "01"}]  # fmt: skip
    rows = {
        "MHS000Header": [header],
        "MHS001MPI": mpi,
        "MHS002GP": gp,
        "MHS101Referral": referrals,
        "MHS201CareContact": contacts,
        "MHS902ServiceTeamDetails": team,
    }
    return {t: pa.Table.from_pylist(r, schema=SPECS[t].arrow_schema) for t, r in rows.items()}


def write_package(tables: dict[str, pa.Table], out: Path) -> Path:
    out.mkdir(parents=True)
    for name, table in tables.items():
        write_csv(table, SPECS[name], out / SPECS[name].file_name)
    return out


def write_inbox(inbox: Path) -> dict[str, dict[str, pa.Table]]:
    """The registry and both providers' packages of :data:`PERIOD` (provider i with i + 1
    planted defects); returns the tables written, by provider."""
    originals = {org: provider_tables(org, n, defects=1 + i) for i, (org, n) in enumerate(CHILDREN.items())}
    for org, tables in originals.items():
        write_package(tables, Path(inbox) / PERIOD / org)
    (Path(inbox) / "providers.csv").write_text(REGISTRY)
    return originals


def digests(month: Path) -> dict[str, str]:
    """sha256 of every file of a published month, by path within it."""
    return {
        p.relative_to(month).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(month).rglob("*"))
        if p.is_file()
    }
