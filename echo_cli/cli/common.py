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
from echo_cli.output.report import one_line, printable

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


# Typer vendors Click and exports only BadParameter; its base class covers every usage error.
UsageError = typer.BadParameter.__mro__[1]


def invoke(app: typer.Typer, args: list[str]) -> int:
    """Run one command line of `app` in this process, as `echo-cli ARGS...` would, and return
    its exit code: a usage error becomes one line and 2, Ctrl-C 130. What it prints goes to
    sys.stdout and sys.stderr (a sweep's worker redirects them).
    """
    try:
        code = app(args=args, prog_name="echo-cli", standalone_mode=False)
    except UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
            print(err.ctx.get_help())
            return 0
        where = err.ctx.command_path if err.ctx else "echo-cli"
        print(f"error: {one_line(err.format_message())} (see `{where} --help`)",
              file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
