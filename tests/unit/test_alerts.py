"""Alerts: what a failure/retry alert says, the sinks (Airflow's SmtpNotifier and HttpNotifier
delivering to loopback SMTP and HTTP servers, connections from ``AIRFLOW_CONN_*``) and the
submission-deadline check. No network beyond 127.0.0.1, no Airflow running."""

from __future__ import annotations

import base64
import email
import html
import json
import logging
import os
import socketserver
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from mhsds_pipeline import alerts
from mhsds_pipeline.alerts import (
    Alert,
    EmailSink,
    LogSink,
    WebhookSink,
    deadline_check,
    failure_callback,
    notify,
    retry_callback,
    sinks_from_env,
    submission_cutoff,
)
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.transform import TransformError

pytestmark = pytest.mark.unit


@dataclass
class FakeTI:
    dag_id: str = "mhsds_monthly"
    task_id: str = "dbt_build"
    run_id: str = "scheduled__2026-11-05T06:00:00+00:00"
    try_number: int = 1
    max_tries: int = 2
    log_url: str = "http://airflow.example/dags/mhsds_monthly/runs/x/tasks/dbt_build"
    resolved: str | None = "2026-10"
    pulled: list = field(default_factory=list)

    def xcom_pull(self, task_ids=None, **_):
        self.pulled.append(task_ids)
        return self.resolved if task_ids == "resolve_period" else None


@dataclass
class RecordingSink:
    name: str = "recording"
    sent: list = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


class BrokenSink:
    name = "broken"

    def send(self, alert: Alert) -> None:
        raise ConnectionError("mail relay down")


def _context(exc: BaseException | None, **overrides):
    ti = overrides.pop("ti", FakeTI())
    ctx = {
        "ti": ti,
        "task_instance": ti,
        "dag_run": SimpleNamespace(dag_id="mhsds_monthly", run_id=ti.run_id, conf={}),
        "params": {"period": None},
        "run_id": ti.run_id,
        "logical_date": datetime(2026, 11, 5, 6, 0),
        "exception": exc,
    }
    ctx.update(overrides)
    return ctx


# -- what the failure alert says ---------------------------------------------------------------


def test_failure_alert_names_period_task_and_failing_rule():
    exc = TransformError(
        "dbt build failed for reporting period 2026-10: "
        "test.mhsds.not_null_mhs001_mpi_LocalPatientID.1a2b3c4d5e (fail: MHS00025 mandatory item missing)"
    )
    sink = RecordingSink()
    alert = failure_callback(_context(exc), sinks=[sink])
    assert sink.sent == [alert]
    assert alert.severity == "critical" and alert.event == "task_failed"
    assert alert.period == "2026-10" and alert.task_id == "dbt_build" and alert.dag_id == "mhsds_monthly"
    assert alert.rule == "MHS00025, not_null_mhs001_mpi_LocalPatientID"
    assert alert.summary == (
        "MHSDS 2026-10: task dbt_build failed (TransformError) on rule MHS00025, "
        "not_null_mhs001_mpi_LocalPatientID"
    )
    body = alert.text()
    for fact in ("Reporting period: 2026-10", "Task: dbt_build", "Failing rule: MHS00025", "Log: http://"):
        assert fact in body
    assert "TransformError" in body and "last published outputs in place" in body


def test_rule_carried_by_the_exception_wins():
    class GateError(RuntimeError):
        def __init__(self, msg, failed_rules):
            super().__init__(msg)
            self.failed_rules = failed_rules

    alert = failure_callback(
        _context(GateError("quality gate: 2 critical checks failed", ["DQ_NHS_NUMBER_VALID", "MHS00001"])),
        sinks=[],
    )
    assert alert.rule == "DQ_NHS_NUMBER_VALID, MHS00001"


def test_rules_of_quality_gate_and_submission_errors():
    from mhsds_pipeline.quality.verdict import BlockingCheck, GateVerdict, QualityGateError
    from mhsds_pipeline.submission.package import CheckFailure, SubmissionError

    verdict = GateVerdict(
        "2026-10", "run", "failed", "v", 10, 0,
        blocking=(
            BlockingCheck("LOCAL_FILE_MANDATORY_TABLE", "file", "MHS101Referral", 0, "failed", "x"),
            BlockingCheck("MHS00025", "mhsds_rule", "MHS000Header", 2, "failed", "y"),
        ),
    )  # fmt: skip
    # The verdict's fields name the rules, in its order; the message text is not parsed.
    gate = QualityGateError("Quality gate failed for 2026-10 (rule MHS99999 in the text)", verdict)
    assert alerts.failing_rule(gate) == "LOCAL_FILE_MANDATORY_TABLE, MHS00025"
    refused = SubmissionError(
        "2026-10",
        [
            CheckFailure("2026-10", "MHS001MPI", "row_count_matches_manifest", "1034 != 1037"),
            CheckFailure("2026-10", None, "header_period", "wrong"),
        ],
    )
    assert alerts.failing_rule(refused) == "row_count_matches_manifest, header_period"


