"""The keyed audit log on its own: key resolution, the MAC chain, the head checkpoint, legacy
lines and ``mhsds audit verify``. Package-level faults are in tests/faults/test_audit_faults.py."""

from __future__ import annotations

import argparse
import hashlib
import json
import stat

import pytest

from mhsds_pipeline.submission import add_parser, audit

pytestmark = pytest.mark.unit

KEY = "k" * 40
OTHER_KEY = "o" * 40


@pytest.fixture(autouse=True)
def no_ambient_key(monkeypatch):
    """Tests choose their key; a developer's MHSDS_AUDIT_KEY must not leak in."""
    monkeypatch.delenv(audit.KEY_ENV, raising=False)
    monkeypatch.delenv(audit.KEY_FILE_ENV, raising=False)


@pytest.fixture
def key(monkeypatch) -> audit.AuditKey:
    monkeypatch.setenv(audit.KEY_ENV, KEY)
    return audit.load_key()


def write_log(tmp_path, key, n: int = 3):
    path = tmp_path / "submissions" / audit.AUDIT_LOG_NAME
    for i in range(n):
        audit.append(path, "package_created", run_id=f"r{i}", what={"period": "2024-04", "i": i}, key=key)
    return path


def problems(path, key, anchors=()) -> list[audit.Problem]:
    return audit.check_log(path, key, anchors).problems


# --------------------------------------------------------------------------------- key


def test_key_comes_from_the_environment_first(tmp_path, monkeypatch):
    key_file = tmp_path / "mounted_secret"
    key_file.write_text(OTHER_KEY + "\n")
    monkeypatch.setenv(audit.KEY_FILE_ENV, str(key_file))
    from_file = audit.load_key(tmp_path / "data")
    assert from_file.secret == OTHER_KEY.encode() and "mounted_secret" in from_file.source
    monkeypatch.setenv(audit.KEY_ENV, KEY)
    from_env = audit.load_key(tmp_path / "data")
    assert from_env.secret == KEY.encode() and audit.KEY_ENV in from_env.source
    assert from_env.key_id != from_file.key_id
    assert not (tmp_path / "data").exists()  # no default key made when one is configured


def test_default_key_is_generated_once_private_and_never_shown(tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(audit.AuditKeyError) as info:
        audit.load_key(data_dir)
    assert info.value.missing
    key = audit.load_key(data_dir, create=True)
    path = data_dir / "secrets" / audit.KEY_FILE_NAME
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key.secret) == 64
    assert audit.load_key(data_dir, create=True) == key  # read back, not regenerated
    secret = key.secret.decode()
    assert secret not in repr(key) and secret not in str(key) and secret not in key.key_id


def test_short_key_is_refused(monkeypatch):
    monkeypatch.setenv(audit.KEY_ENV, "too-short")
    with pytest.raises(audit.AuditKeyError, match="shorter than 32"):
        audit.load_key()


def test_a_keyed_log_never_gets_a_fresh_key(tmp_path):
    data_dir = tmp_path / "data"
    log_path = tmp_path / "submissions" / audit.AUDIT_LOG_NAME
    key = audit.key_for_append(log_path, data_dir)  # fresh log: the default key is generated
    audit.append(log_path, "package_created", run_id="r", what={}, key=key)
    (data_dir / "secrets" / audit.KEY_FILE_NAME).unlink()
    with pytest.raises(audit.AuditKeyError, match="no longer configured") as info:
        audit.key_for_append(log_path, data_dir)
    assert info.value.missing
    assert not (data_dir / "secrets" / audit.KEY_FILE_NAME).exists()


# ----------------------------------------------------------------------------- the chain


