"""The layers read top-down, and nothing quietly turns an arrow around (issue 8):

    db/  <-  docket/ (the core)  <-  api/ and worker/ (never each other)

`docket/cli.py` is the one composition root and may import anything. No module imports itself
back through others (no cycles), counting imports inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("db", "docket", "api", "worker")
MAY_IMPORT = {
    "db": {"db"},
    "docket": {"db", "docket"},
    "api": {"db", "docket", "api"},
    "worker": {"db", "docket", "worker"},
}
COMPOSITION_ROOT = "docket.cli"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import of a project module, resolved to the module itself
    (`from a.b import c` means a.b.c when that is a module, else a.b)."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES:
                out.append((node.lineno, target))
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {t for _, t in imports_of(name, path, known) if t != name} for name, path in found.items()}


def test_no_import_goes_against_the_layers():
    found = modules()
    known = set(found)
    wrong = []
    for name, path in sorted(found.items()):
        if name == COMPOSITION_ROOT:
            continue
        layer = name.split(".")[0]
        for line, target in imports_of(name, path, known):
            if target.split(".")[0] not in MAY_IMPORT[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "imports against the layers (db <- docket <- api, worker):\n" + "\n".join(wrong)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_claim_to(tmp_path):
    # The checkers themselves must be able to fail: a made-up cycle, and imports written every
    # way (plain, from, relative, inside a function) resolved to the module they name.
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    source = tmp_path / "models.py"
    source.write_text("import os\nfrom api.jobs import bp\nfrom . import session\n"
                      "def f():\n    import worker.tasks\n    from docket import events\n")
    known = {"db.models", "db.session", "api.jobs", "worker.tasks", "docket.events", "docket"}
    assert sorted(t for _, t in imports_of("db.models", source, known)) == [
        "api.jobs", "db.session", "docket.events", "worker.tasks"]
