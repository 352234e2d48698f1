"""Portable SQL for the MHSDS value checks: NHS number, SNOMED CT identifier, coded score range.

The quality gate validates where the data lives, so each rule in
:mod:`mhsds_pipeline.identifiers` has a twin here: a SQLAlchemy Core boolean expression that
the warehouse evaluates row by row, with no UDF. The expressions must give the same answer on
DuckDB (the embedded default) and PostgreSQL (production), so they use only functions both
spell the same way: ``length``, ``substr``, ``strpos``, ``translate``, ``cast``, ``case``, ``%``.
There is no regular expression (DuckDB's ``regexp_matches`` and PostgreSQL's ``~`` differ);
"digits only" is ``translate(s, '0123456789', '') = ''``, which keeps any non-ASCII digit, as
the Python rule does.

Three properties the unit tests hold the expressions to:

* Same verdict as the Python oracle for every non-null value, judged on the value's text form
  (``CAST(x AS VARCHAR)``; :func:`as_text` is the Python side), so an SCTID held as BIGINT is
  checked like its string.
* Never NULL for a non-null input. Great Expectations counts a row as unexpected when
  ``NOT (condition)`` is true, and ``NOT NULL`` is not true, so a NULL verdict would silently
  pass a bad value.
* Never an error on dirty data. Digit characters become numbers through
  ``strpos('0123456789', ch) - 1`` (-1 for anything else, never a failed cast), and the one
  remaining cast (the score) only ever sees text already proven numeric. So a column of garbage
  cannot abort the whole validation, whatever order an engine evaluates sub-expressions in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from mhsds_pipeline.identifiers import DUMMY_NHS_NUMBERS, SCTID_PARTITIONS, sctid_is_valid

__all__ = [
    "DEFAULT_SCTID_PARTITIONS",
    "as_text",
    "in_value_set_expr",
    "nhs_number_valid_expr",
    "normalise_score_ranges",
    "normalise_value_set",
    "parse_integer_score",
    "score_in_tool_range",
    "score_in_tool_range_expr",
    "sctid_valid_expr",
]

#: Concept ids only (short 00, long 10): MHSDS SNOMED CT fields hold concepts, never
#: description or relationship ids. Same default as ``identifiers.sctid_is_valid``.
DEFAULT_SCTID_PARTITIONS: Final[tuple[str, ...]] = ("00", "10")

_DIGITS: Final[str] = "0123456789"

# Verhoeff tables flattened to strings so a lookup is one substr(): D[c][x] is character
# c*10 + x + 1 of _D_TABLE, P[r][x] character r*10 + x + 1 of _P_TABLE. Same tables as
# identifiers.py (dihedral group D5 and its permutation); the tests compare the two row by row.
_D_TABLE: Final[str] = (
    "0123456789123406789523401789563401289567401239567859876043216598710432765982104387659321049876543210"
)
_P_TABLE: Final[str] = "01234567891576283094580379614289160435279453126870428657390127938064157046913258"
_SCTID_MAX_LENGTH: Final[int] = 18
_SCTID_MIN_LENGTH: Final[int] = 6
#: Longest score body (digits without sign) we cast: fits a 32-bit INTEGER on both engines.
_SCORE_MAX_DIGITS: Final[int] = 9


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _str(value: str) -> ColumnElement[str]:
    """An inline SQL string literal (constants only: our tables and validated codes).

    Inline rather than bound so the pushed-down SQL reads as the rule it is in warehouse logs
    and in GX's unexpected-rows query, and so both drivers see the same statement.
    """
    return sa.literal_column("'" + value.replace("'", "''") + "'", sa.String)


def _int(value: int) -> ColumnElement[int]:
    return sa.literal_column(str(int(value)), sa.Integer)


def _text(column: ColumnElement) -> ColumnElement[str]:
    """The column as text: the rules judge a value's text form, whatever its storage type.

    GX hands metrics an untyped ``sa.column(name)``, so in practice this is always
    ``CAST(col AS VARCHAR)``: integers read as their digits on both engines (a leading zero
    is already gone), while a DOUBLE reads as ``22298006.0`` on DuckDB but ``22298006`` on
    PostgreSQL, so keep codes in text or integer columns.
    """
    if isinstance(column.type, sa.String):
        return column
    return sa.cast(column, sa.String)


def _is_digits(text: ColumnElement[str]) -> ColumnElement[bool]:
    """Only ASCII digits (the empty string included: pair it with a length check)."""
    return sa.func.translate(text, _str(_DIGITS), _str("")) == _str("")


def _digit_value(char: ColumnElement[str]) -> ColumnElement[int]:
    """0-9 for a digit character, -1 for anything else; cannot raise (unlike a cast)."""
    return sa.func.strpos(_str(_DIGITS), char) - _int(1)


def as_text(value: object) -> str:
    """A value's text form, as ``CAST(value AS VARCHAR)`` gives it in the warehouse.

    Used by the pandas implementations so they judge exactly what the SQL ones judge: strings
    as they are, an integer ``22298006`` as ``"22298006"``, a float ``12.0`` as ``"12.0"``.
    """
    return value if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------------------------
# NHS number
# --------------------------------------------------------------------------------------------


def nhs_number_valid_expr(column: ColumnElement) -> ColumnElement[bool]:
    """True when the column holds a usable NHS number (twin of ``identifiers.nhs_number_is_valid``).

    10 ASCII digits, not a repeated-digit dummy, and Modulus 11 correct. The Data Dictionary
    check (weights 10..2, check = 11 - sum mod 11, 11 -> 0, 10 -> no valid number) is the same
    as ``(sum of weighted first nine + last digit) mod 11 = 0``: the last digit must be
    ``-sum mod 11``, and when that is 10 no single digit satisfies it. One comparison instead
    of three branches, with the same verdict (the tests check it against the oracle).
    """
    s = _text(column)
    weighted = [_digit_value(sa.func.substr(s, _int(i), _int(1))) * _int(11 - i) for i in range(1, 10)]
    total = sum(weighted[1:], weighted[0]) + _digit_value(sa.func.substr(s, _int(10), _int(1)))
    well_formed = sa.and_(
        sa.func.length(s) == _int(10),
        _is_digits(s),
        s.not_in([_str(d) for d in sorted(DUMMY_NHS_NUMBERS)]),
    )
    return sa.case((well_formed, (total % _int(11)) == _int(0)), else_=sa.false())


# --------------------------------------------------------------------------------------------
# SNOMED CT identifier
# --------------------------------------------------------------------------------------------


def _check_partitions(allowed_partitions: Iterable[str]) -> tuple[str, ...]:
    partitions = tuple(allowed_partitions)
    unknown = [p for p in partitions if p not in SCTID_PARTITIONS]
    if unknown:
        raise ValueError(
            f"allowed_partitions {unknown!r} are not SNOMED CT partition identifiers; "
            f"use some of {sorted(SCTID_PARTITIONS)} (00 and 10 for concepts)."
        )
    return partitions


def _verhoeff_remainder(s: ColumnElement[str]) -> ColumnElement[int]:
    """The Verhoeff accumulator over ``s`` (0 when the check digit is right).

    Right to left, position i (0 = check digit): ``c = D[c][P[i mod 8][digit_i]]``. Instead of
    one CASE per string length (13 chains of 6-18 lookups, quadratic SQL text), every row runs
    the 18 steps of the longest SCTID and positions beyond the string's length use x = 0,
    which leaves c unchanged because D[c][0] = c. Each step mentions the previous one once, so
    the SQL grows linearly with the maximum length. Step 0 starts from c = 0, and
    D[0][P[0][d]] = d, so c after it is simply the check digit.
    """
    length = sa.func.length(s)
    c: ColumnElement[int] = _digit_value(sa.func.substr(s, length, _int(1)))
    for i in range(1, _SCTID_MAX_LENGTH):
        digit = _digit_value(sa.func.substr(s, length - _int(i), _int(1)))
        permuted = _digit_value(sa.func.substr(_str(_P_TABLE), _int((i % 8) * 10 + 1) + digit, _int(1)))
        x = sa.case((length > _int(i), permuted), else_=_int(0)) if i >= _SCTID_MIN_LENGTH else permuted
        c = _digit_value(sa.func.substr(_str(_D_TABLE), c * _int(10) + x + _int(1), _int(1)))
    return c


def sctid_valid_expr(
    column: ColumnElement, allowed_partitions: Iterable[str] = DEFAULT_SCTID_PARTITIONS
) -> ColumnElement[bool]:
    """True when the column holds a well-formed SCTID of an allowed kind (twin of ``sctid_is_valid``).

    6-18 ASCII digits, no leading zero, partition (2nd-3rd digits from the right) in
    ``allowed_partitions``, Verhoeff check digit right. Well-formed, not existing: membership
    of a release or value set is :func:`in_value_set_expr`. The Verhoeff steps sit behind the
    shape checks in a CASE so they only run on digit strings of a valid length.
    """
    partitions = _check_partitions(allowed_partitions)
    if not partitions:
        return sa.false()
    s = _text(column)
    length = sa.func.length(s)
    well_formed = sa.and_(
        length.between(_int(_SCTID_MIN_LENGTH), _int(_SCTID_MAX_LENGTH)),
        _is_digits(s),
        sa.func.substr(s, _int(1), _int(1)) != _str("0"),
        sa.func.substr(s, length - _int(2), _int(2)).in_([_str(p) for p in partitions]),
    )
    return sa.case((well_formed, _verhoeff_remainder(s) == _int(0)), else_=sa.false())


# --------------------------------------------------------------------------------------------
# SNOMED CT value set
# --------------------------------------------------------------------------------------------


def normalise_value_set(value_set: Iterable[object]) -> tuple[str, ...]:
    """Codes as sorted unique strings (ints accepted: SCTIDs are 64-bit integers too).

    Rejects members that are not SCTIDs of any partition, since a mistyped code in a value set
    would silently fail every row that uses the real code.
    """
    codes = {as_text(v) for v in value_set}
    bad = sorted(c for c in codes if not sctid_is_valid(c, allowed_partitions=tuple(SCTID_PARTITIONS)))
    if bad:
        raise ValueError(f"value set members are not valid SNOMED CT identifiers: {bad[:10]!r}")
    if not codes:
        raise ValueError("value set is empty: give at least one SNOMED CT concept id.")
    return tuple(sorted(codes))


def in_value_set_expr(column: ColumnElement, value_set: Iterable[object]) -> ColumnElement[bool]:
    """True when the column's text form is one of the codes (SQL ``IN``)."""
    return _text(column).in_([_str(c) for c in normalise_value_set(value_set)])


