"""Claiming a run directory: created exclusively, locked while the run is written.

    with claim.create(None, "lag1") as taken:    # runs/lag1-<time>/, or --out if new or empty
        train into taken.path

The claim is a lock file made with O_EXCL and held with flock for as long as the run is
written, so two runs never share a directory, and a sweep can tell a live run from one that
was killed (rundir.owner). This module imports no TensorFlow.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import socket
import sys
import time
from pathlib import Path

from echo_cli.store.files import json_text
from echo_cli.store.rundir import LOCK, RUNS, RunDirError, owner


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class Claim:
    """A run directory claimed by this process: its lock file, created exclusively and held
    (flock) for as long as the run is written, so a second claimant is refused and a sweep can
    tell a live run from one that was killed. Use as a context manager; `release` removes it.
    """

    def __init__(self, path: Path):
        self.path = path
        lock = path / LOCK
        try:
            self._fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise RunDirError(f"--out {path} is being written by another run "
                              f"({owner(path) or 'owner unknown'}); give a new directory") \
                from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        identity = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "command": " ".join(sys.argv)[:500]}
        os.write(self._fd, json_text(identity).encode())

    def release(self) -> None:
        if self._fd is not None:
            (self.path / LOCK).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def create(out: Path | None, name: str, *, runs: Path | None = None) -> Claim:
    """Claim this run's directory: --out if new or empty, else runs/<name>-<time>[-k] (or
    under `runs`, a folder of the caller's, such as a notebook's runs/notebook/).

    The claim is exclusive at the moment of checking (a lock file created with O_EXCL), so
    two runs never share a directory, even when started at the same instant.

    Raises:
        RunDirError: --out is a file, a broken link, holds files, is being written by another
            run, or cannot be made (read-only, no space).
    """
    root = RUNS if runs is None else runs
    where = out if out is not None else root
    try:
        if out is None:
            _make_runs_dir(root)
            stamp = timestamp()
            for suffix in itertools.count(1):
                candidate = root / (f"{name}-{stamp}" + (f"-{suffix}" if suffix > 1 else ""))
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                return Claim(candidate)
        if str(out) in ("", "."):
            raise RunDirError("--out needs the name of a new or empty directory, not the "
                              "current directory")
        if out.is_symlink() and not out.exists():
            raise RunDirError(f"--out {out} is a broken link; give a new or empty directory")
        if out.exists() and not out.is_dir():
            raise RunDirError(f"--out {out} is a file; give a new or empty directory")
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()):
            who = owner(out)
            if who:
                raise RunDirError(f"--out {out} is being written by another run ({who}); give "
                                  f"a new directory")
            raise RunDirError(f"--out {out} already holds files and is left untouched; give a "
                              f"new or empty directory")
        return Claim(out)
    except FileExistsError:  # a parent of --out is a file
        raise RunDirError(f"cannot create the run directory {where}: a part of its path is a "
                          f"file") from None
    except OSError as err:
        raise RunDirError(f"cannot create the run directory {where}: {err.strerror}") from None
    raise AssertionError("unreachable")


def _make_runs_dir(root: Path) -> None:
    if root.is_symlink() and not root.exists():
        raise RunDirError(f"{root}/ is a broken link, so runs cannot go there; remove it or "
                          f"give --out DIR")
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} is a file, so runs cannot go in {root}/; move it or give "
                          f"--out DIR")
    root.mkdir(parents=True, exist_ok=True)
