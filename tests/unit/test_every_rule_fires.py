"""Every rule the catalogue evaluates fires on a row that breaks it (issue #13).

The planted defects of the synthetic month prove a few hundred rules end to end; this test proves
each of the 1,100+ catalogue rules on its own. For each rule it builds, in an in-memory DuckDB,
the tables its SQL reads (with their contract columns and types), inserts rows that break the rule
the way its check says (a blank, a value longer than the format, a code not in the list, a date
after the period, a child with no parent, a duplicate, ...) and asserts the rule engine's own
predicate (``rules.fail_predicate``) flags at least one of them, and flags nothing on a table of
clean-by-construction rows where the check type allows one (not_null, format, code_list,
date_in_period, references, unique). ``fail_when`` rules are searched: every combination of a few
telling values of the columns they name is inserted, and one must fire.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import date

import duckdb
import pytest

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import fail_predicate, load_catalogue, seed_codes, tool_ranges

pytestmark = pytest.mark.unit

PERIOD = ReportingPeriod.parse("2026-10")


@pytest.fixture(scope="module")
def setup():
    settings = replace(load_settings(), org_id_provider="R1A", org_id_submit="R1A", warehouse_target="duckdb")
    ctx = replace(sql_context(settings, PERIOD), schema="m")
    contracts = {m: c for m, c in load_contracts(settings.dbt_project_dir).items()}
    con = duckdb.connect()
    yield load_catalogue(), ctx, contracts, con
    con.close()


def _lit(value, dtype: str) -> str:
    if value is None:
        return "NULL"
    base = dtype.split("(")[0].lower()
    if base in ("integer", "int", "bigint"):
        return str(int(value))
    text = str(value).replace("'", "''")
    if base in ("date", "time", "timestamp"):
        return f"CAST('{text}' AS {base.upper()})"
    return f"'{text}'"


def _reset(con, ctx, contracts, tables: dict[str, list[dict]], cell_errors=()) -> None:
    con.execute("DROP SCHEMA IF EXISTS m CASCADE; CREATE SCHEMA m")
    con.execute("DROP SCHEMA IF EXISTS dq CASCADE; CREATE SCHEMA dq")
    con.execute("CREATE TABLE dq.rule_failures (table_name VARCHAR, row_key VARCHAR, severity VARCHAR)")
    con.execute("DROP SCHEMA IF EXISTS raw_epr CASCADE; CREATE SCHEMA raw_epr")
    con.execute(
        'CREATE TABLE raw_epr."_cell_errors" (rule_id VARCHAR, table_name VARCHAR, column_name VARCHAR, row_key VARCHAR)'
    )
    for rule_id, table, key in cell_errors:
        con.execute(f"INSERT INTO raw_epr.\"_cell_errors\" VALUES ('{rule_id}', '{table}', NULL, '{key}')")
    for model, rows in tables.items():
        cols = contracts[model].columns
        con.execute(f"CREATE TABLE m.{model} (" + ", ".join(f'"{c}" {t}' for c, t in cols) + ")")
        for row in rows:
            values = ", ".join(_lit(row.get(c), t) for c, t in cols)
            con.execute(f"INSERT INTO m.{model} VALUES ({values})")


def _fires(con, rule, ctx) -> int:
    return con.execute(f"SELECT COUNT(*) FROM m.{rule.model} t WHERE {fail_predicate(rule, ctx)}").fetchone()[
        0
    ]


def _type(contracts, model, column) -> str:
    return dict(contracts[model].columns)[column].split("(")[0].lower()


def _candidates(dtype: str) -> list:
    if dtype == "date":
        return [None, "2026-09-15", "2026-10-15", "2026-11-15"]
    if dtype == "timestamp":
        return [None, "2026-09-15 10:00:00", "2026-10-15 10:00:00"]
    if dtype == "time":
        return [None, "10:00:00"]
    if dtype in ("integer", "int", "bigint"):
        return [None, 0, 1, 99]
    return [None, "N", "Y", "U", "Z", "01", "02", "04", "05", "06", "99", "R1A", "ZZZ", "X"]


def _breaking(rule, ctx, contracts) -> tuple[dict[str, list[dict]], list]:
    """Tables (model -> rows) in which ``rule`` must fire at least once."""
    c, col, kind, model = rule.check, rule.column, rule.type, rule.model
    own: list[dict] = []
    tables: dict[str, list[dict]] = {model: own}
    cells: list = []
    dtype = _type(contracts, model, col) if col else None
    if kind == "not_null":
        own.append({col: None})
    elif kind == "format":
        fmt = contracts[model].value_format(col)
        if dtype == "date":
            own.append({col: "0000-01-01"})
        elif dtype == "timestamp":
            own.append({col: "2026-10-01 10:00:00.5"})
        elif dtype == "time":
            own.append({col: "10:00:00.5"})
        elif dtype in ("integer", "int", "bigint"):
            own.append({col: 10 ** (fmt.max_length or 9)})
        else:
            own.append({col: "Z" * ((fmt.max_length or 20) + 1)})
            own.append({col: "\x07"})
    elif kind in ("code_list",):
        own.append({col: -7 if dtype in ("integer", "int") else "ZQ~"})
    elif kind == "code_list_default":
        own.append({col: seed_codes(c["seed"], c.get("seed_column", "code"), ("default",), ctx.seeds_dir)[0]})
    elif kind == "pattern":
        own.append({col: "!!"})
    elif kind == "nhs_number":
        own.append({col: "1234567891"})
    elif kind == "sctid":
        own.append({col: "123"})
    elif kind == "value_set":
        own += [{col: v} for v in ("22298006", "999", "10000000000001")]
    elif kind == "score_range":
        tool, (lo, hi) = next(iter(tool_ranges(c["seed"], ctx.seeds_dir).items()))
        own.append({c["tool_column"]: tool, col: str(hi + 1000)})
    elif kind == "date_in_period":
        value = "1900-01-01" if c.get("bound", "both") in ("start", "both") else "2100-01-01"
        own.append({col: value + (" 10:00:00" if dtype == "timestamp" else "")})
    elif kind == "date_order":
        own.append({c["before"]: "2026-10-20", c["after"]: "2026-10-01"})
    elif kind == "parent_date_order":
        rows = [dict(own_row) for own_row in [{col: "2026-10-10"}]]
        own.extend(rows)
        prev = own[0]
        for n, hop in enumerate(c["path"]):
            parent_row: dict = {}
            for pc in hop["columns"]:
                prev[pc] = parent_row[pc] = f"K{n}"
            tables[hop["table"]] = [parent_row]
            prev = parent_row
        prev[c["other"]] = "2026-10-20" if c["relation"] == "before" else "2026-10-01"
    elif kind == "references":
        own.append({cc: "ORPHAN" for cc in c["columns"]})
        tables.setdefault(c["parent"], [])
    elif kind == "has_child":
        own.append({pc: "LONELY" for pc in c["columns"]})
        tables.setdefault(c["child"], [])
    elif kind == "unique":
        row = {
            x: "DUP" if _type(contracts, model, x) not in ("date", "timestamp") else "2026-10-01"
            for x in c["columns"]
        }
        own += [dict(row), dict(row)]
    elif kind == "org_live":
        own.append({col: "ZZZZZ"})
    elif kind == "always":
        own.append({})
    elif kind == "age_range":
        own.append({col: "1800-01-01"})
    elif kind == "after_dataset_created":
        tables[ctx.header_model] = [{"DateTimeDatSetCreate": "2026-11-01 00:00:00"}]
        own.append({col: "2027-01-01" + (" 10:00:00" if dtype == "timestamp" else "")})
    elif kind == "after_upload":
        own.append({col: "2999-01-01 00:00:00"})
    elif kind == "row_count":
        own += [{}, {}] if c.get("max") is not None else []
    elif kind == "diagnosis_code":
        own += [
            {c["scheme_column"]: str(c.get("icd10_code", "02")), col: "NOTICD"},
            {c["scheme_column"]: str(c.get("snomed_code", "06")), col: "123"},
        ]
    elif kind == "source_cell":
        key = contracts[model].key
        typed = {"date": "2026-10-01", "timestamp": "2026-10-01 10:00:00", "time": "10:00:00"}
        row = {k: typed.get(_type(contracts, model, k), f"K{i}") for i, k in enumerate(key)}
        own.append(row)
        cells.append((rule.id, model, "|".join(row[k] for k in key) if key else "*"))
    elif kind == "fail_when":
        names = sorted(
            {x for x in dict(contracts[model].columns) if re.search(rf"\b{re.escape(x)}\b", c["sql"])}
        )
        # plus every literal the condition compares with ('ZZ99%' -> 'ZZ99X', '07')
        literals = [x.replace("%", "X") for x in re.findall(r"'((?:[^']|'')*)'", c["sql"]) if x]
        pools = [
            _candidates(t) + (literals if t not in ("date", "timestamp", "time", "integer", "int") else [])
            for t in (_type(contracts, model, x) for x in names)
        ]
        own += [dict(zip(names, combo, strict=True)) for combo in itertools.product(*pools)]
    else:  # pragma: no cover - a new check type must be taught here
        raise AssertionError(f"no breaking row for check type {kind} ({rule.id})")
    return tables, cells


def test_every_evaluated_rule_fires_on_a_row_that_breaks_it(setup):
    catalogue, ctx, contracts, con = setup
    silent = []
    for rule in catalogue.rules:
        if rule.table_level:  # MHS00025 row_count: judged on the table, not rows (test_quality_gate)
            continue
        tables, cells = _breaking(rule, ctx, contracts)
        _reset(con, ctx, contracts, tables, cells)
        if _fires(con, rule, ctx) == 0:
            silent.append(f"{rule.id} ({rule.type} {rule.table}.{rule.column})")
    assert not silent, f"{len(silent)} rules never fired: {silent[:20]}"
    assert sum(1 for r in catalogue.rules if r.nhs) >= 1100


@pytest.mark.parametrize("kind", ["not_null", "code_list", "references", "unique", "date_in_period"])
def test_clean_rows_do_not_fire(setup, kind):
    """The same predicates leave a row alone that keeps the rule (one table per check type)."""
    catalogue, ctx, contracts, con = setup
    rules = [r for r in catalogue.rules if r.type == kind and r.table not in ("MHS000Header",)][:40]
    assert rules
    for rule in rules:
        c, col = rule.check, rule.column
        own: dict = {}
        tables = {rule.model: [own]}
        if kind == "not_null":
            dtype = _type(contracts, rule.model, col)
            own[col] = {"date": "2026-10-01", "timestamp": "2026-10-01 10:00:00", "time": "10:00:00"}.get(
                dtype, 1 if dtype in ("integer", "int") else "A"
            )
        elif kind == "code_list":
            own[col] = seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir)[0]
        elif kind == "references":
            parent_row = {pc: "P1" for pc in c["columns"].values()}
            own.update({cc: "P1" for cc in c["columns"]})
            tables[c["parent"]] = [parent_row]
        elif kind == "unique":
            own.update(
                {
                    x: "2026-10-01" if _type(contracts, rule.model, x) in ("date", "timestamp") else "ONE"
                    for x in c["columns"]
                }
            )
        elif kind == "date_in_period":
            dtype = _type(contracts, rule.model, col)
            own[col] = date(2026, 10, 15).isoformat() + (" 10:00:00" if dtype == "timestamp" else "")
        if (
            tables.get(rule.model)
            and rule.model in tables
            and kind == "references"
            and c["parent"] == rule.model
        ):
            continue
        _reset(con, ctx, contracts, tables)
        assert _fires(con, rule, ctx) == 0, rule.id
