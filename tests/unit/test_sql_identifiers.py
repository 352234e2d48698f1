"""The SQL value checks give the Python checks' verdict, on DuckDB and PostgreSQL.

Two layers:

* ``EDGE_CASES``: the one table of edge cases for the identifier checks (NHS number, SCTID,
  coded score range), each with the verdict NHS Digital's definitions give
  (``/work/shared/reference/dqmi_snomed.md`` B1 and B4). Every row is judged by the Python
  function, by the SQL expression on DuckDB (in memory) and by the same expression on
  PostgreSQL (a table in a scratch schema, rolled back); all three must equal the table.
  Other test files do not keep their own edge-case lists for these checks.
* Generated values: thousands of values (every single-digit slip and adjacent transposition of
  real SCTIDs and NHS numbers, random digit strings of every length, junk text) loaded into a
  temporary table; each warehouse verdict must equal ``identifiers.py``'s.

Either way a SQL verdict must never be NULL (GX would silently count a NULL verdict as a
pass). No GX here: the expressions are what the expectations push down.
"""

from __future__ import annotations

import csv
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    sctid_partition,
    verhoeff_check_digit,
    verhoeff_is_valid,
)
from mhsds_pipeline.quality import sql_identifiers as sqlx

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference"
PG_URL = "postgresql+psycopg2://{user}@127.0.0.1:5432/postgres".format(
    user=os.environ.get("MHSDS_PG_USER", "postgres")
)
PG_UNREACHABLE = "PostgreSQL is not reachable on 127.0.0.1:5432"


# --------------------------------------------------------------------------------------------
# The edge-case table: Python, DuckDB and PostgreSQL must all give the written verdict
# --------------------------------------------------------------------------------------------

CONCEPTS = ("00", "10")  # the default allowed partitions: concept ids only
#: Score ranges for the table, written out so the expected verdicts do not move with the seeds
#: (PHQ-9 and GAD-7, as in ref_assessment_tools.csv).
TABLE_RANGES = {"720433000": [0, 27], "445455005": [0, 21]}
PHQ9 = "720433000"
ALL_KINDS = tuple(sorted(SCTID_PARTITIONS))  # every partition SNOMED CT defines


def _with_verhoeff(body: str) -> str:
    return body + verhoeff_check_digit(body)


@dataclass(frozen=True)
class Case:
    check: str  # "nhs", "sctid" or "score"
    value: str | None  # the NHS number, SCTID or score, as stored (text)
    expected: bool
    partitions: tuple[str, ...] = CONCEPTS  # sctid only
    tool: str | None = None  # score only


def _nhs(value: str | None, expected: bool, id: str) -> Any:
    return pytest.param(Case("nhs", value, expected), id=f"nhs-{id}")


def _sctid(value: str | None, expected: bool, id: str, partitions: tuple[str, ...] = CONCEPTS) -> Any:
    return pytest.param(Case("sctid", value, expected, partitions), id=f"sctid-{id}")


def _score(tool: str | None, score: str | None, expected: bool, id: str) -> Any:
    return pytest.param(Case("score", score, expected, tool=tool), id=f"score-{id}")


