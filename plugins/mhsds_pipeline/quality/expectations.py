"""Great Expectations custom expectations for MHSDS identifiers and coded scores.

Four ``*MapExpectation``s, each with a pandas implementation (the pure-Python rules in
:mod:`mhsds_pipeline.identifiers`) and a SQL implementation (the portable expressions in
:mod:`mhsds_pipeline.quality.sql_identifiers`), so a SQL data source validates by pushdown:
the warehouse counts the bad rows and GX only fetches the counts and a few examples.

==========================================  ==============================================  ==========================
Expectation                                 Metric                                          Kwargs (besides column(s))
==========================================  ==============================================  ==========================
ExpectColumnValuesToBeValidNhsNumber        column_values.valid_nhs_number                  mostly
ExpectColumnValuesToBeValidSctid            column_values.valid_sctid                       allowed_partitions, mostly
ExpectColumnValuesToBeInSnomedValueSet      column_values.in_snomed_value_set               value_set, value_set_name, mostly
ExpectColumnPairValuesScoreWithinToolRange  column_pair_values.score_within_tool_range      ranges, ignore_row_if, mostly
==========================================  ==============================================  ==========================

Standard map semantics: NULLs are skipped (completeness is a separate check) and ``mostly``
sets the pass rate. Values are judged on their text form, so a code stored as BIGINT is checked
like its string. Importing this module registers the expectations and metrics with GX (by
class definition) and applies :func:`gx_compat.patch_sqlalchemy_execution_engine`, without
which no expectation validates against DuckDB.

Privacy: GX's BASIC/SUMMARY/COMPLETE results list unexpected values (up to 20, or all). For NHS
numbers those are patient identifiers, so ``ExpectColumnValuesToBeValidNhsNumber`` never returns
them, whatever result_format is asked for (counts and percentages only). For the other
expectations the values are codes, not identifiers. Suites over patient-level tables should
still run with ``result_format={"result_format": "SUMMARY", "exclude_unexpected_values": True}``
set on the Checkpoint (GX 1.x ignores an expectation-level result_format when a checkpoint
passes its own, which it always does) and ``include_unexpected_rows`` left off.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pandas as pd
from great_expectations.compatibility import pydantic
from great_expectations.compatibility.typing_extensions import override
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    _style_row_condition,
    render_suite_parameter_string,
)
from great_expectations.expectations.expectation_configuration import parse_result_format
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType
from great_expectations.render.util import num_to_str, parse_row_condition_string

from mhsds_pipeline.identifiers import nhs_number_is_valid, sctid_is_valid
from mhsds_pipeline.quality import sql_identifiers as sqlx
from mhsds_pipeline.quality.gx_compat import patch_sqlalchemy_execution_engine

patch_sqlalchemy_execution_engine()

__all__ = [
    "ExpectColumnPairValuesScoreWithinToolRange",
    "ExpectColumnValuesToBeInSnomedValueSet",
    "ExpectColumnValuesToBeValidNhsNumber",
    "ExpectColumnValuesToBeValidSctid",
]

_LIBRARY_METADATA: dict[str, str | list | bool] = {
    "maturity": "production",
    "tags": ["mhsds", "nhs", "validity"],
    "contributors": ["@mhsds-pipeline"],
    "requirements": [],
    "has_full_test_suite": True,
    "manually_reviewed_code": True,
}
#: How many value-set codes or tool ranges Data Docs spell out before summarising.
_RENDER_LIST_LIMIT = 10


def _is_missing(value: object) -> bool:
    """None/NaN/NA/NaT, which SQL sees as NULL (only reached with ``ignore_row_if="neither"``)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


# --------------------------------------------------------------------------------------------
# Metrics: one condition per rule, for pandas and SQLAlchemy
# --------------------------------------------------------------------------------------------


class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
    """Row condition: the value is a usable NHS number (10 digits, Modulus 11, not a dummy)."""

    condition_metric_name = "column_values.valid_nhs_number"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return column.map(lambda v: nhs_number_is_valid(sqlx.as_text(v))).astype(bool)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, **kwargs: Any) -> Any:
        return sqlx.nhs_number_valid_expr(column)


class ColumnValuesValidSctid(ColumnMapMetricProvider):
    """Row condition: the value is a well-formed SCTID with a partition in ``allowed_partitions``."""

    condition_metric_name = "column_values.valid_sctid"
    condition_value_keys = ("allowed_partitions",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, allowed_partitions: Any = None, **kwargs: Any) -> pd.Series:
        partitions = tuple(allowed_partitions or sqlx.DEFAULT_SCTID_PARTITIONS)
        return column.map(lambda v: sctid_is_valid(sqlx.as_text(v), partitions)).astype(bool)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, allowed_partitions: Any = None, **kwargs: Any) -> Any:
        return sqlx.sctid_valid_expr(column, tuple(allowed_partitions or sqlx.DEFAULT_SCTID_PARTITIONS))


