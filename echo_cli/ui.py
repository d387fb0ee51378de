"""What every command shares: the one error handler, the console, and option help texts.

    @app.command()
    @handled
    def train(...): ...

`handled` turns an EchoError into `error: <message>` on stderr and the error's exit code,
so no command handles errors itself. This module imports nothing heavy.
"""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from echo_cli.errors import EchoError
from echo_cli.report import one_line, printable

SET_HELP = ("Override one config key with a dotted KEY=VALUE, e.g. --set train.epochs=50. "
            "Repeatable.")


def handled(fn):
    """The one handler: an EchoError becomes one line on stderr and its exit code."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EchoError as err:
            print(f"error: {one_line(str(err))}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None

    return run


class SafeConsole(Console):
    """A console that prints a string's control characters escaped (a terminal escape in a
    path or a value is shown as \\x1b, never obeyed). Text cells are made safe by
    report.plain."""

    def print(self, *objects, **kwargs) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


def new_console() -> Console:
    return SafeConsole(highlight=False)


def print_warnings(out: Console, cfg) -> None:
    """A config's plain-language notes (lag outside the window, trimmed rows)."""
    for note in cfg.warnings():
        out.print(f"[yellow]note:[/] {note}")
