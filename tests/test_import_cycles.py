"""No import circles among attnscope's modules, read from the source with `ast` (nothing is imported).

An edge A -> B is an import statement in A that names module B (``import attnscope.b``, ``from . import b``,
``from .b import name``; ``from .pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``). Load-time imports are those outside function bodies, including those under ``if TYPE_CHECKING:``
(a type checker follows them, and a circle there is a circle in the design): a circle among them is refused.
Imports inside functions run on a call, after every module has loaded (the project uses them to load heavy
dependencies lazily), so they cannot fail at import time; they are checked by a second test, all imports
together, because a circle through a lazy import is still two modules that need each other. Implicit edges
to parent packages (importing ``a.b.c`` runs ``a/b/__init__``) are not drawn: Python runs a package's
``__init__`` before its submodules, and a package re-exporting its submodules is no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attnscope

PACKAGE = Path(attnscope.__file__).parent


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is_package) for every .py file under ``root`` (the attnscope package)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(tree: ast.AST, lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """The module's import statements: those that run when it is imported (outside function bodies), and
    with ``lazy`` those inside functions too."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if not lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path = PACKAGE, lazy: bool = False) -> dict[str, set[str]]:
    """Module -> the attnscope modules it imports at load time, and with ``lazy`` inside functions too (see the
    module docstring for the rules)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), lazy):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in modules)
                continue
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    targets.add(submodule)
                elif target in modules:
                    targets.add(target)
        graph[name] = targets - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each given as one circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle(graph, set(group)) for group in groups]


def _circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """One circle through a strongly connected group: a path from its first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                frontier.append(nxt)
    raise AssertionError(f"no circle through {sorted(group)}")  # pragma: no cover - a group always has one


def _listed(cycles: list[list[str]]) -> str:
    return "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_itself_back_in_a_circle_at_load_time():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import circles: " + _listed(cycles)


def test_no_circle_through_imports_inside_functions_either():
    cycles = find_cycles(import_graph(lazy=True))
    assert cycles == [], "import circles through imports inside functions: " + _listed(cycles)


def test_the_cycle_finder_names_a_planted_circle(tmp_path):
    """The check can fail: a package whose b imports c at load time and c imports b (under TYPE_CHECKING),
    while a imports b only inside a function (not counted)."""
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import run\n")
    (package / "a.py").write_text("def run():\n    from .b import thing\n    return thing\n")
    (package / "b.py").write_text("from .c import other\nthing = 1\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\nother = 2\n"
    )
    graph = import_graph(package)
    assert graph == {"demo": {"demo.a"}, "demo.a": set(), "demo.b": {"demo.c"}, "demo.c": {"demo.b"}}
    assert find_cycles(graph) == [["demo.b", "demo.c", "demo.b"]]
    (package / "c.py").write_text("other = 2\ndef late():\n    from .a import run\n    return run\n")
    assert find_cycles(import_graph(package)) == []
    assert import_graph(package, lazy=True)["demo.a"] == {"demo.b"}
    assert find_cycles(import_graph(package, lazy=True)) == [["demo.a", "demo.b", "demo.c", "demo.a"]]


def test_the_graph_sees_attnscope_imports():
    """A sanity check on the parser: edges that are known to exist are found."""
    graph = import_graph()
    assert "attnscope.capture.result" in graph["attnscope.capture.engine"]
    assert "attnscope.errors" in graph["attnscope.views.payload"]
