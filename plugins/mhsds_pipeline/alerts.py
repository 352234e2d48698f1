"""Alerts: task failure and retry callbacks, and the submission-deadline check.

A failed run is only useful to whoever is on call if the alert says which reporting period,
which task and which rule failed, and where the log is; :func:`failure_callback` builds that
from Airflow's callback context and sends it to every configured sink. The deadline check
answers the question the data engineering lead asks in the last week before NHS England's
cut-off: "is this month's submission packaged yet?".

Sinks are pluggable and configured from the environment (see ``docs/production.md``):

* ``MHSDS_ALERT_SINKS``: comma-separated ``log`` (default), ``email``, ``webhook``.
* email: the SMTP connection ``MHSDS_ALERT_SMTP_CONN_ID`` (default ``smtp_default``; e.g.
  ``AIRFLOW_CONN_SMTP_DEFAULT`` in ``.env``) to ``MHSDS_ALERT_EMAIL_TO`` (comma-separated).
* webhook: the HTTP connection ``MHSDS_ALERT_WEBHOOK_CONN_ID`` (default
  ``mhsds_alerts_webhook``), JSON POST with a ``text`` field (Teams/Slack style) and the fields.

Alert text never carries patient identifiers: NHS-number-shaped numbers and URL passwords in
exception messages are redacted before anything leaves the process. Nothing heavy is imported
at module level, so DAG files can import the callbacks at parse time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from mhsds_pipeline.period import PeriodError, ReportingPeriod

log = logging.getLogger(__name__)

DEFAULT_SMTP_CONN_ID = "smtp_default"
DEFAULT_WEBHOOK_CONN_ID = "mhsds_alerts_webhook"
#: Days before the cut-off from which an unpackaged submission is reported.
DEFAULT_DAYS_BEFORE = 5
#: Day of the month after the reporting period used when no published deadline is configured.
#: NHS England publishes the MHSDS submission schedule each year: load it with
#: MHSDS_SUBMISSION_DEADLINES (a JSON file ``{"2026-10": "2026-11-19", ...}``).
DEFAULT_CUTOFF_DAY = 20
SUBMISSION_MANIFEST = Path("submission") / "submission_manifest.json"

_MAX_DETAIL = 1500

# --------------------------------------------------------------------------------------------
# Redaction


_NHS_LIKE = re.compile(r"(?<![\d.])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d.])")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact(text: str) -> str:
    """Text safe to send to a mailbox or chat: no NHS-number-shaped numbers, no URL passwords."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _NHS_LIKE.sub("[redacted-10-digit]", text)


# --------------------------------------------------------------------------------------------
# The alert


@dataclass(frozen=True)
class Alert:
    """One thing someone should know about, in our severity vocabulary."""

    event: str  # task_failed | task_retry | dag_failed | deadline
    severity: str  # critical | warning | info
    summary: str
    details: str = ""
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    period: str | None = None
    rule: str | None = None
    error_class: str | None = None
    try_number: int | None = None
    log_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """Plain text body: one line per fact, the error last."""
        facts = [
            ("Reporting period", self.period),
            ("DAG", self.dag_id),
            ("Task", self.task_id),
            ("Run", self.run_id),
            ("Try", self.try_number),
            ("Error", self.error_class),
            ("Failing rule", self.rule),
            ("Log", self.log_url),
        ]
        lines = [f"[{self.severity.upper()}] {self.summary}"]
        lines += [f"{name}: {value}" for name, value in facts if value not in (None, "")]
        if self.details:
            lines += ["", self.details]
        return "\n".join(lines)


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


# --------------------------------------------------------------------------------------------
# Sinks


class Sink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


ConnectionGetter = Callable[[str], Any]


def _airflow_connection(conn_id: str) -> Any:
    """An Airflow connection (env ``AIRFLOW_CONN_<ID>``, secrets backend or metadata DB)."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _extra(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if isinstance(extra, dict):
        return extra
    raw = getattr(conn, "extra", None)
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}


@dataclass
class LogSink:
    """Writes the alert to the task log (always on: it is what Airflow's UI shows)."""

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("mhsds.alerts"))
    name: str = "log"

    def send(self, alert: Alert) -> None:
        level = {"critical": logging.ERROR, "warning": logging.WARNING}.get(alert.severity, logging.INFO)
        self.logger.log(level, "%s", alert.text())