def test_lines_are_chained_by_mac_and_the_head_is_checkpointed(tmp_path, key):
    path = write_log(tmp_path, key)
    entries = audit.read(path)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_mac"] == audit.GENESIS
    assert [e["prev_mac"] for e in entries[1:]] == [e["mac"] for e in entries[:-1]]
    assert {e["key_id"] for e in entries} == {key.key_id}
    assert {e["scheme"] for e in entries} == {audit.SCHEME}
    head = json.loads(audit.head_path(path).read_text())
    assert (head["seq"], head["mac"]) == (3, entries[-1]["mac"])
    assert audit.head(path) == audit.Anchor("head", 3, entries[-1]["mac"], key.key_id)
    report = audit.check_log(path, key)
    assert report.ok and (report.lines, report.keyed, report.legacy, report.head_seq) == (3, 3, 0, 3)
    assert report.summary().startswith("audit log intact: 3 lines (3 keyed)")
    for text in (path.read_text(), audit.head_path(path).read_text(), report.summary()):
        assert KEY not in text


def test_the_mac_depends_on_the_key(tmp_path, key):
    path = write_log(tmp_path, key, n=1)
    wrong = audit.AuditKey(OTHER_KEY.encode(), "test")
    found = problems(path, wrong)
    assert found[0].kind == "key" and found[0].seq == 1
    assert key.key_id in found[0].message and wrong.key_id in found[0].message
    # same key id claimed, different secret: the MAC itself fails
    forged = audit.read(path)[0]
    forged["mac"] = audit._line_mac(wrong, forged)
    path.write_bytes(audit.canonical(forged) + b"\n")
    assert [p.kind for p in problems(path, key)][:1] == ["mac"]


def test_whitespace_only_edit_is_detected(tmp_path, key):
    path = write_log(tmp_path, key, n=2)
    lines = path.read_bytes().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]), sort_keys=True).encode()  # ", " and ": " separators
    path.write_bytes(b"\n".join(lines) + b"\n")
    found = problems(path, key)
    assert [(p.kind, p.seq) for p in found] == [("edited", 1)]


def test_torn_last_line_is_reported(tmp_path, key):
    path = write_log(tmp_path, key, n=2)
    path.write_bytes(path.read_bytes()[:-10])
    kinds = {p.kind for p in problems(path, key)}
    assert "torn" in kinds and "truncated" in kinds  # the head checkpoint still says seq 2


def test_unkeyed_line_after_keyed_lines_is_a_downgrade(tmp_path, key):
    path = write_log(tmp_path, key, n=2)
    last = path.read_bytes().splitlines()[-1]
    plain = {"seq": 3, "event": "package_created", "prev_sha256": hashlib.sha256(last).hexdigest()}
    with path.open("ab") as fh:
        fh.write(audit.canonical(plain) + b"\n")
    assert [(p.kind, p.seq) for p in problems(path, key)] == [("downgrade", 3)]


def test_anchors_catch_truncation_and_rewriting(tmp_path, key):
    path = write_log(tmp_path, key, n=3)
    macs = {e["seq"]: e["mac"] for e in audit.read(path)}
    assert problems(path, key, [audit.Anchor("m", 2, macs[2])]) == []
    found = problems(path, key, [audit.Anchor("manifest X", 5, "f" * 64)])
    assert [(p.kind, p.seq) for p in found] == [("truncated", 4)] and "manifest X" in found[0].message
    found = problems(path, key, [audit.Anchor("manifest Y", 2, "f" * 64)])
    assert [(p.kind, p.seq) for p in found] == [("anchor", 2)]


def test_head_checkpoint_missing_or_edited(tmp_path, key):
    path = write_log(tmp_path, key, n=2)
    head = audit.head_path(path)
    doc = json.loads(head.read_text())
    doc["seq"] = 1
    head.write_bytes(audit.canonical(doc))
    assert [p.kind for p in problems(path, key)] == ["head"]
    head.unlink()
    found = problems(path, key)
    assert [p.kind for p in found] == ["head"] and "missing" in found[0].message


