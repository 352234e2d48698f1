"""The portable SQL rules give the Python rules' verdict, value by value, on DuckDB and PostgreSQL.

Thousands of generated values (every single-digit slip and adjacent transposition of real
SCTIDs and NHS numbers, random digit strings of every length, junk text) are loaded into a
temporary table and judged by the warehouse; each verdict must equal ``identifiers.py``'s and
must never be NULL (GX would silently count a NULL verdict as a pass). No GX here: the
expressions are what the expectations push down.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import postgres_available

from mhsds_pipeline.identifiers import (
    DUMMY_NHS_NUMBERS,
    SCTID_PARTITIONS,
    nhs_number_check_digit,
    nhs_number_is_valid,
    sctid_is_valid,
    verhoeff_check_digit,
)
from mhsds_pipeline.quality import sql_identifiers as sqlx

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference"
PG_URL = "postgresql+psycopg2://{user}@127.0.0.1:5432/postgres".format(
    user=os.environ.get("MHSDS_PG_USER", "postgres")
)


def _seed_rows(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(newline="") as f:
        return list(csv.DictReader(f))


TOOLS = _seed_rows("ref_assessment_tools.csv")
SEED_SCTIDS = sorted({r["concept_id"] for r in TOOLS + _seed_rows("ref_snomed_intervention_valueset.csv")})
RANGES = {r["concept_id"]: [int(r["min_score"]), int(r["max_score"])] for r in TOOLS}
JUNK = ["", " ", "abc", "1e10", "-1", "+1", "0", "12.5", " 22298006", "22298006 ", "2229 8006", "\u0669" * 8]


# --------------------------------------------------------------------------------------------
# Generated values
# --------------------------------------------------------------------------------------------


def _slips(code: str) -> set[str]:
    """Every single-digit substitution and adjacent transposition of ``code``."""
    out = set()
    for i, ch in enumerate(code):
        out.update(code[:i] + d + code[i + 1 :] for d in "0123456789" if d != ch)
        if i + 1 < len(code):
            out.add(code[:i] + code[i + 1] + code[i] + code[i + 2 :])
    return out


def _sctid_values() -> list[str]:
    rnd = random.Random(2026)
    values = set(SEED_SCTIDS) | set(JUNK)
    for code in SEED_SCTIDS:
        values |= _slips(code) | {code[:-1], code + "0", "0" + code, "1" + code}
    for length in range(3, 21):  # bodies with a real partition and check digit, lengths 4-21
        for _ in range(12):
            body = str(rnd.randint(1, 9)) + "".join(rnd.choices("0123456789", k=length - 3))
            body += rnd.choice([*SCTID_PARTITIONS, "03", "99"])
            values.add(body + verhoeff_check_digit(body))
            values.add("".join(rnd.choices("0123456789", k=length)))
    return sorted(values)


def _nhs_values() -> list[str]:
    rnd = random.Random(11)
    valid = []
    while len(valid) < 40:
        body = "999" + "".join(rnd.choices("0123456789", k=6))
        check = nhs_number_check_digit(body)
        if check is not None:
            valid.append(body + str(check))
    values = set(valid) | DUMMY_NHS_NUMBERS | set(JUNK) | {"9434765919", "1234567890", "4010232137"}
    for number in valid[:10] + ["9434765919"]:
        values |= _slips(number) | {number[:-1], number + "0", number[:3] + " " + number[3:]}
    values |= {"".join(rnd.choices("0123456789", k=10)) for _ in range(400)}
    return sorted(values)


def _score_pairs() -> list[tuple[str | None, str | None]]:
    scores = [str(n) for n in range(-3, 105)] + [
        *("12.0 12.00 12. .5 12.5 -0 - -12 0012 +3 3 1e1 1234567890 999999999 99999999999".split()),
        " 3",
        "3 ",
        "",
        None,
    ]
    tools = [*RANGES, "22298006", None]
    return [(t, s) for t in tools for s in scores]


# --------------------------------------------------------------------------------------------
# Running an expression in the warehouse
# --------------------------------------------------------------------------------------------


@pytest.fixture(
    scope="module",
    params=[
        "duckdb",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not postgres_available(), reason="PostgreSQL is not reachable on 127.0.0.1:5432"
                ),
            ],
        ),
    ],
)
def engine(request) -> Iterator[sa.Engine]:
    engine = sa.create_engine("duckdb:///:memory:" if request.param == "duckdb" else PG_URL)
    yield engine
    engine.dispose()


def _judge(
    engine: sa.Engine,
    rows: list[dict[str, Any]],
    types: dict[str, sa.types.TypeEngine],
    rule: Callable[..., Any],
) -> list[Any]:
    """Load ``rows`` into a temporary table and return ``rule``'s verdict per row, in order.

    The rule gets untyped ``sa.column`` objects, exactly as GX hands them to a metric.
    """
    table = sa.Table(
        "judged",
        sa.MetaData(),
        sa.Column("row_id", sa.Integer),
        *(sa.Column(name, kind) for name, kind in types.items()),
        prefixes=["TEMPORARY"],
    )
    with engine.connect() as con:
        table.create(con)
        try:
            con.execute(table.insert(), [{"row_id": i, **row} for i, row in enumerate(rows)])
            verdict = rule(*(sa.column(name) for name in types))
            query = sa.select(sa.column("row_id"), verdict).select_from(table).order_by(sa.column("row_id"))
            return [v for _, v in con.execute(query).all()]
        finally:
            con.rollback()  # the table goes with the transaction, on both engines


def _assert_same(values: list[Any], got: list[Any], expected: list[bool]) -> None:
    assert None not in got, "a rule returned NULL for a non-null value"
    wrong = [(v, g, e) for v, g, e in zip(values, got, expected, strict=True) if bool(g) is not e]
    assert wrong == [], f"{len(wrong)} verdicts differ from identifiers.py, e.g. {wrong[:5]}"


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_verhoeff_tables_match_identifiers():
    """The flattened SQL tables are identifiers.py's D and P tables, row by row."""
    from mhsds_pipeline import identifiers

    assert sqlx._D_TABLE == "".join("".join(map(str, row)) for row in identifiers._VERHOEFF_D)
    assert sqlx._P_TABLE == "".join("".join(map(str, row)) for row in identifiers._VERHOEFF_P)