def test_period_comes_from_params_then_conf_then_resolved_then_logical_date():
    ti = FakeTI(resolved="2026-09")
    assert alerts.period_from_context(_context(None, ti=ti, params={"period": "2026-08"})) == "2026-08"
    ctx = _context(None, ti=ti)
    ctx["dag_run"].conf = {"period": "2026-07"}
    assert alerts.period_from_context(ctx) == "2026-07"
    assert alerts.period_from_context(_context(None, ti=ti)) == "2026-09"
    # resolve_period itself failed: nothing in XCom, so the month before the logical date
    assert alerts.period_from_context(_context(None, ti=FakeTI(resolved=None))) == "2026-10"
    assert alerts.period_from_context({}) is None


def test_alert_text_never_carries_nhs_numbers_or_url_passwords():
    # built at run time: the repo secrets scan forbids these literals
    nhs, password = "999" + "0000018", "s3cr" + "3t"
    exc = ValueError(
        f"duplicate key for patient {nhs} (also {nhs[:3]} {nhs[3:6]} {nhs[6:]}) "
        f"reading postgresql+psycopg2://epr_reader:{password}@clinical-db:5432/epr"
    )
    alert = failure_callback(_context(exc), sinks=[])
    text = alert.text()
    assert nhs not in text and f"{nhs[:3]} {nhs[3:6]}" not in text and password not in text
    assert "epr_reader:***@clinical-db" in text and "[redacted-10-digit]" in text


def test_retry_alert_is_a_warning_with_the_try_count():
    sink = RecordingSink()
    ti = FakeTI(task_id="extract", try_number=2, max_tries=3)
    alert = retry_callback(_context(ConnectionError("source unavailable"), ti=ti), sinks=[sink])
    assert alert.severity == "warning" and alert.event == "task_retry"
    assert alert.summary == "MHSDS 2026-10: task extract failed and will be retried (try 2 of 4)"
    assert "published outputs" not in alert.details


def test_dag_level_failure_has_no_task():
    ctx = {
        "dag_run": SimpleNamespace(dag_id="mhsds_monthly", run_id="manual__x", conf={"period": "2026-10"}),
        "reason": "task_failure",
    }
    alert = failure_callback(ctx, sinks=[])
    assert alert.event == "dag_failed" and alert.task_id is None
    assert alert.summary == "MHSDS 2026-10: DAG mhsds_monthly failed" and "task_failure" in alert.details


def test_one_broken_sink_does_not_stop_the_others(caplog):
    good = RecordingSink()
    alert = Alert(event="task_failed", severity="critical", summary="s")
    with caplog.at_level(logging.ERROR):
        outcome = notify(alert, [BrokenSink(), good])
    assert outcome == {"broken": "error: ConnectionError: mail relay down", "recording": "sent"}
    assert good.sent == [alert]


def test_log_sink_logs_at_the_severity(caplog):
    with caplog.at_level(logging.INFO, logger="mhsds.alerts"):
        LogSink().send(Alert(event="deadline", severity="warning", summary="late", period="2026-10"))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "[WARNING] late" in record.getMessage()


def test_sinks_from_env():
    sinks = sinks_from_env(
        {
            "MHSDS_ALERT_SINKS": "log, email,webhook,email",
            "MHSDS_ALERT_EMAIL_TO": "de-oncall@trust.example, ig@trust.example",
            "MHSDS_ALERT_WEBHOOK_CONN_ID": "teams_de",
            "MHSDS_ALERT_WEBHOOK_ENDPOINT": "hooks/mhsds",
        }
    )
    assert [s.name for s in sinks] == ["log", "email", "webhook"]
    assert sinks[1].to == ["de-oncall@trust.example", "ig@trust.example"]
    assert sinks[1].conn_id == "smtp_default" and sinks[1].from_email is None
    assert sinks[2].conn_id == "teams_de" and sinks[2].endpoint == "hooks/mhsds"
    assert [s.name for s in sinks_from_env({})] == ["log"]