@dataclass
class EmailSink:
    """Email through an Airflow SMTP connection (host, port, login, password; extras as the
    SMTP provider reads them: ``from_email``, ``disable_ssl``, ``disable_tls``, ``timeout``)."""

    to: list[str]
    conn_id: str = DEFAULT_SMTP_CONN_ID
    get_connection: ConnectionGetter = _airflow_connection
    smtp_factory: Callable[..., Any] | None = None
    name: str = "email"

    def message(self, alert: Alert, sender: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.summary
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        msg.set_content(alert.text())
        return msg

    def send(self, alert: Alert) -> None:
        if not self.to:
            raise ValueError("EmailSink has no recipients: set MHSDS_ALERT_EMAIL_TO")
        conn = self.get_connection(self.conn_id)
        extra = _extra(conn)
        sender = extra.get("from_email") or getattr(conn, "login", None) or "mhsds-pipeline@localhost"
        use_ssl = not _truthy(extra.get("disable_ssl", False))
        use_tls = not use_ssl and not _truthy(extra.get("disable_tls", False))
        timeout = float(extra.get("timeout", 30))
        port = int(getattr(conn, "port", None) or (465 if use_ssl else 587))
        if self.smtp_factory is not None:
            server = self.smtp_factory(conn.host, port, timeout=timeout)
        elif use_ssl:
            server = smtplib.SMTP_SSL(conn.host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(conn.host, port, timeout=timeout)
        try:
            if use_tls:
                server.starttls(context=ssl.create_default_context())
            if getattr(conn, "login", None) and getattr(conn, "password", None):
                server.login(conn.login, conn.password)
            server.send_message(self.message(alert, sender))
        finally:
            server.quit()


def webhook_url(conn: Any) -> str:
    """URL of an HTTP connection: ``host`` (with or without scheme), ``port``, extra ``endpoint``."""
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        raise ValueError("the webhook connection has no host")
    if "://" in host:
        base = host.rstrip("/")
    else:
        schema = (getattr(conn, "schema", None) or "").lower()
        scheme = schema if schema in ("http", "https") else "https"
        port = getattr(conn, "port", None)
        base = f"{scheme}://{host}" + (f":{port}" if port else "")
    endpoint = str(_extra(conn).get("endpoint") or "")
    if endpoint and not endpoint.startswith("/"):
        endpoint = "/" + endpoint
    return base + endpoint


@dataclass
class WebhookSink:
    """JSON POST to an Airflow HTTP connection (Teams/Slack-style ``text`` plus the fields).
    Extra ``headers`` are sent as given; a connection password becomes a Bearer token."""

    conn_id: str = DEFAULT_WEBHOOK_CONN_ID
    get_connection: ConnectionGetter = _airflow_connection
    timeout: float = 10.0
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        conn = self.get_connection(self.conn_id)
        url = webhook_url(conn)
        headers = {"Content-Type": "application/json"}
        headers.update({str(k): str(v) for k, v in (_extra(conn).get("headers") or {}).items()})
        if getattr(conn, "password", None) and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {conn.password}"
        body = json.dumps({"text": alert.text(), **alert.as_dict()}).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - URL from a connection
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def sinks_from_env(env: Mapping[str, str] | None = None) -> list[Sink]:
    """The sinks configured by ``MHSDS_ALERT_SINKS`` (log is always included)."""
    env = os.environ if env is None else env
    names = [n.strip().lower() for n in env.get("MHSDS_ALERT_SINKS", "log").split(",") if n.strip()]
    sinks: list[Sink] = [LogSink()]
    for name in dict.fromkeys(names):
        if name == "log":
            continue
        if name == "email":
            to = [a.strip() for a in env.get("MHSDS_ALERT_EMAIL_TO", "").split(",") if a.strip()]
            sinks.append(EmailSink(to=to, conn_id=env.get("MHSDS_ALERT_SMTP_CONN_ID", DEFAULT_SMTP_CONN_ID)))
        elif name == "webhook":
            sinks.append(WebhookSink(conn_id=env.get("MHSDS_ALERT_WEBHOOK_CONN_ID", DEFAULT_WEBHOOK_CONN_ID)))
        else:
            log.warning("Unknown alert sink %r in MHSDS_ALERT_SINKS (log, email, webhook): ignored", name)
    return sinks


def notify(alert: Alert, sinks: Iterable[Sink] | None = None) -> dict[str, str]:
    """Send to every sink; one broken sink never stops the others. Returns sink -> outcome."""
    outcome: dict[str, str] = {}
    for sink in sinks_from_env() if sinks is None else sinks:
        try:
            sink.send(alert)
            outcome[sink.name] = "sent"
        except Exception as exc:  # noqa: BLE001 - alerting must not raise into Airflow
            outcome[sink.name] = f"error: {type(exc).__name__}: {redact(str(exc))[:300]}"
            log.error("Alert sink %s failed: %s", sink.name, outcome[sink.name])
    return outcome


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


# --------------------------------------------------------------------------------------------
# Submission deadline


def load_deadlines(env: Mapping[str, str] | None = None) -> dict[str, date]:
    """Published cut-offs per period from the JSON file named by MHSDS_SUBMISSION_DEADLINES."""
    env = os.environ if env is None else env
    path = env.get("MHSDS_SUBMISSION_DEADLINES")
    if not path:
        return {}
    raw = json.loads(Path(path).read_text())
    return {str(ReportingPeriod.parse(k)): date.fromisoformat(v) for k, v in raw.items()}


def submission_cutoff(
    period: ReportingPeriod, deadlines: Mapping[str, date] | None = None, cutoff_day: int | None = None
) -> date:
    """The day the period's submission must be in: published date, else day N of the next month."""
    if deadlines and str(period) in deadlines:
        return deadlines[str(period)]
    day = cutoff_day or int(os.environ.get("MHSDS_SUBMISSION_CUTOFF_DAY", DEFAULT_CUTOFF_DAY))
    nxt = period.shift(1)
    return date(nxt.year, nxt.month, min(day, nxt.end.day))


def submission_manifest_path(settings: Any, period: ReportingPeriod) -> Path:
    return Path(settings.output_dir) / str(period) / SUBMISSION_MANIFEST


def _packaged(manifest: Path, period: ReportingPeriod) -> str | None:
    """None when the package is there and readable, else why not."""
    if not manifest.exists():
        return "not packaged"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        return f"package manifest unreadable ({type(exc).__name__})"
    stated = data.get("reporting_period") if isinstance(data, dict) else None
    if stated and str(stated) != str(period):
        return f"package manifest is for {stated}"
    return None


@dataclass(frozen=True)
class DeadlineFinding:
    period: str
    cutoff: date
    days_left: int  # negative once the cut-off has passed
    problem: str
    manifest: Path

    @property
    def severity(self) -> str:
        return "critical" if self.days_left <= 0 else "warning"

    def message(self) -> str:
        days = self.days_left
        if days > 0:
            when = f"the cut-off is {self.cutoff.isoformat()}, in {days} day{'s' if days != 1 else ''}"
        elif days == 0:
            when = f"the cut-off is today ({self.cutoff.isoformat()})"
        else:
            when = f"the cut-off {self.cutoff.isoformat()} passed {-days} day{'s' if days != -1 else ''} ago"
        return (
            f"MHSDS {self.period}: submission {self.problem}; {when}. Expected {self.manifest}. "
            f"Run or fix the mhsds_monthly DAG for {self.period}, then package the submission."
        )


def deadline_findings(
    settings: Any,
    today: date | None = None,
    days_before: int = DEFAULT_DAYS_BEFORE,
    deadlines: Mapping[str, date] | None = None,
    cutoff_day: int | None = None,
) -> list[DeadlineFinding]:
    """Submissions not packaged ``days_before`` days (or less) before their cut-off.

    Looks at the latest complete month (the one due now) and at the month before it while
    that one's cut-off has not passed (a published schedule may run past month end).
    """
    today = today or date.today()
    deadlines = load_deadlines() if deadlines is None else deadlines
    due = ReportingPeriod.latest_complete(today)
    findings: list[DeadlineFinding] = []
    for period in (due.shift(-1), due):
        cutoff = submission_cutoff(period, deadlines, cutoff_day)
        if period != due and today > cutoff:
            continue  # an earlier month's window: it was reported while it was open
        if today < cutoff - timedelta(days=days_before):
            continue
        manifest = submission_manifest_path(settings, period)
        problem = _packaged(manifest, period)
        if problem is not None:
            findings.append(DeadlineFinding(str(period), cutoff, (cutoff - today).days, problem, manifest))
    return findings


def deadline_check(
    settings: Any,
    today: date | None = None,
    days_before: int = DEFAULT_DAYS_BEFORE,
    deadlines: Mapping[str, date] | None = None,
    cutoff_day: int | None = None,
) -> list[str]:
    """One actionable warning per submission not packaged ``days_before`` days before its
    cut-off (``output/<YYYY-MM>/submission/submission_manifest.json``); empty when all is well."""
    return [f.message() for f in deadline_findings(settings, today, days_before, deadlines, cutoff_day)]


def run_deadline_check(
    today: date | None = None,
    days_before: int | None = None,
    sinks: Iterable[Sink] | None = None,
    settings: Any = None,
) -> list[str]:
    """What the daily deadline DAG runs: check, then alert each finding through the sinks."""
    from mhsds_pipeline.config import load_settings

    settings = settings or load_settings()
    if days_before is None:
        days_before = int(os.environ.get("MHSDS_DEADLINE_DAYS_BEFORE", DEFAULT_DAYS_BEFORE))
    today = today or date.today()
    findings = deadline_findings(settings, today=today, days_before=days_before)
    sinks = list(sinks_from_env() if sinks is None else sinks)
    for finding in findings:
        notify(
            Alert(
                event="deadline",
                severity=finding.severity,
                summary=finding.message().split(". Expected", 1)[0],
                details=finding.message(),
                dag_id="mhsds_deadline",
                period=finding.period,
            ),
            sinks,
        )
    if not findings:
        log.info("Submission deadline check on %s: nothing outstanding", today.isoformat())
    return [f.message() for f in findings]


def task_retries() -> int:
    """Retries per task: 2 on scheduled runs; ``mhsds run`` sets MHSDS_TASK_RETRIES=0 so a
    foreground run fails at once with its error instead of waiting through the backoff."""
    return int(os.environ.get("MHSDS_TASK_RETRIES", "2"))


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
