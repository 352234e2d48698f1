"""Publication: explicit schemas from the dbt contracts, deterministic bytes, atomic promotion."""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace
from datetime import date, datetime, time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mhsds_pipeline import publish as pub
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod

pytestmark = pytest.mark.unit

OCT = ReportingPeriod.parse("2026-10")

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
  - name: mhs201_care_contact
    config: {contract: {enforced: true}}
    meta: {idb_table: MHS201CareContact, key: [CareContactID]}
    columns:
      - {name: CareContactID, data_type: varchar}
      - {name: CareContDate, data_type: date}
      - {name: CareContTime, data_type: time}
      - {name: ClinContDurOfCareCont, data_type: integer}
"""


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
        # built in arbitrary order, lower-case names and wider types as a warehouse might return them
        "mhs201_care_contact": pa.table(
            {
                "clincontdurofcarecont": pa.array([30, 45, None], pa.int64()),
                "CareContactID": ["C2", "C1", "C3"],
                "CareContDate": [date(2026, 10, 2), date(2026, 10, 1), date(2026, 10, 3)],
                "CareContTime": [time(9), time(10, 30), None],
            }
        ),
    }
    monkeypatch.setattr(pub, "read_mart", lambda _s, model, relation=None: marts[model])
    monkeypatch.setattr(pub, "code_version", lambda _repo: "test")
    yield s, marts
    load_contracts.cache_clear()


def test_tables_follow_the_contract_schema_and_order(settings):
    s, _ = settings
    stage = pub.stage_mhsds(s, OCT, "run1")
    t = pq.read_table(stage / "mhsds" / "MHS201CareContact.parquet")
    assert t.column_names == ["CareContactID", "CareContDate", "CareContTime", "ClinContDurOfCareCont"]
    assert [str(f.type) for f in t.schema] == ["string", "date32[day]", "time64[us]", "int32"]
    assert t.column("CareContactID").to_pylist() == ["C1", "C2", "C3"]  # sorted by key
    manifest = json.loads((stage / "manifest.json").read_text())
    assert manifest["tables"]["MHS201CareContact"]["rows"] == 3
    assert manifest["tables"]["MHS201CareContact"]["sha256"] == pub.sha256_file(
        stage / "mhsds" / "MHS201CareContact.parquet"
    )
    assert manifest["spec_version"] == "6.0" and manifest["uniq_month_id"] == 1519  # 1489 (Apr 2024) + 30


def test_promote_is_atomic_and_rerun_gives_identical_bytes(settings):
    s, _ = settings
    v1 = pub.promote(s, OCT, pub.stage_mhsds(s, OCT, "run1"))
    current = s.output_dir / "2026-10"
    assert current.is_symlink() and current.resolve() == v1.resolve()
    first = (current / "mhsds" / "MHS201CareContact.parquet").read_bytes()
    v2 = pub.promote(s, OCT, pub.stage_mhsds(s, OCT, "run2"))
    assert current.resolve() == v2.resolve() and v1.exists()  # previous version kept
    assert (current / "mhsds" / "MHS201CareContact.parquet").read_bytes() == first
    assert json.loads((current / "manifest.json").read_text())["run_id"] == "run2"


def test_failure_while_staging_leaves_last_good_outputs(settings, monkeypatch):
    s, marts = settings
    good = pub.promote(s, OCT, pub.stage_mhsds(s, OCT, "good"))

    def boom(_s, model, relation=None):
        if model == "mhs201_care_contact":
            raise RuntimeError("warehouse went away")
        return marts[model]

    monkeypatch.setattr(pub, "read_mart", boom)
    with pytest.raises(RuntimeError, match="warehouse went away"):
        pub.stage_mhsds(s, OCT, "bad")
    current = s.output_dir / "2026-10"
    assert current.resolve() == good.resolve()
    assert json.loads((current / "manifest.json").read_text())["run_id"] == "good"


def test_header_for_another_period_blocks_publication(settings):
    s, marts = settings
    marts["mhs000_header"] = marts["mhs000_header"].set_column(
        2, "ReportingPeriodStartDate", pa.array([date(2026, 9, 1)])
    )
    with pytest.raises(
        pub.PublicationError, match="MHS00016: Record rejected - .*ReportingPeriodStartDate does not match"
    ):
        pub.stage_mhsds(s, OCT, "wrong")
    assert not (s.output_dir / "2026-10").exists()


def test_two_header_rows_block_publication(settings):
    s, marts = settings
    marts["mhs000_header"] = pa.concat_tables([marts["mhs000_header"]] * 2)
    with pytest.raises(pub.PublicationError, match="MHS00025"):
        pub.stage_mhsds(s, OCT, "dup")


def test_old_versions_are_pruned(settings):
    s, _ = settings
    s = replace(s, keep_versions=2)
    for i in range(4):
        pub.promote(s, OCT, pub.stage_mhsds(s, OCT, f"r{i}"))
    versions = sorted((s.output_dir / ".versions" / "2026-10").iterdir())
    assert len(versions) == 2 and versions[-1].name.endswith("r3")


def test_contract_without_enforcement_is_refused(tmp_path):
    project = tmp_path / "p"
    (project / "models" / "marts" / "mhsds").mkdir(parents=True)
    (project / "models" / "marts" / "mhsds" / "_mhsds__models.yml").write_text(
        "models:\n  - name: x\n    meta: {idb_table: X}\n    columns: []\n"
    )
    load_contracts.cache_clear()
    with pytest.raises(ValueError, match="enforced contract"):
        load_contracts(project)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/out/x.parquet"),
            "disk full (ENOSPC) at /out/x.parquet",
        ),
        (PermissionError(errno.EACCES, "Permission denied", "/out"), "permission denied (EACCES) at /out"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system (EROFS)"),
        # Arrow's IO errors carry the errno only in their text
        (
            OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] No space"),
            "disk full (ENOSPC)",
        ),
        (OSError("something odd"), "OSError"),
    ],
)
def test_os_errors_are_summarised_in_one_line(exc, expected):
    assert pub.summarise_os_error(exc) == expected


def test_a_copytree_error_list_becomes_one_line_with_a_count():
    entries = [
        (f"/src/{i}.html", f"/dst/{i}.html", f"[Errno 28] No space left on device: '/dst/{i}.html'")
        for i in range(500)
    ]
    exc = shutil.Error(entries)
    assert len(str(exc)) > 24_000
    assert pub.summarise_os_error(exc) == "disk full (ENOSPC) at /dst/0.html, 500 files failed"


def test_discard_removes_the_run_and_the_empty_period_folder(settings):
    s, _ = settings
    stage = pub.stage_mhsds(s, OCT, "run1")
    other = pub.stage_mhsds(s, OCT, "run2")
    pub.discard(stage)
    assert not stage.exists() and other.exists()  # another run's staging is not touched
    pub.discard(other)
    assert not (s.output_dir / ".staging" / "2026-10").exists()
