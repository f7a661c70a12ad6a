"""Size limits of the library's source: modules stay readable in one sitting, functions on
one screen.

Every ``.py`` file under ``src/rnnkit/`` is parsed with ``ast``. A module may have at most
``MAX_MODULE_LINES`` lines; a function or method (nested ones included) at most
``MAX_FUNCTION_LINES``, counted from its ``def`` line to its last line, docstring included
and decorators excluded. The failure lists every offender with its file, name and length.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "rnnkit"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _functions(tree: ast.AST):
    """(qualified name, lines) of every function and method in a module's tree."""

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                # child.lineno is the ``def`` line: decorators sit above it
                yield name, child.end_lineno - child.lineno + 1
                yield from visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, prefix + child.name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def offenders() -> list[str]:
    """One line per module or function over its limit: ``file: name has N lines (max M)``."""
    found = []
    for path in _sources():
        rel = path.relative_to(SRC.parent.parent).as_posix()  # src/rnnkit/...
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_MODULE_LINES:
            found.append(f"{rel}: module has {n} lines (max {MAX_MODULE_LINES})")
        for name, length in _functions(ast.parse(text, filename=str(path))):
            if length > MAX_FUNCTION_LINES:
                found.append(f"{rel}: {name} has {length} lines (max {MAX_FUNCTION_LINES})")
    return found


def test_the_sources_are_found():
    names = {p.relative_to(SRC).as_posix() for p in _sources()}
    assert {"__init__.py", "models/__init__.py", "checkpoint.py"} <= names


def test_function_length_counts_def_to_end_without_decorators():
    tree = ast.parse("@decorator\n"
                     "def f(x):\n"
                     '    """Doc."""\n'
                     "    return x\n"
                     "\n"
                     "class C:\n"
                     "    def m(self):\n"
                     "        def inner():\n"
                     "            pass\n"
                     "        return inner\n")
    assert dict(_functions(tree)) == {"f": 3, "C.m": 4, "C.m.inner": 2}


def test_no_module_or_function_over_its_size_limit():
    found = offenders()
    if found:
        pytest.fail(f"{len(found)} over the size limits:\n" + "\n".join(found), pytrace=False)
