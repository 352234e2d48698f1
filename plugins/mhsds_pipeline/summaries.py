"""What each Airflow task keeps in XCom: one small, typed summary per task.

The pipeline's step functions (:mod:`mhsds_pipeline.pipeline`, ``finance``, ``submission``)
return fuller JSON-able dicts for the CLI and tests. A task returns one of the summaries below
instead: scalar totals a data engineer reads in the Airflow UI's XCom tab and that the console
summary of ``mhsds run`` prints, never per-table maps, paths of patient data or identifiers.

Airflow infers ``multiple_outputs`` from a ``dict`` return annotation and would then store each
key again as its own XCom; the DAGs therefore declare ``multiple_outputs=False`` (see
:data:`ONE_XCOM`) and the summaries are ``TypedDict``s: plain JSON in the metadata database,
typed for the code that reads them.
"""

from __future__ import annotations

from typing import Any, TypedDict

#: Task keyword arguments: the return value is one XCom, whatever its annotation.
ONE_XCOM: dict[str, Any] = {"multiple_outputs": False}


class ExtractSummary(TypedDict):
    period: str
    source_watermark: str | None
    tables: int
    rows: int
    seconds: float


class LoadSummary(TypedDict):
    period: str
    tables: int
    rows: int
    seconds: float


class RawValidationSummary(TypedDict):
    period: str
    checks: int
    seconds: float


class BuildSummary(TypedDict):
    """dbt's result counts: nodes built (models, seeds, snapshots) and tests passed / warned."""

    period: str
    built: int
    tests_passed: int
    warnings: int
    seconds: float


class GateSummary(TypedDict):
    period: str
    status: str
    checks: int
    warnings: int
    rows_quarantined: int
    tables_with_rejections: int
    seconds: float


class PublishSummary(TypedDict):
    period: str
    version: str
    tables: int
    rows: int
    seconds: float


class PackageSummary(TypedDict):
    period: str
    status: str
    version: str
    tables: int
    rows: int
    dq_status: str
    tables_changed: int
    seconds: float


class FinanceBuildSummary(TypedDict):
    period: str
    built: int
    tests_passed: int
    seconds: float


class MhisSummary(TypedDict):
    period: str
    financial_year: str
    version: str
    meets_standard_forecast: bool | None
    metrics_met: int
    metrics_not_met: int
    metrics_incomplete: int
    mhsds_months_missing: int
    seconds: float


def _total(counts: dict | None) -> int:
    return int(sum(v for v in (counts or {}).values() if isinstance(v, int | float)))


def _seconds(result: dict) -> float:
    value = result.get("seconds")
    if isinstance(value, dict):  # the gate reports its parts; the total is the task's
        value = value.get("total")
    return round(float(value or 0.0), 3)


def extract(result: dict) -> ExtractSummary:
    return ExtractSummary(
        period=result["period"],
        source_watermark=result.get("source_watermark"),
        tables=len(result.get("row_counts") or {}),
        rows=_total(result.get("row_counts")),
        seconds=_seconds(result),
    )


def load(result: dict) -> LoadSummary:
    return LoadSummary(
        period=result["period"],
        tables=len(result.get("row_counts") or {}),
        rows=_total(result.get("row_counts")),
        seconds=_seconds(result),
    )


def raw_validation(result: dict) -> RawValidationSummary:
    return RawValidationSummary(
        period=result["period"], checks=int(result.get("checks") or 0), seconds=_seconds(result)
    )


def build(result: dict) -> BuildSummary:
    counts = result.get("counts") or {}
    return BuildSummary(
        period=result["period"],
        built=int(counts.get("success", 0)),
        tests_passed=int(counts.get("pass", 0)),
        warnings=int(counts.get("warn", 0)),
        seconds=_seconds(result),
    )


def gate(result: dict) -> GateSummary:
    rejected = result.get("rejected_rows") or {}
    return GateSummary(
        period=result["period"],
        status=result["status"],
        checks=int(result.get("checks") or 0),
        warnings=int(result.get("warnings") or 0),
        rows_quarantined=_total(rejected),
        tables_with_rejections=sum(1 for v in rejected.values() if v),
        seconds=_seconds(result),
    )


def publish(result: dict) -> PublishSummary:
    return PublishSummary(
        period=result["period"],
        version=result["version"],
        tables=len(result.get("row_counts") or {}),
        rows=_total(result.get("row_counts")),
        seconds=_seconds(result),
    )


def package(result: dict) -> PackageSummary:
    return PackageSummary(
        period=result["period"],
        status=result["status"],
        version=result["version"],
        tables=len(result.get("row_counts") or {}),
        rows=_total(result.get("row_counts")),
        dq_status=result.get("dq_status") or "",
        tables_changed=len(result.get("changes") or {}),
        seconds=_seconds(result),
    )


def finance_build(result: dict) -> FinanceBuildSummary:
    counts = result.get("counts") or {}
    return FinanceBuildSummary(
        period=result["period"],
        built=int(counts.get("success", 0)),
        tests_passed=int(counts.get("pass", 0)),
        seconds=_seconds(result),
    )


def mhis(result: dict) -> MhisSummary:
    statuses = [m.get("status") for m in (result.get("metrics") or {}).values()]
    return MhisSummary(
        period=result["period"],
        financial_year=result["financial_year"],
        version=result["version"],
        meets_standard_forecast=result.get("meets_standard_forecast"),
        metrics_met=statuses.count("met"),
        metrics_not_met=statuses.count("not_met"),
        metrics_incomplete=statuses.count("incomplete"),
        mhsds_months_missing=len(result.get("mhsds_months_missing") or ()),
        seconds=_seconds(result),
    )
