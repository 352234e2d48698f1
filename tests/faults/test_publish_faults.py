"""Faults at publication: a failed run cleans up after itself and says what happened in one line.

Staging holds patient-level Parquet; after a failure it must not linger (and after a full disk
the space is needed back). Each case checks the exception and its message (period, run, path,
what went wrong), that the run's staging directory and any version directory that never became
current are gone, that the last good outputs are unchanged byte for byte, and that no NHS
number is in the message.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa
import pytest
from _fault_helpers import assert_no_leftovers, assert_one_clean_line, assert_tree_unchanged, tree_snapshot

from mhsds_pipeline import pipeline
from mhsds_pipeline import publish as pub
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.extract import ExtractResult
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import work_dir
from mhsds_pipeline.quality.verdict import GateVerdict

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
OCT = ReportingPeriod.parse(PERIOD)

YAML = """
version: 2
models:
  - name: mhs000_header
    config: {contract: {enforced: true}, meta: {idb_table: MHS000Header, key: []}}
    columns:
      - {name: DatSetVer, data_type: varchar}
      - {name: OrgIDProvider, data_type: varchar}
      - {name: ReportingPeriodStartDate, data_type: date}
      - {name: ReportingPeriodEndDate, data_type: date}
      - {name: DateTimeDatSetCreate, data_type: timestamp}
  - name: mhs001_mpi
    config: {contract: {enforced: true}}
    meta: {idb_table: MHS001MPI, key: [LocalPatientId]}
    columns:
      - {name: LocalPatientId, data_type: varchar}
      - {name: NHSNumber, data_type: varchar}
  - name: mhs201_care_contact
    config: {contract: {enforced: true}}
    meta: {idb_table: MHS201CareContact, key: [CareContactID]}
    columns:
      - {name: CareContactID, data_type: varchar}
      - {name: CareContDate, data_type: date}
      - {name: CareContTime, data_type: time}
