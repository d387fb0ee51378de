"""The echo-cli command line: one Typer app, one error handler, one entry point.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli --help

The commands live in one module per group: train.py (train, check-data), use.py (predict,
stream, inspect), results.py (results, compare, memory-table), sweep.py, bench.py, config.py
(a config without running it) and configs.py (the built-in configs, init); each only
parses, calls and prints; common.py holds what they share. Here: their order in --help,
--version, and plain words in usage (CONFIG, not `<path>`). Every problem a user can fix is
an EchoError (errors.py), turned into one line and its exit code by common.handled.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from echo_cli.cli import bench, config, configs, results, sweep, train, use
from echo_cli.cli.common import invoke

# The order a learner meets the commands in; `echo-cli --help` lists them so (others last).
ORDER = ("train", "check-data", "predict", "stream", "inspect", "results", "compare", "sweep",
         "memory-table", "bench", "config", "configs", "init")


class _PlainArgument(TyperArgument):
    """An argument shown in usage and help by its name alone: CONFIG, RUN..., [INT]...
    (Typer would add its Python type, `<path>`, and wrap a required one in braces)."""

    def _word(self) -> str:
        return self.metavar or (self.name or "").upper()

    def get_usage_pieces(self, ctx) -> list[str]:
        word = self._word() if self.required else f"[{self._word()}]"
        return [word + ("..." if self.nargs != 1 else "")]

    def get_help_record(self, ctx):
        record = super().get_help_record(ctx)
        if record is None:
            return None
        return self._word() + ("..." if self.nargs != 1 else ""), record[1]

    def get_error_hint(self, ctx=None) -> str:  # Typer calls it without ctx, Click with
        return f"'{self._word()}'"


class _PlainOption(TyperOption):
    """An option shown with its metavar (--set KEY=VALUE, --rows N), or its choices, or its
    name in capitals: never a Python type such as `<int range>`."""

    def display_type_rich(self, ctx) -> str | None:
        if self.metavar is not None or self.type_descriptor.is_choice:
            return super().display_type_rich(ctx)
        return (self.name or "").upper()


def _plain_words(command) -> None:
    """Give every argument and option of `command` and its subcommands the plain words above
    (Typer takes no class for them, so they are swapped in once the commands are built)."""
    for param in command.params:
        if type(param) is TyperArgument:
            param.__class__ = _PlainArgument
        elif type(param) is TyperOption:
            param.__class__ = _PlainOption
    for sub in getattr(command, "commands", {}).values():
        _plain_words(sub)


class _Commands(TyperGroup):
    """The top-level command: its commands in ORDER, all of them in plain words."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _plain_words(self)

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


app = typer.Typer(
    name="echo-cli",
    cls=_Commands,
    help="Learn how recurrent networks remember: train LSTMs to echo random integers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for group in (train, use, results, sweep, bench, config, configs):
    app.add_typer(group.app)


def _print_version(value: bool) -> None:
    if value:
        from echo_cli import __version__

        print(f"echo-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print echo-cli's version and exit."),
) -> None:
    """Learn how recurrent networks remember: train LSTMs to echo random integers."""


def main() -> None:
    """Console entry point: usage errors become one plain line with exit code 2."""
    sys.exit(invoke(app, sys.argv[1:]))