# Check-digit arithmetic behind the NHS rows (Data Dictionary Modulus 11, weights 10..2,
# check = 11 - sum mod 11, 11 -> 0, 10 -> no valid number):
#   943476591: sum 299, mod 11 = 2, check 9 (the Data Dictionary's worked example 9434765919);
#   999001000: sum 248, mod 11 = 6, check 5;
#   999000000: sum 243, mod 11 = 1, check 10, so no 10th digit makes a valid number (same for 999000014);
#   999000005: sum 253, mod 11 = 0, check 11, written as 0 (same for 999000019).
EDGE_CASES = [
    # --- NHS number (stored value: 10 bare ASCII digits; Modulus 11; repeated-digit dummies out)
    _nhs("943" + "4765919", True, "dd-worked-example"),
    _nhs("999" + "0010005", True, "999-test-range-valid"),
    _nhs("999" + "0010013", True, "999-test-range-valid-2"),
    _nhs("943" + "4765918", False, "wrong-check-digit"),
    _nhs("999" + "0010006", False, "999-wrong-check-digit"),
    _nhs("943" + "4765991", False, "adjacent-transposition"),
    _nhs("999" + "0000000", False, "check-value-10-last-0"),
    _nhs("999" + "0000001", False, "check-value-10-last-1"),
    _nhs("999" + "0000140", False, "check-value-10-other-body"),
    _nhs("999" + "0000050", True, "check-value-11-is-0"),
    _nhs("999" + "0000190", True, "check-value-11-is-0-other-body"),
    _nhs("999" + "0000051", False, "check-value-11-but-last-1"),
    *(_nhs(str(d) * 10, False, f"dummy-{d}x10") for d in range(10)),
    _nhs("401" + "0232137", True, "passes-mod11-not-a-listed-dummy"),
    _nhs("012" + "3400007", True, "leading-zero-chi-range"),
    _nhs("123" + "4567890", False, "1234567890-fails-mod11"),
    _nhs("943476591", False, "9-digits"),
    _nhs("94347659190", False, "11-digits"),
    _nhs("94347659A9", False, "letter"),
    _nhs("ABCDEFGHIJ", False, "all-letters"),
    _nhs("943 476 5919", False, "spaces-as-typed"),
    _nhs("943-476-5919", False, "hyphens-as-typed"),
    _nhs("94347 65919", False, "space-inside-11-chars"),
    _nhs(" 9434765919", False, "leading-space"),
    _nhs("9434765919 ", False, "trailing-space"),
    _nhs("9434765919\n", False, "trailing-newline"),
    _nhs("-943476591", False, "minus-sign"),
    _nhs("９４３" + "４７６５９１９", False, "fullwidth-digits"),
    _nhs("", False, "empty"),
    _nhs(None, False, "null"),
    # --- SNOMED CT identifier (6-18 digits, no leading zero, partition, Verhoeff)
    _sctid("22298006", True, "myocardial-infarction"),
    _sctid("720433000", True, "phq9-concept"),
    _sctid("979711000000105", True, "uk-extension-long-concept"),
    _sctid("100005", True, "6-digits"),
    _sctid("111111111111111102", True, "18-digits"),
    _sctid("11004", False, "5-digits"),
    _sctid("1111111111111111106", False, "19-digits"),
    _sctid("010100106", False, "leading-zero-right-check-digit"),
    _sctid("002" + "2298006", False, "zero-padded-real-concept"),
    _sctid("123456001", True, "partition-00-allowed"),
    _sctid("123456103", True, "partition-10-allowed"),
    _sctid("123456017", False, "partition-01-description"),
    _sctid("123456119", False, "partition-11-description"),
    _sctid("123456029", False, "partition-02-relationship"),
    _sctid("123456126", False, "partition-12-relationship"),
    _sctid("123456161", False, "partition-16-expression"),
    _sctid("123456038", False, "partition-03-reserved"),
    *(
        _sctid(_with_verhoeff("390773" + p), False, f"partition-{p}-reserved-even-if-all-allowed", ALL_KINDS)
        for p in ("03", "04", "05", "06", "07", "08", "09", "13", "99")
    ),
    _sctid("123456161", True, "partition-16-when-all-allowed", ALL_KINDS),
    _sctid("123456017", True, "partition-01-when-allowed", ("01", "11")),
    _sctid("123456126", True, "partition-12-when-allowed", ("02", "12")),
    _sctid("123456001", False, "partition-00-when-not-allowed", ("01", "11")),
    _sctid("22298007", False, "wrong-verhoeff-check-digit"),
    _sctid("22298060", False, "bad-check-and-partition-06"),
    _sctid("22928006", False, "adjacent-transposition"),
    _sctid("2229800x", False, "letter"),
    _sctid("22298.06", False, "dot"),
    _sctid("-22298006", False, "minus-sign"),
    _sctid(" 22298006", False, "leading-space"),
    _sctid("22298006 ", False, "trailing-space"),
    _sctid("2229 8006", False, "space-inside"),
    _sctid("\u0669" * 8, False, "arabic-indic-digits"),
    _sctid("", False, "empty"),
    _sctid(None, False, "null"),
    # --- coded score within its tool's range (PHQ-9: 0-27)
    _score(PHQ9, "0", True, "min"),
    _score(PHQ9, "27", True, "max"),
    _score(PHQ9, "13", True, "middle"),
    _score(PHQ9, "-1", False, "below-min"),
    _score(PHQ9, "28", False, "above-max"),
    _score("445455005", "27", False, "above-max-of-other-tool"),
    _score(PHQ9, "12.5", False, "fraction"),
    _score(PHQ9, "12.0", True, "whole-number-as-decimal"),
    _score(PHQ9, "12.000", True, "whole-number-more-zeros"),
    _score(PHQ9, "12.", False, "trailing-dot"),
    _score(PHQ9, ".5", False, "leading-dot"),
    _score(PHQ9, "012", True, "leading-zero"),
    _score(PHQ9, "-0", True, "minus-zero"),
    _score(PHQ9, "+3", False, "plus-sign"),
    _score(PHQ9, "-", False, "sign-only"),
    _score(PHQ9, " 3", False, "leading-space"),
    _score(PHQ9, "3 ", False, "trailing-space"),
    _score(PHQ9, "1e1", False, "exponent"),
    _score(PHQ9, "abc", False, "text"),
    _score(PHQ9, "123" + "4567890", False, "10-digits-too-long"),
    _score(PHQ9, "", False, "empty"),
    _score(PHQ9, None, False, "null-score-known-tool"),
    _score("22298006", "999", True, "unknown-tool-passes"),
    _score("not-a-code", "abc", True, "junk-tool-passes"),
    _score(None, "999", True, "null-tool-passes"),
    _score(" " + PHQ9, "999", True, "tool-with-space-is-unknown-passes"),
]


