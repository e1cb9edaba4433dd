"""The data layer points down only (../shared/architecture.json, issue 10): it imports nothing of ecgalign but
itself (and the version, ``ecgalign._version``, which imports nothing), never inside a function, and its own modules form no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ecgalign.data.readers import READERS, list_readers, register_reader
from ecgalign.data.registry import Registry

DATA = Path(__file__).resolve().parents[2] / "ecgalign" / "data"


def _module(path: Path) -> str:
    parts = path.relative_to(DATA.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(ecgalign modules imported at module level, ecgalign imports made inside a function or class)."""
    tree = ast.parse(path.read_text())
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecgalign"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("ecgalign")]
        else:
            continue
        if not names:
            continue
        (top.update(names) if node in tree.body else nested.append(f"{path.name}:{node.lineno} {names[0]}"))
    return top, nested


MODULES = {_module(p): p for p in DATA.rglob("*.py")}


def test_data_imports_only_itself_and_never_inside_functions():
    upward, nested = [], []
    for name, path in MODULES.items():
        top, inner = _imports(path)
        upward += [f"{name} -> {m}" for m in top if not m.startswith("ecgalign.data") and m not in ("ecgalign.__version__", "ecgalign._version", "ecgalign._version.__version__")
                   and m != "ecgalign"]
        nested += inner
    assert not upward, upward
    assert not nested, nested


def test_data_modules_form_no_import_circle():
    graph = {}
    for name, path in MODULES.items():
        top, _ = _imports(path)
        graph[name] = {m for m in top if m in MODULES and m != name and not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_readers_use_the_shared_registry():
    assert isinstance(READERS, Registry)
    assert list_readers() == ["challenge", "code15", "cpsc2018", "mimic-iv-ecg", "npz-signals", "ptbxl"]
    with pytest.raises(ValueError, match="registered twice"):
        register_reader("ptbxl")(type("Again", (), {}))
    assert READERS.get("ptbxl").name == "ptbxl"


def test_one_wfdb_header_parser():
    challenge = (DATA / "readers" / "challenge.py").read_text()
    assert "_GAIN_FIELD" not in challenge and "from ecgalign.data.readers.wfdb_io import parse_header" in challenge
