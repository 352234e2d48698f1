"""Submission package: IDB-shaped CSV from the promoted Parquet, checks, versions, diff, audit."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mhsds_pipeline import publish as pub
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.verdict import BlockingCheck, GateVerdict
from mhsds_pipeline.submission import SubmissionError, add_parser, audit, cmd_package, package
from mhsds_pipeline.submission.diff import diff_table
from mhsds_pipeline.submission.idb import (
    V6_IDB_TABLES,
    idb_order_key,
    mandatory_tables,
    read_csv,
    table_specs,
    to_text,
    unescape_column,
)
from mhsds_pipeline.submission.package import (
    DIFF_KEYS_NAME,
    DIFF_SUMMARY_NAME,
    MANIFEST_NAME,
    build_package,
    list_versions,
    package_period,
    read_manifest,
    sha256_file,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
P = ReportingPeriod.parse("2024-04")  # the first v6 month: safely in the past for "created <= now"
NHS_NUMBER = "9434765919"  # fixture identifier that must never reach the audit log
TRICKY = 'Zoë "quoted", with comma'  # v6 text never holds a line break (formats.py)
FORMULA = "=1+1"  # written escaped ('=1+1), read back as it was


def _conforming(name: str, fmt, i: int) -> str:
    """A value of the column's v6 format, different for each ``i``."""
    if fmt.kind == "n":
        width = max(fmt.min_length, min(fmt.max_length, 6))
        return str(10 ** (width - 1) + i)
    width = max(fmt.min_length, min(fmt.max_length, 9))
    stem = "R1A0000000" if fmt.pattern == "ods" else f"{name[:6]}-0000"
    return (stem[: width - 1] + str(i)) if width > 1 else str(i)


def _value(name: str, dtype: str, i: int, key: bool, fmt=None):
    """Row ``i`` of a column: varied values (quotes, commas, a formula-like cell where the format
    allows) and NULLs where a key allows."""
    if dtype == "varchar":
        if key or fmt.kind == "n" or fmt.pattern:
            return None if i == 3 and not key else _conforming(name, fmt, i)
        wide = fmt.max_length >= len(TRICKY)
        return [
            _conforming(name, fmt, i),
            TRICKY if wide else "0" * fmt.min_length,
            FORMULA if fmt.min_length <= 4 <= fmt.max_length else _conforming(name, fmt, 2),
            None,
        ][i % 4]
    if dtype == "date":
        return None if i == 3 and not key else date(2024, 4, i + 1)
    if dtype == "time":
        return None if i == 3 else time(9, i, 5)
    if dtype == "timestamp":
        return None if i == 3 and not key else datetime(2024, 4, i + 1, 10, 0, i)
    return None if i == 3 else 30 + i  # integer


def make_marts(settings, rows: int = 4) -> dict[str, pa.Table]:
    marts = {}
    for contract in load_contracts(settings.dbt_project_dir).values():
        cols = {}
        for name, dtype in contract.columns:
            base = dtype.lower().split("(")[0]
            cols[name] = pa.array(
                [
                    _value(name, base, i, name in contract.key, contract.value_format(name))
                    for i in range(rows)
                ],
                contract.arrow_schema.field(name).type,
            )
        marts[contract.model] = pa.table(cols)
    marts["mhs000_header"] = pa.table(
        {
            "DatSetVer": ["6.0"],
            "OrgIDProvider": [settings.org_id_provider],
            "OrgIDSubmit": [settings.org_id_submit],
            "PrimSystemInUse": ["SYNTHETIC EPR"],
            "ReportingPeriodStartDate": [P.start],
            "ReportingPeriodEndDate": [P.end],
            "DateTimeDatSetCreate": [P.end_exclusive_ts],
        }
    )
    mpi = marts["mhs001_mpi"]
    marts["mhs001_mpi"] = mpi.set_column(
        mpi.column_names.index("NHSNumber"), "NHSNumber", pa.array([NHS_NUMBER] * mpi.num_rows)
    )
    return marts


