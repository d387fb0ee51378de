"""`echo-cli config`: see a config as it would run, its keys, and its JSON Schema, without
training and without writing anything.

    echo-cli config show configs/lag1.yaml --set train.epochs=50
    echo-cli config keys
    echo-cli config schema > configs/echo-cli.schema.json

Nothing here imports TensorFlow, Keras or JAX.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import typer

from echo_cli.cli.common import BARE_HELP, SET_HELP, handled, overrides
from echo_cli.cli.completion import complete_config
from echo_cli.config.keys import SECTIONS, json_schema, key_docs
from echo_cli.config.loading import load_config, to_yaml

# ---------------------------------------------------------------------------------------------
# the commands

app = typer.Typer(
    name="config", no_args_is_help=True,
    short_help="See a config and its keys, without training.",
    help="See a config without running it: the resolved YAML (show), every key with its type, "
         "default and meaning (keys), and a JSON Schema for editors (schema). None of them "
         "trains or writes a file.")


@app.command(short_help="Print the config as train would run it.")
@handled
def show(
    config: Path = typer.Argument(..., metavar="CONFIG", autocompletion=complete_config,
                                  help="YAML experiment config, e.g. configs/lag1.yaml."),
    bare: list[str] | None = typer.Argument(None, metavar="[KEY=VALUE]...", help=BARE_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
) -> None:
    """Print the config as `echo-cli train` would run it: the defaults, then the file, then
    each --set (and each KEY=VALUE after the config), validated. The output is YAML that
    `train` reads back to the same run.

    A config that train would refuse is refused here with the same one-line error (exit 2).
    """
    from echo_cli.config import limits

    cfg = load_config(config, overrides=overrides(set_, bare))
    limits.check(cfg)  # what train would refuse for memory, refused the same way
    sys.stdout.write(to_yaml(cfg))
    for note in cfg.warnings():  # stderr, so that the YAML on stdout stays a config
        print(f"note: {note}", file=sys.stderr)


@app.command(short_help="List every key: type, default, meaning.")
@handled
def keys() -> None:
    """List every config key (dotted, as --set takes it) with its type, allowed values,
    default and meaning. A task may set its own default for a few keys (its papers' recipe)."""
    width = max(40, min(shutil.get_terminal_size().columns, 100))
    lines, section = [], ""
    for doc in key_docs():
        here = doc.key.rpartition(".")[0]
        if here != section:
            section = here
            lines += ["", *textwrap.wrap(f"{here}: {SECTIONS[here]}", width)]
        lines += textwrap.wrap(f"{doc.key} ({doc.kind}; default {doc.default})", width,
                               subsequent_indent="    ", break_on_hyphens=False)
        lines += textwrap.wrap(doc.description, width, initial_indent="    ",
                               subsequent_indent="    ", break_on_hyphens=False)
    print("\n".join(lines))


@app.command(short_help="Print the config's JSON Schema, for editors.")
@handled
def schema() -> None:
    """Print the config's JSON Schema, with each key's type, default and description.

    configs/echo-cli.schema.json is a copy (`make schema` writes it). The first line of each
    config names it, so that editors using the YAML language server (VS Code's YAML
    extension) check the config's keys and values as you type and complete them."""
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
