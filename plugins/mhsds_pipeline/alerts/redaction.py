"""Redaction of alert text, kept apart so that every sink and every description of a failure
goes through the same one rule about what may leave the process.

Alert text never carries patient identifiers: NHS-number-shaped numbers and URL passwords in
exception messages are redacted before anything is sent to a mailbox, a chat or the log.
"""

from __future__ import annotations

import re

_NHS_LIKE = re.compile(r"(?<![\d.])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d.])")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact(text: str) -> str:
    """Text safe to send to a mailbox or chat: no NHS-number-shaped numbers, no URL passwords."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _NHS_LIKE.sub("[redacted-10-digit]", text)
