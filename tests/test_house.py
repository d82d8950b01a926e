"""Keep the house's structure honest: import layering and declared dependencies.

These tests read the source with ``ast`` instead of importing it, so they catch what imports
alone would only show late or not at all: an import cycle that works today only because of the
order modules happen to load in, the data layer reaching up into the GraphQL layer, and a
third-party module that is installed here by accident but missing from a clean install.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = frozenset({"graph", "persistence", "migrations", "tests"})
# Node.js clients and their node_modules: not Python the house runs.
EXCLUDED = (ROOT / "tests" / "clients",)


@dataclass(frozen=True)
class RawImport:
    """One import statement, its relative part resolved: ``module`` is absolute."""

    module: str
    names: tuple[str, ...] | None  # None for ``import module``; the names for ``from ... import``
    line: int
    type_checking: bool


@dataclass(frozen=True)
class Edge:
    target: str
    line: int
    type_checking: bool


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    has_code: bool
    imports: tuple[RawImport, ...]


# --- reading the source ---------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _package_of(name: str, is_package: bool) -> list[str]:
    parts = name.split(".")
    return parts if is_package else parts[:-1]


def _raw_imports(tree: ast.Module, name: str, is_package: bool) -> list[RawImport]:
    found: list[RawImport] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.body:
                visit(stmt, True)
            for stmt in node.orelse:
                visit(stmt, type_checking)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(RawImport(alias.name, None, node.lineno, type_checking))
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(name, is_package)
                if node.level - 1 > len(package):
                    raise AssertionError(f"{name}:{node.lineno}: relative import beyond top level")
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            found.append(RawImport(module, names, node.lineno, type_checking))
            return
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(tree, False)
    return found


def _has_code(tree: ast.Module) -> bool:
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return bool(body)


def scan(root: Path, packages: Iterable[str], exclude: Collection[Path] = ()) -> dict[str, Module]:
    """Every .py file under ``root/<package>``, any depth, keyed by dotted module name."""
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if any(path.is_relative_to(excluded) for excluded in exclude):
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            imports = tuple(_raw_imports(tree, name, is_package))
            modules[name] = Module(name, path, is_package, _has_code(tree), imports)
    return modules


# --- the import graph -----------------------------------------------------------------------


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def edges_of(module: Module, modules: Mapping[str, Module]) -> list[Edge]:
    """What running ``module`` makes Python run: each imported module, resolved.

    ``from x import y`` names module ``x.y`` when that is a module, else ``x``. Importing
    ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``: those count when they have code,
    except packages that enclose the importer too, which are always loaded before it.
    """
    own = {*_ancestors(module.name), module.name}
    edges: list[Edge] = []
    for imp in module.imports:
        if imp.names is None:
            named = [imp.module]
        else:
            named = [
                f"{imp.module}.{n}" if f"{imp.module}.{n}" in modules else imp.module
                for n in imp.names
            ]
        for target in dict.fromkeys(named):
            implicit = [
                a
                for a in _ancestors(target)
                if a in modules and modules[a].has_code and a not in own
            ]
            for dependency in [*implicit, target]:
                if dependency != module.name:
                    edges.append(Edge(dependency, imp.line, imp.type_checking))
    return edges


Graph = dict[str, dict[str, Edge]]


def import_graph(
    modules: Mapping[str, Module], nodes: Collection[str], *, type_checking: bool
) -> Graph:
    """Edges among ``nodes``; with ``type_checking=False`` only the imports that run."""
    graph: Graph = {name: {} for name in nodes}
    for name in nodes:
        for edge in edges_of(modules[name], modules):
            if edge.target not in graph or (edge.type_checking and not type_checking):
                continue
            known = graph[name].get(edge.target)
            # One edge per pair: prefer the import that runs, then the first one in the file.
            if known is None or (known.type_checking, known.line) > (edge.type_checking, edge.line):
                graph[name][edge.target] = edge
    return graph


def _strongly_connected(graph: Graph) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def find_cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle per tangle (strongly connected component), as a closed path."""
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        start = component[0]
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in graph[node]:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                cycles.append([start, *reversed(path[:-1]), start])
                break
            for target in sorted(graph[node]):
                if target in members and target not in parent and target != start:
                    parent[target] = node
                    queue.append(target)
    return cycles


def describe_cycle(
    cycle: list[str], graph: Graph, modules: Mapping[str, Module], root: Path
) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        edge = graph[source][target]
        where = modules[source].path.relative_to(root)
        note = " (under TYPE_CHECKING)" if edge.type_checking else ""
        lines.append(f"    {where}:{edge.line} imports {target}{note}")
    return "\n".join(lines)


