"""The custom GX expectations on known good and bad values, run through GX 1.x itself.

Every case is validated three ways: pandas (dataframe batch), SQL pushdown on a DuckDB file
(the embedded warehouse) and SQL pushdown on PostgreSQL (production; skipped when
127.0.0.1:5432 is unreachable). Each must give the expected success flag and unexpected count,
and the three must agree with each other. Each row carries its expected verdict, and a
separate test checks those verdicts against the pure-Python rules in ``identifiers.py``, so a
mislabelled test value cannot hide a wrong implementation.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_available

from mhsds_pipeline.identifiers import DUMMY_NHS_NUMBERS, nhs_number_is_valid, sctid_is_valid

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference"
PG_URL = "postgresql+psycopg2://{user}@127.0.0.1:5432/postgres".format(
    user=os.environ.get("MHSDS_PG_USER", "postgres")
)
PRIVATE = {"result_format": "SUMMARY", "exclude_unexpected_values": True}


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(newline="") as f:
        return list(csv.DictReader(f))


TOOLS = _seed("ref_assessment_tools.csv")
INTERVENTIONS = _seed("ref_snomed_intervention_valueset.csv")
SEED_SCTIDS = sorted({r["concept_id"] for r in TOOLS + INTERVENTIONS})
PSYCH_THERAPIES = sorted(
    r["concept_id"] for r in INTERVENTIONS if r["value_set"] == "mhsds_psychological_therapies"
)
OTHER_INTERVENTION = next(
    r["concept_id"] for r in INTERVENTIONS if r["value_set"] == "mhsds_psychosocial_interventions"
)
RANGES = {r["concept_id"]: [int(r["min_score"]), int(r["max_score"])] for r in TOOLS}
PHQ9, WEMWBS, CGAS = "720433000", "718426000", "860591000000104"  # 0-27, 14-70, 1-100


# --------------------------------------------------------------------------------------------
# Cases: rows with their expected verdict (True pass, False unexpected, None skipped as missing)
# --------------------------------------------------------------------------------------------


NHS = "ExpectColumnValuesToBeValidNhsNumber"
SCTID = "ExpectColumnValuesToBeValidSctid"
VALUE_SET = "ExpectColumnValuesToBeInSnomedValueSet"
SCORE = "ExpectColumnPairValuesScoreWithinToolRange"


@dataclass(frozen=True)
class Case:
    id: str  # also the table name on the SQL backends
    expectation: str  # class name in mhsds_pipeline.quality.expectations
    kwargs: dict[str, Any]
    columns: tuple[str, ...]
    dtypes: tuple[str, ...]  # pandas dtypes: "str" -> VARCHAR/TEXT, "Int64" -> BIGINT, "float64" -> DOUBLE
    rows: tuple[tuple[tuple[Any, ...], bool | None], ...]
    mostly: float = 1.0

    @property
    def unexpected(self) -> int:
        return sum(verdict is False for _, verdict in self.rows)

    @property
    def success(self) -> bool:
        considered = [v for _, v in self.rows if v is not None]
        return not considered or (len(considered) - self.unexpected) / len(considered) >= self.mostly

    def frame(self) -> Any:
        import pandas as pd

        data = {c: [values[i] for values, _ in self.rows] for i, c in enumerate(self.columns)}
        return pd.DataFrame(
            {c: pd.Series(data[c], dtype=t) for c, t in zip(self.columns, self.dtypes, strict=True)}
        )

    def expectation_kwargs(self) -> dict[str, Any]:
        pair = len(self.columns) == 2
        target = (
            dict(zip(("column_A", "column_B"), self.columns, strict=True))
            if pair
            else {"column": self.columns[0]}
        )
        return {**target, **self.kwargs, **({"mostly": self.mostly} if self.mostly < 1 else {})}


def _column(case_id: str, expectation: str, dtype: str, values, mostly: float = 1.0, **kwargs: Any) -> Case:
    rows = tuple(((v,), ok) for v, ok in values)
    return Case(case_id, expectation, kwargs, ("value",), (dtype,), rows, mostly)


def _pair(case_id: str, dtypes: tuple[str, str], values, **kwargs: Any) -> Case:
    return Case(
        case_id,
        SCORE,
        {"ranges": RANGES, **kwargs},
        ("tool", "score"),
        dtypes,
        tuple(((t, s), ok) for t, s, ok in values),
    )


#: Bad NHS numbers; the privacy tests check none of them leaves GX.
BAD_NHS_TEXT = [
    "9434765918",  # Data Dictionary example with the wrong check digit
    "9990000027",  # 999 test range, wrong check digit
    "9990000000",  # 999000000 has check value 10: no last digit can be right
    "0000000000",  # repeated digits pass Modulus 11 but are placeholders
    "1111111111",
    "9999999999",
    "1234567890",  # keyed sequence, fails Modulus 11
    "943476591",  # 9 digits
    "94347659190",  # 11 digits
    "943 476 5919",  # spaced: MHSDS carries bare digits
    "94347659l9",  # letter l for digit 1
    "943476591\u0669",  # Arabic-Indic nine: a digit to Python, not ASCII
    "",
]

CASES = [
    _column(
        "nhs_text",
        NHS,
        "str",
        [
            ("9434765919", True),  # Data Dictionary worked example
            ("9990000018", True),  # 999 range: reserved for test data, checksums verified below
            ("9990000026", True),
            ("9990000069", True),
            ("0101000006", True),  # leading zero kept in a text column (CHI range)
            *[(v, False) for v in BAD_NHS_TEXT],
            (None, None),
            (None, None),
        ],
    ),
    _column(
        "nhs_bigint",
        NHS,
        "Int64",
        [
            (9434765919, True),
            (9990000018, True),
            (9434765918, False),
            (1111111111, False),
            (101000006, False),  # 0101000006 stored as a number loses its zero: 9 digits
            (None, None),
        ],
    ),
    _column(
        "nhs_mostly",
        NHS,
        "str",
        [("9434765919", True), ("9990000018", True), ("9990000026", True), ("9434765918", False)],
        mostly=0.75,
    ),
    _column("sctid_seeds", SCTID, "str", [(c, True) for c in SEED_SCTIDS] + [(None, None)]),
    _column(
        "sctid_text",
        SCTID,
        "str",
        [
            ("22298006", True),  # myocardial infarction (reference B1.4)
            ("101009", True),  # 6 digits, the shortest
            ("123456781000000106", True),  # 18 digits, the longest (long format, namespace 1000000)
            ("12006", False),  # 5 digits, partition and check digit right
            ("1111111111111111106", False),  # 19 digits, partition and check digit right
            ("022298006", False),  # leading zero
            ("22298007", False),  # wrong check digit (reference B1.4)
            ("22298010", False),  # description id (partition 01), check digit right
            ("123456781000000110", False),  # long description id (partition 11), check digit right
            ("22298994", False),  # reserved partition 99, check digit right
            ("22298006 ", False),
            (" 22298006", False),
            ("-22298006", False),
            ("22298.006", False),
            ("", False),
            (None, None),
        ],
    ),
    _column(
        "sctid_bigint",
        SCTID,
        "Int64",
        [
            (22298006, True),
            (720433000, True),
            (1091071000000100, True),
            (22298007, False),
            (12006, False),
            (22298010, False),
            (None, None),
        ],
    ),
    _column(
        "sctid_descriptions",
        SCTID,
        "str",
        [
            ("22298006", True),
            ("22298010", True),  # allowed here: partition 01
            ("123456781000000110", True),  # allowed here: partition 11
            ("123456781000000106", True),
            ("22298994", False),
            ("22298007", False),
        ],
        allowed_partitions=["00", "01", "10", "11"],
    ),
    _column(
        "value_set_text",
        VALUE_SET,
        "str",
        [
            *[(c, True) for c in PSYCH_THERAPIES],
            (OTHER_INTERVENTION, False),  # an MHSDS intervention, but a different reference set
            ("22298006", False),  # valid SCTID, not in the set
            ("0" + PSYCH_THERAPIES[0], False),
            (PSYCH_THERAPIES[0] + " ", False),
            (None, None),
        ],
        value_set=PSYCH_THERAPIES,
        value_set_name="MHSDS psychological therapies (1853461000000105)",
    ),
    _column(
        "value_set_bigint",
        VALUE_SET,
        "Int64",
        [(int(PSYCH_THERAPIES[0]), True), (int(PSYCH_THERAPIES[-1]), True), (22298006, False), (None, None)],
        value_set=[int(c) for c in PSYCH_THERAPIES],  # integers in the config are fine too
    ),
    _pair(
        "score_text",
        ("str", "str"),
        [
            (PHQ9, "0", True),
            (PHQ9, "27", True),
            (PHQ9, "012", True),
            (PHQ9, "12.0", True),
            (PHQ9, "28", False),
            (PHQ9, "-1", False),
            (PHQ9, "12.5", False),
            (PHQ9, "12.", False),
            (PHQ9, "abc", False),
            (PHQ9, "", False),
            (PHQ9, " 5", False),
            (PHQ9, "+5", False),
            (PHQ9, "1e1", False),
            (PHQ9, "99999999999", False),  # too long to be a score (and for INTEGER)
            (WEMWBS, "13", False),
            (WEMWBS, "14", True),
            (WEMWBS, "70", True),
            (CGAS, "0", False),
            (CGAS, "100", True),
            ("22298006", "500", True),  # unknown tool: the value-set check reports it
            (None, "5", None),  # missing tool or score: skipped (completeness is another check)
            (PHQ9, None, None),
            (None, None, None),
        ],
    ),
    _pair(
        "score_bigint",
        ("Int64", "Int64"),
        [
            (int(PHQ9), 27, True),
            (int(PHQ9), 28, False),
            (int(WEMWBS), 13, False),
            (int(WEMWBS), 14, True),
            (22298006, 500, True),
            (None, 3, None),
            (int(PHQ9), None, None),
        ],
    ),
    _pair(
        "score_double",
        ("str", "float64"),
        [(PHQ9, 12.0, True), (PHQ9, 12.5, False), (PHQ9, 28.0, False), (PHQ9, None, None)],
    ),
    _pair(
        "score_neither_ignored",
        ("str", "str"),
        [(PHQ9, "3", True), (PHQ9, None, False), (None, "5", True), (None, None, True)],
        ignore_row_if="neither",
    ),
]
CASE_IDS = [c.id for c in CASES]
BACKENDS = [
    "pandas",
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
]


def test_case_verdicts_match_the_python_rules():
    """The labels in CASES are what identifiers.py says (so GX is tested against the oracle)."""
    from mhsds_pipeline.quality.sql_identifiers import as_text, normalise_score_ranges, parse_integer_score

    bounds = normalise_score_ranges(RANGES)
    for case in CASES:
        for values, verdict in case.rows:
            if verdict is None:
                continue
            if case.expectation == NHS:
                assert nhs_number_is_valid(as_text(values[0])) is verdict, (case.id, values)
            elif case.expectation == SCTID:
                partitions = tuple(case.kwargs.get("allowed_partitions", ("00", "10")))
                assert sctid_is_valid(as_text(values[0]), partitions) is verdict, (case.id, values)
            elif case.expectation == VALUE_SET:
                assert (as_text(values[0]) in {str(c) for c in case.kwargs["value_set"]}) is verdict
            else:
                tool, score = values
                if tool is None or as_text(tool) not in bounds:
                    assert verdict is True, (case.id, values)
                    continue
                low, high = bounds[as_text(tool)]
                parsed = None if score is None else parse_integer_score(score)
                assert (parsed is not None and low <= parsed <= high) is verdict, (case.id, values)
    assert all(sctid_is_valid(c) for c in SEED_SCTIDS), "seed concept ids must be valid SCTIDs"


# --------------------------------------------------------------------------------------------
# GX plumbing: one ephemeral context, the same tables on pandas, DuckDB and PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gx_context():
    import great_expectations as gx

    import mhsds_pipeline.quality.expectations  # noqa: F401  (registers, and patches GX for DuckDB)

    return gx.get_context(mode="ephemeral")


def _sql_batches(source, schema: str | None) -> dict[str, Any]:
    return {
        c.id: source.add_table_asset(name=c.id, table_name=c.id, schema_name=schema)
        .add_batch_definition_whole_table("all")
        .get_batch()
        for c in CASES
    }


@pytest.fixture(scope="module")
def duckdb_batches(gx_context, tmp_path_factory) -> Iterator[dict[str, Any]]:
    import duckdb

    path = tmp_path_factory.mktemp("gx_duckdb") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for case in CASES:
            frame = case.frame()  # noqa: F841  (read by DuckDB's replacement scan)
            con.execute(f'create table "{case.id}" as select * from frame')
    source = gx_context.data_sources.add_sql(name="duckdb_warehouse", connection_string=f"duckdb:///{path}")
    yield _sql_batches(source, None)
    source.get_execution_engine().engine.dispose()


@pytest.fixture(scope="module")
def postgres_batches(gx_context) -> Iterator[dict[str, Any]]:
    import sqlalchemy as sa

    schema = f"gx_unit_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as con:
        con.execute(sa.text(f'create schema "{schema}"'))
    try:
        for case in CASES:
            case.frame().to_sql(case.id, engine, schema=schema, index=False)
        source = gx_context.data_sources.add_postgres(name="postgres_warehouse", connection_string=PG_URL)
        yield _sql_batches(source, schema)
        source.get_execution_engine().engine.dispose()
    finally:
        with engine.begin() as con:
            con.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()


@pytest.fixture(scope="module")
def pandas_batches(gx_context) -> dict[str, Any]:
    definition = (
        gx_context.data_sources.add_pandas("frames")
        .add_dataframe_asset("case")
        .add_batch_definition_whole_dataframe("all")
    )
    return {c.id: definition.get_batch(batch_parameters={"dataframe": c.frame()}) for c in CASES}


def _expectation(case: Case) -> Any:
    from mhsds_pipeline.quality import expectations

    return getattr(expectations, case.expectation)(**case.expectation_kwargs())


_RESULTS: dict[tuple[str, str], Any] = {}


@pytest.fixture
def validate(request):
    """validate(case, backend) -> the GX validation result (memoised across tests)."""

    def run(case: Case, backend: str) -> Any:
        key = (case.id, backend)
        if key not in _RESULTS:
            batches = request.getfixturevalue(f"{backend}_batches")
            _RESULTS[key] = batches[case.id].validate(_expectation(case), result_format="SUMMARY")
        return _RESULTS[key]

    return run


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_expected_success_and_unexpected_count(case: Case, backend: str, validate):
    result = validate(case, backend)
    assert not result.exception_info.get("raised_exception"), result.exception_info
    assert result.success is case.success
    assert result.result["element_count"] == len(case.rows)
    assert result.result["unexpected_count"] == case.unexpected
    assert result.result["missing_count"] == sum(v is None for _, v in case.rows)


def _text(value: Any) -> str:
    """Unexpected values as text, with pandas' NaN and SQL's NULL both shown as None."""
    import pandas as pd

    if isinstance(value, tuple):
        return repr(tuple(_text(v) for v in value))
    return "None" if value is None or pd.isna(value) else str(value)


def _comparable(result: Any) -> dict[str, Any]:
    keys = ("element_count", "missing_count", "unexpected_count", "unexpected_percent")
    out: dict[str, Any] = {k: result.result.get(k) for k in keys}
    out["partial_unexpected"] = sorted(_text(v) for v in result.result.get("partial_unexpected_list", []))
    return {**out, "success": result.success}


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "pandas"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sql_pushdown_agrees_with_pandas(case: Case, backend: str, validate):
    assert _comparable(validate(case, backend)) == _comparable(validate(case, "pandas"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_condition_applies_to_the_pair_expectation(backend: str, request):
    """row_condition reaches the pair metric's domain (only WEMWBS rows: 13 fails, 14 and 70 pass)."""
    from mhsds_pipeline.quality.expectations import ExpectColumnPairValuesScoreWithinToolRange

    expectation = ExpectColumnPairValuesScoreWithinToolRange(
        column_A="tool",
        column_B="score",
        ranges=RANGES,
        row_condition=f'col("tool")=="{WEMWBS}"',
        condition_parser="great_expectations",
    )
    result = request.getfixturevalue(f"{backend}_batches")["score_text"].validate(expectation)
    assert not result.exception_info.get("raised_exception"), result.exception_info
    assert (result.result["element_count"], result.result["unexpected_count"]) == (3, 1)


