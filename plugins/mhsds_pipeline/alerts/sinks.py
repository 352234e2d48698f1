"""Where alerts go: the log, and e-mail and a webhook through Airflow's own notifiers
(:class:`~airflow.providers.smtp.notifications.smtp.SmtpNotifier` and
:class:`~airflow.providers.http.notifications.HttpNotifier`), each configured by an Airflow
connection; and :func:`notify`, which sends to all of them without letting one broken sink stop
the others or raise into Airflow.

Why the notifiers: the SMTP and HTTP providers already know how to read a connection (TLS or
SSL, login, OAuth2 for Microsoft 365, timeouts, proxies, headers) and are maintained with
Airflow; this module only decides *what* is sent (the redacted :class:`Alert`) and *where*
(the connection ids in the settings).

Configured from the environment, validated in :mod:`mhsds_pipeline.settings` (see the README,
"Monitoring and alerts"):

* ``MHSDS_ALERT_SINKS``: comma-separated ``log`` (always on), ``email``, ``webhook``.
* email: the SMTP connection ``MHSDS_ALERT_SMTP_CONN_ID`` (default ``smtp_default``, e.g.
  ``AIRFLOW_CONN_SMTP_DEFAULT``) to ``MHSDS_ALERT_EMAIL_TO`` (comma-separated), from
  ``MHSDS_ALERT_EMAIL_FROM`` or the connection's ``from_email`` extra.
* webhook: the HTTP connection ``MHSDS_ALERT_WEBHOOK_CONN_ID`` (default
  ``mhsds_alerts_webhook``) plus ``MHSDS_ALERT_WEBHOOK_ENDPOINT``: a JSON POST with a ``text``
  field (Teams/Slack style) and the alert's fields.

The notifiers are called with :meth:`notify`, not through ``BaseNotifier.__call__``: the alert
text is data (it quotes exception messages), never a Jinja template to render. Airflow is
imported only when an alert is sent, never at module level (DAG files import this package).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.redaction import redact
from mhsds_pipeline.settings import ConfigurationError, EnvSettings, read_settings

# The name the alerts module always logged under (before it became a package).
log = logging.getLogger("mhsds_pipeline.alerts")

#: The connection ids used when MHSDS_ALERT_SMTP_CONN_ID / MHSDS_ALERT_WEBHOOK_CONN_ID are unset.
DEFAULT_SMTP_CONN_ID: str = EnvSettings.model_fields["alert_smtp_conn_id"].default
DEFAULT_WEBHOOK_CONN_ID: str = EnvSettings.model_fields["alert_webhook_conn_id"].default


# --------------------------------------------------------------------------------------------
# Sinks


class Sink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


@dataclass
class LogSink:
    """Writes the alert to the task log (always on: it is what Airflow's UI shows)."""

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("mhsds.alerts"))
    name: str = "log"

    def send(self, alert: Alert) -> None:
        level = {"critical": logging.ERROR, "warning": logging.WARNING}.get(alert.severity, logging.INFO)
        self.logger.log(level, "%s", alert.text())


def email_subject(alert: Alert) -> str:
    """The summary on one line (a header cannot carry a line break)."""
    return " ".join(alert.summary.split())


def email_html(alert: Alert) -> str:
    """The alert text as an HTML body (the SMTP notifier sends HTML): escaped, preformatted, so
    an exception message can neither inject markup nor lose its line breaks."""
    return f'<pre style="font-family: monospace">{html.escape(alert.text())}</pre>'


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """Teams/Slack-style ``text`` plus every field, for receivers that route on them."""
    return {"text": alert.text(), **alert.as_dict()}


@dataclass
class EmailSink:
    """E-mail through :class:`SmtpNotifier` and the SMTP connection ``conn_id`` (host, port,
    login, password; extras as the SMTP provider reads them: ``from_email``, ``disable_ssl``,
    ``disable_tls``, ``timeout``, ``retry_limit``, ``auth_type``)."""

    to: list[str]
    conn_id: str = DEFAULT_SMTP_CONN_ID
    from_email: str | None = None  # None: the connection's from_email extra
    name: str = "email"

    def notifier(self, alert: Alert) -> Any:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=list(self.to),
            from_email=self.from_email,
            subject=email_subject(alert),
            html_content=email_html(alert),
            smtp_conn_id=self.conn_id,
        )

    def send(self, alert: Alert) -> None:
        if not self.to:
            raise ValueError("EmailSink has no recipients: set MHSDS_ALERT_EMAIL_TO")
        self.notifier(alert).notify({})


@dataclass
class WebhookSink:
    """JSON POST through :class:`HttpNotifier` and the HTTP connection ``conn_id``: its host
    (with scheme, and a path if wanted) or schema/host/port give the URL, ``endpoint`` is
    appended, login/password are basic auth and the connection's other extras are sent as
    headers (e.g. ``Authorization``). A non-2xx/3xx answer is an error."""

    conn_id: str = DEFAULT_WEBHOOK_CONN_ID
    endpoint: str | None = None
    timeout: float = 10.0
    name: str = "webhook"

    def notifier(self, alert: Alert) -> Any:
        from airflow.providers.http.notifications import HttpNotifier

        return HttpNotifier(
            http_conn_id=self.conn_id,
            endpoint=self.endpoint,
            method="POST",
            json=webhook_payload(alert),
            extra_options={"timeout": self.timeout},
        )

    def send(self, alert: Alert) -> None:
        notifier = self.notifier(alert)
        check_webhook_connection(notifier.hook.get_connection(self.conn_id))
        notifier.notify({})


#: Extras of the connection shape this package read before the HttpNotifier; the HTTP provider
#: would send them as headers, so the POST would miss the webhook's path.
_OLD_WEBHOOK_EXTRAS = ("endpoint", "headers")


def check_webhook_connection(conn: Any) -> None:
    """Refuse, saying how to fix it, a webhook connection in the old shape (extras ``endpoint``
    and ``headers``), rather than post to the wrong URL."""
    extra = getattr(conn, "extra_dejson", None) or {}
    old = [key for key in _OLD_WEBHOOK_EXTRAS if key in extra]
    if old:
        raise ValueError(
            f"the webhook connection {getattr(conn, 'conn_id', '')!r} has the extra(s) {', '.join(old)}, "
            "which the HTTP provider sends as headers: put the whole URL in its host (or the path in "
            "MHSDS_ALERT_WEBHOOK_ENDPOINT) and each header as an extra of its own"
        )


def sinks_from_env(env: Mapping[str, str] | None = None) -> list[Sink]:
    """The sinks configured by ``MHSDS_ALERT_SINKS`` (log is always included), from ``env``
    (default: the process environment).

    A configuration error never costs the alert: it is logged, naming the bad variable, and
    the alert still goes to the log."""
    try:
        settings = read_settings(env)
    except ConfigurationError as exc:
        log.error("Alert sinks not configured, alerting to the log only: %s", exc)
        return [LogSink()]
    sinks: list[Sink] = [LogSink()]
    for name in settings.alert_sink_names:
        if name == "email":
            sinks.append(
                EmailSink(
                    to=list(settings.alert_recipients),
                    conn_id=settings.alert_smtp_conn_id,
                    from_email=settings.alert_email_from,
                )
            )
        elif name == "webhook":
            sinks.append(
                WebhookSink(conn_id=settings.alert_webhook_conn_id, endpoint=settings.alert_webhook_endpoint)
            )
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
