"""The start-up tricks, in one place, each with what it saves (measured by `echo-cli bench`
on the 2-core machine; the figures are in the README's speed section).

    with startup.hidden_from_keras():     # 1. Keras's import skips what echo-cli never uses
        import keras
    with startup.quiet_stderr(): ...      # 2. TensorFlow's C++ start-up chatter is not shown
    startup.finish(code)                  # 3. exit without the module-by-module teardown

Each one is kept only because it saves a user at least 0.3 s of a whole `echo-cli train`, or
because it keeps the screen clean (2): `make bench-startup` measures each (bench/startup.json).
On 2026-11-30 (2 cores, AMD EPYC) the lean import saved 0.77-0.80 s and the teardown skip
0.65-0.78 s. A fourth, importing matplotlib and TensorBoard's writer in a thread while the
model trained, saved 0.01 s (and nothing at 2,000 epochs) and was dropped.
"""

from __future__ import annotations

import contextlib
import os
import sys

# 1. Keras imports scikit-learn (for its sklearn wrappers; MLflow installs it), pandas (to
# accept DataFrames) and matplotlib.pyplot (for image galleries) whenever they are installed,
# each guarded by `except ImportError`: about 1.5 s that echo-cli's command line never uses,
# since it gives Keras numpy arrays and draws with matplotlib's Figure. The command line and
# the sweep's workers hide them from Keras's import (they set `lean`), and import them as
# usual afterwards; a notebook, where a user may want them from Keras, does not.
LEAN = ("sklearn", "pandas", "matplotlib.pyplot")
lean = False


@contextlib.contextmanager
def hidden_from_keras(modules: tuple[str, ...] = LEAN):
    """`import m` fails inside the block for each m not yet imported (as if not installed),
    and works again after it; only when `lean` is set."""
    hidden = [m for m in modules if lean and m not in sys.modules]
    for module in hidden:
        sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for module in hidden:
            if sys.modules.get(module, False) is None:
                del sys.modules[module]


# 2. TensorFlow logs oneDNN and CUDA notices through absl before any Python setting applies;
# they say nothing about the experiment. Python errors still surface after the block.
@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C++ logging), for steps that may first import TensorFlow."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# 3. After JAX or TensorFlow, Python's module-by-module teardown takes about a second and
# does nothing a user needs: every file a run writes is closed (and renamed into place) before
# its command returns.
def finish(code) -> None:
    """Exit with `code` (SystemExit's: None, an int or a message for stderr); after Keras was
    loaded, run the exit handlers, flush, and leave at once. A closed or broken stdout or
    stderr (`>&-`, `| head`) ends it quietly: what could not be said is dropped, and the code
    still says whether the work was done."""
    if not isinstance(code, int):
        if code is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                print(code, file=sys.stderr)
        code = 0 if code is None else 1
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or broken: nothing more to say
            silence(fd)
    if not {"jax", "tensorflow"} & sys.modules.keys():
        sys.exit(code)
    import atexit
    import logging

    atexit._run_exitfuncs()
    logging.shutdown()
    os._exit(code)


def silence(fd: int) -> None:
    """Point a closed or broken stdout (1) or stderr (2) at /dev/null, so that nothing written
    to it later (Python's own flush at exit included) can fail."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if fd == 1:
        sys.stdout = stream
    else:
        sys.stderr = stream
