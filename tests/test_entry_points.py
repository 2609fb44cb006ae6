"""One door per job: the README's "Entry points" table is the list of ways to start each job, and it is true.

For every row: the shell command exists and runs the row's Python module; the module's ``main`` is what
``python -m``/``python file.py`` runs; the console alias is in pyproject.toml's ``[project.scripts]`` and
points at that same ``main``; and ``--help`` ends with the row's entry points in one line. Every alias in
pyproject.toml has a row. The modules' ``main`` are called in this process (``--help`` exits before any
work), so the test takes seconds.
"""
from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def entry_point_rows(readme: str) -> list[dict]:
    """The rows of the README's "Entry points" table: job, shell, python (a list: the module, then what it
    also answers to), alias; an empty cell is ``None`` (``[]`` for python)."""
    section = readme.split("\n## Entry points\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("job", "---"):
            continue
        shell, python, alias = (re.findall(r"`([^`]+)`", c) for c in cells[1:])
        rows.append({"job": cells[0], "shell": shell[0] if shell else None, "python": python,
                     "alias": alias[0] if alias else None})
    return rows


def help_line(row: dict) -> str:
    """The line a module's ``--help`` ends with: the row's entry points, in the table's order."""
    python = row["python"][0] + "".join(f" (or {p})" for p in row["python"][1:])
    return "Entry points: " + " | ".join(d for d in (row["shell"], python, row["alias"]) if d)


def module_main(command: str):
    """The ``main`` that ``python -m pkg``, ``python -m pkg.mod`` or ``python file.py`` runs."""
    if command.startswith("python -m "):
        name = command.removeprefix("python -m ")
        main_file = ROOT / name.replace(".", "/") / "__main__.py"
        if main_file.exists():  # a package: its __main__ runs a main it imports, or its own
            tree = ast.parse(main_file.read_text(encoding="utf-8"))
            imported = [node for node in tree.body if isinstance(node, ast.ImportFrom)
                        and any(a.name == "main" for a in node.names)]
            if imported:
                node = imported[0]
                name = f"{name}.{node.module}" if node.level else node.module
            else:
                name = f"{name}.__main__"
        return importlib.import_module(name).main
    script = re.fullmatch(r"python (\w+)\.py", command)
    assert script, f"README.md, Entry points: {command!r} is neither 'python -m X' nor 'python file.py'"
    return importlib.import_module(script.group(1)).main


ROWS = entry_point_rows((ROOT / "README.md").read_text(encoding="utf-8"))
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]


def test_the_table_has_a_row_per_job_with_one_module_each():
    assert len(ROWS) >= 10, "README.md: the Entry points table was not found or lost rows"
    assert all(len(r["python"]) >= 1 for r in ROWS), "every job has a Python module"
    modules = [r["python"][0] for r in ROWS]
    assert len(set(modules)) == len(modules), "one row per module"


def test_every_console_alias_is_in_the_table_and_calls_its_rows_main():
    aliases = {r["alias"]: r for r in ROWS if r["alias"]}
    assert set(aliases) == set(SCRIPTS), "pyproject.toml [project.scripts] and README.md's Entry points differ"
    for alias, row in aliases.items():
        module, func = SCRIPTS[alias].split(":")
        assert getattr(importlib.import_module(module), func) is module_main(row["python"][0]), alias


@pytest.mark.parametrize("row", [r for r in ROWS if r["shell"]], ids=lambda r: r["shell"])
def test_each_shell_command_runs_its_rows_module(row):
    script = ROOT / row["shell"].removeprefix("bash ")
    text = script.read_text(encoding="utf-8")
    module = row["python"][0]
    if module.startswith("python -m "):
        assert re.search(rf"^exec python {re.escape(module.removeprefix('python '))} \"\$@\"$", text, re.M), script
    else:
        assert module.removeprefix("python ") in text and re.search(r'^exec python "\$script" "\$@"$', text, re.M)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["python"][0])
def test_each_modules_help_ends_with_its_entry_points(row, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps to the terminal: one line where it fits
    for also in row["python"]:  # python -m evaluation and python evaluate.py run the same main
        assert module_main(also) is module_main(row["python"][0]), also
    with pytest.raises(SystemExit) as exc:
        module_main(row["python"][0])(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1] == help_line(row), f"{row['python'][0]} --help"
