"""Signals as a flag: Ctrl-C, SIGTERM and SIGHUP ask a run to stop at its next safe point.

    with stopping():                 # in a command: install the handlers, restore them after
        ...; check()                 # at a safe point: raises StopRequested once asked
    exit_code()                      # 130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP)

A KeyboardInterrupt can be raised anywhere, including inside a callback whose exceptions Python
discards (JAX's garbage-collection hook), so a Ctrl-C could be lost. A flag cannot: the
training loop, the evaluation and the sweep check it between steps, finish the step they are in,
save what they have, and exit with the signal's code. A second signal stops the process at once
(what is not yet saved is lost; every file already written is whole).
This module imports nothing from echo_cli.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
STOP_ON_EOF = "ECHO_CLI_STOP_ON_EOF"  # set by a parent that holds our stdin: its end is ours

_requested: int | None = None
_raise_now = False  # a command that may block (stream's read) stops where it is
_lock = threading.Lock()
_stderr: int | None = None  # the terminal's stderr, kept while library code may silence fd 2


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """Raised at a safe point once a stop signal has arrived; `signum` is the signal."""

    def __init__(self, signum: int | None = None):
        super().__init__(signum)
        self.signum = signum if signum is not None else (_requested or signal.SIGINT)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 130)

    @property
    def name(self) -> str:
        return NAMES.get(self.signum, "a signal")


def requested() -> int | None:
    """The first stop signal received, or None."""
    return _requested


def request(signum: int) -> None:
    """Ask for a stop, as if signum had arrived (used by the stdin watcher and by tests)."""
    global _requested
    with _lock:
        if _requested is None:
            _requested = signum


def check() -> None:
    """Raise StopRequested if a stop was asked for."""
    if _requested is not None:
        raise StopRequested(_requested)


def exit_code() -> int:
    return EXIT_CODES.get(_requested or signal.SIGINT, 130)


def name() -> str:
    return NAMES.get(_requested or signal.SIGINT, "a signal")


def reset() -> None:
    """Forget a request (a new command in the same process)."""
    global _requested
    _requested = None


def _handle(signum: int, frame) -> None:
    if signum == signal.SIGHUP:  # the terminal is gone: writing to it would fail
        _silence_terminal()
    if _requested is not None:  # the second signal: stop now
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    request(signum)
    if _raise_now:
        raise StopRequested(signum)
    if signum != signal.SIGHUP and _stderr is not None:
        with contextlib.suppress(OSError):
            os.write(_stderr, f"\n{NAMES[signum]}: stopping after the current step and keeping "
                              f"what was done; send it again to stop at once\n".encode())


def _silence_terminal() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _watch_stdin(fd: int) -> None:
    """The parent holds our stdin: when it ends, the parent is gone, so stop. (os.read on the
    raw descriptor: a daemon thread blocked in a buffered read aborts the interpreter at exit.)
    """
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass
    request(signal.SIGTERM)


def install_early() -> None:
    """Record a signal that arrives while the command line is still importing (the program's
    first second or two), so the command honours it once it starts. `python -m echo_cli` and
    `echo-cli` call it before importing anything else."""
    for s in EXIT_CODES:
        signal.signal(s, lambda signum, frame: request(signum))


def restore_defaults() -> None:
    """Python's own handling again: Ctrl-C raises KeyboardInterrupt, SIGTERM and SIGHUP end."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _count_deliveries(fd: int) -> None:
    """Each delivery of a signal writes its number to the wakeup fd, even when Python runs the
    handler once for two signals that came close together (inside a compiled step). The
    second stop signal ends the process at once, whatever the gap."""
    seen = 0
    with contextlib.suppress(OSError):
        while data := os.read(fd, 64):
            seen += sum(1 for number in data if number in EXIT_CODES)
            if seen >= 2:
                number = next(n for n in reversed(data) if n in EXIT_CODES)
                os._exit(EXIT_CODES.get(number, 130))


@contextlib.contextmanager
def _wakeup_counter():
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    try:
        previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        os.close(reader)
        os.close(writer)
        yield
        return
    threading.Thread(target=_count_deliveries, args=(reader,), name="second-signal",
                     daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(writer)  # the counter's read ends; it closes nothing else


@contextlib.contextmanager
def stopping(*, at_once: bool = False):
    """Turn SIGINT, SIGTERM and SIGHUP into the flag for the duration of a command; a signal
    recorded before it started (install_early) still counts. The flag is cleared when the
    command ends. A second stop signal ends the process at once.

    at_once: raise StopRequested where the command is, for one that may block (reading
    stdin) and whose every step is whole (stream).

    Under a parent that set ECHO_CLI_STOP_ON_EOF (a sweep), the end of stdin asks for a stop
    too, so a run never outlives its sweep.
    """
    if threading.current_thread() is not threading.main_thread():
        try:
            yield  # signals reach only the main thread; nothing to install
        finally:
            reset()
        return
    global _stderr, _raise_now
    saved = {s: signal.getsignal(s) for s in EXIT_CODES}
    with contextlib.suppress(OSError):
        _stderr = os.dup(2)
    for s in EXIT_CODES:
        signal.signal(s, _handle)
    _raise_now = at_once
    if os.environ.get(STOP_ON_EOF) == "1" and sys.stdin is not None:
        threading.Thread(target=_watch_stdin, args=(sys.stdin.fileno(),), name="stop-on-eof",
                         daemon=True).start()
    try:
        with _wakeup_counter():
            if at_once:
                check()  # a signal that came while the command line was importing
            yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        if _stderr is not None:
            os.close(_stderr)
            _stderr = None
        _raise_now = False
        reset()
