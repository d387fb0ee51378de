"""The configs that come with echo-cli: list them, and copy them out for editing.

    echo-cli configs                 # every built-in config with its one-line description
    echo-cli train lag1              # a built-in config by name, from anywhere
    echo-cli init configs            # copy them into ./configs, to edit

Parse, call, print: the configs are found by config/builtin.py. Nothing here imports
TensorFlow, and `init` never replaces a file without --force.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from echo_cli.cli.common import OutputError, handled, new_console
from echo_cli.config import builtin

app = typer.Typer()


@app.command(name="configs", short_help="List the built-in configs and what each tests.")
@handled
def list_configs() -> None:
    """List the configs that come with echo-cli, with their one-line descriptions.

    Give a name where a command takes CONFIG (`echo-cli train lag1`) when no file of that name
    is there; `echo-cli init DIR` copies them out for editing.
    """
    console = new_console()
    described = builtin.describe()
    width = max(map(len, described))
    for name, description in described.items():
        console.print(f"{name:<{width}}  {description}", markup=False, soft_wrap=True)
    print(f"{len(described)} built-in configs in {builtin.folder()}; run one with "  # stderr:
          "`echo-cli train NAME`, copy them with `echo-cli init DIR`",  # stdout stays a list
          file=sys.stderr)


@app.command(short_help="Copy the built-in configs into a folder, to edit them.")
@handled
def init(
    directory: Path = typer.Argument(Path("configs"), metavar="DIR",
                                     help="Folder to copy them into (created if need be)."),
    force: bool = typer.Option(False, "--force",
                               help="Replace files of the same name that DIR already holds."),
) -> None:
    """Copy every built-in config into DIR (default ./configs), with the example CSV data and
    the JSON Schema editors complete keys from. A file already there is never replaced
    without --force.

    With DIR = configs, the copies work exactly as in a clone of the repository:
    `echo-cli train configs/lag1.yaml`, and csv_colours.yaml finds configs/data/dice.csv
    when run from the folder above.
    """
    try:
        written = builtin.copy_into(directory, force=force)
    except OSError as err:  # a read-only folder, a full disk
        raise OutputError(f"cannot write to DIR {directory}: {err.strerror or err}") from None
    console = new_console()
    configs = [p for p in written if p.suffix == builtin.SUFFIX]
    console.print(f"copied {len(configs)} configs and {len(written) - len(configs)} other "
                  f"files into {directory}/; try `echo-cli train {directory / 'lag1.yaml'}`",
                  markup=False, soft_wrap=True)
