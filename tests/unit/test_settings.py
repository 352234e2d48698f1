"""The validated ``MHSDS_*`` settings: every variable's default, a valid value, and each kind of
bad value as a ConfigurationError that names the variable, shows the value (never a secret's)
and says what is allowed. Reads mappings, never the real environment, except where a module
under test reads the process environment itself (monkeypatched)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from mhsds_pipeline import config
from mhsds_pipeline.config import ConfigurationError
from mhsds_pipeline.settings import EnvSettings, env_name, read_settings

pytestmark = pytest.mark.unit

# Built at run time: the repository's secrets scan forbids literal secrets.
PASSWORD = "pw-" + "Zq81x" + "KEEPOUT"

# field -> (default, a valid value as set in the environment, the value it reads as)
VALID: dict[str, tuple[object, str, object]] = {
    "home": (None, "/srv/mhsds", Path("/srv/mhsds")),
    "data_dir": (None, "/data", Path("/data")),
    "output_dir": (None, "/output", Path("/output")),
    "dbt_project_dir": (None, "/srv/dbt", Path("/srv/dbt")),
    "source_url": (None, "postgresql://r@db/epr", SecretStr("postgresql://r@db/epr")),
    "warehouse_target": ("duckdb", "postgres", "postgres"),
    "warehouse_path": (None, "/data/w.duckdb", Path("/data/w.duckdb")),
    "pg_host": ("127.0.0.1", "warehouse-db", "warehouse-db"),
    "pg_port": (5432, "6543", 6543),
    "pg_user": ("postgres", "mhsds", "mhsds"),
    "pg_dbname": ("mhsds_warehouse", "wh", "wh"),
    "pg_password": (None, PASSWORD, SecretStr(PASSWORD)),
    "warehouse_pool_slots": (1, "2", 2),
    "lock_wait_seconds": (None, "90.5", 90.5),
    "org_id_provider": ("R1A", "RX4", "RX4"),
    "org_id_submit": (None, "RX4", "RX4"),
    "allowed_org_ids": ("R1A", "R1A,RX4", "R1A,RX4"),
    "prim_system_in_use": ("SYNTHETIC EPR", "RiO", "RiO"),
    "extract_chunk_rows": (50000, "1000", 1000),
    "keep_versions": (3, "5", 5),
    "task_retries": (2, "0", 0),
    "log_level": ("INFO", "DEBUG", "DEBUG"),
    "pseudo_key": (None, PASSWORD, SecretStr(PASSWORD)),
    "audit_key": (None, PASSWORD, SecretStr(PASSWORD)),
    "audit_key_file": (None, "/run/secrets/audit", Path("/run/secrets/audit")),
    "finance_source": (None, "/data/finance", SecretStr("/data/finance")),
    "finance_source_schema": (None, "ledger", "ledger"),
    "trajectory_scale": (None, "0.1", 0.1),
    "mhis_window_months": (24, "36", 36),
    "system_inbox": (None, "/data/system/inbox", Path("/data/system/inbox")),
    "system_output": (None, "/output/system", Path("/output/system")),
    "system_work": (None, "/data/system/work", Path("/data/system/work")),
    "spark_master": ("local[2]", "spark://spark-master:7077", "spark://spark-master:7077"),
    "submission_deadlines": (None, "/etc/deadlines.json", Path("/etc/deadlines.json")),
    "submission_cutoff_day": (20, "15", 15),
    "deadline_days_before": (5, "0", 0),
    "alert_sinks": ("log", "log,webhook", "log,webhook"),
    "alert_email_to": ("", "a@trust.example, b@trust.example", "a@trust.example, b@trust.example"),
    "alert_email_from": (None, "mhsds@trust.example", "mhsds@trust.example"),
    "alert_smtp_conn_id": ("smtp_default", "trust_smtp", "trust_smtp"),
    "alert_webhook_conn_id": ("mhsds_alerts_webhook", "teams-de.1", "teams-de.1"),
    "alert_webhook_endpoint": (None, "hooks/mhsds", "hooks/mhsds"),
}

# variable -> [(bad value, what the error says about it)]
BAD: dict[str, list[tuple[str, str]]] = {
    "MHSDS_WAREHOUSE_TARGET": [("mysql", "is not one of the allowed values (expected duckdb or postgres")],
    "MHSDS_PG_PORT": [
        ("54x32", "is not a whole number (expected a TCP port from 1 to 65535, default 5432)"),
        ("0", "is out of range"),
        ("65536", "is out of range"),
    ],
    "MHSDS_WAREHOUSE_POOL_SLOTS": [("many", "is not a whole number"), ("0", "is out of range")],
    "MHSDS_LOCK_WAIT_SECONDS": [("soon", "is not a number"), ("-1", "is out of range"), ("inf", "finite")],
    "MHSDS_EXTRACT_CHUNK_ROWS": [
        ("abc", "is not a whole number (expected a whole number from 1 to 10000000, default 50000)"),
        ("2.5", "is not a whole number"),
        ("0", "is out of range"),
        ("-100", "is out of range"),
    ],
    "MHSDS_KEEP_VERSIONS": [("three", "is not a whole number"), ("0", "is out of range")],
    "MHSDS_TASK_RETRIES": [
        ("2x", "is not a whole number"),
        ("-1", "is out of range"),
        ("11", "is out of range"),
    ],
    "MHSDS_LOG_LEVEL": [("info", "is not one of the allowed values"), ("LOUD", "is not one of the allowed")],
    "MHSDS_TRAJECTORY_SCALE": [
        ("a tenth", "is not a number"),
        ("0", "is out of range"),
        ("nan", "is not a finite number"),
    ],
    "MHSDS_SPARK_MASTER": [("spark-master:7077", "expected a Spark master URL")],
    "MHSDS_MHIS_WINDOW_MONTHS": [
        ("two years", "is not a whole number"),
        ("0", "out of range"),
        ("61", "range"),
    ],
    "MHSDS_SUBMISSION_CUTOFF_DAY": [("20th", "is not a whole number"), ("0", "range"), ("32", "range")],
    "MHSDS_DEADLINE_DAYS_BEFORE": [("five", "is not a whole number"), ("-1", "range"), ("32", "range")],
    "MHSDS_ALERT_SINKS": [("log,pager", "names an unknown sink 'pager'"), ("mail", "unknown sink 'mail'")],
    "MHSDS_ALERT_EMAIL_TO": [("de-oncall", "'de-oncall', which is not an e-mail address")],
    "MHSDS_ALERT_EMAIL_FROM": [("mhsds at trust", "which is not an e-mail address")],
    "MHSDS_ALERT_SMTP_CONN_ID": [("smtp default", "is not in the expected form")],
    "MHSDS_ALERT_WEBHOOK_CONN_ID": [("teams/de", "is not in the expected form")],
}


def test_every_field_is_covered_here():
    assert set(VALID) == set(EnvSettings.model_fields)
    assert all(env_name(f).startswith("MHSDS_") for f in VALID)
    assert set(BAD) <= {env_name(f) for f in VALID}


@pytest.mark.parametrize("field", sorted(VALID))
def test_default_valid_value_and_empty_means_unset(field):
    default, raw, parsed = VALID[field]
    assert getattr(read_settings({}), field) == default
    assert getattr(read_settings({env_name(field): ""}), field) == default  # empty: unset, as today
    assert getattr(read_settings({env_name(field): raw}), field) == parsed


@pytest.mark.parametrize(
    ("variable", "value", "says"), [(v, value, says) for v, cases in BAD.items() for value, says in cases]
)
def test_bad_value_names_variable_value_and_what_is_allowed(variable, value, says):
    with pytest.raises(ConfigurationError) as caught:
        read_settings({variable: value})
    message = str(caught.value)
    assert f"{variable}={value!r} " in message and says in message
    assert "expected " in message and "nothing was run" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no pydantic dump


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigurationError) as caught:
        read_settings({"MHSDS_PG_PORT": "x", "MHSDS_TASK_RETRIES": "y", "MHSDS_KEEP_VERSIONS": "0"})
    message = str(caught.value)
    assert all(
        v in message for v in ("MHSDS_PG_PORT='x'", "MHSDS_TASK_RETRIES='y'", "MHSDS_KEEP_VERSIONS='0'")
    )


def test_email_sink_needs_recipients():
    with pytest.raises(ConfigurationError, match="MHSDS_ALERT_SINKS includes email but MHSDS_ALERT_EMAIL_TO"):
        read_settings({"MHSDS_ALERT_SINKS": "log,email"})
    env = read_settings({"MHSDS_ALERT_SINKS": "Email, LOG,webhook", "MHSDS_ALERT_EMAIL_TO": "a@b.example"})
    assert env.alert_sink_names == ("log", "email", "webhook") and env.alert_recipients == ("a@b.example",)


def test_secrets_never_appear_in_a_repr_or_an_error():
    secrets = {
        "MHSDS_PG_PASSWORD": PASSWORD,
        "MHSDS_PSEUDO_KEY": PASSWORD + "p",
        "MHSDS_AUDIT_KEY": PASSWORD + "a",
        "MHSDS_SOURCE_URL": f"postgresql://reader:{PASSWORD}@db/epr",
        "MHSDS_FINANCE_SOURCE": f"postgresql://ledger:{PASSWORD}@db/ledger",
    }
    env = read_settings(secrets)
    assert PASSWORD not in repr(env) and PASSWORD not in str(env) and PASSWORD not in str(env.model_dump())
    assert env.pg_password.get_secret_value() == PASSWORD
    with pytest.raises(ConfigurationError) as caught:
        read_settings({**secrets, "MHSDS_PG_PORT": "x"})
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)


def test_a_secret_s_bad_value_is_never_shown():
    from mhsds_pipeline.settings import _describe

    error = {"loc": ("MHSDS_PG_PASSWORD",), "type": "string_type", "msg": "bad", "input": PASSWORD}
    assert _describe(error).startswith("MHSDS_PG_PASSWORD='***' ")


def test_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("MHSDS_KEEP_VERSIONS", "7")
    assert read_settings().keep_versions == 7
    assert read_settings({}).keep_versions == 3  # a mapping given is all that is read


# -- the modules that read their settings from the validated object ----------------------------


def test_load_settings_builds_the_settings_dataclass(monkeypatch, tmp_path):
    for name in ("MHSDS_DATA_DIR", "MHSDS_OUTPUT_DIR", "MHSDS_WAREHOUSE_PATH", "MHSDS_SOURCE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MHSDS_HOME", str(tmp_path))
    monkeypatch.setenv("MHSDS_EXTRACT_CHUNK_ROWS", "1000")
    monkeypatch.setenv("MHSDS_ORG_ID_SUBMIT", "")
    settings = config.load_settings()
    assert settings.data_dir == tmp_path / "data" and settings.output_dir == tmp_path / "output"
    assert settings.warehouse_path == tmp_path / "data" / "warehouse" / "mhsds.duckdb"
    assert settings.source_url == f"sqlite:///{tmp_path / 'data' / 'epr' / 'epr.sqlite'}"
    assert settings.extract_chunk_rows == 1000 and settings.org_id_submit == settings.org_id_provider
    monkeypatch.setenv("MHSDS_SOURCE_URL", f"postgresql://reader:{PASSWORD}@db/epr")
    assert PASSWORD not in repr(config.load_settings())
    monkeypatch.setenv("MHSDS_EXTRACT_CHUNK_ROWS", "abc")
    with pytest.raises(ConfigurationError, match=r"MHSDS_EXTRACT_CHUNK_ROWS='abc' is not a whole number"):
        config.load_settings()


def test_warehouse_connection_from_the_settings(monkeypatch):
    from mhsds_pipeline import warehouse

    monkeypatch.setenv("MHSDS_PG_HOST", "warehouse-db")
    monkeypatch.setenv("MHSDS_PG_PORT", "6543")
    monkeypatch.setenv("MHSDS_PG_PASSWORD", PASSWORD)
    assert warehouse.postgres_dsn().startswith("host=warehouse-db port=6543 ")
    assert f"password={PASSWORD}" in warehouse.postgres_dsn()
    monkeypatch.setenv("MHSDS_PG_PORT", "5432x")
    with pytest.raises(ConfigurationError, match="MHSDS_PG_PORT='5432x' is not a whole number"):
        warehouse.postgres_dsn()


def test_finance_settings_from_the_settings(monkeypatch, tmp_path):
    from mhsds_pipeline.finance.config import load_finance_settings

    settings = config.Settings(
        home=tmp_path, source_url="postgresql://x@db/epr", data_dir=tmp_path / "data",
        output_dir=tmp_path / "out", warehouse_target="duckdb", warehouse_path=tmp_path / "w.duckdb",
        dbt_project_dir=tmp_path / "dbt", org_id_provider="R1A", org_id_submit="R1A",
        prim_system_in_use="x", extract_chunk_rows=1000,
    )  # fmt: skip
    monkeypatch.delenv("MHSDS_FINANCE_SOURCE", raising=False)
    monkeypatch.setenv("MHSDS_TRAJECTORY_SCALE", "0.5")
    monkeypatch.setenv("MHSDS_MHIS_WINDOW_MONTHS", "36")
    fin = load_finance_settings(settings)
    assert (fin.trajectory_scale, fin.trajectory_scale_basis, fin.history_months) == (
        0.5, "MHSDS_TRAJECTORY_SCALE", 36
    )  # fmt: skip
    assert fin.source == str(tmp_path / "data" / "finance")
    monkeypatch.setenv("MHSDS_MHIS_WINDOW_MONTHS", "0")
    with pytest.raises(ConfigurationError, match="MHSDS_MHIS_WINDOW_MONTHS='0' is out of range"):
        load_finance_settings(settings)


def test_task_retries_and_deadline_settings(monkeypatch, tmp_path):
    from datetime import date

    from mhsds_pipeline import alerts
    from mhsds_pipeline.period import ReportingPeriod

    monkeypatch.setenv("MHSDS_TASK_RETRIES", "0")
    assert alerts.default_args()["retries"] == 0
    monkeypatch.setenv("MHSDS_TASK_RETRIES", "lots")
    with pytest.raises(ConfigurationError, match="MHSDS_TASK_RETRIES='lots'"):
        alerts.default_args()  # what a DAG file calls at parse time: the import error names it
    monkeypatch.delenv("MHSDS_TASK_RETRIES")
    monkeypatch.setenv("MHSDS_SUBMISSION_CUTOFF_DAY", "31")
    assert alerts.submission_cutoff(ReportingPeriod(2026, 1), {}) == date(2026, 2, 28)
    monkeypatch.setenv("MHSDS_SUBMISSION_CUTOFF_DAY", "32")
    with pytest.raises(ConfigurationError, match="MHSDS_SUBMISSION_CUTOFF_DAY='32' is out of range"):
        alerts.submission_cutoff(ReportingPeriod(2026, 1), {})
    monkeypatch.delenv("MHSDS_SUBMISSION_CUTOFF_DAY")
    monkeypatch.setenv("MHSDS_DEADLINE_DAYS_BEFORE", "1")
    settings = type("S", (), {"output_dir": tmp_path})()
    assert alerts.run_deadline_check(today=date(2026, 11, 18), sinks=[], settings=settings) == []
    monkeypatch.setenv("MHSDS_DEADLINE_DAYS_BEFORE", "2")
    assert len(alerts.run_deadline_check(today=date(2026, 11, 18), sinks=[], settings=settings)) == 1


def test_lock_wait_from_the_settings(monkeypatch):
    from mhsds_pipeline import locks

    monkeypatch.delenv("MHSDS_LOCK_WAIT_SECONDS", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_RUN_ID", raising=False)
    assert locks._wait_seconds() == 0.0
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "scheduled__x")
    assert locks._wait_seconds() == locks.DEFAULT_AIRFLOW_WAIT_SECONDS
    monkeypatch.setenv("MHSDS_LOCK_WAIT_SECONDS", "12")
    assert locks._wait_seconds() == 12.0
    monkeypatch.setenv("MHSDS_LOCK_WAIT_SECONDS", "half an hour")
    with pytest.raises(ConfigurationError, match="MHSDS_LOCK_WAIT_SECONDS='half an hour' is not a number"):
        locks._wait_seconds()