# --------------------------------------------------------------------------------------------
# Coded assessment score within the tool's range
# --------------------------------------------------------------------------------------------


def normalise_score_ranges(ranges: Mapping[object, Sequence[object]]) -> dict[str, tuple[int, int]]:
    """``{tool concept id: (min, max)}`` with string keys and integer bounds, or ValueError."""
    out: dict[str, tuple[int, int]] = {}
    for tool, bounds in ranges.items():
        if len(bounds) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise ValueError(f"score range for tool {tool!r} must be [min, max] integers, got {bounds!r}")
        low, high = bounds
        if low > high:
            raise ValueError(f"score range for tool {tool!r} has min {low} > max {high}")
        out[as_text(tool)] = (int(low), int(high))
    if not out:
        raise ValueError("ranges is empty: give at least one {tool concept id: [min, max]}.")
    return out


def parse_integer_score(value: object) -> int | None:
    """The integer a score's text form denotes, or None when it is not a whole number.

    Accepted: optional ``-``, 1-9 ASCII digits, optionally ``.`` and one or more zeros
    (``"12"``, ``"012"``, ``"12.0"``; a float column's 12.0 reads as ``"12.0"`` in DuckDB).
    Rejected: ``"12.5"``, ``"12."``, ``"+3"``, ``" 12"``, ``"abc"``, ``"1e3"``, ``""``.
    Python twin of the SQL in :func:`score_in_tool_range_expr`; keep them in step.
    """
    text = as_text(value)
    integer_part, dot, fraction = text.partition(".")
    if dot and (fraction == "" or fraction.strip("0") != ""):
        return None
    body = integer_part[1:] if integer_part.startswith("-") else integer_part
    if not 1 <= len(body) <= _SCORE_MAX_DIGITS or not body.isascii() or not body.isdigit():
        return None
    return int(integer_part)


