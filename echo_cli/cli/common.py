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
BARE_HELP = ("More overrides, KEY=VALUE as --set takes them, after the config (Hydra's habit): "
             "train.epochs=50. They apply after the --set ones.")


def overrides(set_: list[str], bare: list[str] | None) -> list[str]:
    """The --set items, then the bare KEY=VALUE items given after the config.

    Raises:
        EchoError: a bare item that is not KEY=VALUE (a second config, a typo).
    """
    for item in bare or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip() or key.startswith("-"):
            raise EchoError(f"unexpected argument {one_line(item)[:80]!r}: give one config, "
                            f"then overrides as KEY=VALUE, e.g. train.epochs=50 (or --set "
                            f"train.epochs=50)")
    return [*set_, *(bare or [])]


class OutputError(EchoError):
    """An --out (or --plot) that would lose a user's files, or cannot be written."""


def refuse_overwrite(out: Path, names: list[str] | None, *, force: bool,
                     option: str = "--out") -> None:
    """Refuse, before any work, an `out` folder that already holds some of `names` (files a
    command writes), or with names None an `out` file that exists, unless --force was given;
    and an `out` folder that is a file.

    Raises:
        OutputError: one line that names the files and the fix.
    """
    if names is None:
        if out.exists() and not force:
            raise OutputError(f"{option} {out} already exists and is left untouched; give "
                              f"--force to replace it, or another {option}")
        return
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
    """The one handler: an EchoError becomes one line on stderr and its exit code; a stop
    signal its own code (130, 143, 129); a reader that went away (`| head`) ends it quietly."""
    from echo_cli.training import signals, startup

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EchoError as err:
            say_error(one_line(str(err)))
            raise typer.Exit(err.exit_code) from None
        except signals.StopRequested as stop:
            if sys.stderr is not None:
                with contextlib.suppress(OSError, ValueError):
                    print(f"interrupted by {stop.name}", file=sys.stderr)
            raise typer.Exit(stop.exit_code) from None
        except BrokenPipeError:  # the reader stopped reading: not an error of ours
            startup.silence(1)
            raise typer.Exit(0) from None

    return run


def say_error(line: str) -> None:
    """`error: LINE` on stderr, if there is a stderr to say it on."""
    if sys.stderr is None:  # closed by the caller (2>&-): print would write to stdout
        return
    try:
        print(f"error: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


class SafeConsole(Console):
    """A console that prints a string's control characters escaped (a terminal escape in a
    path or a value is shown as \\x1b, never obeyed), and goes quiet when its output is
    closed or its reader went away, so a command finishes its work regardless. Text cells are
    made safe by report.plain."""

    def print(self, *objects, **kwargs) -> None:
        try:
            super().print(*(printable(o) if isinstance(o, str) else o for o in objects),
                          **kwargs)
        except (BrokenPipeError, ValueError) as err:  # ValueError: I/O on a closed file
            if isinstance(err, ValueError) and "closed" not in str(err):
                raise
            self.on_broken_pipe()

    def on_broken_pipe(self) -> None:
        """Rich exits with 1 here; a command whose reader went away finishes its work, quietly,
        and exits with its own code."""
        from echo_cli.training import startup

        startup.silence(1)
        self.quiet = True


def new_console(*, quiet: bool = False) -> Console:
    """The console a command prints on; quiet: one that prints nothing (--quiet)."""
    return SafeConsole(highlight=False, quiet=quiet)


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
        say_error(f"{one_line(err.format_message())} (see `{where} --help`)")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
