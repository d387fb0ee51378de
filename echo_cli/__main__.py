"""`python -m echo_cli` and the `echo-cli` command.

The command line is imported inside main(), so a Ctrl-C that lands while Python is still
importing it ends the program as every other Ctrl-C does: one line, exit code 130.
"""

import sys


def main() -> None:
    try:
        from echo_cli.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