def _cycles_message(
    cycles: list[list[str]], graph: Graph, modules: Mapping[str, Module], root: Path
) -> str:
    return "\n".join(describe_cycle(cycle, graph, modules, root) for cycle in cycles)


def imports_into(
    modules: Mapping[str, Module], importers: Iterable[str], package: str, root: Path
) -> list[str]:
    """Every import (TYPE_CHECKING ones too) by one of ``importers`` of ``package``."""
    return [
        f"{modules[name].path.relative_to(root).as_posix()}:{edge.line} imports {edge.target}"
        for name in importers
        for edge in edges_of(modules[name], modules)
        if edge.target.split(".")[0] == package
    ]


def paths_into(modules: Mapping[str, Module], start: str, package: str) -> list[str]:
    """Import chains (TYPE_CHECKING ones too) from ``start`` to any module of ``package``."""
    parent = {start: start}
    queue = deque([start])
    paths: list[str] = []
    while queue:
        node = queue.popleft()
        for edge in edges_of(modules[node], modules):
            if edge.target in parent:
                continue
            parent[edge.target] = node
            if edge.target.split(".")[0] == package:
                path = [edge.target]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                paths.append(" -> ".join(reversed(path)))
            elif edge.target in modules:
                queue.append(edge.target)
    return paths


# --- declared dependencies ------------------------------------------------------------------


def normalize(name: str) -> str:
    """PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution a PEP 508 requirement names, without extras, versions or markers."""
    match = re.match(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)", requirement)
    if match is None:
        raise AssertionError(f"unreadable requirement: {requirement!r}")
    return normalize(match.group(1))


def third_party_imports(modules: Mapping[str, Module]) -> dict[str, list[str]]:
    """Top-level third-party module -> where it is imported ("path:line")."""
    found: dict[str, list[str]] = {}
    for module in modules.values():
        for imp in module.imports:
            top = imp.module.split(".")[0]
            if top in FIRST_PARTY or top in sys.stdlib_module_names:
                continue
            where = f"{module.path.relative_to(ROOT).as_posix()}:{imp.line}"
            found.setdefault(top, []).append(where)
    return found


def undeclared(
    imported: Mapping[str, list[str]],
    declared: Collection[str],
    distributions: Mapping[str, list[str]],
) -> list[str]:
    """One line per imported module that no declared distribution provides."""
    offenders: list[str] = []
    for top, places in sorted(imported.items()):
        provided_by = sorted({normalize(d) for d in distributions.get(top, [])})
        if not set(provided_by) & set(declared):
            source = ", ".join(provided_by) if provided_by else "no installed distribution"
            offenders.append(f"{top} (from {source}) imported at {', '.join(places)}")
    return offenders


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def declared_dependencies(*, extras: Iterable[str] = ()) -> set[str]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    requirements: list[str] = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        requirements += optional[extra]
    return {requirement_name(r) for r in requirements}


# --- the checks on this house ---------------------------------------------------------------


@pytest.fixture(scope="module")
def house() -> dict[str, Module]:
    return scan(ROOT, sorted(FIRST_PARTY), exclude=EXCLUDED)


def _in(modules: Mapping[str, Module], *packages: str) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in packages)


def test_no_runtime_import_cycle_in_graph_and_persistence(house: dict[str, Module]) -> None:
    graph = import_graph(house, _in(house, "graph", "persistence"), type_checking=False)
    cycles = find_cycles(graph)
    assert not cycles, "Runtime import cycles (TYPE_CHECKING imports left out):\n" + (
        _cycles_message(cycles, graph, house, ROOT)
    )


def test_no_import_cycle_in_persistence_even_for_type_checking(house: dict[str, Module]) -> None:
    graph = import_graph(house, _in(house, "persistence"), type_checking=True)
    cycles = find_cycles(graph)
    assert not cycles, "Import cycles in persistence (TYPE_CHECKING imports included):\n" + (
        _cycles_message(cycles, graph, house, ROOT)
    )


def test_persistence_never_imports_graph(house: dict[str, Module]) -> None:
    offenders = imports_into(house, _in(house, "persistence"), "graph", ROOT)
    assert not offenders, "persistence must not depend on graph:\n" + "\n".join(offenders)