def test_head_one_line_behind_is_a_crash_not_tampering(tmp_path, key):
    """A crash between writing a line and moving the checkpoint leaves the head one behind; the
    next append moves it on."""
    path = write_log(tmp_path, key, n=2)
    behind = audit.head_path(path).read_bytes()
    audit.append(path, "package_created", run_id="r", what={}, key=key)
    audit.head_path(path).write_bytes(behind)
    assert problems(path, key) == []
    audit.append(path, "package_created", run_id="r", what={}, key=key)
    assert json.loads(audit.head_path(path).read_text())["seq"] == 4 and problems(path, key) == []


def test_append_refuses_a_broken_log_and_writes_nothing(tmp_path, key):
    path = write_log(tmp_path, key, n=3)
    lines = path.read_bytes().splitlines()
    del lines[1]
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = (path.read_bytes(), audit.head_path(path).read_bytes())
    with pytest.raises(audit.AuditLogError, match="seq 3") as info:
        audit.append(path, "package_created", run_id="x", what={}, key=key)
    assert {p.kind for p in info.value.problems} >= {"seq", "chain"}
    assert (path.read_bytes(), audit.head_path(path).read_bytes()) == before


# ---------------------------------------------------------------------------- legacy logs


def legacy_log(path, n: int = 2) -> None:
    """Lines as the unkeyed scheme wrote them: seq plus the sha256 of the previous line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prev, out = audit.GENESIS, b""
    for i in range(1, n + 1):
        line = audit.canonical({"seq": i, "event": "package_created", "what": {}, "prev_sha256": prev})
        out += line + b"\n"
        prev = hashlib.sha256(line).hexdigest()
    path.write_bytes(out)


def test_legacy_lines_are_reported_and_sealed_by_the_first_keyed_line(tmp_path, key):
    path = tmp_path / "submissions" / audit.AUDIT_LOG_NAME
    legacy_log(path)
    report = audit.check_log(path, key)
    assert report.ok and (report.legacy, report.keyed) == (2, 0)
    assert "2 legacy unkeyed" in report.summary()

    prefix = path.read_bytes()
    record = audit.append(path, "package_created", run_id="r", what={}, key=key)
    assert record["seq"] == 3 and record["prev_mac"] == hashlib.sha256(prefix).hexdigest()
    assert audit.check_log(path, key).ok

    # an edit to a sealed legacy line, even with its plain chain recomputed, breaks the seal
    lines = path.read_bytes().splitlines()
    edited = json.loads(lines[1])
    edited["event"] = "package_unchanged"
    lines[1] = audit.canonical(edited)
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert [(p.kind, p.seq) for p in problems(path, key)] == [("chain", 3)]


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli(tmp_settings, monkeypatch):
    monkeypatch.setattr("mhsds_pipeline.config.load_settings", lambda: tmp_settings)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        ns = parser.parse_args(["audit", "verify", *argv])
        return ns.func(ns)

    return tmp_settings, run


def test_cli_audit_verify(cli, key, capsys, monkeypatch):
    settings, run = cli
    path = audit.audit_log_path(settings)
    for i in range(3):
        audit.append(path, "package_refused", run_id=f"r{i}", what={"period": "2024-04"}, key=key)
    assert run() == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("MHSDS audit log intact: 3 lines")
    assert run("--period", "2024-04") == 0
    assert capsys.readouterr().out.startswith("MHSDS 2024-04 audit log intact")

    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b"package_refused", b"package_created")
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert run() == 1
    err = capsys.readouterr().err
    assert "broken at seq 2, line 2: [mac]" in err.splitlines()[0]

    assert run("--period", "2024-13") == 2
    monkeypatch.delenv(audit.KEY_ENV)
    assert run() == 2
    assert "no audit log key" in capsys.readouterr().err


def test_cli_is_registered_beside_package():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    assert {"package", "audit"} <= set(sub.choices)
    with pytest.raises(SystemExit):
        parser.parse_args(["audit"])  # a subcommand is required
