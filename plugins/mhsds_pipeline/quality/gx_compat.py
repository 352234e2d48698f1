"""Workarounds for Great Expectations 1.24 behaviour that breaks validation on our warehouse.

Why: ``SqlAlchemyExecutionEngine.execute_query`` runs the query inside
``with self.get_connection() as connection:`` and returns the live ``CursorResult`` *after* the
block has closed the connection. Drivers that buffer rows client-side (psycopg2, sqlite3) still
hand the rows over, but DuckDB's driver (duckdb_engine) streams them from the closed
connection, so every result reads as empty. The first symptom is in
``resolve_metric_bundle``: ``IndexError: list index out of range`` on ``res[0]``, and every
expectation on a DuckDB SQL data source then fails with a ``MetricResolutionError`` instead of
validating. Returning a buffered copy of the rows, made while the connection is still open,
fixes it for every dialect at the cost of holding the result in memory (GX's metric queries
return one row of aggregates, or at most the unexpected rows it asks for).

Remove this module once GX reads results before closing the connection (check by deleting the
patch call and running tests/unit/test_gx_expectations.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["patch_sqlalchemy_execution_engine"]

_PATCH_MARKER = "_mhsds_buffered_execute_query"


def _buffered_execute_query(self: Any, query: Any) -> Any:
    """``execute_query`` that materialises the rows before the connection closes."""
    with self.get_connection() as connection:
        result = self._execute_query_with_recovery(connection, query)
        if not result.returns_rows:
            # DDL/DML (e.g. temp tables): nothing to buffer, and freeze() would raise.
            return result
        # FrozenResult() gives a fresh Result over the buffered rows: fetchall/fetchone/
        # fetchmany/scalar/iteration all behave as on the CursorResult GX expects.
        return result.freeze()()


setattr(_buffered_execute_query, _PATCH_MARKER, True)


def patch_sqlalchemy_execution_engine() -> bool:
    """Make ``SqlAlchemyExecutionEngine.execute_query`` return buffered results.

    Idempotent and process-wide (it patches the class). Returns True when it installed the
    patch, False when it was already installed.
    """
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    if getattr(SqlAlchemyExecutionEngine.execute_query, _PATCH_MARKER, False):
        return False
    SqlAlchemyExecutionEngine.execute_query = _buffered_execute_query  # type: ignore[method-assign]
    return True
