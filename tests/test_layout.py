"""What the import-linter contracts (pyproject.toml, run by `make lint` and `make test`) cannot
say about the layout: no code outside tasks/ compares a task's name and none outside models/ a
kind's, the run directory's file names live in one module, Keras's private attributes in
another, nothing imports TensorFlow at import time, and everything stays readable in one
sitting."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from echo_cli import models, tasks

PACKAGE = Path(__file__).resolve().parent.parent / "echo_cli"


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py") if p.stem != "__main__" and _name(p)}
TREES = {m: ast.parse(p.read_text()) for m, p in MODULES.items()}


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant)
                and isinstance(e.value, str)}
    return set()


def compared(names: set[str], outside: str) -> list[str]:
    """`module:line` of every comparison (==, !=, in, not in) with one of `names`, in modules
    outside the package `outside`."""
    hits = []
    for module, tree in TREES.items():
        if module == outside or module.startswith(outside + "."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                found = _strings(node.left).union(*map(_strings, node.comparators))
                if found & names:
                    hits.append(f"{module}:{node.lineno} {sorted(found & names)}")
    return hits


def test_no_code_outside_the_tasks_compares_a_task_name():
    """A command asks the task object; adding a task is one module and one registry line."""
    assert compared(set(tasks.names()), "tasks") == []


def test_no_code_outside_the_models_compares_a_kind_name():
    """Checks read the kinds' properties; their messages name the kinds from the registry."""
    assert compared(set(models.names()), "models") == []


def test_private_keras_attributes_live_in_one_module():
    private = re.compile(r"\._symbolic_build|_jax_state\b|jax_state_sync|\._available\b")
    users = sorted(m for m, p in MODULES.items() if private.search(p.read_text()))
    assert users == ["models.keras_internals"]


def test_the_run_directory_files_are_named_in_one_module():
    names = re.compile(r'"(config\.yaml|metrics\.json|history\.csv|model\.keras|vocabulary\.json)"')
    users = sorted(m for m, p in MODULES.items() if names.search(p.read_text()))
    assert users == ["store.rundir"]


def test_modules_and_functions_stay_readable_in_one_sitting():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > 400} == {}
    long = [f"{m}:{node.name} {node.end_lineno - node.lineno + 1}"
            for m, tree in TREES.items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 80]
    assert long == []


@pytest.mark.parametrize("package", sorted({m.split(".")[0] for m in MODULES if "." in m}))
def test_every_subpackage_says_what_it_owns(package):
    doc = ast.get_docstring(TREES[package])
    assert doc and len(doc.split()) >= 20, f"echo_cli/{package}/__init__.py needs a paragraph"


def test_importing_any_module_imports_no_tensorflow():
    """Keras is imported inside the functions that need it, so `--help` and `check-data`
    answer at once."""
    code = ("import sys\n" + "".join(f"import echo_cli.{m}\n" for m in MODULES)
            + "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
              "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