def test_sql_backend_really_pushes_down(duckdb_batches):
    """The SQL batches run on SqlAlchemyExecutionEngine (not a pandas copy of the table)."""
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    batch = duckdb_batches["sctid_text"]
    assert isinstance(batch.data.execution_engine, SqlAlchemyExecutionEngine)


def test_builtin_expectations_work_on_duckdb_once_patched(duckdb_batches):
    """gx_compat: without the buffered execute_query every DuckDB metric query reads as empty."""
    import great_expectations as gx

    from mhsds_pipeline.quality.gx_compat import patch_sqlalchemy_execution_engine

    assert patch_sqlalchemy_execution_engine() is False  # already installed by the import, idempotent
    result = duckdb_batches["nhs_text"].validate(
        gx.expectations.ExpectColumnValuesToNotBeNull(column="value")
    )
    assert result.result["unexpected_count"] == 2


# --------------------------------------------------------------------------------------------
# Privacy: NHS numbers never leave GX
# --------------------------------------------------------------------------------------------

_LEAKY_FORMATS = [
    "SUMMARY",
    "COMPLETE",
    {"result_format": "COMPLETE", "include_unexpected_rows": True, "partial_unexpected_count": 50},
    PRIVATE,
]


def _mentions_bad_nhs_number(payload: str) -> list[str]:
    """Bad numbers from the data found in ``payload``.

    The repeated-digit dummies are left out: they are constants of the rule itself and appear
    in the SQL that COMPLETE returns as ``unexpected_index_query`` (no patient data in it).
    """
    return [v for v in BAD_NHS_TEXT if len(v) >= 9 and v not in DUMMY_NHS_NUMBERS and v in payload]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("result_format", _LEAKY_FORMATS, ids=str)
