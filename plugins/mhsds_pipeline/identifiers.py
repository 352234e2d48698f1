"""Validators for the identifiers MHSDS checks: NHS number, SNOMED CT identifier, postcode.

Pure Python with no dependencies, so the same functions serve the synthetic EPR generator (to
make clean values and to plant defects that are provably defective), the unit tests, and later
Great Expectations custom expectations (which call them row by row). Every function accepts
anything and returns ``False``/``None`` for values of the wrong type rather than raising, because
a quality check must report a bad value, not crash on it.

Sources (digests in /work/shared/reference): NHS Data Dictionary NHS NUMBER Modulus 11
(dqmi_snomed.md B4), SNOMED CT identifier rules and the Verhoeff check (dqmi_snomed.md B1) and
NHS England's postcode pattern (mhsds.md 5.4).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFAULT_POSTCODES",
    "DUMMY_NHS_NUMBERS",
    "SCTID_PARTITIONS",
    "is_default_postcode",
    "nhs_number_check_digit",
    "nhs_number_is_valid",
    "normalise_postcode",
    "postcode_is_valid",
    "sctid_is_valid",
    "sctid_partition",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]

# --------------------------------------------------------------------------------------------
# NHS number
# --------------------------------------------------------------------------------------------

#: Repeated-digit numbers. Several of them (0000000000, 1111111111, 9999999999 ...) pass
#: Modulus 11, yet they are keyed as placeholders, never issued to a person, so a check that
#: only did the arithmetic would count them as good data.
DUMMY_NHS_NUMBERS: Final[frozenset[str]] = frozenset(str(d) * 10 for d in range(10))

_NHS_WEIGHTS: Final[tuple[int, ...]] = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_SEPARATORS = re.compile(r"[\s-]")


def nhs_number_check_digit(first9: str) -> int | None:
    """The Modulus 11 check digit for the first nine digits of an NHS number.

    Data Dictionary algorithm: weight digits 1-9 by 10..2, sum, take the remainder mod 11;
    check = 11 - remainder, with 11 -> 0. A result of 10 means no NHS number can be formed
    from these nine digits: ``None`` is returned so callers (e.g. the generator) skip them
    instead of inventing a digit.
    """
    if not isinstance(first9, str) or len(first9) != 9 or not first9.isascii() or not first9.isdigit():
        return None
    total = sum(int(c) * w for c, w in zip(first9, _NHS_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_number_is_valid(s: object, *, allow_separators: bool = False) -> bool:
    """True when ``s`` is a usable NHS number: 10 digits, Modulus 11 correct, not a dummy.

    Strict by default: MHSDS carries the number as 10 bare digits and a value with spaces is a
    format failure (rule MHS00165), so ``"943 476 5919"`` is only accepted with
    ``allow_separators=True`` (for numbers typed by people, e.g. in a UI). Non-strings (including
    ints, which would silently lose a leading zero) are invalid.
    """
    if not isinstance(s, str):
        return False
    if allow_separators:
        s = _SEPARATORS.sub("", s)
    if len(s) != 10 or not s.isascii() or not s.isdigit():
        return False
    if s in DUMMY_NHS_NUMBERS:
        return False
    check = nhs_number_check_digit(s[:9])
    return check is not None and check == int(s[9])


# --------------------------------------------------------------------------------------------
# SNOMED CT identifiers (SCTID)
# --------------------------------------------------------------------------------------------

# Verhoeff (dihedral group D5) tables: multiplication d, permutation p, inverse inv.
_VERHOEFF_D: Final[tuple[tuple[int, ...], ...]] = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P: Final[tuple[tuple[int, ...], ...]] = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INV: Final[tuple[int, ...]] = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

#: SCTID partition identifiers (2nd and 3rd digits from the right). Everything else is reserved,
#: so a code with another partition cannot be a SNOMED CT identifier at all.
SCTID_PARTITIONS: Final[dict[str, str]] = {
    "00": "concept (short format)",
    "01": "description (short format)",
    "02": "relationship (short format)",
    "10": "concept (long format, extension namespace)",
    "11": "description (long format)",
    "12": "relationship (long format)",
    "16": "postcoordinated expression (long format)",
}


def _is_digits(s: object) -> bool:
    return isinstance(s, str) and s.isascii() and s.isdigit()


def verhoeff_check_digit(body: str) -> str:
    """The Verhoeff check digit to append to the digit string ``body``.

    SNOMED CT uses Verhoeff rather than Modulus 11 because it catches every single-digit error
    and every adjacent transposition, the typical keying slips in long numeric codes.
    Raises ``ValueError`` for a non-digit body (a generator bug, not a data-quality finding).
    """
    if not _is_digits(body):
        raise ValueError(f"Verhoeff body must be a non-empty digit string, got {body!r}")
    c = 0
    for i, ch in enumerate(reversed(body)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return str(_VERHOEFF_INV[c])


def verhoeff_is_valid(s: object) -> bool:
    """True when the last digit of ``s`` is the Verhoeff check digit of the rest."""
    if not _is_digits(s) or len(s) < 2:
        return False
    c = 0
    for i, ch in enumerate(reversed(s)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def sctid_partition(s: object) -> str | None:
    """The partition identifier of an SCTID-shaped string (2nd-3rd digits from the right).

    ``None`` when ``s`` is not a digit string long enough to hold a partition and check digit.
    """
    if not _is_digits(s) or len(s) < 3:
        return None
    return s[-3:-1]


def sctid_is_valid(s: object, allowed_partitions: tuple[str, ...] | frozenset[str] = ("00", "10")) -> bool:
    """True when ``s`` is a well-formed SNOMED CT identifier of an allowed kind.

    Checks, in the order SNOMED International lists them: 6-18 digits, no leading zero, a
    partition in ``allowed_partitions`` (default concepts only, short 00 and long 10, because
    MHSDS procedure/tool/diagnosis fields must hold concept ids, not description ids), and the
    Verhoeff check digit. Well-formed is not the same as existing: membership of a value set or
    release is a separate check against reference data.
    """
    if not _is_digits(s) or not 6 <= len(s) <= 18 or s[0] == "0":
        return False
    if sctid_partition(s) not in allowed_partitions:
        return False
    return verhoeff_is_valid(s)


# --------------------------------------------------------------------------------------------
# Postcodes
# --------------------------------------------------------------------------------------------

#: NHS England's postcode pattern (mhsds.md 5.4): outward code, one space, inward code.
_POSTCODE_RE: Final[re.Pattern[str]] = re.compile(r"\A[a-zA-Z]{1,2}\d([a-zA-Z]?|\d?)\s\d[a-zA-Z]{2}\Z")
_WHITESPACE = re.compile(r"\s+")

#: ZZ99 pseudo-postcodes the NHS uses when the usual address is unknown or not in a UK postcode
#: area. They match the postcode *pattern*, so pattern validity alone would count them as good
#: addresses; the DQMI treats any value starting ``ZZ99`` as a default (dqmi_snomed.md A2.3).
DEFAULT_POSTCODES: Final[dict[str, str]] = {
    "ZZ99 3VZ": "No fixed abode",
    "ZZ99 3WZ": "Address not known",
    "ZZ99 3CZ": "England, not otherwise specified",
    "ZZ99 3GZ": "Wales, not otherwise specified",
    "ZZ99 1WZ": "Scotland, not otherwise specified",
    "ZZ99 2WZ": "Northern Ireland, not otherwise specified",
}


def normalise_postcode(s: object) -> str | None:
    """Trim, upper-case and collapse internal whitespace to one space; ``None`` if not a string.

    Deliberately does *not* insert a missing space: ``"WR12AB"`` stays invalid, since guessing
    where the outward code ends would hide a keying error.
    """
    if not isinstance(s, str):
        return None
    return _WHITESPACE.sub(" ", s.strip()).upper()


def postcode_is_valid(s: object) -> bool:
    """True when ``s`` (after normalising) matches the UK postcode pattern.

    Pattern only: a ZZ99 pseudo-postcode passes here and must be caught with
    :func:`is_default_postcode`, because MHSDS scores the two differently (pattern failure is a
    Severity-1 warning, a default is a DQMI "default" value).
    """
    norm = normalise_postcode(s)
    return norm is not None and _POSTCODE_RE.match(norm) is not None


def is_default_postcode(s: object) -> bool:
    """True for a ZZ99 pseudo-postcode (any ``ZZ99`` outward code, listed in DEFAULT_POSTCODES or not)."""
    norm = normalise_postcode(s)
    return norm is not None and (norm in DEFAULT_POSTCODES or norm.startswith("ZZ99"))