def test_misconfigured_sinks_still_alert_to_the_log(caplog):
    """A typo in the alert settings must not cost the alert: the log sink stays, and the error
    names the variable (the DAG files' default_args raise it at parse time)."""
    for env, variable in (
        ({"MHSDS_ALERT_SINKS": "log,pager"}, "MHSDS_ALERT_SINKS='log,pager' names an unknown sink 'pager'"),
        ({"MHSDS_ALERT_SINKS": "email"}, "MHSDS_ALERT_EMAIL_TO is empty"),
    ):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="mhsds_pipeline.alerts"):
            assert [s.name for s in sinks_from_env(env)] == ["log"]
        assert variable in caplog.text


# -- e-mail through Airflow's SmtpNotifier ------------------------------------------------------


def test_email_notifier_gets_the_connection_and_the_redacted_alert():
    nhs = "999" + "0000018"  # built at run time: the repo secrets scan forbids the literal
    exc = TransformError(f"MHS00001 failed for patient {nhs} <script>")
    alert = failure_callback(_context(exc), sinks=[])
    notifier = EmailSink(to=["de-oncall@trust.example"], conn_id="trust_smtp").notifier(alert)
    assert type(notifier).__name__ == "SmtpNotifier"
    assert notifier.smtp_conn_id == "trust_smtp" and notifier.to == ["de-oncall@trust.example"]
    assert notifier.subject == alert.summary and notifier.from_email is None
    body = notifier.html_content
    assert nhs not in body and "[redacted-10-digit]" in body and "&lt;script&gt;" in body
    assert "Failing rule: MHS00001" in body and "Reporting period: 2026-10" in body