@pytest.fixture
def env(tmp_settings, monkeypatch):
    """Settings plus a ``publish()`` that promotes the (mutable) marts as a new version.
    The repo's contracts are parsed once (the caches are keyed on the dbt project path)."""
    settings = replace(tmp_settings, dbt_project_dir=REPO / "dbt_project")
    marts = make_marts(settings)
    monkeypatch.setattr(pub, "read_mart", lambda _s, model, *_relation, **_kw: marts[model])
    monkeypatch.setattr(pub, "code_version", lambda _repo: "test-code")
    counter = iter(range(1, 100))

    def publish() -> Path:
        stage = pub.stage_mhsds(settings, P, f"run{next(counter)}")
        return pub.promote(settings, P, stage)

    publish()
    return settings, marts, publish


def version_dir(settings) -> Path:
    return (settings.output_dir / str(P)).resolve()


def submissions(settings) -> Path:
    return settings.output_dir / "submissions" / str(P)


def rewrite(settings, idb_table: str, table: pa.Table, fix_manifest: bool = True) -> None:
    """Replace one promoted Parquet file (as a careless hand edit would) and, unless told
    otherwise, make manifest.json agree with it so only the intended check fails."""
    vdir = version_dir(settings)
    path = vdir / "mhsds" / f"{idb_table}.parquet"
    pq.write_table(table, path)
    if fix_manifest:
        manifest = json.loads((vdir / "manifest.json").read_text())
        manifest["tables"][idb_table].update(rows=table.num_rows, sha256=sha256_file(path))
        (vdir / "manifest.json").write_text(json.dumps(manifest))


def parquet(settings, idb_table: str) -> pa.Table:
    return pq.read_table(version_dir(settings) / "mhsds" / f"{idb_table}.parquet")


def assert_nothing_written(settings) -> None:
    assert list_versions(submissions(settings)) == []
    assert not (submissions(settings) / "current").exists()
    assert not (settings.output_dir / str(P) / "submission").exists()
    leftovers = list(submissions(settings).glob(".tmp-*")) if submissions(settings).exists() else []
    assert leftovers == []


# --------------------------------------------------------------------------------- round trip


def test_package_round_trips_to_the_promoted_parquet(env):
    settings, _, _ = env
    pkg = build_package(settings, P, "pkg1")
    manifest = read_manifest(pkg)
    specs = {s.idb_table: s for s in table_specs(settings.dbt_project_dir)}
    assert [t["idb_table"] for t in manifest["tables"]] == list(specs)
    for entry in manifest["tables"]:
        spec = specs[entry["idb_table"]]
        source = parquet(settings, spec.idb_table)
        back = read_csv(pkg / entry["file"], spec)
        assert back.num_rows == source.num_rows == entry["rows"]
        assert back.equals(source.cast(back.schema)), spec.idb_table
        assert back.schema == source.schema.remove_metadata(), spec.idb_table
        # the text read back is exactly what was built (NULL stays NULL, formula escapes undone)
        written = to_text(source, spec)
        unescaped = [
            unescape_column(written.column(i)) if c.data_type == "varchar" else written.column(i)
            for i, c in enumerate(spec.columns)
        ]
        assert read_csv(pkg / entry["file"], spec, typed=False).equals(
            pa.Table.from_arrays(unescaped, names=written.column_names)
        )
    activity = read_csv(pkg / "MHS202CareActivity.csv", specs["MHS202CareActivity"]).to_pylist()
    assert {TRICKY, None} < {r["Procedure"] for r in activity}
    assert FORMULA in {r["UnitofMeasurement_UCUM"] for r in activity}
    raw = (pkg / "MHS202CareActivity.csv").read_text(encoding="utf-8")
    assert f'"\'{FORMULA}"' in raw and f'"{FORMULA}"' not in raw  # escaped for Excel