class ColumnValuesInSnomedValueSet(ColumnMapMetricProvider):
    """Row condition: the value's text form is one of the value set's concept ids."""

    condition_metric_name = "column_values.in_snomed_value_set"
    condition_value_keys = ("value_set",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, value_set: Any = None, **kwargs: Any) -> pd.Series:
        codes = frozenset(sqlx.normalise_value_set(value_set or []))
        return column.map(lambda v: sqlx.as_text(v) in codes).astype(bool)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, value_set: Any = None, **kwargs: Any) -> Any:
        return sqlx.in_value_set_expr(column, value_set or [])


class ColumnPairValuesScoreWithinToolRange(ColumnPairMapMetricProvider):
    """Row condition: column_B (score) is a whole number in the range of the tool in column_A."""

    condition_metric_name = "column_pair_values.score_within_tool_range"
    condition_value_keys = ("ranges",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column_A: pd.Series, column_B: pd.Series, ranges: Any = None, **kwargs: Any
    ) -> pd.Series:
        bounds = sqlx.normalise_score_ranges(ranges or {})

        def in_range(tool: object, score: object) -> bool:  # pandas' NA/NaN are SQL's NULL
            return sqlx.score_in_tool_range(
                None if _is_missing(tool) else tool, None if _is_missing(score) else score, bounds
            )

        return pd.Series(
            [in_range(t, s) for t, s in zip(column_A, column_B, strict=True)],
            index=column_A.index,
            dtype=bool,
        )

    @column_pair_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column_A: Any, column_B: Any, ranges: Any = None, **kwargs: Any) -> Any:
        return sqlx.score_in_tool_range_expr(column_A, column_B, ranges or {})


# --------------------------------------------------------------------------------------------
# Rendering: one readable sentence per expectation, for Data Docs (legacy) and atomic content
# --------------------------------------------------------------------------------------------


class _SentenceRendering:
    """Mixin: subclasses say what they check in ``_sentence``; this turns it into both renderers.

    GX 1.x Data Docs call the legacy PRESCRIPTIVE renderer and GX's inline (atomic) renderer
    calls ``_prescriptive_template``; without both a custom expectation shows up as
    ``expect_...(**{kwargs})``, which reviewers cannot read.
    """

    @classmethod
    def _sentence(cls, kwargs: dict[str, Any], include_column_name: bool) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    @staticmethod
    def _mostly_suffix(kwargs: dict[str, Any], params: dict[str, Any]) -> str:
        mostly = kwargs.get("mostly")
        if isinstance(mostly, (int, float)) and mostly < 1.0:
            params["mostly_pct"] = num_to_str(mostly * 100, no_scientific=True)
            return ", at least $mostly_pct % of the time."
        return "."

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        template, params = cls._sentence(
            dict(renderer_configuration.kwargs), renderer_configuration.include_column_name
        )
        for name, value in params.items():
            kind = (
                RendererValueType.NUMBER
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                else RendererValueType.STRING
            )
            renderer_configuration.add_param(name=name, param_type=kind, value=value)
        renderer_configuration.template_str = template
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    @render_suite_parameter_string
    def _prescriptive_renderer(
        cls,
        configuration: Any | None = None,
        result: Any | None = None,
        runtime_configuration: dict | None = None,
    ) -> list[RenderedStringTemplateContent]:
        renderer_configuration = RendererConfiguration(
            configuration=configuration, result=result, runtime_configuration=runtime_configuration
        )
        kwargs = dict(renderer_configuration.kwargs)
        template, params = cls._sentence(kwargs, renderer_configuration.include_column_name)
        styling = (runtime_configuration or {}).get("styling", {})
        if kwargs.get("row_condition"):
            params["row_condition"] = kwargs["row_condition"]
            template, styling = _style_row_condition(
                parse_row_condition_string(kwargs["row_condition"]), template, params, styling
            )
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params, "styling": styling},
            )
        ]


def _subject(include_column_name: bool, params: dict[str, Any], kwargs: dict[str, Any]) -> str:
    if include_column_name:
        params["column"] = kwargs.get("column")
        return "$column values"
    return "values"


# --------------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------------


