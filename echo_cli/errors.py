"""The one error base class: every problem a user can fix is an EchoError with one line.

    raise ConfigError("data.window must be ≥ 1, got 0")

The CLI's single handler prints `error: <message>` on stderr and exits with `exit_code`
(2: the input was wrong), so no command needs its own error plumbing. Each module defines
its own subclass for the kind of problem it finds; they all land in the same handler.
`cut` and `clip` keep a user's value short in a message. A message that names an option says
it as the caller gave it: `--set train.epoch=5` and `--out DIR` on the command line,
`overrides={'train.epoch': 5}` and `out=` inside `python_words()` (the notebook API). This module
imports nothing from echo_cli.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import reprlib
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 6, 6, 2


class EchoError(Exception):
    """A problem the user can fix. The message is one line, ready to print: a newline or
    other control character from the user's input is shown escaped (\\n, \\x1b)."""

    exit_code = 2

    def __str__(self) -> str:
        text = super().__str__()
        return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


_PYTHON = contextvars.ContextVar("echo_cli_python_words", default=False)


@contextlib.contextmanager
def python_words() -> Iterator[None]:
    """Within it, messages name Python arguments (overrides=, out=) instead of flags."""
    token = _PYTHON.set(True)
    try:
        yield
    finally:
        _PYTHON.reset(token)


def overrides_words(assignments: list[str]) -> str:
    """KEY=VALUE overrides as the caller gave them: `--set a=1 b=2` on the command line,
    `overrides={'a': 1, 'b': 2}` from Python."""
    if not _PYTHON.get():
        return "--set " + " ".join(clip(a) for a in assignments)
    pairs = (a.partition("=") for a in assignments)
    return "overrides={" + ", ".join(f"{k.strip()!r}: {clip(v, 60)}" for k, _, v in pairs) + "}"


def option_words(flag: str, value: Any = None) -> str:
    """An option as the caller gave it: `--out runs/x` on the command line, `out='runs/x'`
    from Python; without a value, `--out` or `out=`."""
    if not _PYTHON.get():
        return flag if value is None else f"{flag} {value}"
    name = flag.lstrip("-").replace("-", "_")
    return f"{name}=" if value is None else f"{name}={str(value)!r}"


def clip(text: str, limit: int = 80) -> str:
    """text, cut to `limit` characters with an ellipsis: for names and keys in messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(value: Any, limit: int = 60) -> str:
    """A short repr of a value for an error message: never the whole of a huge input."""
    return _REPR.repr(value)[:limit] + ("…" if len(_REPR.repr(value)) > limit else "")


def path_problem(path: Path) -> str | None:
    """Why a file cannot be read as one, in a few words ("does not exist", "is a directory",
    "is not a regular file (a FIFO)", "is a symlink loop", ...), or None if it can."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symlink loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return ("is a broken link" if os.path.islink(path) else "does not exist")
        return f"cannot be read ({err.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        return f"is not a regular file ({kind})"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None