def test_files_have_idb_column_order_and_spec_formats(env):
    settings, _, _ = env
    pkg = build_package(settings, P, "pkg1")
    specs = table_specs(settings.dbt_project_dir)
    assert list(specs) == sorted(specs, key=lambda s: idb_order_key(s.idb_table))
    order = [s.idb_table for s in specs]
    assert [t for t in order if t in mandatory_tables()] == list(mandatory_tables())  # in IDB order
    assert len(order) == 61  # every table of the v6.0 rules file
    patterns = {
        "date": r"\d{4}-\d{2}-\d{2}",
        "time": r"\d{2}:\d{2}:\d{2}",
        "timestamp": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",
        "integer": r"-?\d+",
    }
    for spec in specs:
        contract = load_contracts(settings.dbt_project_dir)[spec.model]
        assert spec.column_names == contract.column_names  # IDB order = contract order
        raw = (pkg / spec.file_name).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        assert raw.count(b"\r\n") >= 1 + parquet(settings, spec.idb_table).num_rows
        header = raw.split(b"\r\n", 1)[0].decode()
        assert header == ",".join(f'"{c}"' for c in contract.column_names)
        text = read_csv(pkg / spec.file_name, spec, typed=False)
        for col in spec.columns:
            pattern = patterns.get(col.data_type)
            for v in text.column(col.name).to_pylist():
                if pattern and v is not None:
                    assert re.fullmatch(pattern, v), (spec.idb_table, col.name, v)
    header = (pkg / "MHS000Header.csv").read_text().splitlines()[1]
    assert header == f'"6.0","{settings.org_id_provider}","{settings.org_id_submit}","SYNTHETIC EPR",' + (
        '"2024-04-01","2024-04-30","2024-05-01T00:00:00"'
    )
    # a code keeps its leading zeros and NULL is an empty unquoted field ("" breaks every v6
    # format, so the gate rejects it and it never reaches a package)
    line = (pkg / "MHS902ServiceTeamDetails.csv").read_text().splitlines()[1]
    assert line.startswith('"CarePr-00","R1A000","Se0","S0"')  # values of each column's v6 format
    assert ',"00",' in (pkg / "MHS101Referral.csv").read_text()
    assert ",," in (pkg / "MHS101Referral.csv").read_text()


def test_manifest_records_provenance_hashes_and_dq_status(env):
    settings, _, publish = env
    vdir = version_dir(settings)
    (vdir / "dq").mkdir()
    GateVerdict(str(P), "run", "passed", "v", 10, 7, rejected_rows={"MHS201CareContact": 2}).write(
        vdir / "dq"
    )
    pkg = build_package(settings, P, "pkg-run-1")
    m = read_manifest(pkg)
    assert m["org_id_provider"] == settings.org_id_provider
    assert (m["reporting_period_start"], m["reporting_period_end"]) == ("2024-04-01", "2024-04-30")
    assert (m["spec_version"], m["version"], m["run_id"], m["code_version"]) == (
        "6.0",
        "v001",
        "pkg-run-1",
        "test-code",
    )
    assert m["source"]["manifest_sha256"] == sha256_file(vdir / "manifest.json")
    assert m["source"]["run_id"] == "run1"
    assert m["dq"]["gate_status"] == "passed" and m["dq"]["warnings"] == 7
    assert m["dq"]["rejected_rows"] == {"MHS201CareContact": 2}
    assert m["dq"]["gate_sha256"] == sha256_file(vdir / "dq" / "gate.json")
    for t in m["tables"]:
        assert sha256_file(pkg / t["file"]) == t["sha256"]
        assert t["rows"] == parquet(settings, t["idb_table"]).num_rows
        assert t["source"]["sha256"] == sha256_file(vdir / "mhsds" / f"{t['idb_table']}.parquet")
    # every v6 table is built; the lookup's tables with no v6 rules are not (docs/submission.md)
    assert m["idb_tables_not_populated"] == [
        "MHS013MHCurrencyModel",
        "MHS107MedicationPrescription",
        "MHS603ProvDiag",
    ]
    assert len(m["idb_tables_not_populated"]) == len(V6_IDB_TABLES) - len(m["tables"])
    mpi = next(t for t in m["tables"] if t["idb_table"] == "MHS001MPI")
    assert mpi["columns"][0] == {
        "name": "LocalPatientID",
        "type": "varchar",
        "item_id": "M001901",
        "format": "max an20",
        "max_length": 20,
    }
    assert sorted(p.name for p in pkg.iterdir()) == sorted([t["file"] for t in m["tables"]] + [MANIFEST_NAME])
    assert all(not (p.stat().st_mode & 0o222) for p in pkg.iterdir())  # read-only files


