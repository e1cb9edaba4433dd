"""The layer rules of docs/architecture.md, held against the package's imports (every ``import`` statement,
function-local ones included): no upward import, no import circle between files."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ecgalign"

# part -> the parts it may import (besides itself); the bottom layer first
ALLOWED = {
    "data": set(),
    "synth": {"data"},
    "text": {"data"},
    "render": {"data"},
    "echo": {"data", "synth"},
    "losses": {"data"},
    "models": {"data"},
    "recipes": {"data"},
    "tasks": {"data", "models", "losses", "render", "recipes", "text", "echo"},
    "hub": {"data", "models", "tasks", "render", "recipes", "text", "echo"},
    "train": {"data", "models", "tasks", "hub", "recipes", "losses", "render", "echo", "synth", "text"},
    "eval": {"data", "models", "hub", "render", "text", "recipes", "echo", "synth"},
    "cli": {"data", "synth", "text", "render", "echo", "models", "tasks", "hub", "recipes", "train", "eval", "losses"},
}
NEVER = [("data", "text"), ("data", "models"), ("losses", "models"), ("models", "train"), ("models", "eval"),
         ("models", "tasks"), ("train", "eval"), ("train", "cli"), ("eval", "train"), ("eval", "cli")]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ecgalign")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecgalign") and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported and imported not in modules:  # "pkg.mod.Name" -> "pkg.mod"
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_no_import_points_up_or_across_a_never():
    bad = []
    for source, targets in _graph().items():
        a = _part(source)
        for target in targets:
            b = _part(target)
            if a is None or b is None or a == b:
                continue
            if b not in ALLOWED[a] or (a, b) in NEVER:
                bad.append(f"{source} -> {target}")
    assert not bad, "imports against the layer rules:\n" + "\n".join(sorted(bad))


def test_no_import_circle_between_files():
    graph = _graph()
    # a package's face (its __init__) and the modules inside it import each other to register and re-export:
    # that is one room, not a circle of files; the package facade ecgalign/__init__.py imports nothing itself
    def inside(a: str, b: str) -> bool:
        return a.startswith(b + ".") or b.startswith(a + ".")

    graph = {k: {t for t in v if not inside(k, t) and t != "ecgalign"} for k, v in graph.items() if k != "ecgalign"}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"
