"""What the DAGs wire in: the task failure and retry callbacks and the shared ``default_args``
(owner, retries with exponential backoff, alerts). Kept light: DAG files import it at parse time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.context import alert_from_context
from mhsds_pipeline.alerts.sinks import Sink, notify

# --------------------------------------------------------------------------------------------
# Callbacks (wire into the DAG: default_args on_failure_callback / on_retry_callback)


def failure_callback(context: Mapping[str, Any], sinks: Iterable[Sink] | None = None) -> Alert:
    """``on_failure_callback`` for tasks and DAGs: period, task, failing rule, log link."""
    event = "task_failed" if (context.get("task_instance") or context.get("ti")) else "dag_failed"
    alert = alert_from_context(context, event)
    notify(alert, sinks)
    return alert


def retry_callback(context: Mapping[str, Any], sinks: Iterable[Sink] | None = None) -> Alert:
    """``on_retry_callback``: a warning, so a source outage is seen before the retries run out."""
    alert = alert_from_context(context, "task_retry")
    notify(alert, sinks)
    return alert


def task_retries() -> int:
    """Retries per task: 2 on scheduled runs; ``mhsds run`` sets MHSDS_TASK_RETRIES=0 so a
    foreground run fails at once with its error instead of waiting through the backoff.

    Called when a DAG file is parsed (:func:`default_args`), so it validates every setting: a
    bad value shows as the DAG's import error, naming the variable, before anything runs."""
    from mhsds_pipeline.settings import read_settings

    return read_settings().task_retries


def default_args() -> dict:
    """The DAGs' shared ``default_args``: owner, retries with exponential backoff, alerts."""
    from datetime import timedelta

    return {
        "owner": "data-engineering",
        # only retryable failures use these (mhsds_pipeline.failures.run_step fails the rest at once)
        "retries": task_retries(),
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        # alerts name period, task and failing rule (sinks: MHSDS_ALERT_SINKS = log, email, webhook)
        "on_failure_callback": failure_callback,
        "on_retry_callback": retry_callback,
    }