def test_current_package_is_exposed_beside_the_outputs(env):
    settings, _, _ = env
    pkg = build_package(settings, P, "pkg1")
    exposed = settings.output_dir / str(P) / "submission"
    assert exposed.is_symlink() and exposed.resolve() == pkg.resolve()
    assert (exposed / MANIFEST_NAME).is_file()
    assert (submissions(settings) / "current").resolve() == pkg.resolve()


# ------------------------------------------------------------------- versions and resubmission


def test_repackaging_identical_content_is_unchanged(env):
    settings, _, publish = env
    first = package_period(settings, P, "pkg1")
    again = package_period(settings, P, "pkg2")
    assert (first.status, again.status, again.version) == ("created", "unchanged", "v001")
    # a re-run of the pipeline with the same data: new version dir, same package, linked there too
    publish()
    third = package_period(settings, P, "pkg3")
    assert third.status == "unchanged" and third.path == first.path
    assert (settings.output_dir / str(P) / "submission").resolve() == first.path.resolve()
    assert [p.name for p in list_versions(submissions(settings))] == ["v001"]


def test_corrected_source_creates_v002_with_diff_and_keeps_v001(env):
    settings, marts, publish = env
    v001 = build_package(settings, P, "pkg1")
    v001_hashes = {p.name: sha256_file(p) for p in v001.iterdir()}

    ref = marts["mhs101_referral"]
    reasons = ref.column("PrimReasonReferralMH").to_pylist()
    reasons[1] = "04"  # a corrected primary reason on one referral
    marts["mhs101_referral"] = ref.set_column(
        ref.column_names.index("PrimReasonReferralMH"), "PrimReasonReferralMH", pa.array(reasons)
    )
    publish()
    result = package_period(settings, P, "pkg2")

    assert (result.status, result.version) == ("created", "v002")
    assert [p.name for p in list_versions(submissions(settings))] == ["v001", "v002"]
    assert {p.name: sha256_file(p) for p in v001.iterdir()} == v001_hashes  # v001 untouched
    m = read_manifest(result.path)
    assert m["previous_version"] == "v001"
    diff = json.loads((result.path / DIFF_SUMMARY_NAME).read_text())
    assert diff == m["diff"]
    assert diff["against"] == "v001"
    referral = diff["tables"]["MHS101Referral"]
    assert (referral["changed"], referral["added"], referral["removed"]) == (1, 0, 0)
    assert referral["unchanged"] == 3
    assert referral["changed_columns"] == {"PrimReasonReferralMH": 1}
    assert diff["totals"]["changed"] == 1
    assert all(
        t["changed"] == t["added"] == t["removed"] == 0
        for n, t in diff["tables"].items()
        if n != "MHS101Referral"
    )
    keys = (result.path / DIFF_KEYS_NAME).read_text().splitlines()
    assert keys == ["idb_table,change,key_values", "MHS101Referral,changed,Servic-01"]
    assert result.summary()["changes"] == {"MHS101Referral": {"added": 0, "removed": 0, "changed": 1}}
    assert (submissions(settings) / "current").resolve() == result.path.resolve()
    assert (settings.output_dir / str(P) / "submission").resolve() == result.path.resolve()


