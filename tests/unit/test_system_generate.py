"""Multi-provider synthetic submission packages (``mhsds generate --providers``, issue #15).

Two providers at a tiny scale are built once for the module, each through the real trust
pipeline in its own data root (about a minute with two workers). The packages must sit in
``<out>/<YYYY-MM>/<ODS>/``, carry their own OrgIDProvider and local identifiers, share some
NHS numbers, load with ``sources.load_package`` and validate with ``validate_packages``, which
must find each provider's own planted defects (from that provider's ground truth).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from mhsds_pipeline.synthetic import providers as reg
from mhsds_pipeline.synthetic.provider_packages import (
    GROUND_TRUTH_SUFFIX,
    REGISTRY_FILE,
    SUMMARY_FILE,
    generate_providers,
)

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
ORGS = ("R1A", "Z0A")
#: Planted defect (generator rule) -> the check that reports it; both survive the trust's gate
#: (warnings), so the submitted package still holds every planted row.
PLANTED_TO_CHECK = {
    "ETHNICITY_NOT_KNOWN": "LOCAL_MHS001_ETHNIC_NOT_KNOWN",
    "POSTCODE_DEFAULT": "LOCAL_MHS001_POSTCODE_DEFAULT",
}
#: The v6 "live organisation" rules: silent when the run's ODS seed lists the providers' codes.
ORG_LIVE = ("MHS00035", "MHS00034", "MHS00154", "MHS00206", "MHS10110", "MHS20147")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("system_generate")
    out = base / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MHSDS_DATA_DIR", str(base / "data"))
        mp.setenv("MHSDS_OUTPUT_DIR", str(base / "output"))
        summary = generate_providers(
            out, providers=2, period=PERIOD, total_scale=0.04, seed=42, workers=2, verbose=False
        )
        from mhsds_pipeline.system.validate import validate_packages

        mp.setenv("MHSDS_DBT_PROJECT_DIR", summary["dbt_project_dir"])
        results = validate_packages([out / PERIOD / o for o in ORGS], base / "system.duckdb")
    return out, summary, results, base


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_layout_registry_and_summary(built):
    out, summary, _, _ = built
    registry = _rows(out / REGISTRY_FILE)
    assert tuple(registry[0]) == reg.COLUMNS
    assert [r["org_id_provider"] for r in registry] == list(ORGS)
    assert registry[0]["icb_code"] == "QGH"
    assert sorted(p.name for p in (out / PERIOD).iterdir() if p.is_dir()) == sorted(ORGS)
    for org in ORGS:
        pkg = out / PERIOD / org
        assert (pkg / "MHS000Header.csv").is_file() and (pkg / "MHS001MPI.csv").is_file()
        assert (out / PERIOD / f"{org}{GROUND_TRUTH_SUFFIX}").is_file()
    doc = json.loads((out / PERIOD / SUMMARY_FILE).read_text())
    assert doc == json.loads(json.dumps(summary))
    assert set(doc["by_provider"]) == set(ORGS)
    assert doc["total_rows"] == sum(p["rows"] for p in doc["by_provider"].values()) > 0
    for run in doc["by_provider"].values():
        assert run["rows"] == sum(run["table_rows"].values())
        assert run["table_rows"]["MHS000Header"] == 1
        assert run["seconds"] > 0 and run["planted"]
    assert not (out / ".work").exists()  # scratch removed by default


def test_each_header_names_its_provider_and_identifiers_differ(built):
    out, _, _, _ = built
    patients = {}
    for org in ORGS:
        (header,) = _rows(out / PERIOD / org / "MHS000Header.csv")
        assert (header["OrgIDProvider"], header["OrgIDSubmit"]) == (org, org)
        assert header["ReportingPeriodStartDate"] == f"{PERIOD}-01"
        mpi = _rows(out / PERIOD / org / "MHS001MPI.csv")
        patients[org] = {r["LocalPatientID"] for r in mpi}
        assert {r["OrgIDLocalPatientID"] for r in mpi} == {org}
    assert patients["R1A"] and patients["Z0A"] and not patients["R1A"] & patients["Z0A"]
    assert all(p.startswith("Z0A") for p in patients["Z0A"])


def test_patients_belong_to_their_providers_icb(built):
    out, _, _, _ = built
    z0a = reg.registry(2, 0.04, 42)[1]
    gp = _rows(out / PERIOD / "Z0A" / "MHS002GP.csv")
    assert gp and all(r["GMPReg"].startswith("Y9") for r in gp)
    comm = [r["OrgIDComm"] for r in _rows(out / PERIOD / "Z0A" / "MHS101Referral.csv")]
    home = sum(c == z0a.icb.sub_icb for c in comm)
    assert home > 0.8 * len(comm)
    assert not {r["GMPReg"] for r in _rows(out / PERIOD / "R1A" / "MHS002GP.csv")} & {r["GMPReg"] for r in gp}


def test_some_nhs_numbers_repeat_across_providers(built):
    out, _, _, _ = built
    nhs = {
        org: {r["NHSNumber"] for r in _rows(out / PERIOD / org / "MHS001MPI.csv") if r["NHSNumber"]}
        for org in ORGS
    }
    shared = nhs["R1A"] & nhs["Z0A"]
    assert shared, "the national pool windows of consecutive providers overlap"
    assert len(shared) < min(len(nhs["R1A"]), len(nhs["Z0A"]))
    assert all(n.startswith("999") and len(n) == 10 for n in shared)


def test_registry_is_deterministic_and_skewed():
    a, b = reg.registry(40, 20.0, 7), reg.registry(40, 20.0, 7)
    assert a == b
    assert a != reg.registry(40, 20.0, 8)
    scales = sorted(p.scale for p in a)
    assert sum(scales) == pytest.approx(20.0, abs=0.01)
    assert min(scales) >= reg.MIN_SCALE
    assert sum(scales[-8:]) > sum(scales[:20])  # a few large, many small
    assert len({p.org_id_provider for p in a}) == 40 and a[0].org_id_provider == "R1A"
    assert all(p.org_id_provider.startswith("Z") for p in a[1:])
    assert len({p.region_code for p in a}) == len(reg.REGIONS)
    with pytest.raises(ValueError):
        reg.registry(3, 0.02, 7)  # below 3 x MIN_SCALE


def test_packages_load_and_validation_finds_each_providers_planted_defects(built):
    out, _, results, base = built
    assert set(results.packages) == set(ORGS)
    for org in ORGS:
        pkg = results.packages[org]
        assert (pkg.org_id_provider, str(pkg.period)) == (org, PERIOD)
        assert not pkg.quarantined
        failures = results.failures(org)
        planted: dict[str, int] = {}
        for r in _rows(out / PERIOD / f"{org}{GROUND_TRUTH_SUFFIX}"):
            if r["period"] == PERIOD:
                planted[r["rule"]] = planted.get(r["rule"], 0) + 1
        for rule, check in PLANTED_TO_CHECK.items():
            assert planted.get(rule, 0) > 0
            assert failures.get(check, 0) == planted[rule], (org, rule)
        assert not {r: n for r, n in failures.items() if r in ORG_LIVE and n}, org
    engine = sa.create_engine(f"duckdb:///{base / 'system.duckdb'}")
    try:
        with engine.connect() as con:
            for org in ORGS:
                n = con.execute(sa.text(f"SELECT COUNT(*) FROM provider_{org.lower()}.mhs001_mpi")).scalar()
                assert n == len(_rows(out / PERIOD / org / "MHS001MPI.csv"))
    finally:
        engine.dispose()


def test_profile_applies_and_restores_the_trusts_values(tmp_path):
    from mhsds_pipeline.synthetic import frames, spine, trust, v6_spec
    from mhsds_pipeline.synthetic.profile import applied

    regs = reg.registry(3, 0.5, 42)
    before = (
        trust.PRACTICES,
        trust.POSTCODE_DISTRICTS,
        trust.WARDS,
        dict(frames.ID_FORMATS),
        v6_spec.PROVIDER_ORG,
    )
    prof = reg.profile(regs[2], regs, 42)
    with applied(prof):
        assert v6_spec.PROVIDER_ORG == "Z0B" and spine.NHS_POOL == reg.nhs_pool(regs[2], regs, 42)
        assert frames.format_ids("patient_id", [7])[0] == "Z0BP0000007"
        assert {w.site_code[:3] for w in trust.WARDS} == {"Z0B"}
        assert trust.COMMISSIONER_HOME == regs[2].icb.sub_icb and trust.BORDER_RESIDENT_SHARE == {}
        assert trust.POSTCODE_DISTRICTS == regs[2].icb.postcodes
    after = (
        trust.PRACTICES,
        trust.POSTCODE_DISTRICTS,
        trust.WARDS,
        dict(frames.ID_FORMATS),
        v6_spec.PROVIDER_ORG,
    )
    assert after == before and spine.NHS_POOL is None


def test_every_provider_of_a_national_registry_has_a_profile_that_applies():
    """60 providers go round the 16 ICBs, so some share the trust's ICB (QGH), whose postcode
    districts are trust.py's own: their profiles must apply too (a national run once stopped at
    the 17th provider)."""
    from mhsds_pipeline.synthetic import trust
    from mhsds_pipeline.synthetic.profile import applied

    regs = reg.registry(60, 63.0, 42)
    trust_districts = trust.POSTCODE_DISTRICTS
    in_trust_icb = 0
    for p in regs:
        with applied(reg.profile(p, regs, 42)):
            assert len(trust.POSTCODE_DISTRICTS) == len(trust.LOCALITIES)
            if p.icb_code == "QGH":
                in_trust_icb += 1
                assert trust.POSTCODE_DISTRICTS == trust_districts
    assert in_trust_icb >= 4 and trust.POSTCODE_DISTRICTS == trust_districts


def test_cli_generate_providers_passes_its_options(monkeypatch, tmp_path):
    from mhsds_pipeline import cli
    from mhsds_pipeline.synthetic import provider_packages as gen_mod

    calls = []
    monkeypatch.setattr(gen_mod, "generate_providers", lambda out, **kw: calls.append((out, kw)) or {})
    argv = [
        "generate",
        "--providers",
        "3",
        "--total-scale",
        "0.5",
        "--period",
        PERIOD,
        "--out-dir",
        str(tmp_path),
    ]
    assert cli.main([*argv, "--workers", "2"]) == 0
    out, kw = calls[0]
    assert out == tmp_path and kw["providers"] == 3 and kw["total_scale"] == 0.5 and kw["workers"] == 2
    assert kw["period"] == PERIOD and kw["months"] == 1 and kw["seed"] == 42


def test_a_rerun_with_fewer_providers_drops_the_stale_synthetic_packages(tmp_path):
    from mhsds_pipeline.synthetic.provider_packages import _drop_stale

    for name in ("R1A", "Z0A", "Z0B", "RX4"):
        (tmp_path / name).mkdir()
    (tmp_path / f"Z0B{GROUND_TRUTH_SUFFIX}").write_text("")
    (tmp_path / SUMMARY_FILE).write_text("{}")
    _drop_stale(tmp_path, {"R1A", "Z0A"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R1A", "RX4", "Z0A", SUMMARY_FILE]
