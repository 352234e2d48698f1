"""v6 formats: the Python rule (formats.py) and the SQL the quality gate runs agree, value by value."""

from __future__ import annotations

import duckdb
import pytest

from mhsds_pipeline.formats import (
    escape_cell,
    icd10_is_valid,
    ods_code_problem,
    parse_format,
    safe_detail,
    spreadsheet_safe,
    unescape_cell,
)
from mhsds_pipeline.quality.rules import SqlContext, _format_fails

pytestmark = pytest.mark.unit

VALUES = [
    "R1A",
    "r1a",
    "R1",
    "RXY12",
    "RXY123",
    "WR5 2AB",
    "WR5\r\n2AB",
    "WR5\x1b2AB",
    "",
    "12",
    "1a",
    "x" * 30,
    "\u2028",
]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("an2", None),
        ("max an8", None),
        ("min an3 max an5", "ods"),
        ("min n6 max n18", None),
        ("max an20", None),
    ],
)
def test_sql_format_check_agrees_with_python(text, pattern):
    fmt = parse_format(text, "varchar", pattern)
    ctx = SqlContext(schema="s", rp_start=None, rp_end=None, org_id_provider="R1A", dialect="duckdb")
    pred = _format_fails("v", {"format": text, "data_type": "varchar", "pattern": pattern}, ctx)
    con = duckdb.connect()
    for value in VALUES:
        sql_fails = con.execute(f'SELECT {pred} FROM (SELECT ? AS "v") t', [value]).fetchone()[0]
        assert bool(sql_fails) == (not fmt.conforms(value)), (text, repr(value))


def test_parse_format_and_problems():
    assert parse_format("an2").problem("01") is None
    assert parse_format("an2").problem("1") == "shorter than 2"
    assert parse_format("max an8").problem("x" * 120_000) == "longer than 8"
    assert parse_format("max an8").problem("WR5\n2AB") == "control character or line break"
    assert parse_format("max n4", "integer").problem(-5) == "negative"
    with pytest.raises(ValueError):
        parse_format("eight characters")
    with pytest.raises(ValueError):
        parse_format(None, "varchar")


def test_ods_icd10_and_safe_detail():
    assert ods_code_problem("R1A") is None and ods_code_problem("not an org!'")
    assert icd10_is_valid("F32.1") and icd10_is_valid("F03") and not icd10_is_valid("low mood")
    assert "9434765919" not in safe_detail("9434765919") and "characters" in safe_detail("E" * 100)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "'q", "''", "plain", "", None])
def test_escape_is_reversible_and_spreadsheet_safe(value):
    escaped = escape_cell(value)
    assert unescape_cell(escaped) == value
    if value:
        assert escaped[0] not in "=+-@"
    assert spreadsheet_safe("=1") == "'=1" and spreadsheet_safe(3) == 3