def test_diff_counts_added_removed_changed_by_key_including_duplicates():
    import duckdb

    old = pa.table(
        {"k": ["a", "b", "c", "d", "d"], "v": ["1", "2", "3", "4", "5"], "w": ["x", None, "z", "", ""]}
    )
    new = pa.table(
        {"k": ["a", "b", "d", "d", "e"], "v": ["1", "2", "4", "6", "7"], "w": ["x", "", "", "", None]}
    )
    con = duckdb.connect()
    d = diff_table(con, old, new, ["k"], ["k", "v", "w"])
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == (1, 1, 2, 1)
    assert (d["rows_before"], d["rows_after"], d["rows_added"], d["rows_removed"]) == (5, 5, 1, 1)
    assert d["changed_columns"] == {"w": 1}  # NULL -> "" is a change; duplicate key "d" not attributed
    assert sorted(d["_keys"]) == [
        ("added", ["e"]),
        ("changed", ["b"]),
        ("changed", ["d"]),
        ("removed", ["c"]),
    ]
    keyless = diff_table(con, old.slice(0, 1), new.slice(1, 1), [], ["k", "v", "w"])
    assert (keyless["changed"], keyless["added"], keyless["removed"]) == (1, 0, 0)


# --------------------------------------------------------------------------- refusals


def _refused(settings, check: str, table: str | None) -> SubmissionError:
    with pytest.raises(SubmissionError) as info:
        build_package(settings, P, "pkg-refused")
    err = info.value
    assert check in {f.check for f in err.failures}, str(err)
    failure = next(f for f in err.failures if f.check == check)
    assert failure.table == table and failure.period == str(P)
    assert str(P) in str(err) and check in str(err) and (table or "(period)") in str(err)
    assert_nothing_written(settings)
    refused = [e for e in audit.read(audit.audit_log_path(settings)) if e["event"] == "package_refused"]
    assert refused and check in {f["check"] for f in refused[-1]["what"]["failures"]}
    return err


