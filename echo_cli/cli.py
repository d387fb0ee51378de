"""The echo-cli command line: one Typer app, one error handler, one entry point.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli --help

The commands live by topic in cli_run.py (one run) and cli_runs.py (many runs and
benchmarks); each only parses, calls and prints. Every problem a user can fix is an
EchoError (errors.py), turned into one line and its exit code by ui.handled.
"""

from __future__ import annotations

import sys

import typer

from echo_cli import cli_run, cli_runs
from echo_cli.report import one_line

# Typer vendors Click and exports only BadParameter; its base class covers every usage error.
UsageError = typer.BadParameter.__mro__[1]

app = typer.Typer(
    name="echo-cli",
    help="Learn how recurrent networks remember: train LSTMs to echo random integers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(cli_run.app)
app.add_typer(cli_runs.app)


def main() -> None:
    """Console entry point: usage errors become one plain line with exit code 2."""
    try:
        code = app(prog_name="echo-cli", standalone_mode=False)
    except UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
            print(err.ctx.get_help())
            sys.exit(0)
        where = err.ctx.command_path if err.ctx else "echo-cli"
        print(f"error: {one_line(err.format_message())} (see `{where} --help`)",
              file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
