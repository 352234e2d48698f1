"""Faults against the submission audit log with real packages built from the tiny fixture of
tests/unit/test_submission.py: every edit, deletion, truncation and re-chain is detected,
packaging refuses a broken log and touches nothing, and a crash between promoting a package
and writing its audit line is repaired, once, by the next packaging run."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from _fault_helpers import REPO, assert_no_nhs_number, assert_tree_unchanged, tree_snapshot

from mhsds_pipeline.submission import add_parser, audit
from mhsds_pipeline.submission.package import (
    MANIFEST_NAME,
    list_versions,
    package_period,
    read_manifest,
    verify_submissions,
)

pytestmark = pytest.mark.unit

pkgmod = importlib.import_module("mhsds_pipeline.submission.package")  # the module, not the function


def _load_fixtures():
    """tests/unit/test_submission.py's fixture and helpers (the fixture marts, publish())."""
    name = "submission_fixtures_for_audit_faults"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "unit" / "test_submission.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_fx = _load_fixtures()
env = _fx.env  # the fixture: (settings, marts, publish)
P, NHS_NUMBER, submissions = _fx.P, _fx.NHS_NUMBER, _fx.submissions

KEY = "fault-test-key-" + "x" * 32


class Crash(BaseException):
    """A process dying mid-way: not an Exception, so no handler tidies up after it."""


