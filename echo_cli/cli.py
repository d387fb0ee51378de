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
from echo_cli.ui import invoke

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
    sys.exit(invoke(app, sys.argv[1:]))
