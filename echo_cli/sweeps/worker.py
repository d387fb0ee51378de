"""A long-lived worker for a sweep: it imports Keras once and trains run after run.

    python -m echo_cli.sweeps.worker          # reads one job per line on stdin, answers on stdout
    {"config": "configs/lag1.yaml", "overrides": ["seed=2"], "run_dir": "SWEEP/runs/seed=2"}
    {"status": "done", "error": "", "metrics": {...}}

Each job is trained as `echo-cli train CONFIG --out RUN_DIR --set ...` trains it, through
the same steps, in this process (train_job), so a run trained here is the run a fresh process
would train, and can be repeated alone from its config.yaml. A run with the shapes of an
earlier one takes its model and compiled steps, with its own initial weights and a fresh
optimizer put in (training/warm.py). Between runs Keras's session is cleared.

The sweep holds the other end of stdin. When it ends (the sweep stopped or died, however it
died), a run in progress stops as on SIGTERM and keeps what it did, and the worker exits. A
stop signal likewise ends the run in progress, and then the worker. Anything the libraries
print goes to stderr, which the sweep sends to SWEEP/workers.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from echo_cli.training import signals, startup

INTERRUPTED_CODES = (130, 143, 129, -signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP)


def outcome(code: int, error: str, run_dir: str) -> dict[str, Any]:
    """A finished run as plain data: {"status", "error", "metrics"}.

    status: done, interrupted (a stop signal: the run kept what it did) or failed, with the
    last line of its error.
    """
    from echo_cli.store import rundir

    found = rundir.try_read_metrics(Path(run_dir))
    metrics = found.to_dict() if found is not None else {}
    if code == 0:
        return {"status": "done", "error": "", "metrics": metrics}
    if code in INTERRUPTED_CODES:
        return {"status": "interrupted", "error": "interrupted", "metrics": metrics}
    lines = [line for line in error.strip().splitlines() if line.strip()]
    message = lines[-1].removeprefix("error: ") if lines else ""
    return {"status": "failed", "error": message or f"exit code {code}", "metrics": metrics}


def train_job(config: str, overrides: list[str], run_dir: str) -> tuple[int, str]:
    """Train one run as `echo-cli train CONFIG --out RUN_DIR --set ...` does, through the same
    steps (training/experiment.py), and end as it ends: its exit code and one-line error."""
    from echo_cli.config.loading import load_config
    from echo_cli.errors import EchoError
    from echo_cli.store import claim
    from echo_cli.training import experiment, seeds

    try:
        with signals.stopping():
            cfg, dataset, _ = experiment.prepare(load_config(config, overrides=overrides),
                                                 engine="fast")
            if signals.requested() is not None:
                return signals.exit_code(), "interrupted"
            saved = _checkpoint(Path(run_dir), cfg)
            taken = (claim.reopen(Path(run_dir)) if saved is not None
                     else claim.create(Path(run_dir), cfg.name))
            command = experiment.command_lines(
                config, overrides, command=f"echo-cli sweep {config} (this point: --out "
                                           f"{run_dir} with the overrides)")
            with taken:
                if cfg.train.seeds > 1:  # the point's seeds, as one program
                    together = seeds.run(cfg, taken.path, dataset=dataset, command=command)
                    code, message = seeds.verdict(together, taken.path)
                    return code, message or ""
                done = experiment.run(cfg, taken.path, engine="fast", dataset=dataset,
                                      resume=saved, command=command)
            code, message = experiment.verdict(done, taken.path)
            return code, message or ""
    except EchoError as err:
        return err.exit_code, str(err)
    except KeyboardInterrupt:
        return 130, "interrupted"


def _checkpoint(run_dir: Path, cfg):
    """The checkpoint a killed or interrupted run left (the sweep kept its directory for
    it), or None; one that cannot be used moves the directory aside to train afresh."""
    from echo_cli.config.loading import to_yaml
    from echo_cli.store import rundir
    from echo_cli.training import checkpoint

    if not checkpoint.exists(run_dir):
        return None
    try:
        return checkpoint.load(run_dir, engine="fast", digest=rundir.digest(to_yaml(cfg)))
    except checkpoint.CheckpointError:
        rundir.move_aside(run_dir)
        return None


def run_job(config: str, overrides: list[str], run_dir: str) -> dict[str, Any]:
    """Train one sweep run in this process, as `echo-cli train` would, and clear Keras after.

    Returns:
        outcome(): the status, the one-line error of a failed run, and its metrics.
    """
    from echo_cli.training import warm

    warm.enable()  # runs of the same shapes share their model and compiled steps
    try:
        code, error = train_job(config, overrides, run_dir)
    except Exception as err:  # noqa: BLE001 - a bug: the run fails, and its worker with it
        import traceback

        traceback.print_exc()  # to the worker's log
        text = " ".join(str(err).split())[:200]
        answer = outcome(1, f"{type(err).__name__}: {text}", run_dir)
        return {**answer, "crashed": True}
    clear_session()
    return outcome(code, error, run_dir)


def clear_session() -> None:
    """Forget the last run's models, layer names and graphs (Keras's global state), and free
    its memory. main() froze what importing Keras made, so the collection only walks what runs
    made since (a tenth of a second, not half a second)."""
    if "keras" in sys.modules:
        import gc

        sys.modules["keras"].backend.clear_session(free_memory=False)
        gc.collect()


def main() -> None:
    signals.install_early()  # a stop that arrives while Keras imports is not lost
    startup.lean = True  # nothing here hands Keras a DataFrame or uses its wrappers
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what libraries print must not mix with the answers
    os.close(devnull)
    jobs: queue.Queue = queue.Queue()
    busy = threading.Event()

    def read_jobs() -> None:
        stream = os.fdopen(os.dup(0), "rb", buffering=0)
        buffered = b""
        with contextlib.suppress(OSError, ValueError):  # a broken line ends the jobs too
            while chunk := stream.read(65536):
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    jobs.put(json.loads(line))
        if busy.is_set():  # the sweep is gone: stop the run in progress, keeping it
            signals.request(signal.SIGTERM)
        jobs.put(None)

    threading.Thread(target=read_jobs, name="jobs", daemon=True).start()
    from echo_cli.training.backends import import_keras

    import_keras(os.environ.get("KERAS_BACKEND", "auto"))  # once, before the first job
    import gc

    gc.collect()
    gc.freeze()  # the modules stay for good: later collections skip their objects
    while signals.requested() is None:
        try:
            job = jobs.get(timeout=0.5)
        except queue.Empty:
            continue
        if job is None:
            break
        busy.set()
        answer = run_job(job["config"], job["overrides"], job["run_dir"])
        busy.clear()
        try:
            answers.write(json.dumps(answer) + "\n")
        except OSError:  # the sweep is gone; the run directory says what happened
            break
        if answer["status"] == "interrupted" or answer.get("crashed"):
            break  # the sweep is stopping, or this process is in doubt: a new one takes over
    with contextlib.suppress(OSError):
        answers.close()
    startup.finish(0)


if __name__ == "__main__":
    from echo_cli.sweeps import worker  # this module under its own name: one copy of it

    worker.main()
