"""Every ``MHSDS_*`` environment variable the package reads, in one validated object.

Why one model: the settings used to be parsed where they were used (``int(os.environ[...])`` in
half a dozen modules), so a typo such as ``MHSDS_PG_PORT=5432x`` surfaced as a bare
``ValueError: invalid literal for int()`` deep in a task. Here each variable is declared once,
with its type, its default and the values it may take, and a bad value stops the run with a
:class:`ConfigurationError` that names the variable, the value (never for a secret) and what is
allowed, e.g. ``MHSDS_EXTRACT_CHUNK_ROWS='abc' is not a whole number (expected a whole number
from 1 to 10000000, default 50000)``.

The variables keep the names the deployment uses (``docker-compose.yml``, ``.env.example``,
``README.md``): each field states its variable as its alias. An empty value counts as unset, as
it always did (compose passes ``${VAR:-}`` through). Secrets are :class:`~pydantic.SecretStr`,
so they never appear in a repr, a log line or an error message.

:mod:`mhsds_pipeline.config` builds the ``Settings`` dataclass the pipeline passes around from
this object; the alerts, finance, warehouse and lock modules read their own fields from it with
:func:`read_settings`. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

#: The alert sinks MHSDS_ALERT_SINKS may name (log is always on).
ALERT_SINKS = ("log", "email", "webhook")

_ADDRESS = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+")
_CONN_ID = r"^[A-Za-z0-9_.\-]+$"
_MAX_SHOWN = 60


class ConfigurationError(ValueError):
    """The settings cannot produce a valid submission (e.g. an organisation code that is not an
    ODS code or not one this trust may submit for, or a setting that is not a number). Raised
    when the settings are built, so the run stops before anything is extracted.

    Defined here (the module that validates the environment, and imports nothing of the
    package) and re-exported by :mod:`mhsds_pipeline.config`, where the code has always
    imported it from."""


def _setting(env: str, default: Any, expected: str, **constraints: Any) -> Any:
    """A field read from the environment variable ``env``; ``expected`` says, in an error
    message, what the variable may hold."""
    return Field(default, validation_alias=env, description=expected, **constraints)


def split_list(text: str | None) -> tuple[str, ...]:
    """A comma-separated setting as its non-empty, stripped entries."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