def test_nhs_number_text(engine):
    values = _nhs_values()
    assert sum(map(nhs_number_is_valid, values)) >= 40  # a fair share of good ones
    got = _judge(engine, [{"v": v} for v in values], {"v": sa.String}, sqlx.nhs_number_valid_expr)
    _assert_same(values, got, [nhs_number_is_valid(v) for v in values])


def test_nhs_number_bigint(engine):
    values = sorted({int(v) for v in _nhs_values() if v.isascii() and v.isdigit()})
    got = _judge(engine, [{"v": v} for v in values], {"v": sa.BigInteger}, sqlx.nhs_number_valid_expr)
    _assert_same(values, got, [nhs_number_is_valid(str(v)) for v in values])


@pytest.mark.parametrize("partitions", [("00", "10"), tuple(SCTID_PARTITIONS), ("16",)], ids="-".join)
def test_sctid_text(engine, partitions):
    values = _sctid_values()
    assert sum(sctid_is_valid(v, partitions) for v in values) >= 20
    got = _judge(
        engine, [{"v": v} for v in values], {"v": sa.String}, lambda c: sqlx.sctid_valid_expr(c, partitions)
    )
    _assert_same(values, got, [sctid_is_valid(v, partitions) for v in values])


def test_sctid_bigint(engine):
    values = sorted({int(v) for v in _sctid_values() if v.isascii() and v.isdigit() and int(v) < 2**63})
    got = _judge(engine, [{"v": v} for v in values], {"v": sa.BigInteger}, sqlx.sctid_valid_expr)
    _assert_same(values, got, [sctid_is_valid(str(v)) for v in values])


def test_value_set_membership(engine):
    value_set = SEED_SCTIDS[:5]
    values = [*SEED_SCTIDS, "0" + SEED_SCTIDS[0], SEED_SCTIDS[0] + " ", *JUNK]
    got = _judge(
        engine, [{"v": v} for v in values], {"v": sa.String}, lambda c: sqlx.in_value_set_expr(c, value_set)
    )
    _assert_same(values, got, [v in value_set for v in values])


def _score_oracle(tool: str | None, score: str | None) -> bool:
    """Unknown or missing tool passes (the value-set check's finding); otherwise a whole number in range."""
    bounds = sqlx.normalise_score_ranges(RANGES)
    if tool is None or tool not in bounds:
        return True
    parsed = None if score is None else sqlx.parse_integer_score(score)
    return parsed is not None and bounds[tool][0] <= parsed <= bounds[tool][1]


def test_score_within_tool_range_text(engine):
    pairs = _score_pairs()
    got = _judge(
        engine,
        [{"tool": t, "score": s} for t, s in pairs],
        {"tool": sa.String, "score": sa.String},
        lambda t, s: sqlx.score_in_tool_range_expr(t, s, RANGES),
    )
    _assert_same(pairs, got, [_score_oracle(t, s) for t, s in pairs])


def test_score_within_tool_range_integers(engine):
    pairs = [(int(t) if t else None, int(s)) for t, s in _score_pairs() if s and s.lstrip("-").isdigit()]
    pairs.append((int(next(iter(RANGES))), None))
    got = _judge(
        engine,
        [{"tool": t, "score": s} for t, s in pairs],
        {"tool": sa.BigInteger, "score": sa.BigInteger},
        lambda t, s: sqlx.score_in_tool_range_expr(t, s, RANGES),
    )
    expected = [_score_oracle(None if t is None else str(t), None if s is None else str(s)) for t, s in pairs]
    _assert_same(pairs, got, expected)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("012", 12), ("12.0", 12), ("12.000", 12), ("-3", -3), ("-0", 0), ("999999999", 999999999)],
)
def test_parse_integer_score_accepts(text, value):
    assert sqlx.parse_integer_score(text) == value


@pytest.mark.parametrize("text", ["12.5", "12.", ".5", "-", "", "+3", " 3", "3 ", "1e1", "abc", "1234567890"])
def test_parse_integer_score_rejects(text):
    assert sqlx.parse_integer_score(text) is None


def test_pushed_down_sql_has_no_bound_parameters():
    """Rule constants are inlined, so the SQL in warehouse logs and GX's index query reads as the rule."""
    column = sa.column("v")
    for expr in (
        sqlx.nhs_number_valid_expr(column),
        sqlx.sctid_valid_expr(column),
        sqlx.in_value_set_expr(column, SEED_SCTIDS),
        sqlx.score_in_tool_range_expr(column, sa.column("s"), RANGES),
    ):
        assert expr.compile().params == {}
