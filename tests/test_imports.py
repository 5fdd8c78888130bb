"""Imports run one way: no two of the project's modules import each other, directly or round a longer
loop, counting imports inside functions and under TYPE_CHECKING too.

Why a test: a cycle hidden in a function-level import works until someone moves the import up or a
second entry point imports the modules in the other order, and then fails at import time on a cluster.
The rule (README, "Architecture") is checked here rather than remembered.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "quality", "schemas")


def module_imports(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """Module name -> the project modules it imports anywhere in its source."""
    files = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
                graph[name] |= {t if t in files else node.module for t in targets} & files.keys()
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names} & files.keys()
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_imports_run_one_way():
    graph = module_imports()
    assert {"jobs.publish", "jobs.dip.publish", "jobs.report", "quality.flags"} <= graph.keys()
    assert "jobs.dip.publish" in graph["jobs.publish"]  # function-level and module-level imports are both seen
    assert cycles(graph) == []


def test_the_cycle_check_sees_pairs_and_longer_loops(tmp_path):
    package = tmp_path / "jobs"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from jobs.b import g\n")  # a pair, hidden in a function
    (package / "b.py").write_text("import jobs.a\n")
    (package / "c.py").write_text("from jobs.sub import d\n")  # a loop of three
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                          "    from jobs.e import x\n")
    (package / "e.py").write_text("from jobs import c\n")
    assert cycles(module_imports(tmp_path, ("jobs",))) == [["jobs.a", "jobs.b"], ["jobs.c", "jobs.e", "jobs.sub.d"]]
