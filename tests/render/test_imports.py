"""The render package's module imports form no cycle (io <-> renderer was one: issue 14, priority 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import ecgalign.render

ROOT = Path(ecgalign.render.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT.parent.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the ecgalign.render modules it imports anywhere (module level, function bodies, TYPE_CHECKING)."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecgalign.render"):
                for alias in node.names:  # `from ecgalign.render import augment` imports a module
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("ecgalign.render")}
        # a package's own __init__ re-exports its children: only edges out of the package matter for cycles
        graph[name] = {d for d in deps if d in modules and not d.startswith(name + ".") and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_render_modules_import_no_cycle():
    graph = _graph()
    assert "ecgalign.render.truth" in graph and graph["ecgalign.render.truth"] == set()
    assert "ecgalign.render.io" not in graph["ecgalign.render.renderer"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