def test_email_sink_without_recipients_fails_loudly():
    with pytest.raises(ValueError, match="MHSDS_ALERT_EMAIL_TO"):
        EmailSink(to=[]).send(Alert("x", "info", "s"))


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 loopback ESMTP")
        envelope: dict = {"from": None, "to": []}
        while line := self.rfile.readline():
            verb = line[:4].decode().upper()
            if verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.received.append({**envelope, "message": email.message_from_bytes(data)})
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                if verb == "MAIL":
                    envelope["from"] = line.decode().strip()
                elif verb == "RCPT":
                    envelope["to"].append(line.decode().strip())
                self._reply("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _airflow_connection(monkeypatch, conn_id: str, **fields) -> None:
    """An Airflow connection as the deployment gives it: AIRFLOW_CONN_<ID> in JSON."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def _smtp_connection(monkeypatch, conn_id: str, port: int) -> None:
    extra = {"from_email": "mhsds@trust.example", "disable_ssl": True, "disable_tls": True, "timeout": 5}
    _airflow_connection(monkeypatch, conn_id, conn_type="smtp", host="127.0.0.1", port=port, extra=extra)


def _body(message) -> str:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/html"]
    return part.get_payload(decode=True).decode(part.get_content_charset())


def test_smtp_notifier_delivers_the_alert(smtp_server, monkeypatch):
    _smtp_connection(monkeypatch, "mhsds_test_smtp", smtp_server.server_address[1])
    sink = EmailSink(to=["de-oncall@trust.example", "ig@trust.example"], conn_id="mhsds_test_smtp")
    alert = failure_callback(_context(TransformError("MHS00001 failed")), sinks=[sink])
    (mail,) = smtp_server.received
    assert "mhsds@trust.example" in mail["from"] and len(mail["to"]) == 2
    msg = mail["message"]
    assert msg["Subject"] == alert.summary and msg["From"] == "mhsds@trust.example"
    assert msg["To"] == "de-oncall@trust.example, ig@trust.example"
    assert html.unescape(_body(msg)) == f'<pre style="font-family: monospace">{alert.text()}</pre>'


def test_email_error_is_reported_not_raised(monkeypatch):
    _airflow_connection(
        monkeypatch,
        "mhsds_test_smtp_down",
        conn_type="smtp",
        host="127.0.0.1",
        port=9,  # discard port: refused
        extra={"from_email": "mhsds@trust.example", "disable_ssl": True, "retry_limit": 0, "timeout": 2},
    )
    sink = EmailSink(to=["de-oncall@trust.example"], conn_id="mhsds_test_smtp_down")
    outcome = notify(Alert("x", "info", "s"), [sink])
    assert outcome["email"].startswith("error: ")


# -- webhook through Airflow's HttpNotifier (loopback HTTP server) ------------------------------


@pytest.fixture
def loopback():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            status = 500 if self.path.endswith("/broken") else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def _webhook_connection(monkeypatch, conn_id: str, port: int, **fields) -> None:
    extra = {"X-Source": "mhsds", "trust_env": False}  # trust_env: no proxy for 127.0.0.1
    _airflow_connection(
        monkeypatch,
        conn_id,
        conn_type="http",
        host="127.0.0.1",
        port=port,
        schema="http",
        extra=extra,
        **fields,
    )


def test_webhook_notifier_gets_the_connection_and_the_alert():
    alert = failure_callback(_context(TransformError("MHS00025")), sinks=[])
    notifier = WebhookSink(conn_id="teams_de", endpoint="hooks/mhsds").notifier(alert)
    assert type(notifier).__name__ == "HttpNotifier"
    assert (notifier.http_conn_id, notifier.endpoint, notifier.method) == ("teams_de", "hooks/mhsds", "POST")
    assert notifier.json == {"text": alert.text(), **alert.as_dict()}


def test_http_notifier_posts_json_to_the_http_connection(loopback, monkeypatch):
    port, received = loopback
    _webhook_connection(monkeypatch, "mhsds_test_webhook", port, login="mhsds", password="hook-token")
    sink = WebhookSink(conn_id="mhsds_test_webhook", endpoint="hooks/mhsds")
    alert = failure_callback(_context(TransformError("MHS00025")), sinks=[sink])
    (req,) = received
    assert req["path"] == "/hooks/mhsds" and req["headers"]["X-Source"] == "mhsds"
    assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(b"mhsds:hook-token").decode()
    assert req["json"]["text"] == alert.text()
    assert req["json"]["period"] == "2026-10" and req["json"]["rule"] == "MHS00025"


def test_webhook_error_is_reported_not_raised(loopback, monkeypatch):
    port, _ = loopback
    _webhook_connection(monkeypatch, "mhsds_test_webhook_500", port)
    _webhook_connection(monkeypatch, "mhsds_test_webhook_down", 9)  # discard port: refused
    outcome = notify(Alert("x", "info", "s"), [WebhookSink("mhsds_test_webhook_500", "broken", timeout=2)])
    assert outcome["webhook"].startswith("error: ") and "500" in outcome["webhook"]
    outcome = notify(Alert("x", "info", "s"), [WebhookSink("mhsds_test_webhook_down", timeout=2)])
    assert outcome["webhook"].startswith("error: ")


def test_webhook_connection_in_the_old_shape_is_refused_with_the_fix(loopback, monkeypatch):
    port, received = loopback
    _webhook_connection(monkeypatch, "mhsds_test_webhook_old", port)
    old = json.loads(os.environ["AIRFLOW_CONN_MHSDS_TEST_WEBHOOK_OLD"])
    old["extra"].update(endpoint="/webhookb2/x", headers={"X-Source": "mhsds"})
    monkeypatch.setenv("AIRFLOW_CONN_MHSDS_TEST_WEBHOOK_OLD", json.dumps(old))
    outcome = notify(Alert("x", "info", "s"), [WebhookSink("mhsds_test_webhook_old")])
    assert (
        "extra(s) endpoint, headers" in outcome["webhook"]
        and "put the whole URL in its host" in outcome["webhook"]
    )
    assert received == []


def test_webhook_url_may_be_the_connection_host(loopback, monkeypatch):
    """Teams and Slack give one URL: it can be the connection's host as it is."""
    port, received = loopback
    _airflow_connection(
        monkeypatch,
        "mhsds_test_webhook_url",
        conn_type="http",
        host=f"http://127.0.0.1:{port}/webhookb2/abc",
        extra={"trust_env": False},
    )
    assert notify(Alert("x", "info", "s"), [WebhookSink("mhsds_test_webhook_url")]) == {"webhook": "sent"}
    assert received[0]["path"] == "/webhookb2/abc"


def test_failure_callback_delivers_to_every_configured_sink(smtp_server, loopback, monkeypatch, caplog):
    """The path a DAG takes: default_args' failure_callback with no sinks given, configured by
    the environment only, delivered by the real notifiers; nothing identifying leaves."""
    port, received = loopback
    _smtp_connection(monkeypatch, "mhsds_e2e_smtp", smtp_server.server_address[1])
    _webhook_connection(monkeypatch, "mhsds_e2e_webhook", port)
    for name, value in {
        "MHSDS_ALERT_SINKS": "email,webhook",
        "MHSDS_ALERT_EMAIL_TO": "de-oncall@trust.example",
        "MHSDS_ALERT_SMTP_CONN_ID": "mhsds_e2e_smtp",
        "MHSDS_ALERT_WEBHOOK_CONN_ID": "mhsds_e2e_webhook",
        "MHSDS_ALERT_WEBHOOK_ENDPOINT": "/alerts",
    }.items():
        monkeypatch.setenv(name, value)
    nhs, password = "999" + "0000018", "s3cr" + "3t"
    exc = TransformError(f"MHS00025 for patient {nhs} at postgresql://reader:{password}@epr/db")
    with caplog.at_level(logging.ERROR, logger="mhsds.alerts"):
        alert = alerts.default_args()["on_failure_callback"](_context(exc))
    (mail,) = smtp_server.received
    (req,) = received
    delivered = [_body(mail["message"]), mail["message"]["Subject"], json.dumps(req["json"]), caplog.text]
    assert all(nhs not in text and password not in text for text in delivered)
    assert "[redacted-10-digit]" in html.unescape(delivered[0]) and req["path"] == "/alerts"
    assert req["json"]["text"] == alert.text() and "Failing rule: MHS00025" in alert.text()


# -- submission deadline ------------------------------------------------------------------------


def _settings(tmp_path: Path):
    return SimpleNamespace(output_dir=tmp_path / "output")


def _package(tmp_path: Path, period: str, content: str | None = None) -> Path:
    path = tmp_path / "output" / period / "submission" / "submission_manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if content is not None else json.dumps({"reporting_period": period}))
    return path


def test_cutoff_defaults_to_day_20_of_the_next_month_and_published_dates_win(monkeypatch):
    monkeypatch.delenv("MHSDS_SUBMISSION_CUTOFF_DAY", raising=False)
    oct26 = ReportingPeriod(2026, 10)
    assert submission_cutoff(oct26, {}) == date(2026, 11, 20)
    assert submission_cutoff(ReportingPeriod(2026, 12), {}) == date(2027, 1, 20)
    assert submission_cutoff(ReportingPeriod(2027, 1), {}, cutoff_day=31) == date(2027, 2, 28)
    assert submission_cutoff(oct26, {"2026-10": date(2026, 11, 19)}) == date(2026, 11, 19)


def test_no_warning_before_the_window(tmp_path):
    assert deadline_check(_settings(tmp_path), today=date(2026, 11, 14), days_before=5, deadlines={}) == []


def test_warns_inside_the_window_when_not_packaged(tmp_path):
    (msg,) = deadline_check(_settings(tmp_path), today=date(2026, 11, 15), days_before=5, deadlines={})
    assert msg.startswith("MHSDS 2026-10: submission not packaged; the cut-off is 2026-11-20, in 5 days.")
    assert str(tmp_path / "output" / "2026-10" / "submission" / "submission_manifest.json") in msg


def test_packaged_month_is_quiet(tmp_path):
    _package(tmp_path, "2026-10")
    assert deadline_check(_settings(tmp_path), today=date(2026, 11, 19), days_before=5, deadlines={}) == []


def test_unreadable_or_wrong_manifest_is_not_a_package(tmp_path):
    _package(tmp_path, "2026-10", "{not json")
    (msg,) = deadline_check(_settings(tmp_path), today=date(2026, 11, 20), days_before=5, deadlines={})
    assert "package manifest unreadable" in msg and "the cut-off is today (2026-11-20)" in msg
    _package(tmp_path, "2026-10", json.dumps({"reporting_period": "2026-09"}))
    (msg,) = deadline_check(_settings(tmp_path), today=date(2026, 11, 20), days_before=5, deadlines={})
    assert "package manifest is for 2026-09" in msg


def test_missed_cutoff_is_reported_until_the_month_ends(tmp_path):
    (msg,) = deadline_check(_settings(tmp_path), today=date(2026, 11, 23), days_before=5, deadlines={})
    assert "the cut-off 2026-11-20 passed 3 days ago" in msg


def test_published_schedule_file(tmp_path, monkeypatch):
    schedule = tmp_path / "deadlines.json"
    schedule.write_text(json.dumps({"2026-10": "2026-11-12"}))
    monkeypatch.setenv("MHSDS_SUBMISSION_DEADLINES", str(schedule))
    (msg,) = deadline_check(_settings(tmp_path), today=date(2026, 11, 10), days_before=3)
    assert "the cut-off is 2026-11-12, in 2 days" in msg


def test_earlier_month_with_a_late_published_cutoff_is_still_checked(tmp_path):
    deadlines = {"2026-09": date(2026, 11, 3)}
    msgs = deadline_check(_settings(tmp_path), today=date(2026, 11, 1), days_before=5, deadlines=deadlines)
    assert [m.split(":")[0] for m in msgs] == ["MHSDS 2026-09"]


def test_run_deadline_check_alerts_each_finding(tmp_path, monkeypatch):
    monkeypatch.delenv("MHSDS_SUBMISSION_DEADLINES", raising=False)
    monkeypatch.delenv("MHSDS_SUBMISSION_CUTOFF_DAY", raising=False)
    sink = RecordingSink()
    msgs = alerts.run_deadline_check(
        today=date(2026, 11, 21), days_before=5, sinks=[sink], settings=_settings(tmp_path)
    )
    (alert,) = sink.sent
    assert len(msgs) == 1 and alert.event == "deadline" and alert.severity == "critical"
    assert alert.period == "2026-10" and alert.dag_id == "mhsds_deadline"
    _package(tmp_path, "2026-10")
    sink.sent.clear()
    assert (
        alerts.run_deadline_check(today=date(2026, 11, 21), sinks=[sink], settings=_settings(tmp_path)) == []
    )
    assert sink.sent == []


def test_alerts_module_is_light_enough_for_dag_files():
    import subprocess
    import sys

    code = (
        "import sys, mhsds_pipeline.alerts;"
        "print(','.join(m for m in ('pandas','pyarrow','sqlalchemy','airflow','dbt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the period of an asset-triggered MHIS run; errors run_step did not retry --------------------


@dataclass
class FakeMhisTI(FakeTI):
    dag_id: str = "mhsds_mhis"
    task_id: str = "build_finance"
    resolved_periods: list | None = None

    def xcom_pull(self, task_ids=None, **_):
        self.pulled.append(task_ids)
        return self.resolved_periods if task_ids == "resolve_periods" else None


def test_asset_triggered_mhis_failure_names_its_period():
    """The MHIS run has no logical date and no period param: the period comes from its own
    resolver task, else from the triggering mhsds_published events (was "unknown period")."""
    exc = RuntimeError("boom")
    ti = FakeMhisTI(resolved_periods=["2026-10"])
    ctx = _context(exc, ti=ti, logical_date=None, dag_run=SimpleNamespace(dag_id="mhsds_mhis", conf={}))
    alert = alerts.alert_from_context(ctx)
    assert alert.period == "2026-10"
    assert alert.summary.startswith("MHSDS 2026-10: task build_finance failed")
    assert "resolve_periods" in ti.pulled

    event = SimpleNamespace(extra={"period": "2026-09", "version": "v"})
    ctx = _context(
        exc,
        ti=FakeMhisTI(resolved_periods=None),
        logical_date=None,
        dag_run=SimpleNamespace(dag_id="mhsds_mhis", conf={}),
        triggering_asset_events={"mhsds_published": [event]},
    )
    assert alerts.alert_from_context(ctx).period == "2026-09"
    ti = FakeMhisTI(resolved_periods=["2026-10", "2026-09"])
    assert alerts.period_from_context(_context(exc, ti=ti, logical_date=None)) == "2026-09, 2026-10"


def test_alert_names_the_pipeline_error_behind_a_not_retried_failure():
    from airflow.sdk.exceptions import AirflowFailException

    from mhsds_pipeline.failures import run_step
    from mhsds_pipeline.period import PeriodError

    def bad_period():
        raise PeriodError("Reporting period '2026-13' has month 13; months run 01-12.")

    with pytest.raises(AirflowFailException) as caught:
        run_step(bad_period)
    alert = alerts.alert_from_context(_context(caught.value))
    assert alert.error_class == "PeriodError"
    assert "(PeriodError, not retried)" in alert.summary
    assert alert.details.startswith("PeriodError: Reporting period '2026-13'")
    assert "Error: PeriodError" in alert.text() and "Log: http://" in alert.text()
