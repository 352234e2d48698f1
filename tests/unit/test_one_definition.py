"""Every MHSDS validation rule has one definition: the rules catalogue, not dbt.

The rules catalogue (expectations/rules/mhsds_v6_rules.yml, docs/rules.md) is the only place an
MHSDS rule (an NHS England error code such as MHS00165, or a LOCAL_* rule) is defined; the quality
gate evaluates it in SQL after dbt. dbt keeps structural tests only (contracts, join keys, nothing
lost between layers), each with its own ``DBT_*`` (``FIN_*`` for finance) id in
``config.meta.check_id``. This module checks that:

* no file of the dbt project names an MHSDS error code or a ``rule_id`` (seed CSVs, which hold
  reference data that may cite codes, and dbt's own output directories are not looked at);
* every dbt data test declared in the project's YAML has a ``check_id`` starting ``DBT_`` or
  ``FIN_``, without an MHSDS code in it and without our old severity vocabulary in its meta;
* the ids are unique, so a dbt result names exactly one test.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
#: dbt's output and package directories: not the project's own files
SKIP_DIRS = {"target", "logs", "dbt_packages"}
MHSDS_CODE = re.compile(r"MHS\d{5}")
CHECK_ID = re.compile(r"^(DBT|FIN)_[A-Z0-9_]+$")
#: the meta severity vocabulary dbt tests no longer carry (dbt's own config.severity warn|error may stay)
OLD_SEVERITIES = {"critical", "warning", "info"}
#: YAML keys holding data tests (``tests`` is dbt's older spelling)
TEST_KEYS = ("data_tests", "tests")


def _project_files() -> list[Path]:
    files = []
    for path in sorted(DBT_PROJECT.rglob("*")):
        rel = path.relative_to(DBT_PROJECT)
        if not path.is_file() or SKIP_DIRS & set(rel.parts[:-1]) or rel.parts[0] in SKIP_DIRS:
            continue
        if rel.parts[0] == "seeds" and path.suffix.lower() == ".csv":
            continue
        if path.suffix.lower() in {".duckdb", ".wal", ".db"}:  # a local warehouse file, if any
            continue
        files.append(path)
    return files


def _yaml_files() -> list[Path]:
    return [p for p in _project_files() if p.suffix in (".yml", ".yaml")]


def _tests_of(node: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in TEST_KEYS:
        out.extend(node.get(key) or [])
    return out


def _declared_tests(doc: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
    """(location, test entry) for every data test a dbt properties file declares."""
    for kind in ("models", "seeds", "snapshots"):
        nodes = doc.get(kind)
        if not isinstance(nodes, list):  # dbt_project.yml: a config tree, not node properties
            continue
        for node in nodes:
            name = f"{where}: {node.get('name')}"
            for test in _tests_of(node):
                yield name, test
            for column in node.get("columns") or []:
                for test in _tests_of(column):
                    yield f"{name}.{column.get('name')}", test
    sources = doc.get("sources")
    for source in sources if isinstance(sources, list) else []:
        for table in source.get("tables") or []:
            name = f"{where}: source {source.get('name')}.{table.get('name')}"
            for test in _tests_of(table):
                yield name, test
            for column in table.get("columns") or []:
                for test in _tests_of(column):
                    yield f"{name}.{column.get('name')}", test


def _all_tests() -> list[tuple[str, str, dict[str, Any]]]:
    """(location, test name, test config) of every data test in the project's YAML."""
    out = []
    for path in _yaml_files():
        doc = yaml.safe_load(path.read_text()) or {}
        where = str(path.relative_to(DBT_PROJECT))
        for location, test in _declared_tests(doc, where):
            if isinstance(test, str):  # `- not_null` with no config at all
                out.append((location, test, {}))
                continue
            ((name, body),) = test.items()
            out.append((location, name, (body or {}).get("config") or {}))
    return out


def _check_ids() -> list[str]:
    return [(config.get("meta") or {}).get("check_id") for _, _, config in _all_tests()]


def test_the_project_is_found() -> None:
    assert (DBT_PROJECT / "dbt_project.yml").is_file()
    assert len(_all_tests()) >= 20, "expected the project's structural tests"


def test_no_mhsds_rule_code_or_rule_id_in_the_dbt_project() -> None:
    offending = []
    for path in _project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if MHSDS_CODE.search(line) or "rule_id" in line:
                offending.append(f"{path.relative_to(DBT_PROJECT)}:{n}: {line.strip()}")
    assert not offending, (
        "MHSDS rules are defined only in expectations/rules/mhsds_v6_rules.yml; dbt tests are "
        "structural and carry DBT_*/FIN_* ids in meta.check_id:\n" + "\n".join(offending)
    )