class EnvSettings(BaseSettings):
    """The ``MHSDS_*`` environment, typed and range-checked (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_ignore_empty=True,  # MHSDS_X= (empty) is unset, as compose's ${MHSDS_X:-} gives
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # pydantic's own messages never echo a value (secrets)
    )

    # -- where things live (defaults derived in mhsds_pipeline.config.load_settings) -----------
    home: Path | None = _setting("MHSDS_HOME", None, "a directory; default the repository")
    data_dir: Path | None = _setting("MHSDS_DATA_DIR", None, "a directory; default <home>/data")
    output_dir: Path | None = _setting("MHSDS_OUTPUT_DIR", None, "a directory; default <home>/output")
    dbt_project_dir: Path | None = _setting("MHSDS_DBT_PROJECT_DIR", None, "the dbt project directory")
    #: may carry the reader's password: secret
    source_url: SecretStr | None = _setting("MHSDS_SOURCE_URL", None, "a SQLAlchemy URL")

    # -- warehouse -----------------------------------------------------------------------------
    warehouse_target: Literal["duckdb", "postgres"] = _setting(
        "MHSDS_WAREHOUSE_TARGET", "duckdb", "duckdb or postgres"
    )
    warehouse_path: Path | None = _setting("MHSDS_WAREHOUSE_PATH", None, "the DuckDB file")
    pg_host: str = _setting("MHSDS_PG_HOST", "127.0.0.1", "a host name")
    pg_port: int = _setting("MHSDS_PG_PORT", 5432, "a TCP port from 1 to 65535", ge=1, le=65535)
    pg_user: str = _setting("MHSDS_PG_USER", "postgres", "a PostgreSQL role")
    pg_dbname: str = _setting("MHSDS_PG_DBNAME", "mhsds_warehouse", "a database name")
    pg_password: SecretStr | None = _setting("MHSDS_PG_PASSWORD", None, "the warehouse password")
    warehouse_pool_slots: int = _setting(
        "MHSDS_WAREHOUSE_POOL_SLOTS", 1, "a whole number from 1 to 32", ge=1, le=32
    )
    lock_wait_seconds: float | None = _setting(
        "MHSDS_LOCK_WAIT_SECONDS",
        None,
        "seconds from 0 to 86400; default 1800 in Airflow, 0 on the command line",
        ge=0,
        le=86400,
        allow_inf_nan=False,
    )

    # -- the system view (many providers' packages; dags/mhsds_system.py) -----------------------
    system_inbox: Path | None = _setting(
        "MHSDS_SYSTEM_INBOX", None, "a directory; default <data>/system/inbox"
    )
    system_output: Path | None = _setting("MHSDS_SYSTEM_OUTPUT", None, "a directory; default <output>/system")
    system_work: Path | None = _setting("MHSDS_SYSTEM_WORK", None, "a directory; default <data>/system/work")
    spark_master: str = _setting(
        "MHSDS_SPARK_MASTER",
        "local[2]",
        "a Spark master URL: local, local[N], local[*], spark://host:port, yarn or k8s://...",
        pattern=r"^(local(\[(\d+|\*)\])?|spark://[A-Za-z0-9.-]+:\d+(,[A-Za-z0-9.-]+:\d+)*|yarn|k8s://\S+)$",
    )

    # -- the submission ------------------------------------------------------------------------
    org_id_provider: str = _setting("MHSDS_ORG_ID_PROVIDER", "R1A", "an ODS organisation code")
    org_id_submit: str | None = _setting(
        "MHSDS_ORG_ID_SUBMIT", None, "an ODS organisation code; default MHSDS_ORG_ID_PROVIDER"
    )
    allowed_org_ids: str = _setting("MHSDS_ALLOWED_ORG_IDS", "R1A", "a comma-separated list of ODS codes")
    prim_system_in_use: str = _setting("MHSDS_PRIM_SYSTEM_IN_USE", "SYNTHETIC EPR", "free text")
    extract_chunk_rows: int = _setting(
        "MHSDS_EXTRACT_CHUNK_ROWS", 50000, "a whole number from 1 to 10000000", ge=1, le=10_000_000
    )
    keep_versions: int = _setting("MHSDS_KEEP_VERSIONS", 3, "a whole number from 1 to 100", ge=1, le=100)
    task_retries: int = _setting("MHSDS_TASK_RETRIES", 2, "a whole number from 0 to 10", ge=0, le=10)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = _setting(
        "MHSDS_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )

    # -- secrets (read where they are used; declared here so they are validated and hidden) ----
    pseudo_key: SecretStr | None = _setting("MHSDS_PSEUDO_KEY", None, "the pseudonymisation key")
    audit_key: SecretStr | None = _setting("MHSDS_AUDIT_KEY", None, "the audit log HMAC key")
    audit_key_file: Path | None = _setting("MHSDS_AUDIT_KEY_FILE", None, "a file holding the audit key")

    # -- finance (MHIS) ------------------------------------------------------------------------
    #: a directory or a ledger URL that may carry a password: secret
    finance_source: SecretStr | None = _setting(
        "MHSDS_FINANCE_SOURCE", None, "a directory or a SQLAlchemy URL"
    )
    finance_source_schema: str | None = _setting("MHSDS_FINANCE_SOURCE_SCHEMA", None, "a schema name")
    trajectory_scale: float | None = _setting(
        "MHSDS_TRAJECTORY_SCALE",
        None,
        "a number above 0 and at most 1000; default the synthetic EPR's scale, else 1",
        gt=0,
        le=1000,
        allow_inf_nan=False,
    )
    mhis_window_months: int = _setting(
        "MHSDS_MHIS_WINDOW_MONTHS", 24, "a whole number of months from 1 to 60", ge=1, le=60
    )

    # -- submission deadline -------------------------------------------------------------------
    submission_deadlines: Path | None = _setting(
        "MHSDS_SUBMISSION_DEADLINES", None, 'a JSON file {"YYYY-MM": "YYYY-MM-DD", ...}'
    )
    submission_cutoff_day: int = _setting(
        "MHSDS_SUBMISSION_CUTOFF_DAY",
        20,
        "a day of the month from 1 to 31, a short month using its last day",
        ge=1,
        le=31,
    )
    deadline_days_before: int = _setting(
        "MHSDS_DEADLINE_DAYS_BEFORE", 5, "a whole number of days from 0 to 31", ge=0, le=31
    )

    # -- alerts (Airflow notifiers; connections hold hosts and credentials) --------------------
    alert_sinks: str = _setting("MHSDS_ALERT_SINKS", "log", "a comma-separated list of log, email, webhook")
    alert_email_to: str = _setting("MHSDS_ALERT_EMAIL_TO", "", "a comma-separated list of e-mail addresses")
    alert_email_from: str | None = _setting(
        "MHSDS_ALERT_EMAIL_FROM", None, "an e-mail address; default the connection's from_email"
    )
    alert_smtp_conn_id: str = _setting(
        "MHSDS_ALERT_SMTP_CONN_ID", "smtp_default", "an Airflow connection id", pattern=_CONN_ID
    )
    alert_webhook_conn_id: str = _setting(
        "MHSDS_ALERT_WEBHOOK_CONN_ID", "mhsds_alerts_webhook", "an Airflow connection id", pattern=_CONN_ID
    )
    alert_webhook_endpoint: str | None = _setting(
        "MHSDS_ALERT_WEBHOOK_ENDPOINT", None, "a URL path appended to the connection's URL"
    )

    @field_validator("alert_sinks")
    @classmethod
    def _known_sinks(cls, value: str) -> str:
        unknown = [name for name in split_list(value.lower()) if name not in ALERT_SINKS]
        if unknown:
            raise ValueError(f"names an unknown sink {', '.join(map(repr, unknown))}")
        return value

    @field_validator("alert_email_to", "alert_email_from")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        bad = [a for a in split_list(value) if not _ADDRESS.fullmatch(a)]
        if bad:
            raise ValueError(f"has {', '.join(map(repr, bad))}, which is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _email_needs_recipients(self) -> EnvSettings:
        if "email" in self.alert_sink_names and not self.alert_recipients:
            raise ValueError(
                "MHSDS_ALERT_SINKS includes email but MHSDS_ALERT_EMAIL_TO is empty "
                "(expected at least one address to send the alerts to)"
            )
        return self

    @property
    def alert_sink_names(self) -> tuple[str, ...]:
        """The configured sinks, lower case, each once, in the order given (log always first)."""
        return tuple(dict.fromkeys(("log", *split_list(self.alert_sinks.lower()))))

    @property
    def alert_recipients(self) -> tuple[str, ...]:
        return split_list(self.alert_email_to)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The process environment (or the mapping given to read_settings) only: no .env file
        # (compose reads .env for the containers) and no secrets directory.
        return (init_settings, _EnvironSource(settings_cls))


#: The environment read_settings was asked to read instead of os.environ (tests, callers that
#: build a child process's environment).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("mhsds_environ", default=None)


class _EnvironSource(EnvSettingsSource):
    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


_SECRET_FIELDS = frozenset(
    name for name, info in EnvSettings.model_fields.items() if "SecretStr" in str(info.annotation)
)
_ENV_NAMES = {name: info.validation_alias for name, info in EnvSettings.model_fields.items()}
_FIELD_BY_ENV = {str(env).lower(): name for name, env in _ENV_NAMES.items()}

_PROBLEMS = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_type": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "finite_number": "is not a finite number",
    "greater_than": "is out of range",
    "greater_than_equal": "is out of range",
    "less_than": "is out of range",
    "less_than_equal": "is out of range",
    "literal_error": "is not one of the allowed values",
    "string_pattern_mismatch": "is not in the expected form",
}


def env_name(field: str) -> str:
    """The environment variable of a field, e.g. ``pg_port`` -> ``MHSDS_PG_PORT``."""
    return str(_ENV_NAMES[field])


def _shown(field: str | None, value: Any) -> str:
    """The bad value as an error may show it: never a secret's, and not at any length."""
    if field in _SECRET_FIELDS:
        return "'***'"
    text = str(value)
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


