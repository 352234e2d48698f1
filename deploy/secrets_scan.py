"""Scan the repository for secrets, and files (repo or Airflow logs) for NHS numbers.

Secrets: private keys, AWS access keys, passwords written into connection URLs, Fernet keys and
literal values assigned to password/secret/token settings in config files (``.env``-style,
YAML, INI, TOML, shell). Interpolations (``${VAR}``, ``{{ env_var(...) }}``) are fine: that is
how secrets are meant to arrive.

NHS numbers: every number in the NHS test range (999 followed by 7 digits) is synthetic, but a
synthetic identifier outside the fixtures still means code or logs are printing identifiers,
which the platform must never do. Allowed only in the fixture files listed in
``NHS_NUMBER_ALLOWED`` (add a file there in review, not to silence the scan). The data here is
synthetic, so the test range is what a leak would look like.

    python deploy/secrets_scan.py repo            # tracked and new (not ignored) files
    python deploy/secrets_scan.py logs DIR [...]  # NHS numbers in Airflow task logs
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Files that may hold synthetic NHS numbers: test fixtures and the identifier/expectation tests
#: that check known good and bad numbers.
NHS_NUMBER_ALLOWED = (
    "tests/fixtures/*",
    "tests/integration/test_dbt_project.py",
    "tests/unit/test_identifiers*.py",
    "tests/unit/test_*expectations*.py",
    # fault cases plant synthetic numbers as bait, to prove none reaches an error, log or report
    "tests/faults/test_*_faults.py",
)
#: Files never scanned (binary or generated).
SKIP_SUFFIXES = {
    ".parquet",
    ".duckdb",
    ".sqlite",
    ".db",
    ".png",
    ".jpg",
    ".gif",
    ".ico",
    ".pdf",
    ".xlsx",
    ".zip",
}

_BEGIN, _END = "-----BEGIN ", "-----"  # kept apart so this file does not match itself
SECRET_PATTERNS: dict[str, re.Pattern] = {
    "private key": re.compile(re.escape(_BEGIN) + r"(?:[A-Z0-9]+ )*PRIVATE KEY" + re.escape(_END)),
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    "AWS secret access key": re.compile(
        r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "password in URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"`]+:(?P<value>[^\s@/'\"`]+)@[\w.-]+"),
    "Fernet key": re.compile(r"(?i)fernet[\w\s\"':=]{0,40}?[=:]\s*['\"]?(?P<value>[A-Za-z0-9_-]{43}=)"),
}
#: ``NAME = value`` / ``NAME: value`` with a literal value, in config-like files only.
_SETTING = re.compile(
    r"(?i)^\s*(?:export\s+)?[\"']?(?P<name>[A-Z0-9_.-]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|FERNET_KEY|PRIVATE_KEY))"
    r"[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"'#]+)"
)
_CONFIG_SUFFIXES = {".env", ".yml", ".yaml", ".ini", ".cfg", ".toml", ".sh", ".conf", ".properties"}
#: Values that are placeholders or interpolations, not secrets.
_PLACEHOLDER = re.compile(r"^(?:\$|\{\{|%\(|<|\*+$|\.\.\.$|xxx|changeme$|\{)", re.IGNORECASE)

#: not inside a longer token (UUIDs, hashes, decimals, identifiers)
_NHS_TEST_RANGE = re.compile(r"(?<![\w.-])999(?:\d{7}|[ -]\d{3}[ -]\d{4})(?![\w.])")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    excerpt: str  # with the value masked: a report must not republish the secret

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


def nhs_check_digit_ok(digits: str) -> bool:
    """Modulus 11 check of a 10-digit NHS number (repeated-digit dummies are not numbers)."""
    if len(digits) != 10 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _mask(line: str, start: int, end: int) -> str:
    return (line[:start] + "[MASKED]" + line[end:]).strip()[:160]


def nhs_numbers_in(line: str) -> list[tuple[int, int]]:
    """Spans of NHS-test-range numbers: any contiguous ``999`` + 7 digits, and ``999 123 4567``
    (space or hyphen separated) when it passes the check digit. Repeated digits are dummies."""
    spans: list[tuple[int, int]] = []
    for m in _NHS_TEST_RANGE.finditer(line):
        digits = re.sub(r"\D", "", m.group(0))
        if len(set(digits)) == 1:
            continue
        if digits == m.group(0) or nhs_check_digit_ok(digits):
            spans.append(m.span())
    return spans


def scan_text(text: str, path: str, *, secrets: bool = True, nhs: bool = True) -> list[Finding]:
    findings: list[Finding] = []
    config_like = Path(path).suffix in _CONFIG_SUFFIXES or Path(path).name.startswith(".env")
    for lineno, line in enumerate(text.splitlines(), 1):
        if secrets:
            for kind, pattern in SECRET_PATTERNS.items():
                for m in pattern.finditer(line):
                    value = m.groupdict().get("value")
                    if value is not None and _PLACEHOLDER.match(value):
                        continue
                    span = m.span("value") if value is not None else m.span()
                    findings.append(Finding(path, lineno, kind, _mask(line, *span)))
            if config_like:
                m = _SETTING.match(line)
                if m and not _PLACEHOLDER.match(m["value"]):
                    findings.append(
                        Finding(path, lineno, f"literal {m['name']}", _mask(line, *m.span("value")))
                    )
        if nhs:
            for start, end in nhs_numbers_in(line):
                findings.append(Finding(path, lineno, "NHS number", _mask(line, start, end)))
    return findings


def repo_files(repo: Path = REPO) -> list[str]:
    """Tracked files plus new files git does not ignore (catches a secret before it is committed)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({p for p in out.split("\0") if p})


def _allowed(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, pat) for pat in patterns)


def scan_repo(repo: Path = REPO, nhs_allowed: Iterable[str] = NHS_NUMBER_ALLOWED) -> list[Finding]:
    nhs_allowed = tuple(nhs_allowed)
    findings: list[Finding] = []
    for rel in repo_files(repo):
        path = repo / rel
        if path.suffix.lower() in SKIP_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        findings += scan_text(text, rel, nhs=not _allowed(rel, nhs_allowed))
    return findings


def scan_log_dir(*roots: Path) -> tuple[list[Finding], int]:
    """NHS numbers in every file under the given Airflow log directories; returns the findings
    and how many files were read (so a caller can tell "clean" from "found no logs")."""
    findings: list[Finding] = []
    files = 0
    for root in roots:
        paths = [root] if Path(root).is_file() else sorted(p for p in Path(root).rglob("*") if p.is_file())
        for path in paths:
            files += 1
            text = path.read_text(encoding="utf-8", errors="replace")
            findings += scan_text(text, str(path), secrets=False, nhs=True)
    return findings, files


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["repo"]:
        findings = scan_repo()
    elif argv[:1] == ["logs"] and len(argv) > 1:
        findings, files = scan_log_dir(*map(Path, argv[1:]))
        print(f"{files} log files scanned")
    else:
        print(__doc__)
        return 2
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
