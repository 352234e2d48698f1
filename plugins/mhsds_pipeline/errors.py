"""The pipeline's retryable error types, in a module that imports nothing of the package.

:mod:`mhsds_pipeline.failures` (which failures are worth retrying, and ``run_step`` for the DAG
tasks) and :mod:`mhsds_pipeline.locks` (the warehouse lock, which raises
:class:`WarehouseBusyError`) both need these; defining them here keeps the two modules from
importing each other. ``failures`` re-exports them, so ``from mhsds_pipeline.failures import
WarehouseBusyError`` keeps working.
"""

from __future__ import annotations


class RetryableError(Exception):
    """A failure that may succeed on a later try (something outside the pipeline was busy)."""


class SourceUnavailableError(RetryableError):
    """The clinical source (or finance ledger) could not be reached."""


class WarehouseBusyError(RetryableError):
    """Another run holds the warehouse (see :mod:`mhsds_pipeline.locks`)."""
