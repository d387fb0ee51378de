"""The one error base class: every problem a user can fix is an EchoError with one line.

    raise ConfigError("data.window must be ≥ 1, got 0")

The CLI's single handler prints `error: <message>` on stderr and exits with `exit_code`
(2: the input was wrong), so no command needs its own error plumbing. Each module defines
its own subclass for the kind of problem it finds; they all land in the same handler.
This module imports nothing.
"""

from __future__ import annotations


class EchoError(Exception):
    """A problem the user can fix. The message is one line, ready to print."""

    exit_code = 2