def _python_verdict(case: Case) -> bool:
    if case.check == "nhs":
        return nhs_number_is_valid(case.value)
    if case.check == "sctid":
        return sctid_is_valid(case.value, case.partitions)
    return sqlx.score_in_tool_range(case.tool, case.value, TABLE_RANGES)


def _verdict_label(case: Case) -> str:
    """One SELECT column per distinct SQL expression the table needs."""
    return "_".join([case.check, *case.partitions]) if case.check == "sctid" else case.check


def _sql_expression(label: str) -> sa.ColumnElement[bool]:
    """The expression behind ``label``, on untyped ``sa.column`` objects as GX hands them over."""
    check, *partitions = label.split("_")
    value, tool = sa.column("value"), sa.column("tool")
    if check == "nhs":
        return sqlx.nhs_number_valid_expr(value)
    if check == "sctid":
        return sqlx.sctid_valid_expr(value, tuple(partitions))
    return sqlx.score_in_tool_range_expr(tool, value, TABLE_RANGES)


def _cases() -> list[Case]:
    return [p.values[0] for p in EDGE_CASES]


def _judge_table(engine: sa.Engine, schema: str | None) -> dict[Case, Any]:
    """Load every case into one table, evaluate every expression in one SELECT, roll back.

    Returns each case's verdict from the expression that judges it (``None`` stays ``None``
    so the test can report a NULL verdict).
    """
    cases = _cases()
    labels = sorted({_verdict_label(c) for c in cases})
    table = sa.Table(
        "identifier_edge_cases",
        sa.MetaData(schema=schema),
        sa.Column("row_id", sa.Integer),
        sa.Column("value", sa.String),
        sa.Column("tool", sa.String),
        prefixes=[] if schema else ["TEMPORARY"],
    )
    with engine.connect() as con:
        try:
            if schema:
                con.execute(sa.schema.CreateSchema(schema))
            table.create(con)
            con.execute(
                table.insert(), [{"row_id": i, "value": c.value, "tool": c.tool} for i, c in enumerate(cases)]
            )
            query = (
                sa.select(table.c.row_id, *(_sql_expression(lb).label(lb) for lb in labels))
                .select_from(table)
                .order_by(table.c.row_id)
            )
            rows = con.execute(query).mappings().all()
        finally:
            con.rollback()  # schema and table go with the transaction
    assert [r["row_id"] for r in rows] == list(range(len(cases)))
    return {c: r[_verdict_label(c)] for c, r in zip(cases, rows, strict=True)}


@pytest.fixture(scope="module")
def duckdb() -> dict[Case, Any]:
    """Every edge case's verdict from an in-memory DuckDB."""
    engine = sa.create_engine("duckdb:///:memory:")
    try:
        return _judge_table(engine, schema=None)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres() -> dict[Case, Any] | None:
    """Every edge case's verdict from PostgreSQL, or None when nothing listens on 127.0.0.1:5432.

    The table lives in a scratch schema with a unique name, created and dropped in the same
    rolled-back transaction, so concurrent runs do not meet and nothing is left behind. A
    server that is reachable but refuses us is an error, not a skip.
    """
    if not postgres_available():
        return None
    engine = sa.create_engine(PG_URL)
    try:
        return _judge_table(engine, schema=f"scratch_identifiers_{uuid.uuid4().hex[:12]}")
    finally:
        engine.dispose()


