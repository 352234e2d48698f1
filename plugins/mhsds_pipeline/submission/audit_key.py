"""The audit log's HMAC key: where it comes from (environment, a secret file, or a generated
key on the embedded set-up), its fingerprint (``key_id``) and the MAC it computes.

Kept apart from the chain so that the one module that touches the secret is small enough to
review on its own; ``repr`` and ``str`` of :class:`AuditKey` never show the secret. The key
sources, in order: ``MHSDS_AUDIT_KEY``, the file named by ``MHSDS_AUDIT_KEY_FILE`` (a
Docker/Kubernetes secret), else ``<data_dir>/secrets/audit_hmac.key`` (mode 0600, outside git).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

# The name the audit module always logged under (before the key moved to its own module).
log = logging.getLogger("mhsds_pipeline.submission.audit")

KEY_ENV = "MHSDS_AUDIT_KEY"
KEY_FILE_ENV = "MHSDS_AUDIT_KEY_FILE"
KEY_FILE_NAME = "audit_hmac.key"
MIN_KEY_CHARS = 32


# ---------------------------------------------------------------------------------------------
# Errors


class AuditError(RuntimeError):
    """The audit log cannot be trusted or written; nothing was appended."""


class AuditKeyError(AuditError):
    """No usable key. ``missing`` is True when none is configured at all."""

    def __init__(self, message: str, *, missing: bool = False):
        super().__init__(message)
        self.missing = missing


# ---------------------------------------------------------------------------------------------
# Key


@dataclass(frozen=True)
class AuditKey:
    """The HMAC key and where it came from. ``repr`` and ``str`` never show the secret."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        """A fingerprint that names the key in each line, so a wrong key is told from an edit."""
        return hashlib.sha256(b"mhsds-audit-key-id\0" + self.secret).hexdigest()[:16]

    def mac(self, domain: bytes, body: bytes) -> str:
        return hmac.new(self.secret, domain + b"\0" + body, hashlib.sha256).hexdigest()


def default_key_path(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from mhsds_pipeline.config import load_settings

        data_dir = load_settings().data_dir
    return Path(data_dir) / "secrets" / KEY_FILE_NAME


def _key_from_text(text: str, source: str) -> AuditKey:
    text = text.strip()
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"the audit key from {source} is shorter than {MIN_KEY_CHARS} characters; "
            "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return AuditKey(text.encode("utf-8"), source)


def _read_key_file(path: Path, source: str) -> AuditKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("audit key file %s is readable by group or others; chmod 600 it", path)
    return _key_from_text(text, source)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("generated a new audit log key at %s (embedded set-up; keep it, never commit it)", path)


def load_key(data_dir: Path | None = None, *, create: bool = False) -> AuditKey:
    """The audit key: ``MHSDS_AUDIT_KEY``, else the file ``MHSDS_AUDIT_KEY_FILE`` names, else
    ``<data_dir>/secrets/audit_hmac.key`` (generated when ``create`` and absent).

    Raises :class:`AuditKeyError` (``missing=True`` when nothing is configured)."""
    value = os.environ.get(KEY_ENV)
    if value:
        return _key_from_text(value, f"environment variable {KEY_ENV}")
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return _read_key_file(Path(named), f"{KEY_FILE_ENV} file {named}")
    path = default_key_path(data_dir)
    if not path.exists() and create:
        _create_key_file(path)
    if path.exists():
        return _read_key_file(path, f"key file {path}")
    raise AuditKeyError(
        f"no audit log key: set {KEY_ENV} or {KEY_FILE_ENV} (production: from the secrets store), "
        f"or restore {path} (embedded set-up)",
        missing=True,
    )