def test_nhs_number_results_never_contain_the_numbers(backend: str, result_format, request):
    batch = request.getfixturevalue(f"{backend}_batches")["nhs_text"]
    case = CASES[CASE_IDS.index("nhs_text")]
    result = batch.validate(_expectation(case), result_format=result_format)
    assert result.result["unexpected_count"] == case.unexpected
    payload = json.dumps(result.to_json_dict(), default=str)
    assert _mentions_bad_nhs_number(payload) == []
    for key in ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list", "unexpected_rows"):
        assert key not in result.result


def test_other_expectations_still_show_unexpected_codes(pandas_batches):
    """Only the NHS number expectation hides values: SNOMED codes help whoever fixes the data."""
    case = CASES[CASE_IDS.index("sctid_text")]
    result = pandas_batches[case.id].validate(_expectation(case), result_format="SUMMARY")
    assert "22298007" in result.result["partial_unexpected_list"]


# --------------------------------------------------------------------------------------------
# Configuration checks, serialisation, rendering
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (SCTID, {"column": "c", "allowed_partitions": ["00", "99"]}, "not SNOMED CT partition"),
        (SCTID, {"column": "c", "allowed_partitions": []}, "empty"),
        (VALUE_SET, {"column": "c", "value_set": ["22298007"]}, "not valid SNOMED CT identifiers"),
        (VALUE_SET, {"column": "c", "value_set": []}, "empty"),
        (SCORE, {"column_A": "a", "column_B": "b", "ranges": {PHQ9: [27, 0]}}, "min 27 > max 0"),
        (SCORE, {"column_A": "a", "column_B": "b", "ranges": {PHQ9: [0, 2.5]}}, "integers"),
        (SCORE, {"column_A": "a", "column_B": "b", "ranges": {}}, "empty"),
    ],
)
def test_bad_configuration_is_rejected_when_built(name, kwargs, message, gx_context):
    from mhsds_pipeline.quality import expectations

    with pytest.raises(ValueError, match=message):
        getattr(expectations, name)(**kwargs)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_configuration_round_trips_through_json(case: Case, gx_context):
    """What a committed suite JSON holds rebuilds the same expectation (needs the module imported)."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectation = _expectation(case)
    stored = json.loads(json.dumps(expectation.configuration.to_json_dict()))
    assert stored["type"].startswith("expect_column")
    rebuilt = ExpectationConfiguration(**stored).to_domain_obj()
    assert type(rebuilt) is type(expectation)
    assert rebuilt.configuration.kwargs == expectation.configuration.kwargs


def test_rendered_sentences(gx_context):
    from great_expectations.render.renderer_configuration import RendererConfiguration

    from mhsds_pipeline.quality import expectations as ex

    cases = {
        ex.ExpectColumnValuesToBeValidNhsNumber(column="NHSNumber", mostly=0.95): "valid NHS numbers",
        ex.ExpectColumnValuesToBeValidSctid(column="CodeProcAndProcStatus"): "partition $partitions",
        ex.ExpectColumnValuesToBeInSnomedValueSet(
            column="c", value_set=PSYCH_THERAPIES
        ): "this SNOMED CT value set",
        ex.ExpectColumnPairValuesScoreWithinToolRange(
            column_A="tool", column_B="score", ranges=RANGES
        ): "score range",
    }
    for expectation, phrase in cases.items():
        expectation.render()  # atomic (inline) renderer, used by GX Cloud and the suite page
        assert expectation.rendered_content, type(expectation).__name__
        configuration = RendererConfiguration(configuration=expectation.configuration)
        template = type(expectation)._prescriptive_template(configuration).template_str
        assert phrase in template
        legacy = type(expectation)._prescriptive_renderer(configuration=expectation.configuration)
        assert phrase in legacy[0].string_template["template"]


def test_data_docs_build_with_all_four(tmp_path: Path, gx_context):
    """A checkpoint run with the docs action renders every expectation, and no NHS number."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    from mhsds_pipeline.quality import expectations as ex

    context = gx.get_context(mode="ephemeral")
    docs = tmp_path / "data_docs"
    context.add_data_docs_site(
        site_name="local",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    frame = CASES[CASE_IDS.index("nhs_text")].frame().rename(columns={"value": "nhs_number"})
    frame["sctid"] = (["22298006", "22298007"] * len(frame))[: len(frame)]
    frame["tool"] = PHQ9
    frame["score"] = (["3", "28"] * len(frame))[: len(frame)]
    suite = context.suites.add(
        gx.ExpectationSuite(
            name="unit__identifiers",
            expectations=[
                ex.ExpectColumnValuesToBeValidNhsNumber(column="nhs_number"),
                ex.ExpectColumnValuesToBeValidSctid(
                    column="sctid",
                    row_condition='col("tool")=="720433000"',
                    condition_parser="great_expectations",
                ),
                ex.ExpectColumnValuesToBeInSnomedValueSet(
                    column="sctid", value_set=["22298006"], value_set_name="MI"
                ),
                ex.ExpectColumnPairValuesScoreWithinToolRange(
                    column_A="tool", column_B="score", ranges=RANGES
                ),
            ],
        )
    )
    batch_definition = (
        context.data_sources.add_pandas("frames")
        .add_dataframe_asset("contacts")
        .add_batch_definition_whole_dataframe("all")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="unit__identifiers", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="unit__identifiers",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="docs")],
            result_format="COMPLETE",  # deliberately not the private format: the NHS expectation hides values itself
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    results = list(result.run_results.values())[0].results
    assert [r.exception_info.get("raised_exception") for r in results] == [False] * 4
    assert [r.success for r in results] == [False] * 4

    pages = {p: p.read_text() for p in docs.rglob("*.html")}
    assert len(pages) >= 3  # index, suite, validation result
    html = "\n".join(pages.values())
    for phrase in (
        "valid NHS numbers",
        "Verhoeff check digit",
        "value set",
        "score range of the assessment tool",
    ):
        assert phrase in html
    assert "**{" not in html, "an expectation fell back to the raw kwargs rendering"
    assert _mentions_bad_nhs_number(html) == []
    assert "22298007" in html  # codes are shown, so the page does list unexpected values