def test_every_dbt_test_has_a_structural_check_id() -> None:
    bad = []
    for location, name, config in _all_tests():
        meta = config.get("meta") or {}
        check_id = meta.get("check_id")
        if not isinstance(check_id, str) or not CHECK_ID.match(check_id) or MHSDS_CODE.search(check_id):
            bad.append(f"{location} {name}: check_id {check_id!r}")
        if "rule_id" in meta:
            bad.append(f"{location} {name}: meta.rule_id (use check_id)")
        if meta.get("severity") in OLD_SEVERITIES:
            bad.append(f"{location} {name}: meta.severity {meta['severity']!r}")
    assert not bad, "\n".join(bad)


def test_check_ids_are_unique() -> None:
    repeated = {cid: n for cid, n in Counter(_check_ids()).items() if n > 1}
    assert not repeated, repeated


def test_project_level_config_sets_no_check_id() -> None:
    """A check_id under dbt_project.yml's data_tests would give every test the same id."""
    doc = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())
    text = yaml.safe_dump(doc.get("data_tests") or doc.get("tests") or {})
    assert "check_id" not in text and "severity: critical" not in text


def test_singular_tests_are_not_used() -> None:
    """Singular tests (SQL files in tests/ outside tests/generic/) would escape the checks above."""
    tests_dir = DBT_PROJECT / "tests"
    singular = [p for p in tests_dir.rglob("*.sql") if "generic" not in p.relative_to(tests_dir).parts]
    assert not singular, singular


@pytest.mark.parametrize(
    "generic", sorted((DBT_PROJECT / "tests" / "generic").glob("*.sql")), ids=lambda p: p.stem
)
def test_every_generic_test_is_used(generic: Path) -> None:
    used = {name for _, name, _ in _all_tests()}
    assert generic.stem in used, f"{generic.name} is used by no YAML: delete it"


# ------------------------------------------------------------------------------ Python code

PLUGINS = Path(__file__).resolve().parents[2] / "plugins" / "mhsds_pipeline"
RULE_ID = re.compile(r"^(MHS\d{5}|LOCAL_[A-Z0-9_]+)$")


def _string_constants(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, value, is the argument of a ``.rule(...)`` lookup) for rule-id-like literals."""
    import ast

    tree = ast.parse(path.read_text())
    lookups = {
        id(arg)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "rule"
        for arg in node.args
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.match(node.value):
            yield node.lineno, node.value, id(node) in lookups


def test_python_code_defines_no_catalogue_rule():
    """Production code never restates a catalogue rule: it may look one up by its id
    (``catalogue.rule("MHS00133")``), nothing else. The pipeline's own file-level checks
    (reconciliation, mandatory tables, volume, unreadable keys) have LOCAL_ ids defined once,
    in the module that runs them, and never reuse a catalogue id."""
    from mhsds_pipeline.quality.rules import load_catalogue

    catalogue_ids = {r.id for r in load_catalogue().rules}
    restated, own = [], Counter()
    for path in sorted(PLUGINS.rglob("*.py")):
        for line, value, is_lookup in _string_constants(path):
            if is_lookup:
                assert value in catalogue_ids, f"{path.name}:{line} looks up unknown rule {value}"
                continue
            if value in catalogue_ids or MHSDS_CODE.fullmatch(value):
                restated.append(f"{path.relative_to(PLUGINS)}:{line} {value}")
            else:
                own[value] += 1
    assert restated == [], f"catalogue rules restated in Python: {restated}"
    assert [v for v, n in own.items() if n > 1] == [], "a pipeline check id defined twice"


def test_each_catalogue_rule_is_defined_once_in_the_repository():
    """Grepping a rule id finds one definition: its catalogue entry (format codes: its cell of
    ``format_rules``). The rendered GX suites are generated from the catalogue, not definitions."""
    from mhsds_pipeline.quality.rules import CATALOGUE, load_catalogue

    # the catalogue and the part it includes (scripts/v6_tables.py writes it from the rules file)
    text = CATALOGUE.read_text() + (CATALOGUE.parent / "mhsds_v6_rules_tables.yml").read_text()
    sources = [p for p in (*PLUGINS.rglob("*.py"), *_project_files()) if p.is_file()]
    for rule in load_catalogue().rules:
        entry = re.findall(rf"(?:id: |: ){rule.id}\b", text)
        assert len(entry) == 1, f"{rule.id}: {len(entry)} catalogue entries"
        elsewhere = [
            p.name for p in sources if re.search(rf"(?:id:|rule_id:|check_id:)\s*{rule.id}\b", p.read_text())
        ]
        assert elsewhere == [], f"{rule.id} is also defined in {elsewhere}"
