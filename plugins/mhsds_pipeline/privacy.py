"""Privacy controls shared by every output: pseudonymised keys and disclosure control.

* Data-quality drill-downs, Data Docs and logs never carry a patient identifier or a record key
  in clear: :func:`pseudonymise` turns a key into a keyed hash (HMAC-SHA256 with the secret in
  ``MHSDS_PSEUDO_KEY``), stable within a trust so IG can ask data engineering to re-identify one
  row, meaningless outside it.
* Published counts follow MHSDS disclosure control (:func:`disclosure_control`): counts under 5
  are suppressed and the rest rounded to the nearest 5; rates are computed from the rounded
  counts and withheld when either part is suppressed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

log = logging.getLogger(__name__)

#: Used only when MHSDS_PSEUDO_KEY is unset (embedded demo); production sets the secret.
_DEMO_KEY = "mhsds-synthetic-demo-key"
_warned = False

SUPPRESSED = None  #: the value a suppressed count takes (null in Parquet, "*" in reports)
SUPPRESSION_MARK = "*"


def _secret() -> bytes:
    global _warned
    key = os.environ.get("MHSDS_PSEUDO_KEY")
    if not key:
        if not _warned:
            log.warning("MHSDS_PSEUDO_KEY is not set: pseudonymising with the demo key (synthetic data only)")
            _warned = True
        key = _DEMO_KEY
    return key.encode()


def pseudonymise(*parts: object) -> str:
    """A stable keyed pseudonym for a record key (one or more parts), e.g. ``pk_3f9a...``."""
    text = "|".join("" if p is None else str(p) for p in parts)
    digest = hmac.new(_secret(), text.encode(), hashlib.sha256).hexdigest()
    return "pk_" + digest[:16]


def round_to_5(n: int | float) -> int:
    """Round half up to the nearest 5 (MHSDS publications: 12 -> 10, 13 -> 15)."""
    return int((int(n) + 2) // 5 * 5)


def disclosure_control(n: int | float | None) -> int | None:
    """A count as it may be published: None (suppressed) under 5, else rounded to the nearest 5."""
    if n is None:
        return None
    if n < 5:
        return SUPPRESSED
    return round_to_5(n)


def controlled_rate(numerator: int | None, denominator: int | None, per: float = 100.0) -> float | None:
    """A rate from disclosure-controlled parts; None when either part is suppressed or zero."""
    num, den = disclosure_control(numerator), disclosure_control(denominator)
    if num is None or not den:
        return None
    return round(per * num / den, 1)