def score_in_tool_range(tool: object, score: object, ranges: Mapping[object, Sequence[object]]) -> bool:
    """Python twin of :func:`score_in_tool_range_expr` for one (tool, score) pair.

    A missing (``None``) or unknown tool passes: the value-set check reports it. For a known
    tool the score must be a whole number (:func:`parse_integer_score`) within ``[min, max]``;
    a missing score fails.
    """
    bounds = normalise_score_ranges(ranges)
    tool_bounds = None if tool is None else bounds.get(as_text(tool))
    if tool_bounds is None:
        return True
    value = None if score is None else parse_integer_score(score)
    return value is not None and tool_bounds[0] <= value <= tool_bounds[1]


def score_in_tool_range_expr(
    tool_column: ColumnElement, score_column: ColumnElement, ranges: Mapping[object, Sequence[object]]
) -> ColumnElement[bool]:
    """True when the score is a whole number inside its tool's ``[min, max]`` (inclusive).

    Rows whose tool is missing or not in ``ranges`` pass: whether the tool code is allowed is
    the value set check's job (same split as the dbt test ``score_within_tool_range``). A
    missing score for a known tool fails (only reached with GX ``ignore_row_if="neither"``). The bounds are
    two CASEs keyed on the tool, so the SQL grows linearly with the number of tools.
    """
    bounds = normalise_score_ranges(ranges)
    tool = _text(tool_column)
    t = _text(score_column)
    dot = sa.func.strpos(t, _str("."))
    integer_part = sa.case((dot > _int(0), sa.func.substr(t, _int(1), dot - _int(1))), else_=t)
    fraction = sa.func.substr(t, dot + _int(1))
    body = sa.case(
        (sa.func.substr(integer_part, _int(1), _int(1)) == _str("-"), sa.func.substr(integer_part, _int(2))),
        else_=integer_part,
    )
    is_whole = sa.and_(
        sa.func.length(body).between(_int(1), _int(_SCORE_MAX_DIGITS)),
        _is_digits(body),
        sa.or_(
            dot == _int(0),
            sa.and_(
                sa.func.length(fraction) > _int(0),
                sa.func.translate(fraction, _str("0"), _str("")) == _str(""),
            ),
        ),
    )
    # The cast only ever sees proven digits ('0' otherwise), so it cannot fail on dirty data.
    value = sa.cast(sa.case((is_whole, integer_part), else_=_str("0")), sa.Integer)
    low = sa.case(*[(tool == _str(k), _int(lo)) for k, (lo, _) in bounds.items()])
    high = sa.case(*[(tool == _str(k), _int(hi)) for k, (_, hi) in bounds.items()])
    # Positive WHEN tests only: a NULL tool or score makes its test NULL, which falls through
    # to the next branch instead of turning the whole verdict NULL (which GX would not count).
    return sa.case(
        (sa.or_(tool.is_(None), tool.not_in([_str(k) for k in bounds])), sa.true()),
        (is_whole, value.between(low, high)),
        else_=sa.false(),
    )
