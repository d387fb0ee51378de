"""`python -m echo_cli` and the `echo-cli` command.

Signals are recorded from the first line, before the command line is imported, so a Ctrl-C
that lands while Python is still importing it (pydantic, typer, rich) is honoured as every
other one: the command stops before it starts anything, with exit code 130.
"""

import sys

from echo_cli import signals


def main() -> None:
    signals.install_early()
    from echo_cli.cli import main as run

    if signals.requested() is not None:  # it came while the command line was importing
        print(f"interrupted by {signals.name()}", file=sys.stderr)
        sys.exit(signals.exit_code())
    signals.restore_defaults()  # commands that train install their own handlers
    run()


if __name__ == "__main__":
    main()
