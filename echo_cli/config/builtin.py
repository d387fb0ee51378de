"""The configs that come with echo-cli: the repository's configs/, shipped in the wheel as the
package echo_cli.configs and read with importlib.resources, so they are there after a plain
`pip install` as in a clone.

    names()                      # ['adding', 'copy_memory', ..., 'stream']
    path("lag1")                 # the installed lag1.yaml, a Path
    describe()                   # {'lag1': 'echo X(t-1) from a window of ...', ...}
    resolve("lag1")              # what load_config reads: a file of that name, else the built-in
    copy_into(Path("mine"), force=False)   # every file, for editing

A config is named by its file name without .yaml. This module imports no TensorFlow.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from echo_cli.config.schema import ConfigError
from echo_cli.config.yamlio import read_yaml_file

PACKAGE = "echo_cli.configs"
SUFFIX = ".yaml"


def folder() -> Path:
    """The folder that holds the built-in configs (configs/ in a clone, echo_cli/configs/ in
    an installed wheel)."""
    return Path(str(resources.files(PACKAGE)))


def names() -> list[str]:
    """Every built-in config's name, sorted."""
    return sorted(p.stem for p in folder().glob(f"*{SUFFIX}"))


def path(name: str) -> Path:
    """The file of the built-in config `name` (`lag1` or `lag1.yaml`).

    Raises:
        ConfigError: no built-in config has that name; the line lists those that exist.
    """
    stem = name.removesuffix(SUFFIX)
    found = folder() / f"{stem}{SUFFIX}"
    if "/" in stem or "\\" in stem or not found.is_file():
        raise ConfigError(f"no built-in config is named {name}; the built-in configs are "
                          f"{', '.join(names())}")
    return found


def describe() -> dict[str, str]:
    """Each built-in config's name and its one-line `description:` ("" when it has none)."""
    described = {}
    for name in names():
        raw, _ = read_yaml_file(folder() / f"{name}{SUFFIX}")
        text = raw.get("description") if isinstance(raw, dict) else None
        described[name] = " ".join(str(text).split()) if text else ""
    return described


def resolve(given: str | Path) -> Path:
    """The file load_config reads for CONFIG: the path itself when something is there (or it
    names a folder), else the built-in config of that name. A path that is neither comes back
    unchanged, for the caller's own "does not exist"."""
    given = Path(given)
    try:
        if given.exists() or given.is_symlink() or len(given.parts) != 1:
            return given
    except (OSError, ValueError):  # a name too long, or with a NUL: the caller says why
        return given
    try:
        return path(given.name)
    except ConfigError:
        return given


def copy_into(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy every built-in config (and the data and JSON Schema they refer to) into
    `directory`, for editing; returns the files written.

    Raises:
        ConfigError: a file would be replaced and force is False (nothing is written then),
            or `directory` is a file.
    """
    source = folder()
    files = sorted(p.relative_to(source) for p in source.rglob("*")
                   if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file; give a folder to copy the configs into")
    there = [f for f in files if (directory / f).exists()]
    if there and not force:
        listed = ", ".join(str(f) for f in there[:3]) + (" ..." if len(there) > 3 else "")
        raise ConfigError(f"{directory} already holds {len(there)} of the built-in configs' "
                          f"files ({listed}); give --force to replace them, or another folder")
    written = []
    for relative in files:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target)
        written.append(target)
    return written
