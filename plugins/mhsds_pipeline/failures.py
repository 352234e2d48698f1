"""Which failures are worth retrying, and how a step fails inside Airflow.

A scheduled run retries a failed task twice with backoff. That is right for one kind of failure
only: the clinical source (or the finance ledger, or a PostgreSQL warehouse) was briefly
unreachable, or the single-writer warehouse was busy with a run outside Airflow. Everything else
is deterministic and fails the same way on every try: an impossible period, a configuration
error, a dbt contract violation, a quality-gate or packaging refusal, a bug. Retrying those only
keeps the run "up for retry" for minutes before the alert the on-call engineer needs.

:func:`is_retryable` classifies an exception (following ``__cause__``/``__context__``);
:func:`run_step` is what every DAG task calls: it runs a pipeline step and turns a
deterministic failure into Airflow's ``AirflowFailException``, which fails the task at once
whatever its ``retries``. Light module: imported by DAG files at parse time. The error types
(:class:`RetryableError`, :class:`SourceUnavailableError`, :class:`WarehouseBusyError`) live in
:mod:`mhsds_pipeline.errors`, below both this module and :mod:`mhsds_pipeline.locks`, and are
re-exported here.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mhsds_pipeline.errors import RetryableError, SourceUnavailableError, WarehouseBusyError

__all__ = [
    "RetryableError",
    "SourceUnavailableError",
    "WarehouseBusyError",
    "describe",
    "is_retryable",
    "run_step",
]

T = TypeVar("T")


#: Fragments of driver messages that mean "could not reach the server", not "bad query".
_TRANSIENT_MESSAGES = (
    "could not connect",
    "connection refused",
    "connection reset",
    "connection timed out",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "too many connections",
    "could not translate host name",
    "timeout expired",
    "database is locked",
)
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_retryable(exc: BaseException) -> bool:
    """True only for failures a later try can cure: a source or server that was unreachable,
    a busy warehouse. Anything else (including unknown errors) is deterministic."""
    for e in _chain(exc):
        if isinstance(e, RetryableError):
            return True
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return True
        # SQLAlchemy / DBAPI operational errors: only the connection-level ones
        if type(e).__name__ in ("OperationalError", "InterfaceError", "DisconnectionError"):
            if getattr(e, "connection_invalidated", False):
                return True
            message = str(e).lower()
            if any(fragment in message for fragment in _TRANSIENT_MESSAGES):
                return True
    return False


def describe(exc: BaseException) -> str:
    """``ErrorClass: message`` of the failure (the class is what an operator triages on)."""
    return f"{type(exc).__name__}: {exc}"


def run_step(
    step: Callable[..., T],
    *args: Any,
    warehouse_holder: str | None = None,
    shared_schema: bool = True,
    **kwargs: Any,
) -> T:
    """Run a pipeline step in an Airflow task: deterministic failures fail the task at once
    (``AirflowFailException``, no retries), retryable ones propagate for the task's retries.

    With ``warehouse_holder`` (the Airflow run id) the step runs under the warehouse lock
    (:mod:`mhsds_pipeline.locks`): the pool keeps Airflow's own tasks apart, the lock keeps
    runs outside Airflow out. On DuckDB every warehouse step takes it (one writer per file).
    On PostgreSQL only the steps on the month's shared schemas (``raw_epr`` and the MHSDS
    marts) do; the finance steps (``shared_schema=False``: ``raw_finance`` and the finance
    marts) run beside them, which is what the pool's second slot there is for."""
    try:
        if warehouse_holder is None:
            return step(*args, **kwargs)
        from mhsds_pipeline.config import load_settings
        from mhsds_pipeline.locks import warehouse_lock

        settings = load_settings()
        if not shared_schema and settings.warehouse_target != "duckdb":
            return step(*args, **kwargs)
        period = args[0] if args and isinstance(args[0], str) else None
        with warehouse_lock(settings, warehouse_holder, period=period, step=step.__name__):
            return step(*args, **kwargs)
    except Exception as exc:
        if is_retryable(exc):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{describe(exc)} (not retried: the same input fails the same way)"
        ) from exc