def test_missing_mandatory_table_is_refused(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    (vdir / "mhsds" / "MHS002GP.parquet").unlink()
    manifest = json.loads((vdir / "manifest.json").read_text())
    del manifest["tables"]["MHS002GP"]
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    _refused(settings, "mandatory_table", "MHS002GP")


def test_empty_mandatory_table_is_refused(env):
    settings, _, _ = env
    rewrite(settings, "MHS101Referral", parquet(settings, "MHS101Referral").slice(0, 0))
    _refused(settings, "mandatory_table", "MHS101Referral")


def test_wrong_period_in_header_is_refused(env):
    settings, _, _ = env
    header = parquet(settings, "MHS000Header")
    header = header.set_column(4, "ReportingPeriodStartDate", pa.array([date(2024, 3, 1)]))
    header = header.set_column(5, "ReportingPeriodEndDate", pa.array([date(2024, 3, 31)]))
    rewrite(settings, "MHS000Header", header)
    err = _refused(settings, "MHS00016", "MHS000Header")
    assert {"MHS00016", "MHS00019"} <= {f.check for f in err.failures}
    assert "does not match the reporting period selected" in str(err)


def test_two_header_rows_are_refused(env):
    settings, _, _ = env
    header = parquet(settings, "MHS000Header")
    rewrite(settings, "MHS000Header", pa.concat_tables([header, header]))
    err = _refused(settings, "MHS00025", "MHS000Header")
    assert "More than one [MHS000]Header" in str(err)


def test_header_provider_and_version_are_checked(env):
    settings, _, _ = env
    header = parquet(settings, "MHS000Header")
    header = header.set_column(0, "DatSetVer", pa.array(["5.0"])).set_column(
        1, "OrgIDProvider", pa.array(["RXX"])
    )
    rewrite(settings, "MHS000Header", header)
    err = _refused(settings, "MHS00030", "MHS000Header")
    assert {"MHS00003", "MHS00030"} <= {f.check for f in err.failures}


def test_tampered_file_sha_is_refused(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["tables"]["MHS201CareContact"]["sha256"] = "0" * 64
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    _refused(settings, "manifest_sha256", "MHS201CareContact")


def test_edited_parquet_is_refused(env):
    settings, _, _ = env
    rewrite(
        settings, "MHS201CareContact", parquet(settings, "MHS201CareContact").slice(1), fix_manifest=False
    )
    err = _refused(settings, "manifest_sha256", "MHS201CareContact")
    assert "manifest_rows" in {f.check for f in err.failures}


def test_quarantined_key_present_is_refused(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    (vdir / "quarantine").mkdir()
    rejected = parquet(settings, "MHS201CareContact").slice(2, 1)
    rejected = rejected.append_column("_rule_id", pa.array(["MHS20167"])).append_column(
        "_severity", pa.array(["record rejected"])
    )
    pq.write_table(rejected, vdir / "quarantine" / "MHS201CareContact.parquet")
    err = _refused(settings, "quarantined_key_present", "MHS201CareContact")
    message = str(err)
    assert "MHS20167" in message and "row 3" in message
    assert "CareCo-02" not in message  # row numbers, not keys


def test_quarantined_rows_absent_from_the_data_pass(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    (vdir / "quarantine").mkdir()
    rejected = parquet(settings, "MHS201CareContact").slice(0, 1)
    rejected = rejected.set_column(0, "CareContactID", pa.array(["C-REMOVED"]))
    rejected = rejected.append_column("_rule_id", pa.array(["MHS20167"]))
    pq.write_table(rejected, vdir / "quarantine" / "MHS201CareContact.parquet")
    result = package_period(settings, P, "pkg1")
    assert result.status == "created"
    created = audit.read(audit.audit_log_path(settings))[-1]
    assert created["inputs"]["quarantine"] == {
        "MHS201CareContact": sha256_file(vdir / "quarantine" / "MHS201CareContact.parquet")
    }


def test_quarantined_row_with_a_null_key_part_is_matched_on_the_whole_row(tmp_path):
    from mhsds_pipeline.submission.checks import _check_quarantine
    from mhsds_pipeline.submission.idb import ColumnSpec, TableSpec

    spec = TableSpec(
        "MHS604PrimDiag",
        "mhs604_prim_diag",
        ("ServiceRequestID", "CodedDiagTimestamp", "PrimDiag"),
        tuple(
            ColumnSpec(n, t, None, "text", None)
            for n, t in [
                ("ServiceRequestID", "varchar"),
                ("DiagSchemeInUse", "varchar"),
                ("PrimDiag", "varchar"),
                ("CodedDiagTimestamp", "timestamp"),
            ]
        ),
    )
    ts = pa.array([None, None], pa.timestamp("us"))
    data = pa.table(
        {"ServiceRequestID": ["R1", "R1"], "DiagSchemeInUse": ["06", "02"], "PrimDiag": ["X", "X"]}
    )
    pq.write_table(data.append_column("CodedDiagTimestamp", ts), tmp_path / "data.parquet")
    rejected = data.slice(1).append_column("CodedDiagTimestamp", ts.slice(1))
    pq.write_table(rejected.append_column("_rule_id", pa.array(["MHS60401"])), tmp_path / "q.parquet")
    failures = []
    _check_quarantine(spec, tmp_path / "data.parquet", tmp_path / "q.parquet", lambda *a: failures.append(a))
    assert len(failures) == 1 and "1 row(s)" in failures[0][2] and "(row 2)" in failures[0][2]


def test_failed_quality_gate_is_refused(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    (vdir / "dq").mkdir()
    blocking = (BlockingCheck("MHS00025", "mhsds_rule", "MHS000Header", 2, "failed", "two headers"),)
    GateVerdict(str(P), "run", "failed", "v", 10, 0, blocking=blocking).write(vdir / "dq")
    err = _refused(settings, "dq_gate", None)
    assert "MHS00025" in str(err) and "1 blocking check" in str(err)


def test_a_gate_file_that_is_not_a_verdict_is_refused(env):
    settings, _, _ = env
    vdir = version_dir(settings)
    (vdir / "dq").mkdir()
    (vdir / "dq" / "gate.json").write_text(json.dumps({"status": "passed", "critical": []}))
    err = _refused(settings, "dq_gate", None)
    assert "not a quality gate verdict" in str(err)


def test_period_without_outputs_is_refused(env):
    settings, _, _ = env
    with pytest.raises(SubmissionError) as info:
        build_package(settings, "2024-05", "pkg1")
    assert info.value.check == "source_missing" and "mhsds run --period 2024-05" in str(info.value)


def test_fractional_seconds_are_refused_not_truncated(env):
    settings, _, _ = env
    contacts = parquet(settings, "MHS201CareContact")
    i = contacts.column_names.index("CareContTime")
    times = contacts.column(i).to_pylist()
    times[0] = time(9, 0, 5, 250000)
    rewrite(
        settings,
        "MHS201CareContact",
        contacts.set_column(i, "CareContTime", pa.array(times, pa.time64("us"))),
    )
    _refused(settings, "format_precision", "MHS201CareContact")


# --------------------------------------------------------------------------- audit and API


def test_audit_log_records_who_what_when_and_hashes(env, monkeypatch):
    settings, marts, publish = env
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "mhsds_monthly")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "scheduled__2024-05-05")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "package")
    first = package_period(settings, P, "pkg1")
    package_period(settings, P, "pkg2")
    rewrite(settings, "MHS000Header", pa.concat_tables([parquet(settings, "MHS000Header")] * 2))
    with pytest.raises(SubmissionError):
        package_period(settings, P, "pkg3")

    log_path = audit.audit_log_path(settings)
    entries = audit.read(log_path)
    assert [e["event"] for e in entries] == ["package_created", "package_unchanged", "package_refused"]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    created = entries[0]
    assert created["who"]["user"] and created["who"]["host"]
    assert created["who"]["airflow"]["dag_id"] == "mhsds_monthly"
    assert created["who"]["airflow"]["task_id"] == "package"
    assert created["run_id"] == "pkg1" and created["ts"].endswith("Z")
    assert created["what"]["version"] == "v001" and created["what"]["period"] == str(P)
    assert created["inputs"]["manifest_sha256"] == first.manifest["source"]["manifest_sha256"]
    assert created["inputs"]["tables"]["MHS101Referral"] == sha256_file(
        version_dir(settings) / "mhsds" / "MHS101Referral.parquet"
    )
    assert created["outputs"]["files"] == {t["file"]: t["sha256"] for t in first.manifest["tables"]}
    assert created["outputs"]["submission_manifest_sha256"] == sha256_file(first.path / MANIFEST_NAME)
    assert entries[2]["what"]["failures"][0]["check"] == "MHS00025"
    key = audit.load_key(settings.data_dir)
    assert audit.verify(log_path, key) == []
    text = log_path.read_text()
    assert NHS_NUMBER not in text and "Servic-00" not in text  # no identifiers or keys

    assert created["scheme"] == audit.SCHEME and created["mac"] and "secret" not in created
    assert first.manifest["audit_anchor"]["seq"] == 0  # the log was empty when v001 was built

    lines = text.splitlines()
    lines[1] = lines[1].replace('"package_unchanged"', '"package_created"')
    log_path.write_text("\n".join(lines) + "\n")
    assert audit.verify(log_path, key)[0].startswith("seq 2, line 2: [mac]")


def test_package_summary_is_json_for_xcom(env):
    settings, _, _ = env
    summary = package(str(P), "airflow-run", settings)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["status"] == "created" and summary["version"] == "v001"
    assert summary["row_counts"]["MHS000Header"] == 1
    assert summary["dq_status"] == "not_available"


def test_cli_package_command(env, monkeypatch, capsys):
    settings, _, _ = env
    monkeypatch.setattr("mhsds_pipeline.config.load_settings", lambda: settings)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["package", "--period", str(P), "--run-id", "cli-1"])
    assert ns.func is cmd_package
    assert ns.func(ns) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v001"

    shutil.rmtree(version_dir(settings) / "mhsds")
    ns = parser.parse_args(["package", "--period", str(P)])
    assert ns.func(ns) == 1
    assert "mandatory_table" in capsys.readouterr().err
    assert (
        parser.parse_args(["package", "--period", "2024-13"]).func(
            parser.parse_args(["package", "--period", "2024-13"])
        )
        == 2
    )


def test_package_name_is_the_function_after_submodule_imports():
    import mhsds_pipeline.submission as sub
    import mhsds_pipeline.submission.package  # noqa: F401 - the import that could rebind the name

    assert callable(sub.package) and sub.package.__name__ == "package"
