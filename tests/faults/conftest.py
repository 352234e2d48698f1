"""Fixtures the fault tests share; the plain checks are in ``_fault_helpers.py``."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("_fault_helpers")

from _fault_helpers import settings_env  # noqa: E402 - after the assertion-rewrite registration


@pytest.fixture
def point_env_at(monkeypatch):
    """Point the ``MHSDS_*`` environment at a settings object's paths for the rest of the test,
    so that what loads settings from the environment (the CLI, the pipeline steps) runs there."""

    def point(settings):
        for name, value in settings_env(settings).items():
            monkeypatch.setenv(name, value)
        return settings

    return point
