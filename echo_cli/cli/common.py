"""What every command shares: the one error handler, the console, the guards on --out, and
option help texts.

    @app.command()
    @handled
    def train(...): ...

    refuse_overwrite(out, ["memory.md", "memory.csv"], force=force)   # before the work
    with writing(out): write_atomic(out / "memory.md", text)           # after it

`handled` turns an EchoError into `error: <message>` on stderr and the error's exit code,
so no command handles errors itself. This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import typer
from rich.console import Console

from echo_cli.errors import EchoError
from echo_cli.output.report import one_line, printable

SET_HELP = ("Override one config key with a dotted KEY=VALUE, e.g. --set train.epochs=50. "
            "Repeatable.")


class OutputError(EchoError):
    """An --out (or --plot) that would lose a user's files, or cannot be written."""


def refuse_overwrite(out: Path, names: list[str], *, force: bool, option: str = "--out") -> None:
    """Refuse, before any work, an `out` folder that already holds some of `names` (files a
    command writes) unless --force was given; and an `out` that is a file.

    Raises:
        OutputError: one line that names the files and the fix.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is a file; give a directory")
    there = [name for name in names if (out / name).exists()]
    if there and not force:
        listed = there[0] if len(there) == 1 else f"{', '.join(there[:-1])} and {there[-1]}"
        raise OutputError(f"{option} {out} already has {listed}; give --force to replace "
                          f"{'it' if len(there) == 1 else 'them'}, or another {option}")


@contextlib.contextmanager
def writing(out: Path, *, option: str = "--out"):
    """Create `out` and turn an OSError while writing into it into one line."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        yield out
    except OSError as err:
        raise OutputError(f"cannot write to {option} {out}: {err.strerror or err}") from None


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


def print_lines(console: Console, lines: list) -> None:
    """Strings as plain text (never markup: they may hold a user's values), renderables as
    they are."""
    for line in lines:
        console.print(line, markup=False) if isinstance(line, str) else console.print(line)


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
