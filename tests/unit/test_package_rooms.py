"""Package rooms: production code never imports the synthetic EPR generator.

``mhsds_pipeline.source`` is the source contract (what a trust edits to map its EPR);
``mhsds_pipeline.synthetic`` makes synthetic data with planted defects. Every module under
``plugins/mhsds_pipeline`` is parsed with :mod:`ast` (imports at module level and inside
functions alike) so a stray import fails here rather than shipping the generator into a run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "mhsds_pipeline"
SYNTHETIC = "mhsds_pipeline.synthetic"

#: The only modules outside the synthetic package allowed to import it (paths relative to
#: PACKAGE_ROOT): the CLI's data-generating commands and the synthetic finance extract.
ALLOWED_IMPORTERS = frozenset({"cli.py", "finance/generator.py", "finance/fixtures.py"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names.

    ``from X import y`` yields both ``X`` and ``X.y`` (``y`` may be a submodule); relative
    imports are resolved against the module's own package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _imports_synthetic(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == SYNTHETIC or m.startswith(SYNTHETIC + "."))


def _modules() -> list[Path]:
    return sorted(PACKAGE_ROOT.rglob("*.py"))


def test_the_rooms_exist_and_epr_is_gone():
    assert (PACKAGE_ROOT / "source" / "__init__.py").is_file()
    assert (PACKAGE_ROOT / "synthetic" / "__init__.py").is_file()
    assert not (PACKAGE_ROOT / "epr").exists()
    assert len(_modules()) > 20  # the walk really sees the package


def test_production_modules_do_not_import_synthetic():
    offenders = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE_ROOT).as_posix()
        if rel.startswith("synthetic/") or rel in ALLOWED_IMPORTERS:
            continue
        if bad := _imports_synthetic(path):
            offenders[rel] = bad
    assert not offenders, f"production modules import the synthetic generator: {offenders}"


def test_source_contract_imports_nothing_from_synthetic():
    paths = sorted((PACKAGE_ROOT / "source").rglob("*.py"))
    assert paths
    offenders = {p.relative_to(PACKAGE_ROOT).as_posix(): bad for p in paths if (bad := _imports_synthetic(p))}
    assert not offenders, f"the source contract imports the synthetic generator: {offenders}"


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from mhsds_pipeline.synthetic import codes\n", True),
        ("import mhsds_pipeline.synthetic.generator as g\n", True),
        ("def f():\n    from mhsds_pipeline.synthetic.generator import generate\n", True),
        ("from mhsds_pipeline import synthetic\n", True),
        ("from .synthetic import spine\n", True),
        ("from mhsds_pipeline.source import schema\n", False),
        ("from mhsds_pipeline import source_cells\n", False),
    ],
)
def test_the_check_sees_every_import_form(tmp_path, monkeypatch, source, caught):
    root = tmp_path / "mhsds_pipeline"
    root.mkdir()
    module = root / "probe.py"
    module.write_text(source, encoding="utf-8")
    monkeypatch.setitem(globals(), "PACKAGE_ROOT", root)
    assert bool(_imports_synthetic(module)) is caught
