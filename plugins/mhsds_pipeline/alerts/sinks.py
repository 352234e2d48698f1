"""Where alerts go: the pluggable sinks (log, email, webhook), their configuration from the
environment, and :func:`notify`, which sends to all of them without letting one broken sink
stop the others or raise into Airflow.

Configured from the environment (see ``docs/production.md``):

* ``MHSDS_ALERT_SINKS``: comma-separated ``log`` (default), ``email``, ``webhook``.
* email: the SMTP connection ``MHSDS_ALERT_SMTP_CONN_ID`` (default ``smtp_default``; e.g.
  ``AIRFLOW_CONN_SMTP_DEFAULT`` in ``.env``) to ``MHSDS_ALERT_EMAIL_TO`` (comma-separated).
* webhook: the HTTP connection ``MHSDS_ALERT_WEBHOOK_CONN_ID`` (default
  ``mhsds_alerts_webhook``), JSON POST with a ``text`` field (Teams/Slack style) and the fields.

Airflow is imported only when a connection is looked up, never at module level.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.redaction import redact

# The name the alerts module always logged under (before it became a package).
log = logging.getLogger("mhsds_pipeline.alerts")

DEFAULT_SMTP_CONN_ID = "smtp_default"
DEFAULT_WEBHOOK_CONN_ID = "mhsds_alerts_webhook"


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
