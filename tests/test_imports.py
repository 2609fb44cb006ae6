"""The repository's modules form no import circle and take no private names from each other, and utils/
holds only what every flow shares (at most 8 modules; a job's own helpers live with the job).

Read with ``ast``, nothing imported: every ``.py`` of the repository (the root's scripts and the folders
beside tests/, .venv/ and the docs), every intra-repository import in it, absolute or relative, at any
depth. An import inside a function counts too: a circle that a lazy import hides still means neither
module can be read (or moved) without the other.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_CODE = {"tests", "docs", "configs", "examples", "shells", "runs"}  # folders without the repository's modules


def repo_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` outside hidden folders, ``__pycache__`` and :data:`NOT_CODE`."""
    mods = {p.stem: p for p in root.glob("*.py")}
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith((".", "_")) or folder.name in NOT_CODE:
            continue
        for path in folder.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


def _owner(name: str, mods: dict) -> str | None:
    """The repository module that ``name`` (a module or a name in one) belongs to, if any."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, mods: dict) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for each intra-repository import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(m, None, node.lineno) for a in node.names if (m := _owner(a.name, mods))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in mods:  # "from package import module"
                    found.append((f"{source}.{alias.name}", None, node.lineno))
                elif m := _owner(source, mods):
                    found.append((m, alias.name, node.lineno))
    return found


def import_graph(mods: dict) -> dict[str, set[str]]:
    return {name: {m for m, _, _ in imports_of(name, path, mods) if m != name} for name, path in mods.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), i.e. the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_walk_sees_the_packages():
    mods = repo_modules()
    assert {"finetuning.export", "finetuning.gguf", "utils.io_utils", "data_processor.pipeline",
            "evaluation.runner", "finetune"} <= set(mods)
    assert not any(n.startswith(("tests", ".venv")) for n in mods)


def test_the_checker_finds_a_circle_and_a_private_import(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from .b import _helper\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg import c\n")
    (tmp_path / "pkg" / "c.py").write_text("import pkg.a\n")
    mods = repo_modules(tmp_path)
    assert import_cycles(import_graph(mods)) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert imports_of("pkg.a", mods["pkg.a"], mods) == [("pkg.b", "_helper", 1)]


def test_no_import_circle():
    cycles = import_cycles(import_graph(repo_modules()))
    assert not cycles, "modules that import each other (directly or round a circle): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_private_name_from_another_module():
    mods = repo_modules()
    bad = [f"{path.relative_to(ROOT)}:{line}: from {m} import {n}"
           for name, path in mods.items() for m, n, line in imports_of(name, path, mods)
           if n and n.startswith("_") and not n.startswith("__") and m != name]
    assert not bad, "private names taken from another module (give them a public home): " + "; ".join(bad)


def test_utils_holds_at_most_eight_modules():
    modules = sorted(p.name for p in (ROOT / "utils").glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 8, f"utils/ has {len(modules)} modules ({', '.join(modules)}): merge or move some"