def _describe(error: Mapping[str, Any]) -> str:
    """One validation error as a sentence naming the variable, the value and what is allowed."""
    loc = error.get("loc") or ()
    field = _FIELD_BY_ENV.get(str(loc[0]).lower()) if loc else None
    if field is None:  # a check across variables: its message names them
        return str(error.get("ctx", {}).get("error") or error.get("msg"))
    info = EnvSettings.model_fields[field]
    if error.get("type") == "value_error":
        problem = str(error.get("ctx", {}).get("error") or error.get("msg"))
    else:
        problem = _PROBLEMS.get(str(error.get("type")), str(error.get("msg")))
    default = "" if info.default is None or info.default == "" else f", default {info.default}"
    return f"{env_name(field)}={_shown(field, error.get('input'))} {problem} (expected {info.description}{default})"


def read_settings(environ: Mapping[str, str] | None = None) -> EnvSettings:
    """The validated ``MHSDS_*`` settings from ``environ`` (default: the process environment).

    Raises :class:`ConfigurationError` naming every bad variable at once."""
    token = _ENVIRON.set(dict(os.environ) if environ is None else dict(environ))
    try:
        return EnvSettings()
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors(include_url=False))
        # from None: the ValidationError's own text would carry the inputs (secrets)
        raise ConfigurationError(
            f"MHSDS configuration error: {problems}. Fix the environment and run again; "
            "nothing was run with these settings."
        ) from None
    finally:
        _ENVIRON.reset(token)
