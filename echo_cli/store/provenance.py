"""What made a run: the versions of echo-cli, Python, Keras, the backend library and numpy, and
the git commit of the working directory, recorded in metrics.json.

    provenance.collect("jax")
    # {"echo_cli": "0.1.0", "python": "3.11.7", "keras": "3.15.1", "backend": "jax 0.10.2",
    #  "numpy": "2.3.1", "git_commit": "9a8c3d0e... (uncommitted changes)"}

Versions come from the installed packages' metadata, so nothing is imported to read them.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
FIELDS = ["echo_cli", "python", "keras", "backend", "numpy", "git_commit"]


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(where: Path | None = None) -> str | None:
    """The commit checked out in `where` (default: the working directory), marked when files
    tracked there have changed since; None outside a git work tree or without git."""
    run = {"cwd": where or Path.cwd(), "capture_output": True, "text": True, "timeout": 5}
    try:
        head = subprocess.run(["git", "rev-parse", "--is-inside-work-tree", "--verify", "-q",
                               "HEAD"], **run)
        inside, *commit = head.stdout.split()
        if head.returncode != 0 or inside != "true" or len(commit) != 1:
            return None  # not a work tree, or one without a commit yet
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run)
    except (OSError, subprocess.SubprocessError):
        return f"{commit[0]} (changes unknown)"  # a huge tree, say: the commit is still known
    return f"{commit[0]} (uncommitted changes)" if dirty.stdout.strip() else commit[0]


def collect(backend: str) -> dict[str, str | None]:
    package = BACKEND_PACKAGES.get(backend, backend)
    found = version(package)
    from echo_cli import __version__

    return {"echo_cli": __version__, "python": platform.python_version(),
            "keras": version("keras"), "backend": f"{backend} {found}" if found else backend,
            "numpy": version("numpy"), "git_commit": git_commit()}


def line(record: dict[str, str | None] | None) -> str:
    """One line for a person: "echo-cli 0.1.0, Python 3.11.7, Keras 3.15.1, jax 0.10.2, ..."."""
    if not record:
        return "not recorded (trained before echo-cli recorded versions)"
    names = {"echo_cli": "echo-cli", "python": "Python", "keras": "Keras", "backend": "",
             "numpy": "numpy", "git_commit": "commit"}
    parts = [f"{names.get(k, k)} {v}".strip() for k, v in record.items() if v]
    return ", ".join(parts)


def summary(runs: list[tuple[str, dict[str, str | None] | None]]) -> list[str]:
    """Lines on what made these runs: one when all share it, else one per group of runs.
    runs: (name, metrics.json's provenance) of each."""
    groups: dict[str, tuple[dict[str, str | None] | None, list[str]]] = {}
    for name, record in runs:
        groups.setdefault(json.dumps(record, sort_keys=True), (record, []))[1].append(name)
    if len(groups) == 1:
        record, names = next(iter(groups.values()))
        return [f"made with {line(record)}" + (f" (all {len(names)} runs)" if len(names) > 1
                                               else "")]
    lines = ["made with different versions:"]
    for record, names in groups.values():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"  {shown}: {line(record)}")
    return lines
