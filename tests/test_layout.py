"""The layout's rules, read from echo_cli's own imports: one owner per contract, no cycles."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "echo_cli"


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py") if p.stem != "__main__" and _name(p)}


def imports(module: str) -> set[str]:
    """The echo_cli modules that `module` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("echo_cli"):
            base = node.module.removeprefix("echo_cli").lstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                found.add(full if full in MODULES else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("echo_cli.") for a in node.names
                      if a.name.startswith("echo_cli.")}
    return found & set(MODULES) - {module}


def test_no_two_modules_import_each_other_directly_or_through_a_chain():
    graph = {m: imports(m) for m in MODULES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])

    cycles = sorted(m for m in MODULES if reaches(m, m, set()))
    assert not cycles, f"modules in an import cycle: {cycles}"


@pytest.mark.parametrize("module", ["output.report", "output.plots", "store.files", "errors",
                                    "stats", "training.signals", "config.yamlio",
                                    "store.metrics"])
def test_leaf_modules_import_nothing_from_echo_cli(module):
    assert imports(module) == set()


def test_private_keras_attributes_live_in_one_module():
    private = re.compile(r"\._symbolic_build|_jax_state\b|jax_state_sync")
    users = sorted(m for m, p in MODULES.items() if private.search(p.read_text()))
    assert users == ["models.keras_internals"]


def test_the_run_directory_files_are_named_in_one_module():
    names = re.compile(r'"(config\.yaml|metrics\.json|history\.csv|model\.keras|vocabulary\.json)"')
    users = sorted(m for m, p in MODULES.items() if names.search(p.read_text()))
    assert users == ["store.rundir"]


def test_importing_any_module_imports_no_tensorflow():
    """Keras is imported inside the functions that need it, so `--help` and `check-data`
    answer at once."""
    code = ("import sys\n" + "".join(f"import echo_cli.{m}\n" for m in MODULES)
            + "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
              "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
