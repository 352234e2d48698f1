"""Alerts: task failure and retry callbacks, and the submission-deadline check.

A failed run is only useful to whoever is on call if the alert says which reporting period,
which task and which rule failed, and where the log is; :func:`failure_callback` builds that
from Airflow's callback context and sends it to every configured sink. The deadline check
answers the question the data engineering lead asks in the last week before NHS England's
cut-off: "is this month's submission packaged yet?".

This package re-exports the public API, so ``from mhsds_pipeline.alerts import ...`` (DAG files,
tests) keeps working. By responsibility:

* :mod:`~mhsds_pipeline.alerts.alert`: the :class:`Alert` record and its text;
* :mod:`~mhsds_pipeline.alerts.redaction`: no patient identifiers or passwords leave the process;
* :mod:`~mhsds_pipeline.alerts.context`: what failed (period, task, error class, rules);
* :mod:`~mhsds_pipeline.alerts.sinks`: log, and e-mail and webhook through Airflow's
  ``SmtpNotifier`` and ``HttpNotifier``; :func:`notify`;
* :mod:`~mhsds_pipeline.alerts.callbacks`: Airflow callbacks and the DAGs' ``default_args``;
* :mod:`~mhsds_pipeline.alerts.deadlines`: the submission-deadline check.

Sinks are configured from the environment, validated in :mod:`mhsds_pipeline.settings` (see
the README, "Monitoring and alerts"):

* ``MHSDS_ALERT_SINKS``: comma-separated ``log`` (always on), ``email``, ``webhook``.
* email: the SMTP connection ``MHSDS_ALERT_SMTP_CONN_ID`` (default ``smtp_default``; e.g.
  ``AIRFLOW_CONN_SMTP_DEFAULT`` in ``.env``) to ``MHSDS_ALERT_EMAIL_TO`` (comma-separated).
* webhook: the HTTP connection ``MHSDS_ALERT_WEBHOOK_CONN_ID`` (default
  ``mhsds_alerts_webhook``), JSON POST with a ``text`` field (Teams/Slack style) and the fields.

Alert text never carries patient identifiers: NHS-number-shaped numbers and URL passwords in
exception messages are redacted before anything leaves the process. Nothing heavy is imported
at module level, so DAG files can import the callbacks at parse time.
"""

from __future__ import annotations

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.callbacks import default_args, failure_callback, retry_callback, task_retries
from mhsds_pipeline.alerts.context import alert_from_context, failing_rule, period_from_context
from mhsds_pipeline.alerts.deadlines import (
    DEFAULT_CUTOFF_DAY,
    DEFAULT_DAYS_BEFORE,
    SUBMISSION_MANIFEST,
    DeadlineFinding,
    deadline_check,
    deadline_findings,
    load_deadlines,
    run_deadline_check,
    submission_cutoff,
    submission_manifest_path,
)
from mhsds_pipeline.alerts.redaction import redact
from mhsds_pipeline.alerts.sinks import (
    DEFAULT_SMTP_CONN_ID,
    DEFAULT_WEBHOOK_CONN_ID,
    EmailSink,
    LogSink,
    Sink,
    WebhookSink,
    email_html,
    email_subject,
    notify,
    sinks_from_env,
    webhook_payload,
)

__all__ = [
    "DEFAULT_CUTOFF_DAY",
    "DEFAULT_DAYS_BEFORE",
    "DEFAULT_SMTP_CONN_ID",
    "DEFAULT_WEBHOOK_CONN_ID",
    "SUBMISSION_MANIFEST",
    "Alert",
    "DeadlineFinding",
    "EmailSink",
    "LogSink",
    "Sink",
    "WebhookSink",
    "alert_from_context",
    "deadline_check",
    "deadline_findings",
    "default_args",
    "email_html",
    "email_subject",
    "failing_rule",
    "failure_callback",
    "load_deadlines",
    "notify",
    "period_from_context",
    "redact",
    "retry_callback",
    "run_deadline_check",
    "sinks_from_env",
    "submission_cutoff",
    "submission_manifest_path",
    "task_retries",
    "webhook_payload",
]
