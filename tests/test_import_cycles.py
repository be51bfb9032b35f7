"""No two modules of openautotune import each other, directly or through others.

The import-linter contract (`acyclic_siblings` in pyproject.toml) says the same between sibling
packages and modules; this test walks every module's imports with grimp (the graph import-linter
uses, imports inside functions and under TYPE_CHECKING included) and names each cycle it finds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest


def import_cycles(package: str) -> list[list[str]]:
    """Every group of modules that reach each other through imports (Tarjan's strongly connected
    components, iterative), each sorted; a module importing itself is no cycle."""
    graph = grimp.build_graph(package, cache_dir=None)
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []  # the depth-first path, each module with its imports left

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        work.append((module, iter(sorted(graph.find_modules_directly_imported_by(module)))))

    for root in sorted(graph.modules):
        if root in index:
            continue
        visit(root)
        while work:
            module, imported = work[-1]
            following = next(imported, None)
            if following is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[module])
                if lowlink[module] == index[module]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
            elif following not in index:
                visit(following)
            elif following in on_stack:
                lowlink[module] = min(lowlink[module], index[following])
    return sorted(cycles)


def test_openautotune_has_no_import_cycle() -> None:
    assert import_cycles("openautotune") == []


@pytest.fixture
def cyclic_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package where a -> b -> c -> a (c's import inside a function) and d -> a."""
    name = "cycle_probe_package"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(f"from {name} import b\n")
    (package / "b.py").write_text(f"import {name}.c\n")
    (package / "c.py").write_text(f"def late() -> None:\n    from {name}.a import late_name\n")
    (package / "d.py").write_text(f"from {name} import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_a_cycle_is_found_and_named(cyclic_package: str) -> None:
    names = [f"{cyclic_package}.{module}" for module in ("a", "b", "c")]
    assert import_cycles(cyclic_package) == [names]