"""


def versions_of(settings) -> list[str]:
    folder = settings.output_dir / ".versions" / PERIOD
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def settings(tmp_settings, tmp_path, monkeypatch):
    project = tmp_path / "dbt"
    (project / "models" / "marts" / "mhsds").mkdir(parents=True)
    (project / "models" / "marts" / "mhsds" / "_mhsds__models.yml").write_text(YAML)
    load_contracts.cache_clear()
    s = replace(tmp_settings, dbt_project_dir=project)
    marts = {
        "mhs000_header": pa.table(
            {
                "DatSetVer": ["6.0"],
                "OrgIDProvider": [s.org_id_provider],
                "ReportingPeriodStartDate": [date(2026, 10, 1)],
                "ReportingPeriodEndDate": [date(2026, 10, 31)],
                "DateTimeDatSetCreate": [datetime(2026, 11, 1)],
            }
        ),
        "mhs001_mpi": pa.table({"LocalPatientId": ["P1", "P2"], "NHSNumber": ["9990000018", "9990000026"]}),
        "mhs201_care_contact": pa.table(
            {
                "CareContactID": ["C1", "C2"],
                "CareContDate": [date(2026, 10, 1), date(2026, 10, 2)],
                "CareContTime": [time(9), None],
            }
        ),
    }

    def read_mart(_s, model, relation=None):
        if relation and "__quarantine" in relation:
            return pa.table({})  # nothing rejected
        return marts[model]

    monkeypatch.setattr(pub, "read_mart", read_mart)
    monkeypatch.setattr(pub, "code_version", lambda _repo: "test")
    yield s
    load_contracts.cache_clear()


@pytest.fixture
def last_good(settings) -> dict:
    pub.promote(settings, OCT, pub.stage_mhsds(settings, OCT, "good"))
    return tree_snapshot(settings.output_dir)


def _passed_gate(settings, run_id: str, data_docs_files: int = 0) -> Path:
    quality = work_dir(settings, PERIOD, run_id)
    (quality / "dq").mkdir(parents=True)
    # No EPR source rows to reconcile in these fakes (reconciliation faults: test_reconciliation_faults)
    recon = {"period": PERIOD, "sources": {}}
    GateVerdict(PERIOD, run_id, "passed", "test", checks=0, warnings=0, reconciliation=recon).write(
        quality / "dq"
    )
    (quality / "dq" / "dq_results.parquet").write_bytes(b"dq rows")
    for i in range(data_docs_files):
        page = quality / "data_docs" / "validations" / f"suite_{i:04d}" / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html>validation results</html>")
    return quality


# -- failures while staging ------------------------------------------------------------------


def _warehouse_gone(monkeypatch):
    real = pub.read_mart

    def read_mart(s, model, relation=None):
        if model == "mhs201_care_contact":
            raise RuntimeError("warehouse went away")
        return real(s, model, relation)

    monkeypatch.setattr(pub, "read_mart", read_mart)
    return RuntimeError, r"warehouse went away"


def _disk_full_writing_parquet(monkeypatch):
    real = pub.pq.write_table

    def write_table(table, where, **kw):
        if "MHS201CareContact" in str(where):  # Arrow's OSError keeps the errno only in its text
            raise OSError(
                "[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"
            )
        return real(table, where, **kw)

    monkeypatch.setattr(pub.pq, "write_table", write_table)
    return pub.PublicationError, r"2026-10: publishing run bad failed while staging: disk full \(ENOSPC\)"


def _permission_denied(monkeypatch):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kw):
        if self.name == "mhsds":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kw)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    return (
        pub.PublicationError,
        r"while staging: permission denied \(EACCES\) at .*/\.staging/2026-10/bad/mhsds",
    )


def _header_for_another_period(monkeypatch):
    real = pub.read_mart

    def read_mart(s, model, relation=None):
        table = real(s, model, relation)
        if model == "mhs000_header":
            table = table.set_column(2, "ReportingPeriodStartDate", pa.array([date(2026, 9, 1)]))
        return table

    monkeypatch.setattr(pub, "read_mart", read_mart)
    return (
        pub.PublicationError,
        r"MHS000Header: .*MHS00016: Record rejected - .*ReportingPeriodStartDate does not match .*ReportingPeriodStartDate=2026-09-01",
    )


STAGING_FAULTS = {
    "warehouse_error": _warehouse_gone,
    "disk_full_writing_parquet": _disk_full_writing_parquet,
    "permission_denied": _permission_denied,
    "file_level_rejection": _header_for_another_period,
}


@pytest.mark.parametrize("fault", list(STAGING_FAULTS))
def test_failure_in_stage_mhsds_removes_the_staging_directory(settings, last_good, monkeypatch, fault):
    error, names_it = STAGING_FAULTS[fault](monkeypatch)
    with pytest.raises(error) as err:
        pub.stage_mhsds(settings, OCT, "bad")
    monkeypatch.undo()
    assert re.search(names_it, str(err.value)), str(err.value)
    assert_one_clean_line(str(err.value))
    assert_no_leftovers(settings, PERIOD, "bad")
    assert_tree_unchanged(settings.output_dir, last_good)


def test_disk_full_copying_quality_outputs_is_one_line_and_detail_is_logged(
    settings, last_good, monkeypatch, caplog
):
    """On a full disk ``copytree`` raises one ``shutil.Error`` listing every file (the 24,000
    characters of the issue); the operator gets one line, the log keeps the list."""
    quality = _passed_gate(settings, "bad", data_docs_files=300)
    real_copyfile = shutil.copyfile

    def copyfile(src, dst, *args, **kw):
        if "data_docs" in os.fspath(src):  # copytree passes DirEntry objects
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_copyfile(src, dst, *args, **kw)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    with (
        caplog.at_level(logging.ERROR, logger="mhsds_pipeline.publish"),
        pytest.raises(pub.PublicationError) as err,
    ):
        pub.stage_mhsds(settings, OCT, "bad", quality_dir=quality)
    monkeypatch.undo()

    text = str(err.value)
    assert_one_clean_line(text)
    assert "2026-10: publishing run bad failed while staging: disk full (ENOSPC)" in text
    assert re.search(r" at \S*/\.staging/2026-10/bad/data_docs/validations/suite_\d{4}/index\.html", text)
    assert text.count("index.html") == 1 and "300 files failed" in text
    assert "current outputs of 2026-10 are unchanged" in text
    detail = "\n".join(r.getMessage() + str(r.exc_info[1] if r.exc_info else "") for r in caplog.records)
    assert len(detail) > 20_000 and "suite_0299" in detail  # the full list is in the log
    assert_no_leftovers(settings, PERIOD, "bad")
    assert_tree_unchanged(settings.output_dir, last_good)


# -- failures while promoting ------------------------------------------------------------------


def test_disk_full_during_promotion_removes_staging_and_orphan_version(settings, last_good, monkeypatch):
    stage = pub.stage_mhsds(settings, OCT, "bad")

    def symlink(src, dst, *args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(pub.os, "symlink", symlink)
    with pytest.raises(pub.PublicationError) as err:
        pub.promote(settings, OCT, stage)
    monkeypatch.undo()

    text = str(err.value)
    assert_one_clean_line(text)
    assert text.startswith("2026-10: publishing run bad failed while promoting: disk full (ENOSPC) at ")
    assert_no_leftovers(settings, PERIOD, "bad")
    assert [v.split("__", 1)[1] for v in versions_of(settings)] == ["good"]
    current = settings.output_dir / PERIOD
    assert current.is_symlink() and json.loads((current / "manifest.json").read_text())["run_id"] == "good"
    assert_tree_unchanged(settings.output_dir, last_good)


def test_failed_switch_puts_a_legacy_directory_back(settings, monkeypatch):
    """An old layout (the period a real directory): a failed switch must not leave the
    period without outputs."""
    legacy = settings.output_dir / PERIOD
    (legacy / "mhsds").mkdir(parents=True)
    (legacy / "mhsds" / "MHS000Header.parquet").write_bytes(b"legacy bytes")
    (legacy / "manifest.json").write_text('{"run_id": "legacy"}')
    before = tree_snapshot(settings.output_dir)
    stage = pub.stage_mhsds(settings, OCT, "bad")
    real_replace = os.replace

    def replace_(src, dst, *args, **kw):
        if Path(src).name.startswith(f".{PERIOD}.link-"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded", str(dst))
        return real_replace(src, dst, *args, **kw)

    monkeypatch.setattr(pub.os, "replace", replace_)
    with pytest.raises(pub.PublicationError, match=r"disk quota exceeded \(EDQUOT\)") as err:
        pub.promote(settings, OCT, stage)
    monkeypatch.undo()

    assert_one_clean_line(str(err.value))
    assert legacy.is_dir() and not legacy.is_symlink()
    assert_no_leftovers(settings, PERIOD, "bad")
    assert_tree_unchanged(settings.output_dir, before)


def test_publish_step_cleans_up_when_promotion_fails(settings, last_good, monkeypatch):
    """The pipeline's publish step (what the DAG task runs), gate passed, disk full at the switch."""
    run_id = "bad"
    _passed_gate(settings, run_id)
    landing = settings.landing_dir(PERIOD)
    landing.mkdir(parents=True)
    record = ExtractResult(PERIOD, "sqlite:///epr.sqlite", str(landing), {}, None, 0.0)
    (landing / "_extract.json").write_text(json.dumps(record.to_json()))

    def symlink(src, dst, *args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(pub.os, "symlink", symlink)
    with pytest.raises(pub.PublicationError, match="disk full") as err:
        pipeline.publish(PERIOD, run_id, settings)
    monkeypatch.undo()

    assert_one_clean_line(str(err.value))
    assert_no_leftovers(settings, PERIOD, run_id)
    assert_tree_unchanged(settings.output_dir, last_good)