@pytest.fixture(autouse=True)
def audit_key(monkeypatch):
    monkeypatch.delenv(audit.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(audit.KEY_ENV, KEY)


@pytest.fixture
def built(env):
    """v001, an unchanged re-run and v002: a log of three keyed lines and two anchored packages."""
    settings, marts, publish = env
    package_period(settings, P, "pkg1")
    package_period(settings, P, "pkg2")
    correct_one_referral(marts)
    publish()
    package_period(settings, P, "pkg3")
    log_path = audit.audit_log_path(settings)
    assert [e["event"] for e in audit.read(log_path)] == [
        "package_created",
        "package_unchanged",
        "package_created",
    ]
    assert verify_submissions(settings).ok
    return settings, marts, publish, log_path


def correct_one_referral(marts) -> None:
    ref = marts["mhs101_referral"]
    reasons = ref.column("PrimReasonReferralMH").to_pylist()
    reasons[1] = "04" if reasons[1] != "04" else "05"
    marts["mhs101_referral"] = ref.set_column(
        ref.column_names.index("PrimReasonReferralMH"), "PrimReasonReferralMH", pa.array(reasons)
    )


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def edit(line: bytes, **changes) -> bytes:
    """Change fields of a line and write it back in canonical form, MAC untouched."""
    rec = json.loads(line)
    rec.update(changes)
    return audit.canonical(rec)


def report_of(settings) -> audit.VerifyReport:
    return verify_submissions(settings)


def first(settings) -> tuple[str, int | None]:
    f = report_of(settings).first
    return f.kind, f.seq


@pytest.fixture
def cli(env, monkeypatch, capsys):
    settings = env[0]
    monkeypatch.setattr("mhsds_pipeline.config.load_settings", lambda: settings)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> tuple[int, str, str]:
        ns = parser.parse_args(list(argv))
        code = ns.func(ns)
        out, err = capsys.readouterr()
        assert NHS_NUMBER not in out + err and "Servic-0" not in out + err  # no identifiers or keys
        assert KEY not in out + err
        assert_no_nhs_number(out, err)
        return code, out, err

    return run


# ------------------------------------------------------------------------ edits and deletions


def test_edit_of_the_last_line_is_detected(built, cli):
    settings, _, _, log_path = built
    lines = lines_of(log_path)
    lines[-1] = edit(lines[-1], run_id="someone-else")
    write_lines(log_path, lines)
    assert first(settings) == ("mac", 3)
    code, out, err = cli("audit", "verify")
    assert code == 1 and out == ""
    assert err.startswith("MHSDS audit log broken at seq 3, line 3: [mac]")


def test_edit_of_a_middle_line_is_detected(built):
    settings, _, _, log_path = built
    lines = lines_of(log_path)
    lines[1] = edit(lines[1], event="package_created")
    write_lines(log_path, lines)
    assert [(p.kind, p.seq) for p in report_of(settings).problems] == [("mac", 2)]


def test_deleted_middle_line_is_detected(built):
    settings, _, _, log_path = built
    lines = lines_of(log_path)
    del lines[1]
    write_lines(log_path, lines)
    found = report_of(settings).problems
    # v002's manifest anchored seq 2: the deleted line itself is named first
    assert [(p.kind, p.seq) for p in found] == [("anchor", 2), ("seq", 3), ("chain", 3)]
    assert "no such line" in found[0].message


def test_truncated_tail_is_detected_by_the_head_checkpoint(built, cli):
    settings, _, _, log_path = built
    write_lines(log_path, lines_of(log_path)[:-1])
    problems = report_of(settings).problems
    assert ("truncated", 3) in [(p.kind, p.seq) for p in problems]
    assert any(p.kind == "unrecorded" and "v002" in p.message for p in problems)
    code, _, err = cli("audit", "verify", "--period", str(P))
    assert code == 1 and "broken at seq 3: [truncated]" in err and "ends at seq 2" in err


def test_truncation_with_a_rolled_back_head_is_caught_by_the_manifest_anchor(env):
    """The attacker keeps a copy of audit_head.json from seq 1, cuts the log back to seq 1 and
    restores that copy: the head agrees with the log, but v002's manifest anchored seq 2."""
    settings, marts, publish = env
    package_period(settings, P, "pkg1")
    log_path = audit.audit_log_path(settings)
    old_head = audit.head_path(log_path).read_bytes()
    package_period(settings, P, "pkg2")
    correct_one_referral(marts)
    publish()
    v002 = package_period(settings, P, "pkg3")
    assert v002.manifest["audit_anchor"]["seq"] == 2

    write_lines(log_path, lines_of(log_path)[:1])
    audit.head_path(log_path).write_bytes(old_head)
    found = [(p.kind, p.seq) for p in report_of(settings).problems]
    assert ("truncated", 2) in found and "v002/submission_manifest.json" in str(report_of(settings).first)


def test_rechained_log_with_recomputed_plain_hashes_is_detected(built):
    """Edit line 2 and recompute every later 'mac' and 'prev_mac' as plain sha256, the head too:
    without the key the MACs cannot be recomputed."""
    settings, _, _, log_path = built
    recs = [json.loads(line) for line in lines_of(log_path)]
    recs[1]["run_id"] = "forged"
    out, prev = [], recs[0]["mac"]
    for i, rec in enumerate(recs):
        if i >= 1:
            rec["prev_mac"] = prev
            body = audit.canonical({k: v for k, v in rec.items() if k != "mac"})
            rec["mac"] = hashlib.sha256(body).hexdigest()
        prev = rec["mac"]
        out.append(audit.canonical(rec))
    write_lines(log_path, out)
    head = json.loads(audit.head_path(log_path).read_text())
    head["mac"] = prev
    audit.head_path(log_path).write_bytes(audit.canonical(head))
    found = [(p.kind, p.seq) for p in report_of(settings).problems]
    assert found[0] == ("mac", 2) and ("mac", 3) in found
    assert ("head", None) in found  # the head checkpoint's own MAC no longer verifies


def test_log_downgraded_to_the_unkeyed_scheme_is_detected(built):
    """Rewrite every line in the old format (plain prev_sha256 chain, no MAC) and delete the
    head checkpoint: the manifests still anchor keyed lines."""
    settings, _, _, log_path = built
    out, prev = [], audit.GENESIS
    for line in lines_of(log_path):
        rec = {k: v for k, v in json.loads(line).items() if k not in ("mac", "prev_mac", "scheme", "key_id")}
        rec["prev_sha256"] = prev
        out.append(audit.canonical(rec))
        prev = hashlib.sha256(out[-1]).hexdigest()
    write_lines(log_path, out)
    audit.head_path(log_path).unlink()
    report = report_of(settings)
    assert report.legacy == 3 and report.keyed == 0
    assert [p.kind for p in report.broken] == ["anchor"]  # v002 anchors keyed seq 2


def test_wrong_key_is_named_not_mistaken_for_an_edit(built, cli, monkeypatch):
    settings, _, _, log_path = built
    right = audit.load_key()
    monkeypatch.setenv(audit.KEY_ENV, "another-key-" + "y" * 32)
    found = report_of(settings).problems
    assert found[0].kind == "key" and found[0].seq == 1 and right.key_id in found[0].message
    code, _, err = cli("audit", "verify")
    assert code == 1 and "[key]" in err.splitlines()[0]
    code, _, err = cli("package", "--period", str(P))
    assert code == 1 and "failed verification" in err


def test_missing_key_refuses_and_no_new_key_is_made(env, monkeypatch, cli):
    settings = env[0]
    monkeypatch.delenv(audit.KEY_ENV)  # the embedded default: a generated key file
    package_period(settings, P, "pkg1")
    key_file = audit.default_key_path(settings.data_dir)
    assert key_file.is_file()
    key_file.unlink()
    before = tree_snapshot(settings.output_dir)
    with pytest.raises(audit.AuditKeyError, match="no longer configured"):
        package_period(settings, P, "pkg2")
    assert not key_file.exists()
    assert_tree_unchanged(settings.output_dir, before)
    code, _, err = cli("audit", "verify")
    assert code == 2 and "no audit log key" in err


# ------------------------------------------------------------------- packaging on a broken log


def test_packaging_refuses_a_broken_log_and_touches_nothing(built, cli):
    settings, marts, publish, log_path = built
    lines = lines_of(log_path)
    lines[0] = edit(lines[0], run_id="rewritten")
    write_lines(log_path, lines)
    correct_one_referral(marts)  # new content: without the refusal this would be v003
    publish()
    before = tree_snapshot(settings.output_dir)
    with pytest.raises(audit.AuditLogError, match="seq 1, line 1") as info:
        package_period(settings, P, "pkg4")
    assert info.value.problems[0].kind == "mac"
    assert_tree_unchanged(settings.output_dir, before)  # log, head, v001, v002, current: byte-identical
    assert [p.name for p in list_versions(submissions(settings))] == ["v001", "v002"]
    code, _, err = cli("package", "--period", str(P))
    assert code == 1 and "Nothing was appended or packaged" in err
    assert_tree_unchanged(settings.output_dir, before)


def test_edited_package_manifest_is_detected(built):
    settings, _, _, _ = built
    manifest = submissions(settings) / "v001" / MANIFEST_NAME
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"run_id": "pkg1"', '"run_id": "pkgX"'))
    found = report_of(settings).problems
    assert [(p.kind, p.seq) for p in found] == [("package", 1)]


# ------------------------------------------------------------------------------ crash repair


def crash_on(monkeypatch, target, name: str, when) -> None:
    real = getattr(target, name)

    def wrapper(*args, **kwargs):
        if when(*args, **kwargs):
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


@pytest.mark.parametrize("crash_point", ["before_current", "before_audit"])
def test_crash_after_promotion_is_repaired_once(env, monkeypatch, cli, crash_point):
    settings, marts, publish = env
    v001 = package_period(settings, P, "pkg1")
    log_path = audit.audit_log_path(settings)
    correct_one_referral(marts)
    publish()
    with monkeypatch.context() as m:
        if crash_point == "before_current":
            crash_on(m, pkgmod, "_point", lambda link, target: target.name == "v002")
        else:
            crash_on(m, audit, "append", lambda path, event, **kw: event == "package_created")
        with pytest.raises(Crash):
            package_period(settings, P, "pkg2")

    pdir = submissions(settings)
    assert [p.name for p in list_versions(pdir)] == ["v001", "v002"]  # promoted...
    assert [e["what"].get("version") for e in audit.read(log_path)] == ["v001"]  # ...not recorded
    expected_current = "v001" if crash_point == "before_current" else "v002"
    assert (pdir / "current").resolve().name == expected_current
    report = report_of(settings)
    assert report.broken == [] and not report.ok
    assert {p.kind for p in report.problems} == (
        {"unrecorded", "current"} if crash_point == "before_current" else {"unrecorded"}
    )
    code, _, err = cli("audit", "verify")
    assert code == 1 and "needs repair" in err and f"mhsds package --period {P}" in err

    repaired = package_period(settings, P, "pkg3")
    assert (repaired.status, repaired.version) == ("unchanged", "v002")
    assert (pdir / "current").resolve().name == "v002"
    assert any("v002" in r for r in repaired.repaired)
    assert ("current -> v002" in repaired.repaired) == (crash_point == "before_current")
    entries = audit.read(log_path)
    recovered = [e for e in entries if e["event"] == "package_created" and e["what"]["version"] == "v002"]
    assert len(recovered) == 1 and recovered[0]["what"]["recovered"] is True
    assert recovered[0]["what"]["original_run_id"] == "pkg2" and recovered[0]["run_id"] == "pkg3"
    v002_manifest = read_manifest(pdir / "v002")
    assert (
        recovered[0]["outputs"]["submission_manifest_sha256"]
        == hashlib.sha256((pdir / "v002" / MANIFEST_NAME).read_bytes()).hexdigest()
    )
    assert recovered[0]["outputs"]["content_sha256"] == v002_manifest["content_sha256"]
    assert v002_manifest["audit_anchor"]["seq"] == 1  # v001's line was the head when v002 was built
    assert verify_submissions(settings).ok
    assert cli("audit", "verify")[0] == 0

    # idempotent: another run writes no second entry and changes no package byte
    packages = {k: v for k, v in tree_snapshot(settings.output_dir).items() if "/v00" in k}
    again = package_period(settings, P, "pkg4")
    assert again.status == "unchanged" and again.repaired == []
    assert [e["event"] for e in audit.read(log_path)].count("package_created") == 2
    assert {k: v for k, v in tree_snapshot(settings.output_dir).items() if "/v00" in k} == packages
    assert verify_submissions(settings).ok and v001.path.is_dir()
