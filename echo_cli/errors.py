"""The one error base class: every problem a user can fix is an EchoError with one line.

    raise ConfigError("data.window must be ≥ 1, got 0")

The CLI's single handler prints `error: <message>` on stderr and exits with `exit_code`
(2: the input was wrong), so no command needs its own error plumbing. Each module defines
its own subclass for the kind of problem it finds; they all land in the same handler.
This module imports nothing.
"""

from __future__ import annotations


class EchoError(Exception):
    """A problem the user can fix. The message is one line, ready to print: a newline or
    other control character from the user's input is shown escaped (\\n, \\x1b)."""

    exit_code = 2

    def __str__(self) -> str:
        text = super().__str__()
        return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