def test_edge_case_table_is_not_trivial():
    cases = _cases()
    assert len(cases) == len(set(cases)), "duplicate rows in EDGE_CASES"
    for check in ("nhs", "sctid", "score"):
        verdicts = {c.expected for c in cases if c.check == check}
        assert verdicts == {True, False}, f"{check} cases need both verdicts"


def test_edge_cases_fail_for_the_reason_their_id_gives():
    """Rows meant to isolate one defect have nothing else wrong with them."""
    by_id = {p.id: p.values[0].value for p in EDGE_CASES}
    for id in ("nhs-check-value-10-last-0", "nhs-check-value-10-last-1", "nhs-check-value-10-other-body"):
        assert nhs_number_check_digit(by_id[id][:9]) is None, id
    for id in ("nhs-check-value-11-is-0", "nhs-check-value-11-is-0-other-body"):
        assert nhs_number_check_digit(by_id[id][:9]) == 0, id
    # right check digit and a concept partition: only the length or the leading zero is wrong
    for id in ("sctid-5-digits", "sctid-19-digits", "sctid-leading-zero-right-check-digit"):
        code = by_id[id]
        assert verhoeff_is_valid(code) and sctid_partition(code) in CONCEPTS, id
    for p in EDGE_CASES:
        case = p.values[0]
        if p.id.startswith("sctid-partition-") and case.value is not None:
            assert verhoeff_is_valid(case.value), p.id
            assert p.id.startswith(f"sctid-partition-{sctid_partition(case.value)}-"), p.id


@pytest.mark.postgres
@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_case_same_verdict_everywhere(case: Case, duckdb, postgres):
    """Python, DuckDB and PostgreSQL agree with each other and with the written verdict."""
    python = _python_verdict(case)
    on_duckdb = duckdb[case]
    on_postgres = postgres[case] if postgres is not None else "not run"
    verdicts = {"expected": case.expected, "python": python, "duckdb": on_duckdb, "postgres": on_postgres}
    assert on_duckdb is not None, f"DuckDB verdict is NULL: {verdicts}"
    assert python is case.expected and on_duckdb is case.expected, verdicts
    if postgres is None:
        pytest.skip(f"{PG_UNREACHABLE}: Python and DuckDB gave the expected verdict, PostgreSQL not run")
    assert on_postgres is not None, f"PostgreSQL verdict is NULL: {verdicts}"
    assert on_postgres is case.expected, verdicts


# --------------------------------------------------------------------------------------------
# Generated values
# --------------------------------------------------------------------------------------------


def _seed_rows(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(newline="") as f:
        return list(csv.DictReader(f))


TOOLS = _seed_rows("ref_assessment_tools.csv")
SEED_SCTIDS = sorted({r["concept_id"] for r in TOOLS + _seed_rows("ref_snomed_intervention_valueset.csv")})
RANGES = {r["concept_id"]: [int(r["min_score"]), int(r["max_score"])] for r in TOOLS}
JUNK = ["", " ", "abc", "1e10", "-1", "+1", "0", "12.5", " 22298006", "22298006 ", "2229 8006", "\u0669" * 8]


def _slips(code: str) -> set[str]:
    """Every single-digit substitution and adjacent transposition of ``code``."""
    out = set()
    for i, ch in enumerate(code):
        out.update(code[:i] + d + code[i + 1 :] for d in "012" + "3456789" if d != ch)
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
            body = str(rnd.randint(1, 9)) + "".join(rnd.choices("012" + "3456789", k=length - 3))
            body += rnd.choice([*SCTID_PARTITIONS, "03", "99"])
            values.add(body + verhoeff_check_digit(body))
            values.add("".join(rnd.choices("012" + "3456789", k=length)))
    return sorted(values)


def _nhs_values() -> list[str]:
    rnd = random.Random(11)
    valid = []
    while len(valid) < 40:
        body = "999" + "".join(rnd.choices("012" + "3456789", k=6))
        check = nhs_number_check_digit(body)
        if check is not None:
            valid.append(body + str(check))
    values = (
        set(valid) | DUMMY_NHS_NUMBERS | set(JUNK) | {"943" + "4765919", "123" + "4567890", "401" + "0232137"}
    )
    for number in valid[:10] + ["943" + "4765919"]:
        values |= _slips(number) | {number[:-1], number + "0", number[:3] + " " + number[3:]}
    values |= {"".join(rnd.choices("012" + "3456789", k=10)) for _ in range(400)}
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
    return sqlx.score_in_tool_range(tool, score, RANGES)


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
