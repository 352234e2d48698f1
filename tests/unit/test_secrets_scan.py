"""No secrets and no NHS numbers in the repository (deploy/secrets_scan.py), and the scanner
itself finds what it should on planted examples. Every planted value is assembled at run time
so this file does not trip the scan it tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", REPO / "deploy" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


scan = _load("secrets_scan")

# Planted values (synthetic; assembled so no literal appears in this file).
NHS_VALID = "999" + "0000018"  # test range, passes the modulus 11 check
NHS_BAD_CHECK = "999" + "0000019"
AWS_KEY = "AKIA" + "Z" * 4 + "7" * 12
FERNET = "a" * 20 + "B" * 23 + "="
PEM = "-----BEGIN " + "RSA PRIVATE KEY" + "-----"


def _kinds(text: str, path: str = "x.py", **kw) -> list[str]:
    return [f.kind for f in scan.scan_text(text, path, **kw)]


def test_repository_has_no_secrets_and_no_nhs_numbers_outside_fixtures():
    findings = scan.scan_repo(REPO)
    assert findings == [], "Secrets or NHS numbers in the repository:\n" + "\n".join(map(str, findings))


def test_env_file_is_never_tracked_and_example_holds_no_values():
    tracked = scan.repo_files(REPO)
    assert ".env" not in tracked and ".env.example" in tracked
    for line in (REPO / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and any(w in name for w in ("PASSWORD", "SECRET", "KEY")):
            assert value == "", f".env.example must not carry a value for {name}"


def test_finds_each_kind_of_secret():
    assert _kinds(PEM) == ["private key"]
    assert _kinds(f"key_id = '{AWS_KEY}'") == ["AWS access key id"]
    assert _kinds("aws_secret_access_key = " + "Ab1/" * 10) == ["AWS secret access key"]
    assert _kinds("url = 'postgresql://mhsds:" + "hunter2" + "@warehouse-db:5432/w'") == ["password in URL"]
    assert _kinds(f"AIRFLOW__CORE__FERNET_KEY: {FERNET}", "compose.yml") == [
        "Fernet key",
        "literal AIRFLOW__CORE__FERNET_KEY",
    ]
    assert _kinds("MHSDS_PG_PASSWORD=" + "hunter2", ".env") == ["literal MHSDS_PG_PASSWORD"]
    assert _kinds("    password: " + "hunter2", "profiles.yml") == ["literal password"]


def test_interpolations_and_placeholders_are_not_secrets():
    ok = [
        ("MHSDS_PG_PASSWORD: ${MHSDS_PG_PASSWORD:?set in .env}", "docker-compose.yml"),
        ("password: \"{{ env_var('MHSDS_PG_PASSWORD', '') }}\"", "profiles.yml"),
        ("AIRFLOW__API_AUTH__JWT_SECRET=", ".env.example"),
        ("url: postgresql+psycopg2://airflow:${AIRFLOW_DB_PASSWORD}@airflow-db:5432/airflow", "c.yml"),
        ("rendered postgresql://epr_reader:***@clinical-db/epr", "x.py"),
        ('export MHSDS_PG_PASSWORD="$(cat /run/secrets/pg)"', "run.sh"),
        ("password = os.environ.get('MHSDS_PG_PASSWORD')", "x.py"),  # code, not config
    ]
    for text, path in ok:
        assert _kinds(text, path) == [], text


def test_findings_mask_the_secret():
    (finding,) = scan.scan_text("MHSDS_PG_PASSWORD=" + "hunter2", ".env")
    assert "hunter2" not in str(finding) and "[MASKED]" in finding.excerpt


def test_nhs_numbers():
    assert _kinds(f"patient {NHS_VALID} seen") == ["NHS number"]
    assert _kinds(f"patient {NHS_BAD_CHECK} seen") == ["NHS number"]  # any 999-range number
    spaced = f"{NHS_VALID[:3]} {NHS_VALID[3:6]} {NHS_VALID[6:]}"
    assert _kinds(f"nhs {spaced}") == ["NHS number"]
    assert _kinds("range 999 000 0000 to 999 999 9999") == []  # fails the check / repeated digits
    assert _kinds("9" * 10) == [] and _kinds(f"x{NHS_VALID}1") == [] and _kinds(f"1.{NHS_VALID}") == []
    assert _kinds(f"correlation_id=01a2083d-be17-7c50-8613-{NHS_VALID}dd") == []  # inside a UUID
    assert _kinds(f'{{"nhs_number": "{NHS_VALID}"}}') == ["NHS number"]
    assert _kinds(f"patient {NHS_VALID}", nhs=False) == []
    assert scan.nhs_check_digit_ok(NHS_VALID) and not scan.nhs_check_digit_ok(NHS_BAD_CHECK)


def test_repo_scan_allows_nhs_numbers_only_in_fixture_files(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "tests" / "fixtures").mkdir(parents=True)
    (tmp_path / "tests" / "fixtures" / "patients.csv").write_text(f"id,nhs\n1,{NHS_VALID}\n")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "debug.py").write_text(f"print('{NHS_VALID}')\n")
    (tmp_path / ".gitignore").write_text(".env\n")
    (tmp_path / ".env").write_text("MHSDS_PG_PASSWORD=" + "hunter2\n")  # ignored: not scanned
    git("add", "tests", ".gitignore")  # plugins/debug.py stays untracked: scanned all the same
    findings = scan.scan_repo(tmp_path)
    assert [(f.path, f.kind) for f in findings] == [("plugins/debug.py", "NHS number")]


def test_log_dir_scan(tmp_path):
    logs = tmp_path / "logs" / "dag_id=mhsds_monthly" / "run_id=x" / "task_id=extract"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text('{"event": "extracted 120 rows"}\n')
    findings, files = scan.scan_log_dir(tmp_path / "logs")
    assert (findings, files) == ([], 1)
    (logs / "attempt=2.log").write_text(f'{{"event": "bad row {NHS_VALID}"}}\n')
    findings, files = scan.scan_log_dir(tmp_path / "logs")
    assert files == 2 and [f.kind for f in findings] == ["NHS number"]
    assert NHS_VALID not in str(findings[0])
