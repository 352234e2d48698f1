"""The system flow for one month (issue #15): every provider's package validated, measured, published.

The two providers' packages of tests/system_packages.py, whose LTP answer is known by reading
them (R1A: 7 children with an attended direct contact, RXT: 3, both in ICB QWE) and which carry
planted defects. The flow must give
per provider the rule counts ``run_rules`` gives on the original tables, the ICB's exact values as
the sum of its providers', disclosure control in the published files (7 -> 5, 3 suppressed, the
ICB's 10 published as 10), leave the last good outputs untouched when a package is refused, and
give the same bytes when a provider's step and the combine step run again (the DAG's run of a
whole month gives the flow's bytes too: tests/unit/test_system_dag.py; the Spark path gives them
too: tests/integration/test_spark_system.py).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from system_packages import (
    CHILDREN,
    PERIOD,
    REGISTRY,
    RP,
    SPECS,
    digests,
    provider_tables,
    write_inbox,
    write_package,
)

from mhsds_pipeline import cli
from mhsds_pipeline.config import load_settings
from mhsds_pipeline.quality.engine import run_rules
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import load_catalogue
from mhsds_pipeline.system.flow import combine, load_and_validate_provider, run_system_month
from mhsds_pipeline.system.handover import ProviderOutcome
from mhsds_pipeline.system.sources import PackageError

pytestmark = pytest.mark.unit


def _reference_failures(root: Path, originals: dict[str, dict[str, pa.Table]]) -> dict[str, dict[str, int]]:
    """The single-provider engine: run_rules on the original tables (no CSV), one schema each."""
    settings = replace(load_settings(), warehouse_target="duckdb")
    catalogue, expected = load_catalogue(), {}
    engine = sa.create_engine(f"duckdb:///{root / 'reference.duckdb'}")
    try:
        for org, tables in originals.items():
            schema = f"ref_{org.lower()}"
            with engine.begin() as conn:
                con = conn.connection.driver_connection
                con.execute(f"CREATE SCHEMA {schema}")
                for spec in SPECS.values():
                    cols = ", ".join(f'"{c.name}" {c.data_type}' for c in spec.columns)
                    con.execute(f'CREATE TABLE {schema}."{spec.model}" ({cols})')
                    if spec.idb_table in tables:
                        incoming = tables[spec.idb_table]  # noqa: F841 (read by DuckDB's replacement scan)
                        con.execute(f'INSERT INTO {schema}."{spec.model}" SELECT * FROM incoming')
            ctx = replace(sql_context(settings, RP), schema=schema, org_id_provider=org, org_id_submit=org)
            expected[org] = run_rules(engine, catalogue, ctx).failures
    finally:
        engine.dispose()
    return expected


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("system_flow")
    inbox = root / "inbox"
    originals = write_inbox(inbox)
    summary = run_system_month(inbox, PERIOD, root / "out", root / "work", run_id="first")
    return root, inbox, originals, summary


def test_per_provider_rule_counts_equal_the_single_provider_engine(system):
    root, _, originals, summary = system
    assert summary["providers"] == 2 and summary["icbs"] == 1
    expected = _reference_failures(root, originals)
    table = pq.read_table(root / "out" / PERIOD / "dq_results_by_provider.parquet").to_pylist()
    for org in CHILDREN:
        got = {r["check_id"]: r["numerator"] for r in table if r["org_id_provider"] == org and r["numerator"]}
        want = {k: v for k, v in expected[org].items() if v}
        assert want and {k: got.get(k) for k in want} == want, org
    assert expected["R1A"] != expected["RXT"]  # the defects differ, and so do the counts: nothing pooled


def test_ltp_per_provider_and_icb_sum_with_disclosure_control(system):
    root, _, _, _ = system
    exact = {org: ProviderOutcome.read(root / "work", PERIOD, org).ltp_exact for org in CHILDREN}
    assert {org: exact[org]["MHS95"] for org in CHILDREN} == {k: float(v) for k, v in CHILDREN.items()}
    month = root / "out" / PERIOD
    by_provider = {
        (r["org_id_provider"], r["metric_id"]): r
        for r in pq.read_table(month / "ltp_by_provider.parquet").to_pylist()
    }
    assert by_provider[("R1A", "MHS95")]["value"] == 5.0  # 7 -> nearest 5
    assert by_provider[("RXT", "MHS95")]["value"] is None and by_provider[("RXT", "MHS95")]["suppressed"]
    assert by_provider[("R1A", "MHS95")]["icb_code"] == "QWE"
    by_icb = {
        (r["icb_code"], r["metric_id"]): r for r in pq.read_table(month / "ltp_by_icb.parquet").to_pylist()
    }
    # QWE = R1A + RXT before disclosure control: 7 + 3 = 10, published 10 (not 5 + suppressed)
    assert by_icb[("QWE", "MHS95")]["value"] == 10.0 and by_icb[("QWE", "MHS95")]["providers"] == 2
    assert {icb for icb, _ in by_icb} == {"QWE"}  # an ICB whose providers sent nothing has no rows
    for (icb, metric), row in by_icb.items():
        members = [o for o in CHILDREN if by_provider[(o, metric)]["icb_code"] == icb]
        total = sum(exact[o][metric] or 0 for o in members)
        if row["unit"] != "days":
            assert row["value"] == (None if total < 5 else float(int((total + 2) // 5 * 5))), (icb, metric)
    published = [r["value"] for r in [*by_provider.values(), *by_icb.values()] if r["value"] is not None]
    assert all(v % 5 == 0 for v in published if v)  # every published count is a multiple of 5


def test_dqmi_by_provider_is_disclosure_controlled(system):
    root, _, _, _ = system
    month = root / "out" / PERIOD
    dqmi = pq.read_table(month / "dqmi_by_provider.parquet")
    assert dqmi.schema.names[0] == "org_id_provider"
    rows = dqmi.to_pylist()
    assert {r["org_id_provider"] for r in rows} == set(CHILDREN)
    assert all(r["disclosure_controlled"] for r in rows)
    counts = [r[c] for r in rows for c in ("valid", "other", "default", "invalid", "missing", "total")]
    assert all(c is None or (c >= 5 and c % 5 == 0) or c == 0 for c in counts)
    assert any(c is None for c in counts)  # small providers: some counts suppressed
    for org in CHILDREN:
        assert (month / "dqmi" / org / "dqmi_report.html").exists()
        assert sorted(p.name for p in (month / "sdcs" / org).iterdir()) == [
            "aggregation.csv",
            "data_quality.csv",
            "diagnostics.csv",
            "validations.csv",
        ]


def test_manifest_lists_providers_files_and_rows(system):
    root, _, _, _ = system
    month = root / "out" / PERIOD
    manifest = json.loads((month / "manifest.json").read_text())
    assert [p["org_id_provider"] for p in manifest["providers"]] == sorted(CHILDREN)
    assert manifest["icbs"] == ["QWE"]
    for name, entry in manifest["files"].items():
        path = month / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        if name.endswith(".parquet"):
            assert pq.read_metadata(path).num_rows == entry["rows"], name
        elif name.endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as fh:
                assert len(list(csv.reader(fh))) - 1 == entry["rows"], name
    assert any(e["rows"] for n, e in manifest["files"].items() if n.endswith("validations.csv"))
    assert not (root / "out" / ".staging" / PERIOD).exists()  # promoted: nothing left staged
    text = (month / "manifest.json").read_text() + (month / "ltp_by_icb.parquet").read_bytes().hex()
    assert "R1AP0" not in text  # no local patient identifier in the manifest


def test_a_provider_whose_file_sdcs_would_reject_is_left_out_of_the_icb(system, tmp_path):
    root, inbox, _, _ = system
    work = tmp_path / "work"
    shutil.copytree(root / "work" / PERIOD, work / PERIOD, ignore=shutil.ignore_patterns("*.duckdb*", "dbt"))
    rejected = replace(ProviderOutcome.read(work, PERIOD, "RXT"), file_rejected=["MHS00035"])
    rejected.write(work)
    combine(inbox, PERIOD, tmp_path / "out", work, sorted(CHILDREN))
    month = tmp_path / "out" / PERIOD
    icb = {r["metric_id"]: r for r in pq.read_table(month / "ltp_by_icb.parquet").to_pylist()}
    assert icb["MHS95"]["value"] == 5.0 and icb["MHS95"]["providers"] == 1  # R1A's 7 only
    rows = pq.read_table(month / "ltp_by_provider.parquet").to_pylist()
    assert {r["org_id_provider"]: r["submission_accepted"] for r in rows} == {"R1A": True, "RXT": False}
    manifest = json.loads((month / "manifest.json").read_text())
    assert [p["file_rejected"] for p in manifest["providers"]] == [[], ["MHS00035"]]


def test_rerun_gives_the_same_bytes_and_a_refused_package_leaves_them_untouched(system, capsys):
    root, inbox, _, _ = system
    month = root / "out" / PERIOD
    before = digests(month.resolve())
    target_before = month.resolve()
    # a re-run as Airflow does one after clearing a provider's task: that provider's step again
    # (its DuckDB file and hand-over rebuilt from the package), then combine
    load_and_validate_provider(inbox / PERIOD / "RXT", PERIOD, root / "work")
    combine(inbox, PERIOD, root / "out", root / "work", sorted(CHILDREN), run_id="second")
    assert month.resolve() != target_before  # a new version was promoted ...
    assert digests(month.resolve()) == before  # ... with the same bytes
    # a provider sends a file that is no IDB table: the package is refused, nothing is published
    bad = inbox / PERIOD / "R1A" / "MHS999Unknown.csv"
    bad.write_text('"A"\r\n"1"\r\n')
    current = month.resolve()
    try:
        with pytest.raises(PackageError, match=r"MHS999Unknown\.csv"):
            run_system_month(inbox, PERIOD, root / "out", root / "work", run_id="third")
        # the same through the command line: exit 2, the file named, nothing published
        argv = ["system", "--period", PERIOD, "--inbox", str(inbox), "--output", str(root / "out")]
        assert cli.main([*argv, "--work", str(root / "work"), "--run-id", "fourth"]) == 2
        err = capsys.readouterr().err
        assert "MHS999Unknown.csv" in err and f"nothing was published for {PERIOD}" in err
    finally:
        bad.unlink()
    assert month.resolve() == current and digests(current) == before
    assert not (root / "out" / ".staging" / PERIOD / "third").exists()
    assert not (root / "out" / ".staging" / PERIOD / "fourth").exists()


def test_a_package_filed_under_another_month_is_refused(tmp_path):
    inbox = tmp_path / "inbox"
    write_package(provider_tables("R1A", 1, 0), inbox / "2026-11" / "R1A")
    (inbox / "providers.csv").write_text(REGISTRY)
    with pytest.raises(PackageError, match=r"is for 2026-10, but it was filed under 2026-11"):
        run_system_month(inbox, "2026-11", tmp_path / "out", tmp_path / "work")
    assert not (tmp_path / "out" / "2026-11").exists()
    shutil.rmtree(inbox)


def test_the_deployed_folders_come_from_the_settings_model(monkeypatch, tmp_path):
    from mhsds_pipeline.system.flow import system_dirs

    monkeypatch.setenv("MHSDS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MHSDS_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.delenv("MHSDS_SYSTEM_OUTPUT", raising=False)
    monkeypatch.delenv("MHSDS_SYSTEM_WORK", raising=False)
    monkeypatch.setenv("MHSDS_SYSTEM_INBOX", str(tmp_path / "incoming"))
    assert system_dirs() == (
        tmp_path / "incoming",
        tmp_path / "output" / "system",
        tmp_path / "data" / "system" / "work",
    )


def test_sample_keys_are_the_first_failing_keys_in_key_order(system):
    """The pseudonymised sample keys of a rule are its first failing rows by key, in key order:
    the same list whichever engine ran the rules (the Spark flow once returned them unordered)."""
    from mhsds_pipeline.privacy import pseudonymise

    root = system[0]
    table = pq.read_table(root / "out" / PERIOD / "dq_results_by_provider.parquet").to_pylist()
    row = next(r for r in table if (r["org_id_provider"], r["check_id"]) == ("R1A", "MHS00111"))
    assert row["numerator"] == CHILDREN["R1A"] == 7  # every one of R1A's 7 patients fails it
    mpi = SPECS["MHS001MPI"].model
    assert row["sample_keys"] == [pseudonymise(mpi, f"R1AP{i}") for i in range(5)]
