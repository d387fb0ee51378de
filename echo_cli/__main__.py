"""`python -m echo_cli` and the `echo-cli` command.

Signals are recorded from the first line, before the command line is imported, so a Ctrl-C
that lands while Python is still importing it (pydantic, typer, rich) is honoured as every
other one: the command stops before it starts anything, with exit code 130. The other
start-up tricks are in training/startup.py, each with what it saves.
"""

import sys

from echo_cli.training import signals


def main() -> None:
    signals.install_early()
    from echo_cli.cli import main as run
    from echo_cli.training import startup

    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        if stream is None:  # closed by the caller (>&-): what it would say goes nowhere
            startup.silence(fd)
    if signals.requested() is not None:  # it came while the command line was importing
        print(f"interrupted by {signals.name()}", file=sys.stderr)
        sys.exit(signals.exit_code())
    signals.restore_defaults()  # commands that train install their own handlers
    startup.lean = True  # nothing here hands Keras a DataFrame or uses its wrappers
    try:
        run()
    except SystemExit as done:
        startup.finish(done.code)
    startup.finish(0)


if __name__ == "__main__":
    main()