class ExpectColumnValuesToBeValidNhsNumber(_SentenceRendering, ColumnMapExpectation):
    """Expect each non-null value to be a valid NHS number.

    Valid means 10 ASCII digits with no spaces (MHSDS carries the bare number; a spaced value
    is a format failure), the NHS Data Dictionary Modulus 11 check digit right (a check value
    of 10 is never valid), and not a repeated-digit placeholder such as 0000000000 or
    9999999999, which pass the arithmetic but are never issued. Same rule as
    ``identifiers.nhs_number_is_valid``; the SQL version runs in the warehouse. Results carry
    counts only, never the failing numbers (see ``_validate``).

    Args:
        column: The column holding NHS numbers (text; integers are judged on their digits).
        mostly: Fraction of non-null values that must be valid (default 1).
    """

    map_metric: ClassVar[str] = "column_values.valid_nhs_number"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY_METADATA

    @override
    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any | None = None,
    ) -> dict:
        """Validate as usual, but never put an NHS number in the result.

        The unexpected values of this expectation are patient identifiers, and results end up
        in Data Docs, task logs and the DQ tables. So, whatever result_format the caller asked
        for, unexpected values and unexpected rows are left out (GX's own
        ``exclude_unexpected_values`` switch); counts, percentages and, for COMPLETE, pandas
        row indices and the SQL query that finds the rows remain. Index columns given in
        ``unexpected_index_column_names`` are the caller's choice: use pseudonymised keys.
        """
        asked = self._get_result_format(runtime_configuration=runtime_configuration)
        result_format = parse_result_format(dict(asked) if isinstance(asked, dict) else asked)
        result_format.update(exclude_unexpected_values=True, include_unexpected_rows=False)
        return super()._validate(
            metrics, {**(runtime_configuration or {}), "result_format": result_format}, execution_engine
        )

    @classmethod
    def _sentence(cls, kwargs: dict[str, Any], include_column_name: bool) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        subject = _subject(include_column_name, params, kwargs)
        template = (
            f"{subject} must be valid NHS numbers (10 digits, Modulus 11 check digit, "
            "not a repeated-digit dummy)" + cls._mostly_suffix(kwargs, params)
        )
        return template, params


class ExpectColumnValuesToBeValidSctid(_SentenceRendering, ColumnMapExpectation):
    """Expect each non-null value to be a well-formed SNOMED CT identifier of an allowed kind.

    SNOMED CT rules: 6-18 ASCII digits, no leading zero, partition identifier (2nd and 3rd
    digits from the right) in ``allowed_partitions`` and a correct Verhoeff check digit.
    The default partitions 00 and 10 accept concept ids only (short and long format), which is
    what MHSDS procedure, finding, tool and diagnosis fields must hold. Well-formed does not
    mean the concept exists or is in the right value set: pair with
    ``ExpectColumnValuesToBeInSnomedValueSet``.

    Args:
        column: The column holding SCTIDs (text or integer).
        allowed_partitions: Partition identifiers to accept, e.g. ["00", "10"].
        mostly: Fraction of non-null values that must be valid (default 1).
    """

    allowed_partitions: list[str] = pydantic.Field(
        default_factory=lambda: list(sqlx.DEFAULT_SCTID_PARTITIONS),
        description="SNOMED CT partition identifiers to accept (00 and 10 are concepts).",
    )

    map_metric: ClassVar[str] = "column_values.valid_sctid"
    success_keys: ClassVar[tuple[str, ...]] = ("allowed_partitions", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "allowed_partitions")
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY_METADATA

    @pydantic.validator("allowed_partitions")
    def _known_partitions(cls, value: list[str]) -> list[str]:
        sqlx._check_partitions(value)
        if not value:
            raise ValueError("allowed_partitions is empty: every value would fail.")
        return value

    @classmethod
    def _sentence(cls, kwargs: dict[str, Any], include_column_name: bool) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "partitions": ", ".join(kwargs.get("allowed_partitions") or sqlx.DEFAULT_SCTID_PARTITIONS)
        }
        subject = _subject(include_column_name, params, kwargs)
        template = (
            f"{subject} must be valid SNOMED CT identifiers (6-18 digits, no leading zero, "
            "partition $partitions, Verhoeff check digit)" + cls._mostly_suffix(kwargs, params)
        )
        return template, params


