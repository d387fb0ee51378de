"""The one error base class: every problem a user can fix is an EchoError with one line.

    raise ConfigError("data.window must be ≥ 1, got 0")

The CLI's single handler prints `error: <message>` on stderr and exits with `exit_code`
(2: the input was wrong), so no command needs its own error plumbing. Each module defines
its own subclass for the kind of problem it finds; they all land in the same handler.
`cut` and `clip` keep a user's value short in a message. This module imports nothing from
echo_cli.
"""

from __future__ import annotations

import reprlib
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


def clip(text: str, limit: int = 80) -> str:
    """text, cut to `limit` characters with an ellipsis: for names and keys in messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(value: Any, limit: int = 60) -> str:
    """A short repr of a value for an error message: never the whole of a huge input."""
    return _REPR.repr(value)[:limit] + ("…" if len(_REPR.repr(value)) > limit else "")
