"""`python -m echo_cli` and the `echo-cli` command.

Signals are recorded from the first line, before the command line is imported, so a Ctrl-C
that lands while Python is still importing it (pydantic, typer, rich) is honoured as every
other one: the command stops before it starts anything, with exit code 130.

Once a command that loaded Keras is done, and everything it wrote is closed, the process ends
without Python's module-by-module teardown, which takes about a second after JAX or
TensorFlow and does nothing a user needs (`finish`).
"""

import sys

from echo_cli.training import signals


def main() -> None:
    signals.install_early()
    from echo_cli.cli import main as run

    if signals.requested() is not None:  # it came while the command line was importing
        print(f"interrupted by {signals.name()}", file=sys.stderr)
        sys.exit(signals.exit_code())
    signals.restore_defaults()  # commands that train install their own handlers
    from echo_cli.training import backends

    backends.lean_import = True  # nothing here hands Keras a DataFrame or uses its wrappers
    try:
        run()
    except SystemExit as done:
        finish(done.code)
    finish(0)


def finish(code) -> None:
    """Exit with `code` (SystemExit's: None, an int or a message for stderr).

    After Keras was loaded: run the exit handlers, flush, and leave at once. Every file a run
    writes is closed (and renamed into place) before its command returns, so nothing is lost.
    """
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    if not {"jax", "tensorflow"} & sys.modules.keys():
        sys.exit(code)
    import atexit
    import logging
    import os

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
