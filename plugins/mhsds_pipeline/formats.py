"""MHSDS v6 value formats, ODS organisation codes, and text that is safe to open in a spreadsheet.

Every published column declares its v6 format in the dbt contract
(``config.meta.format`` in ``dbt_project/models/marts/mhsds/_mhsds__models.yml``), written the
way the NHS Data Dictionary and the MHSDS Technical Output Specification write it:

=====================  ===================================================================
``an2``                exactly 2 characters
``max an20``           1 to 20 characters
``min an3 max an6``    3 to 6 characters
``n10``                exactly 10 digits (``max n4``, ``min n6 max n18`` likewise)
=====================  ===================================================================

"an" values may hold any printable character (addresses and names have spaces and
punctuation) but never a control character or line break (C0, DEL, C1, U+2028/U+2029): those
are what break a CSV row or an Access field. ``pattern: ods`` adds the ODS code shape (capital
letters and digits). Date, time and timestamp columns take their format from the contract type;
a value must have a four-digit year and, for times, whole seconds. Integer columns use ``n``.

This module is pure Python (no dependencies) so config, the rules compiler, the packager and
the generator share one definition. The SQL twin lives in :mod:`mhsds_pipeline.quality.rules`
(``format`` checks) and the unit tests hold the two to the same verdicts.

Spreadsheet safety: a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or CR) is a
formula to Excel and LibreOffice. :func:`spreadsheet_safe` prefixes such text with an
apostrophe for files people open (workbooks, CSVs); :func:`escape_cell` / :func:`unescape_cell`
do the same reversibly (a leading apostrophe is doubled) for the submission CSVs, which must load
back to exactly the values that were built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Final

__all__ = [
    "CONTROL_CHARS",
    "FORMULA_PREFIXES",
    "ODS_PATTERN",
    "ValueFormat",
    "escape_cell",
    "has_control_chars",
    "icd10_is_valid",
    "is_formula_like",
    "ods_code_problem",
    "parse_format",
    "safe_detail",
    "spreadsheet_safe",
    "unescape_cell",
]

#: C0 controls (CR, LF, TAB, ESC, NUL ...), DEL, C1 controls and the Unicode line/paragraph
#: separators: never allowed in a submitted value.
CONTROL_CHARS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

#: Characters that make a spreadsheet cell a formula (OWASP CSV injection), plus TAB and CR.
FORMULA_PREFIXES: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")

#: ODS organisation code shape: capital letters and digits (the length comes from the format).
ODS_PATTERN: Final = re.compile(r"^[A-Z0-9]+$")

#: ICD-10 code as MHSDS carries it: letter, two digits, then optionally a dot and up to four
#: characters ("F32.1", "F329", "F03", "F32X"). Free text never matches.
ICD10_PATTERN: Final = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?$")

_FORMAT = re.compile(
    r"^\s*(?:(?:min\s+(?P<kind1>an|n)(?P<min>\d+)\s+)?max\s+(?P<kind2>an|n)(?P<max>\d+)|(?P<kind3>an|n)(?P<exact>\d+))\s*$"
)
_TYPED = {"date", "time", "timestamp"}
_PATTERNS: Final[dict[str, re.Pattern]] = {"ods": ODS_PATTERN}


@dataclass(frozen=True)
class ValueFormat:
    """One column's v6 format. ``kind`` is ``an`` (characters), ``n`` (digits) or the contract
    type for ``date`` / ``time`` / ``timestamp`` columns."""

    kind: str
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # a name in _PATTERNS ("ods"), or None
    text: str = ""

    def problem(self, value: object) -> str | None:
        """Why ``value`` breaks the format (None when it conforms; NULL always conforms)."""
        if value is None:
            return None
        if self.kind in _TYPED:
            return _typed_problem(self.kind, value)
        if isinstance(value, bool):
            return "not text"
        if self.kind == "n" and isinstance(value, int):
            if value < 0:
                return "negative"
            value = str(value)
        if not isinstance(value, str):
            return "not text"
        if CONTROL_CHARS.search(value):
            return "control character or line break"
        if self.kind == "n" and not (value.isascii() and value.isdigit()):
            return "not all digits"
        n = len(value)
        if self.min_length is not None and n < self.min_length:
            return f"shorter than {self.min_length}"
        if self.max_length is not None and n > self.max_length:
            return f"longer than {self.max_length}"
        if self.pattern and not _PATTERNS[self.pattern].match(value):
            return f"not an {self.pattern.upper()} code"
        return None

    def conforms(self, value: object) -> bool:
        return self.problem(value) is None


def _typed_problem(kind: str, value: object) -> str | None:
    if kind == "date" and isinstance(value, date):
        return None if 1 <= value.year <= 9999 else "year out of range"
    if kind in ("timestamp", "time") and isinstance(value, datetime | time):
        if isinstance(value, datetime) and not 1 <= value.year <= 9999:
            return "year out of range"
        return "fraction of a second" if value.microsecond else None
    return f"not a {kind}"


def parse_format(text: str | None, data_type: str = "varchar", pattern: str | None = None) -> ValueFormat:
    """The format a contract column declares. Date/time/timestamp columns need no text; every
    other column must declare one (a contract without a format is a catalogue error)."""
    base = data_type.strip().lower().split("(")[0]
    if base in _TYPED:
        return ValueFormat(
            kind=base, text={"date": "CCYY-MM-DD", "time": "hh:mm:ss"}.get(base, "CCYY-MM-DDThh:mm:ss")
        )
    if not text:
        raise ValueError(f"no v6 format declared for a {data_type} column")
    m = _FORMAT.match(text)
    if not m:
        raise ValueError(
            f"unreadable v6 format {text!r} (expected e.g. 'an2', 'max an20', 'min an3 max an6')"
        )
    if pattern is not None and pattern not in _PATTERNS:
        raise ValueError(f"unknown format pattern {pattern!r} (known: {sorted(_PATTERNS)})")
    if m.group("exact"):
        n = int(m.group("exact"))
        kind, lo, hi = m.group("kind3"), n, n
    else:
        kind = m.group("kind2")
        if m.group("kind1") and m.group("kind1") != kind:
            raise ValueError(f"v6 format {text!r} mixes an and n")
        lo, hi = (int(m.group("min")) if m.group("min") else 1), int(m.group("max"))
    return ValueFormat(kind=kind, min_length=lo, max_length=hi, pattern=pattern, text=text.strip())


def has_control_chars(value: str) -> bool:
    return bool(CONTROL_CHARS.search(value))


def icd10_is_valid(value: object) -> bool:
    return isinstance(value, str) and bool(ICD10_PATTERN.match(value))


# ---------------------------------------------------------------------------------------------
# ODS organisation codes (configuration)

#: OrgIDProvider is 3 to 5 characters (NHS England's validation library, mhsds.md 5.4);
#: OrgIDSubmit 3 to 6 ("min an3 max an6", mhsds.md 3.13). The contracts declare the same.
PROVIDER_FORMAT: Final = parse_format("min an3 max an5", pattern="ods")
SUBMITTER_FORMAT: Final = parse_format("min an3 max an6", pattern="ods")


def ods_code_problem(value: object, fmt: ValueFormat = SUBMITTER_FORMAT) -> str | None:
    """Why ``value`` is not an ODS organisation code (None when it is one)."""
    if not isinstance(value, str) or not value:
        return "blank"
    return fmt.problem(value)


def safe_detail(value: object, limit: int = 24) -> str:
    """A value for an error message: control characters shown escaped, long values cut, and
    any run of 10 or more digits hidden (it could be an NHS number)."""
    text = str(value)
    shown = repr(text[:limit]) + (f"... ({len(text)} characters)" if len(text) > limit else "")
    return re.sub(r"\d{10,}", "<digits hidden>", shown)


# ---------------------------------------------------------------------------------------------
# Spreadsheet safety


def is_formula_like(text: object) -> bool:
    return isinstance(text, str) and text.startswith(FORMULA_PREFIXES)


def spreadsheet_safe(value: object) -> object:
    """For files people open (Excel workbooks, report tables): text a spreadsheet would run as
    a formula gets a leading apostrophe; anything else is returned unchanged."""
    return "'" + value if is_formula_like(value) else value


def escape_cell(text: str | None) -> str | None:
    """Reversible form of :func:`spreadsheet_safe` for the submission CSVs: a formula-like value
    and a value that already starts with an apostrophe get one more leading apostrophe."""
    if text is None:
        return None
    return "'" + text if (text.startswith("'") or is_formula_like(text)) else text


def unescape_cell(text: str | None) -> str | None:
    """Inverse of :func:`escape_cell`."""
    if text is None or not text.startswith("'"):
        return text
    return text[1:]
