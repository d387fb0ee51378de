"""Claiming a run directory: created exclusively, locked while the run is written.

    with claim.create(None, "lag1") as taken:    # runs/lag1-<time>/, or --out if new or empty
        train into taken.path

The claim is a lock file made with O_EXCL and held with flock for as long as the run is
written, so two runs never share a directory, and a sweep can tell a live run from one that
was killed (rundir.owner). This module imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
import sys
import time
from pathlib import Path

from echo_cli.errors import option_words
from echo_cli.store.files import describe, json_text
from echo_cli.store.rundir import LOCK, RUNS, RunDirError, owner


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


RESERVE = 16 << 10  # bytes the lock holds back, so a full disk can still take metrics.json
PADDING = b" "


class Claim:
    """A run directory claimed by this process: its lock file, created exclusively and held
    (flock) for as long as the run is written, so a second claimant is refused and a sweep can
    tell a live run from one that was killed. Use as a context manager; `release` removes it,
    and the directory too when the run wrote nothing into it (`made`: this claim created it).

    The lock also reserves RESERVE bytes of the disk: when the disk fills up during a run,
    free_reserve() gives them back, so that metrics.json can still say what failed.

    Raises:
        RunDirError: another run holds the directory, or the disk is full already.
    """

    def __init__(self, path: Path, *, made: bool = False):
        self.path, self.made, self._fd = path, made, None
        lock = path / LOCK
        try:
            self._fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise RunDirError(f"{option_words('--out', path)} is being written by another run "
                              f"({owner(path) or 'owner unknown'}); give a new directory") \
                from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            identity = {"pid": os.getpid(), "host": socket.gethostname(),
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "command": " ".join(sys.argv)[:500]}
            os.write(self._fd, json_text(identity).encode())
            _reserve(self._fd)
        except OSError as err:
            self.release()
            raise RunDirError(f"cannot claim the run directory {path}: {describe(err, lock)}") \
                from None

    def release(self) -> None:
        if self._fd is not None:
            (self.path / LOCK).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
            if self.made:
                with contextlib.suppress(OSError):  # only if the run wrote nothing
                    self.path.rmdir()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _reserve(fd: int) -> None:
    """Hold RESERVE bytes of the disk in the lock file: spaces after the identity, written
    rather than fallocated, so the lock stays JSON that any reader can parse."""
    os.pwrite(fd, PADDING * RESERVE, os.fstat(fd).st_size)


def free_reserve(path: Path) -> bool:
    """Give the run directory's reserve back to the disk (its lock keeps the identity).
    Returns whether there was one."""
    lock = path / LOCK
    try:
        data = lock.read_bytes()
    except OSError:
        return False
    kept = data.rstrip(PADDING)
    if len(kept) == len(data):
        return False
    os.truncate(lock, len(kept))
    return True


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
                return Claim(candidate, made=True)
        if str(out) in ("", "."):
            raise RunDirError(f"{option_words('--out')} needs the name of a new or empty "
                              f"directory, not the current directory")
        if out.is_symlink() and not out.exists():
            raise RunDirError(f"{option_words('--out', out)} is a broken link; give a new or "
                              f"empty directory")
        if out.exists() and not out.is_dir():
            raise RunDirError(f"{option_words('--out', out)} is a file; give a new or empty "
                              f"directory")
        made = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()):
            who = owner(out)
            if who:
                raise RunDirError(f"{option_words('--out', out)} is being written by another run "
                                  f"({who}); give a new directory")
            raise RunDirError(f"{option_words('--out', out)} already holds files and is left "
                              f"untouched; give a new or empty directory")
        return Claim(out, made=made)
    except FileExistsError:  # a parent of --out is a file
        raise RunDirError(f"cannot create the run directory {where}: a part of its path is a "
                          f"file") from None
    except OSError as err:
        raise RunDirError(f"cannot create the run directory {where}: "
                          f"{describe(err, Path(where) / LOCK)}") from None
    raise AssertionError("unreachable")


def reopen(path: Path) -> Claim:
    """Claim an existing run directory again, to resume it. A lock left by a run that was
    killed is taken over; a live one is refused.

    Raises:
        RunDirError: not a directory, or another process is writing it.
    """
    if not path.is_dir():
        raise RunDirError(f"{path} is not a run directory; give the --out of the run to resume")
    who = owner(path)
    if who:
        raise RunDirError(f"{path} is being written by another run ({who}); let it finish, or "
                          f"stop it before resuming")
    (path / LOCK).unlink(missing_ok=True)  # a killed run's, held by nobody
    return Claim(path)


def _make_runs_dir(root: Path) -> None:
    if root.is_symlink() and not root.exists():
        raise RunDirError(f"{root}/ is a broken link, so runs cannot go there; remove it or "
                          f"give {option_words('--out', 'DIR')}")
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} is a file, so runs cannot go in {root}/; move it or give "
                          f"{option_words('--out', 'DIR')}")
    root.mkdir(parents=True, exist_ok=True)