def test_migrations_env_imports_nothing_from_graph(house: dict[str, Module]) -> None:
    assert "migrations.env" in house, "migrations/env.py is missing"
    offenders = paths_into(house, "migrations.env", "graph")
    assert not offenders, "migrations/env.py reaches graph, directly or not:\n" + "\n".join(
        offenders
    )


def test_app_imports_are_declared_dependencies(house: dict[str, Module]) -> None:
    app = {name: house[name] for name in _in(house, "graph", "persistence", "migrations")}
    offenders = undeclared(
        third_party_imports(app), declared_dependencies(), packages_distributions()
    )
    assert not offenders, "Imported but not in [project].dependencies:\n" + "\n".join(offenders)


def test_test_imports_are_declared_dependencies(house: dict[str, Module]) -> None:
    tests = {name: house[name] for name in _in(house, "tests")}
    offenders = undeclared(
        third_party_imports(tests), declared_dependencies(extras=["dev"]), packages_distributions()
    )
    assert not offenders, (
        "Imported by tests but not in [project].dependencies or the dev extra:\n"
        + "\n".join(offenders)
    )


# --- the helpers can fail -------------------------------------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _cycles_in(root: Path, package: str, *, type_checking: bool) -> list[list[str]]:
    modules = scan(root, [package])
    return find_cycles(import_graph(modules, list(modules), type_checking=type_checking))


def test_helpers_find_function_level_cycles_and_skip_type_checking(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": '"""Only a docstring."""\n',
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg.a import thing\n",
            "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n",
            "pkg/d.py": "import pkg.c\n",
        },
    )
    assert _cycles_in(tmp_path, "pkg", type_checking=False) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert _cycles_in(tmp_path, "pkg", type_checking=True) == [
        ["pkg.a", "pkg.b", "pkg.a"],
        ["pkg.c", "pkg.d", "pkg.c"],
    ]


def test_helpers_resolve_relative_imports_and_package_inits(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            # Importing a sibling through the enclosing package is not a cycle...
            "calm/__init__.py": "from calm.x import X\n",
            "calm/x.py": "from calm.y import Y\nX = 1\n",
            "calm/y.py": "Y = 1\n",
            # ...but reaching into another package runs that package's __init__.
            "loop/__init__.py": "",
            "loop/inner/__init__.py": "from . import a\n",
            "loop/inner/a.py": "from ..outside import thing\n",
            "loop/inner/b.py": "",
            "loop/outside.py": "import loop.inner.b\nthing = 1\n",
        },
    )
    assert _cycles_in(tmp_path, "calm", type_checking=False) == []
    modules = scan(tmp_path, ["loop"])
    graph = import_graph(modules, list(modules), type_checking=False)
    cycles = find_cycles(graph)
    assert cycles == [["loop.inner", "loop.inner.a", "loop.outside", "loop.inner"]]
    message = describe_cycle(cycles[0], graph, modules, tmp_path)
    assert "loop/inner/a.py:1 imports loop.outside" in message


def test_helpers_find_undeclared_distributions() -> None:
    assert requirement_name("uvicorn[standard]==0.54.0") == "uvicorn"
    assert requirement_name("SQLAlchemy[asyncio]==2.1.9") == "sqlalchemy"
    assert requirement_name("zope.interface>=5; python_version > '3'") == "zope-interface"
    imported = {"yaml": ["a.py:1"], "sqlalchemy": ["a.py:2"], "mystery": ["b.py:3"]}
    distributions = {"yaml": ["PyYAML"], "sqlalchemy": ["SQLAlchemy"]}
    assert undeclared(imported, {"sqlalchemy"}, distributions) == [
        "mystery (from no installed distribution) imported at b.py:3",
        "yaml (from pyyaml) imported at a.py:1",
    ]


def test_helpers_find_layering_breaches(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "persistence/__init__.py": "",
            "persistence/clean.py": "import os\n",
            "persistence/dirty.py": "def f():\n    from graph import schema\n",
            "graph/__init__.py": "",
            "graph/schema.py": "",
            "migrations/__init__.py": "",
            "migrations/env.py": "from persistence import clean, dirty\n",
        },
    )
    modules = scan(tmp_path, ["graph", "persistence", "migrations"])
    persistence = _in(modules, "persistence")
    assert imports_into(modules, persistence, "graph", tmp_path) == [
        "persistence/dirty.py:2 imports graph.schema"
    ]
    assert paths_into(modules, "migrations.env", "graph") == [
        "migrations.env -> persistence.dirty -> graph.schema"
    ]
