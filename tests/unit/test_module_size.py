"""No module of the package exceeds 600 lines: a longer one is split by responsibility."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "mhsds_pipeline"
MAX_LINES = 600


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_walk_sees_the_package():
    assert len(list(PACKAGE_ROOT.rglob("*.py"))) > 20


def test_no_module_exceeds_the_line_limit():
    too_long = {
        path.relative_to(PACKAGE_ROOT).as_posix(): lines
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        if (lines := _line_count(path)) > MAX_LINES
    }
    assert not too_long, "modules over {} lines (split them by responsibility): {}".format(
        MAX_LINES,
        ", ".join(f"plugins/mhsds_pipeline/{name} has {lines} lines" for name, lines in too_long.items()),
    )