class ExpectColumnValuesToBeInSnomedValueSet(_SentenceRendering, ColumnMapExpectation):
    """Expect each non-null value to be one of the concept ids in a SNOMED CT value set.

    For fields whose allowed codes are a reference set or an agreed list (e.g. MHSDS
    psychological therapies refset 1853461000000105, or the assessment tools with score
    ranges). Codes are compared as text, so ``22298006`` and ``"22298006"`` match. The value
    set is checked when the expectation is built: a member that is not a valid SCTID is a
    configuration error (it would fail every row carrying the real code). SQL runs as ``IN``.

    Args:
        column: The column holding SCTIDs.
        value_set: The allowed concept ids (strings or integers).
        value_set_name: Optional name shown in Data Docs instead of the full list.
        mostly: Fraction of non-null values that must be in the set (default 1).
    """

    value_set: list[str | int]
    value_set_name: str | None = None

    map_metric: ClassVar[str] = "column_values.in_snomed_value_set"
    success_keys: ClassVar[tuple[str, ...]] = ("value_set", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "value_set")
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY_METADATA

    @pydantic.validator("value_set")
    def _valid_codes(cls, value: list[str | int]) -> list[str]:
        return list(sqlx.normalise_value_set(value))

    @classmethod
    def _sentence(cls, kwargs: dict[str, Any], include_column_name: bool) -> tuple[str, dict[str, Any]]:
        codes = [str(c) for c in kwargs.get("value_set") or []]
        params: dict[str, Any] = {"code_count": len(codes)}
        subject = _subject(include_column_name, params, kwargs)
        if kwargs.get("value_set_name"):
            params["value_set_name"] = kwargs["value_set_name"]
            where = "the SNOMED CT value set $value_set_name ($code_count codes)"
        elif len(codes) <= _RENDER_LIST_LIMIT:
            params.update({f"v__{i}": c for i, c in enumerate(codes)})
            where = "this SNOMED CT value set: " + " ".join(f"$v__{i}" for i in range(len(codes)))
        else:
            where = "a SNOMED CT value set of $code_count codes"
        return f"{subject} must be concepts in {where}" + cls._mostly_suffix(kwargs, params), params


class ExpectColumnPairValuesScoreWithinToolRange(_SentenceRendering, ColumnPairMapExpectation):
    """Expect each coded assessment score to be a whole number in its tool's valid range.

    ``column_A`` holds the assessment tool (SNOMED CT concept, e.g. CodedAssToolType) and
    ``column_B`` the score (PersScore). ``ranges`` maps tool concept id to ``[min, max]``,
    inclusive, e.g. ``{"720433000": [0, 27]}`` for PHQ-9 (from the ref_assessment_tools seed).
    A score fails when it is outside its tool's range or not a whole number ("12.5", "abc";
    "12.0" is accepted as 12). Rows whose tool is not in ``ranges`` pass: an unknown tool is
    the value-set check's finding, not a score error. Rows missing the tool or the score are
    skipped by default (``ignore_row_if="either_value_is_missing"``).

    Args:
        column_A: The assessment tool column.
        column_B: The score column.
        ranges: ``{tool concept id: [min, max]}``.
        ignore_row_if: "either_value_is_missing" (default), "both_values_are_missing", "neither".
        mostly: Fraction of rows that must pass (default 1).
    """

    ranges: dict[str, list[int]]
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "either_value_is_missing"
    )

    map_metric: ClassVar[str] = "column_pair_values.score_within_tool_range"
    success_keys: ClassVar[tuple[str, ...]] = ("ranges", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B", "ranges")
    library_metadata: ClassVar[dict[str, str | list | bool]] = _LIBRARY_METADATA

    @pydantic.validator("ranges", pre=True)
    def _valid_ranges(cls, value: Any) -> dict[str, list[int]]:
        if not isinstance(value, dict):
            raise ValueError("ranges must be a mapping {tool concept id: [min, max]}")
        return {tool: list(bounds) for tool, bounds in sqlx.normalise_score_ranges(value).items()}

    @classmethod
    def _sentence(cls, kwargs: dict[str, Any], include_column_name: bool) -> tuple[str, dict[str, Any]]:
        ranges = kwargs.get("ranges") or {}
        shown = [f"{tool}: {lo}-{hi}" for tool, (lo, hi) in list(ranges.items())[:_RENDER_LIST_LIMIT]]
        if len(ranges) > len(shown):
            shown.append(f"and {len(ranges) - len(shown)} more")
        params: dict[str, Any] = {"ranges_text": "; ".join(shown), "tool_count": len(ranges)}
        if include_column_name:
            params.update({"column_A": kwargs.get("column_A"), "column_B": kwargs.get("column_B")})
            subject, tool = "$column_B", "$column_A"
        else:
            subject, tool = "scores", "the tool column"
        template = (
            f"{subject} must be a whole number within the score range of the assessment tool in {tool} "
            "($ranges_text)" + cls._mostly_suffix(kwargs, params)
        )
        return template, params
