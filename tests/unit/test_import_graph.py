"""No import circles between the modules of ``mhsds_pipeline``.

The graph is built from the source with :mod:`ast`, not by importing anything. Every ``import``
and ``from ... import`` counts, at module level or inside a function: a lazy import is still a
dependency, it only moves the failure from import time to call time.

Resolution:

* ``import mhsds_pipeline.a.b`` depends on ``mhsds_pipeline.a.b``.
* ``from mhsds_pipeline.a import b`` depends on ``mhsds_pipeline.a.b`` when ``b`` is a submodule,
  else on ``mhsds_pipeline.a`` (the package's ``__init__``).
* Importing a package's ``__init__`` depends on that module only, not on all its submodules (and
  importing a submodule does not count as depending on its parent package's ``__init__``).
* Relative imports are resolved against the importing module.

A strongly connected component with more than one module is a circle. The failure message names
its modules and every import line between them, so it says which imports to move. A circle that
can only be broken in a file this change could not touch is listed in ``KNOWN_CYCLES_TO_FIX``;
the test fails if a listed circle disappears (remove it from the list) or changes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = "mhsds_pipeline"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "plugins" / PACKAGE

# Circles that can only be broken in modules owned by other ongoing work. Each entry is the exact
# set of modules of one strongly connected component; the test fails if one disappears or changes
# shape, so fixing a circle means deleting its entry here. Empty: the package has no circles, and
# any new one fails the test. Do not add to this list.
KNOWN_CYCLES_TO_FIX: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class ImportEdge:
    source: str  # importing module
    target: str  # imported module
    path: Path
    lineno: int
    text: str  # the import statement's source line(s)

    def describe(self) -> str:
        where = self.path.relative_to(PACKAGE_DIR.parent)
        return f"{self.source} -> {self.target}   ({where}:{self.lineno}: {self.text})"


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Module name -> file for every ``.py`` under the package (``__init__`` is the package)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_edges(module: str, path: Path, modules: set[str]) -> list[ImportEdge]:
    """Edges from ``module`` to other modules of the package, one per imported module per line."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    lines = source.splitlines()
    is_package = path.name == "__init__.py"
    edges: list[ImportEdge] = []

    seen: set[tuple[str, int]] = set()

    def add(target: str, node: ast.stmt) -> None:
        if target == module or target not in modules or (target, node.lineno) in seen:
            return
        seen.add((target, node.lineno))
        text = " ".join(line.strip() for line in lines[node.lineno - 1 : node.end_lineno])
        edges.append(ImportEdge(module, target, path, node.lineno, text))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                # ``import a.b.c`` where a.b.c is not a module (cannot happen in valid code, but
                # be safe): fall back to the longest module prefix.
                while name and name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                add(name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in modules else base, node)
    return edges


def build_graph(package_dir: Path = PACKAGE_DIR) -> tuple[dict[str, set[str]], list[ImportEdge]]:
    files = module_files(package_dir)
    names = set(files)
    graph: dict[str, set[str]] = {name: set() for name in names}
    edges: list[ImportEdge] = []
    for name, path in files.items():
        for edge in import_edges(name, path, names):
            graph[name].add(edge.target)
            edges.append(edge)
    return graph, edges


def strongly_connected_components(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iterative. Returns every component (singletons included)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[frozenset[str]] = []
    counter = 0

    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph.get(root, ())))]
        index[root] = lowlink[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            if successors:
                succ = successors.pop(0)
                if succ not in index:
                    index[succ] = lowlink[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, sorted(graph.get(succ, ()))))
                elif succ in on_stack:
                    lowlink[node] = min(lowlink[node], index[succ])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(frozenset(component))
    return components


def find_cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Components of more than one module (self-imports are ignored), sorted for stable output."""
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    return sorted(cycles, key=lambda c: sorted(c))


def describe_cycle(cycle: frozenset[str], edges: list[ImportEdge]) -> str:
    inside = sorted(
        (e for e in edges if e.source in cycle and e.target in cycle),
        key=lambda e: (e.source, e.lineno, e.target),
    )
    lines = [f"circle of {len(cycle)} modules: {', '.join(sorted(cycle))}", "  imports inside it:"]
    lines += [f"    {e.describe()}" for e in inside]
    return "\n".join(lines)


# --- the cycle finder itself -------------------------------------------------------------------


def test_cycle_finder_on_a_synthetic_graph():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e, reached from the first circle
        "f": {"a", "f"},  # self-import only: not a circle
        "g": set(),
        "h": {"i"},
        "i": {"j"},  # a chain, no circle
        "j": set(),
    }
    assert find_cycles(graph) == [frozenset("abc"), frozenset("de")]
    assert find_cycles({"x": {"y"}, "y": set()}) == []
    components = strongly_connected_components(graph)
    assert sorted(map(sorted, components)) == sorted(
        [["a", "b", "c"], ["d", "e"], ["f"], ["g"], ["h"], ["i"], ["j"]]
    )


def test_import_resolution(tmp_path: Path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from mhsds_pipeline.sub.low import thing\n")
    (pkg / "sub" / "low.py").write_text("import json\nthing = 1\n")
    (pkg / "sub" / "mid.py").write_text(
        "from . import low\nfrom .low import thing\n\ndef f():\n    from mhsds_pipeline import top\n"
    )
    (pkg / "top.py").write_text(
        "import mhsds_pipeline.sub.mid\nfrom mhsds_pipeline.sub import thing\nfrom mhsds_pipeline import sub\n"
    )
    graph, _ = build_graph(pkg)
    assert graph == {
        PACKAGE: set(),
        f"{PACKAGE}.sub": {f"{PACKAGE}.sub.low"},
        f"{PACKAGE}.sub.low": set(),
        f"{PACKAGE}.sub.mid": {f"{PACKAGE}.sub.low", f"{PACKAGE}.top"},  # the lazy import counts
        f"{PACKAGE}.top": {f"{PACKAGE}.sub.mid", f"{PACKAGE}.sub"},  # a name from __init__: sub only
    }
    assert find_cycles(graph) == [frozenset({f"{PACKAGE}.sub.mid", f"{PACKAGE}.top"})]


# --- the real package ----------------------------------------------------------------------------


def test_graph_covers_the_package():
    graph, edges = build_graph()
    assert f"{PACKAGE}.submission.package" in graph and f"{PACKAGE}.cli" in graph
    assert len(edges) > 50, "the graph has almost no edges: the import resolution is broken"


def test_no_import_cycles():
    graph, edges = build_graph()
    cycles = set(find_cycles(graph))
    new = sorted(cycles - KNOWN_CYCLES_TO_FIX, key=sorted)
    gone = sorted(KNOWN_CYCLES_TO_FIX - cycles, key=sorted)
    message = []
    if new:
        message.append(
            "Import circles between mhsds_pipeline modules. Break each one by moving what both "
            "sides need into a lower module that imports neither (a lazy import inside a function "
            "still counts):"
        )
        message += [describe_cycle(c, edges) for c in new]
    if gone:
        message.append(
            "These circles in KNOWN_CYCLES_TO_FIX no longer exist as listed (fixed, or changed "
            "shape); update the list:"
        )
        message += [f"  {', '.join(sorted(c))}" for c in gone]
    assert not message, "\n\n".join(message)
