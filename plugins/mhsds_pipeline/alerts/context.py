"""What failed, read from Airflow's callback context: the reporting period, the task, the run,
the error class behind ``run_step``'s wrapper and the failing rule(s).

This is the part of alerting that knows Airflow's callback context and the pipeline's errors; it
is duck-typed (Airflow 3 contexts and test fakes alike) and imports nothing heavy, so DAG files
can import the callbacks at parse time. It turns a context into an :class:`Alert` and sends
nothing itself (that is :mod:`mhsds_pipeline.alerts.sinks`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.redaction import redact
from mhsds_pipeline.period import PeriodError, ReportingPeriod

_MAX_DETAIL = 1500


# --------------------------------------------------------------------------------------------
# Reading Airflow's callback context (duck-typed: works on Airflow 3 contexts and test fakes)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


#: Tasks whose XCom is the run's resolved period (monthly) or periods (MHIS).
_RESOLVER_TASKS = ("resolve_period", "resolve_periods")


def _asset_event_periods(context: Mapping[str, Any]) -> list[str]:
    """Periods named by the triggering ``mhsds_published`` events (asset-triggered MHIS runs,
    which have no logical date and no params)."""
    found: list[str] = []
    events = context.get("triggering_asset_events") or {}
    try:
        groups = list(events.values())
    except (AttributeError, TypeError):
        return found
    for group in groups:
        for event in group or ():
            extra = _get(event, "extra") or {}
            if isinstance(extra, Mapping) and extra.get("period"):
                found.append(str(extra["period"]))
    return found


def period_from_context(context: Mapping[str, Any]) -> str | None:
    """The reporting period(s) the run works on: as requested, as resolved by the run's
    resolver task, as named by the triggering asset events, else from the logical date."""
    candidates: list[Any] = [
        _get(context.get("params"), "period"),
        _get(_get(context.get("dag_run"), "conf"), "period"),
    ]
    ti = context.get("task_instance") or context.get("ti")
    if ti is not None and hasattr(ti, "xcom_pull"):
        for task_id in _RESOLVER_TASKS:
            try:
                candidates.append(ti.xcom_pull(task_ids=task_id))
            except Exception:  # noqa: BLE001 - a callback must not fail while describing a failure
                pass
    candidates.append(_asset_event_periods(context))
    for value in candidates:
        values = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
        try:
            periods = sorted({str(ReportingPeriod.parse(str(v))) for v in values if v})
        except PeriodError:
            continue
        if periods:
            return ", ".join(periods)
    logical = context.get("logical_date") or _get(context.get("dag_run"), "logical_date")
    if logical is not None and hasattr(logical, "date"):
        return str(ReportingPeriod.latest_complete(logical.date()))
    return None


_RULE_ATTRS = ("rule_id", "rule_ids", "failed_rules", "rules", "failures")
_NAME_KEYS = ("rule_id", "check_id", "check", "rule")
_SDCS_RULE = re.compile(r"\b(MHS\d{5})\b")
_DBT_TEST = re.compile(r"\btest\.[A-Za-z0-9_]+\.([A-Za-z0-9_]+?)(?:\.[0-9a-f]{10})?\b")


def _rule_name(item: Any) -> str:
    """A rule's name from a string, an object or a mapping (``rule_id``, ``check_id``, ``check``)."""
    if isinstance(item, str):
        return item
    for key in _NAME_KEYS:
        value = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
        if value:
            return str(value)
    return str(item)


def failing_rule(exc: BaseException | None) -> str | None:
    """The rule(s) that failed, from the exception: an attribute if the error carries one
    (``rule_id``, ``failed_rules``, ``failures`` of the submission checks ...), else SDCS rule
    codes and dbt test names in the message. A quality gate failure carries its verdict, whose
    ``failed_rules`` name the blocking checks."""
    if exc is None:
        return None
    for attr in _RULE_ATTRS:
        value = getattr(exc, attr, None)
        if not value:
            continue
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            value = list(value)
        try:
            names = list(dict.fromkeys(_rule_name(v) for v in value))
        except TypeError:
            return str(value)
        return ", ".join(names[:10])
    message = str(exc)
    found = _SDCS_RULE.findall(message) + _DBT_TEST.findall(message)
    return ", ".join(list(dict.fromkeys(found))[:10]) or None


def _root(exc: BaseException | None) -> BaseException | None:
    """The pipeline's own error behind Airflow's ``AirflowFailException`` wrapper (run_step)."""
    if exc is not None and type(exc).__name__ == "AirflowFailException" and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _exception_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + " ... (truncated; see the task log)"
    return redact(text)


def alert_from_context(context: Mapping[str, Any], event: str = "task_failed") -> Alert:
    """Describe a failure (or retry) from the callback context."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = _get(ti, "dag_id") or _get(dag_run, "dag_id") or _get(context.get("dag"), "dag_id")
    task_id = _get(ti, "task_id")
    run_id = context.get("run_id") or _get(dag_run, "run_id") or _get(ti, "run_id")
    period = period_from_context(context)
    exc = context.get("exception")
    if exc is not None and not isinstance(exc, BaseException):
        exc = RuntimeError(str(exc))
    wrapped = exc
    exc = _root(exc)
    retried = wrapped is exc  # run_step wraps what is not worth retrying
    rule = failing_rule(exc)
    try_number = _get(ti, "try_number")
    max_tries = _get(ti, "max_tries")
    log_url = _get(ti, "log_url")
    reason = context.get("reason")
    where = f"task {task_id}" if task_id else f"DAG {dag_id}"
    if event == "task_retry":
        severity = "warning"
        tries = f" (try {try_number} of {max_tries + 1})" if isinstance(max_tries, int) and try_number else ""
        summary = f"MHSDS {period or 'unknown period'}: {where} failed and will be retried{tries}"
    else:
        severity = "critical"
        summary = f"MHSDS {period or 'unknown period'}: {where} failed"
        if exc is not None:
            summary += f" ({type(exc).__name__}{'' if retried else ', not retried'})"
    if rule:
        summary += f" on rule {rule}"
    details = _exception_text(exc)
    if reason and not details:
        details = redact(str(reason))
    if event != "task_retry":
        details += (
            "\n\nPublication is atomic: a run that fails before publish leaves the period's last "
            "published outputs in place. Fix the cause, then clear the failed task (or re-trigger "
            "the period) in Airflow."
        )
    return Alert(
        event=event,
        severity=severity,
        summary=summary,
        details=details.strip(),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        period=period,
        rule=rule,
        error_class=type(exc).__name__ if exc is not None else None,
        try_number=try_number if isinstance(try_number, int) else None,
        log_url=log_url if isinstance(log_url, str) else None,
    )
