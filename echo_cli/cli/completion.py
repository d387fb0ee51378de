"""Shell completion of CONFIG and RUN arguments, which every command shares.

    echo-cli --install-completion      # then TAB completes configs/ files and runs/ folders
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _matches(incomplete: str, roots: tuple[str, ...], keep: Callable[[Path], bool]) -> list[str]:
    """Paths that start with `incomplete`, from its own folder and from each root folder
    ("" is the working directory), that `keep` accepts. Hidden entries are left out."""
    head, slash, _ = incomplete.rpartition("/")
    prefixes = dict.fromkeys([head + slash, *roots])
    found: list[str] = []
    for prefix in prefixes:
        folder = Path(prefix or ".")
        try:
            names = sorted(p.name for p in folder.iterdir())
        except OSError:
            continue
        found += [prefix + name for name in names
                  if not name.startswith(".") and (prefix + name).startswith(incomplete)
                  and keep(folder / name)]
    return list(dict.fromkeys(found))


def complete_config(incomplete: str) -> list[str]:
    """The YAML files that CONFIG could be: in the folder typed so far, here, and in configs/."""
    return _matches(incomplete, ("", "configs/"),
                    lambda p: p.suffix in (".yaml", ".yml") and p.is_file())


def complete_run(incomplete: str) -> list[str]:
    """The finished run directories that RUN could be: here, and in runs/."""
    from echo_cli.store import rundir

    return _matches(incomplete, ("", "runs/"), rundir.is_run)


def complete_run_or_sweep(incomplete: str) -> list[str]:
    """Finished runs and sweep directories (those holding runs/): here, and in runs/."""
    from echo_cli.store import rundir

    return _matches(incomplete, ("", "runs/"),
                    lambda p: rundir.is_run(p) or (p / "runs").is_dir())
