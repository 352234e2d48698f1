"""Checks the fault tests share: a scratch run's settings and environment, the state of an
output tree (to prove the last good outputs untouched), no NHS number in any text, an error
that is one clean line, no staging left behind.

Plain functions; ``conftest.py`` registers this module for pytest's assertion rewriting.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mhsds_pipeline import publish as pub
from mhsds_pipeline.config import Settings
from mhsds_pipeline.period import ReportingPeriod

REPO = Path(__file__).resolve().parents[2]

#: a 999-range (test) NHS number standing alone: no digit either side. Matches wherever
#: ``\b999\d{7}\b`` does, and also after a letter or underscore (``P9990000018``).
NHS_NUMBER = re.compile(r"(?<!\d)999\d{7}(?!\d)")


# -- a scratch run ------------------------------------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``MHSDS_*`` variables under which ``load_settings()`` (the CLI, a subprocess) finds the
    same paths as ``settings``."""
    return {
        "MHSDS_HOME": str(settings.home),
        "MHSDS_DATA_DIR": str(settings.data_dir),
        "MHSDS_OUTPUT_DIR": str(settings.output_dir),
        "MHSDS_SOURCE_URL": settings.source_url,
        "MHSDS_WAREHOUSE_TARGET": settings.warehouse_target,
        "MHSDS_WAREHOUSE_PATH": str(settings.warehouse_path),
        "MHSDS_DBT_PROJECT_DIR": str(settings.dbt_project_dir),
    }


# -- the last good outputs ----------------------------------------------------------------------


def tree_snapshot(root: Path) -> dict[str, tuple[str | None, bytes | None]]:
    """Every path under ``root`` that is a file or a symlink, by relative path: ``(link target
    or None, bytes or None)``. Symlinked directories (the period -> version link, a
    submission's ``current``) are followed, so the files behind them are read there too."""
    out: dict[str, tuple[str | None, bytes | None]] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        for name in dirs + files:
            path = Path(folder) / name
            link = os.readlink(path) if path.is_symlink() else None
            data = path.read_bytes() if path.is_file() else None
            if link is not None or data is not None:
                out[str(path.relative_to(root))] = (link, data)
    return out


def assert_tree_unchanged(root: Path, before: dict[str, tuple[str | None, bytes | None]]) -> None:
    """``root`` is as ``tree_snapshot`` found it: the same paths, bytes and link targets."""
    after = tree_snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert after == before, f"changed, added or removed under {root}: {changed[:20]}"


# -- what the operator sees ---------------------------------------------------------------------


def assert_no_nhs_number(*texts: str | None) -> None:
    """No text holds a 999-range NHS number (the message shows where, with the number masked)."""
    for text in texts:
        found = NHS_NUMBER.search(text or "")
        assert found is None, f"NHS number in text: {_masked(text, found)}"


def _masked(text: str, found: re.Match) -> str:
    start = max(found.start() - 80, 0)
    return "..." + text[start : found.end() + 80].replace(found.group(), "999*******") + "..."


def assert_one_clean_line(message: str) -> None:
    """An error an operator can read: one line, under 600 characters, no NHS number."""
    assert "\n" not in message and len(message) < 600, message
    assert_no_nhs_number(message)


def assert_no_leftovers(settings: Settings, period: str, run_id: str) -> None:
    """A failed publication left no staging, no version that never became current and no
    half-made period symlink."""
    assert not pub.staging_dir(settings, ReportingPeriod.parse(period), run_id).exists()
    assert not (settings.output_dir / ".staging" / period).exists()
    versions = settings.output_dir / ".versions" / period
    made = sorted(v.name for v in versions.iterdir()) if versions.exists() else []
    orphans = [v for v in made if v.endswith(f"__{run_id}")]
    assert not orphans, f"orphan version left: {orphans}"
    assert not list(settings.output_dir.glob(f".{period}.link-*")), "temporary symlink left"


def point_env_at(monkeypatch, settings):
    """Point the ``MHSDS_*`` environment at a settings object's paths for the rest of the test,
    so that what loads settings from the environment (the CLI, the pipeline steps) runs there."""
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    return settings
