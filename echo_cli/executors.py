"""Where a sweep's runs run: worker processes here, or Ray tasks on a cluster.

    finished = run_local(job, records, workers=2, on_update=lambda records: None)
    finished = run_ray(job, records, address=None, workers=2, on_update=...)

Every run is a child `echo-cli train` process writing its own run directory, so a crash or an
out-of-memory kill stays in its run. Both return False after Ctrl-C, when running children were
told to stop (each keeps what it did). A child whose sweep dies, even by kill -9, stops too:
it watches the end of a pipe that only the sweep holds. This module imports no TensorFlow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from echo_cli import rundir, signals
from echo_cli.sweep import Record, Sweep, SweepError

# One thread per worker process: several runs share the cores without oversubscribing them.
SINGLE_THREAD_ENV = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else ""


def run_point(config: str, overrides: list[str], run_dir: str, *,
              extra_env: dict[str, str] | None = None,
              started: Callable[[subprocess.Popen], None] = lambda proc: None) -> dict[str, Any]:
    """Train one point in a child process. Returns {"status", "error", "metrics"}.

    Plain data in and out, so that a Ray worker can run it as well as a local thread.
    """
    cmd = [sys.executable, "-m", "echo_cli", "train", config, "--out", run_dir]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, **(extra_env or {}), "COLUMNS": "100", signals.STOP_ON_EOF: "1"}
    # A session of its own: a signal reaches the sweep, which forwards exactly one. The child
    # holds the read end of a pipe only this process writes to: if this process dies, however
    # it dies, the child sees the pipe end and stops, keeping what it did.
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    started(proc)
    try:
        stderr = proc.stderr.read()
        proc.wait()
    except KeyboardInterrupt:  # a Ray task being cancelled: let the run keep what it did
        proc.send_signal(signal.SIGINT)
        stderr = proc.stderr.read()
        proc.wait()
    finally:
        proc.stdin.close()
        proc.stderr.close()
    found = rundir.try_read_metrics(Path(run_dir))
    metrics = found.to_dict() if found is not None else {}
    if proc.returncode == 0:
        return {"status": "done", "error": "", "metrics": metrics}
    if proc.returncode in (130, 143, 129, -signal.SIGINT, -signal.SIGTERM):
        return {"status": "interrupted", "error": "interrupted", "metrics": metrics}
    return {"status": "failed", "error": _last_line(stderr) or f"exit code {proc.returncode}",
            "metrics": metrics}


def run(job: Sweep, records: list[Record], *, executor: str, address: str | None,
        workers: int, on_update: Callable[[list[Record]], None]) -> bool:
    """Run the records that are not done with the chosen executor ("local" or "ray").

    Returns:
        True if every run finished, False after Ctrl-C.
    """
    on_update(records)
    if executor == "ray":
        return run_ray(job, records, address=address, workers=workers, on_update=on_update)
    return run_local(job, records, workers=workers, on_update=on_update)


def run_local(job: Sweep, records: list[Record], *, workers: int,
              on_update: Callable[[list[Record]], None]) -> bool:
    """Run the records that are not done on `workers` worker processes, one thread each.

    Returns:
        True if every run finished; False after a stop signal (signals.py) or Ctrl-C, when
        running children were sent the same signal (they keep what they did) and the rest stay
        "not run".
    """
    todo = [r for r in records if r.status == "not run"]
    procs: dict[int, subprocess.Popen] = {}
    lock = threading.Lock()
    stopping = threading.Event()
    forwarded = [signal.SIGINT]

    def work(record: Record) -> dict[str, Any]:
        def started(proc: subprocess.Popen) -> None:
            with lock:
                procs[id(record)] = proc
                if stopping.is_set():  # started just as the stop came: stop it too
                    proc.send_signal(forwarded[0])

        if stopping.is_set():
            return {"status": "not run", "error": "", "metrics": {}}
        record.status = "running"
        return run_point(str(job.config), job.overrides(record.point), str(record.run_dir),
                         extra_env=SINGLE_THREAD_ENV, started=started)

    pool = ThreadPoolExecutor(max_workers=workers)
    futures: dict[Future, Record] = {pool.submit(work, r): r for r in todo}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                _apply(futures[future], future.result())
            on_update(records)
            signals.check()
        return True
    except (KeyboardInterrupt, signals.StopRequested):
        forwarded[0] = signal.SIGTERM if signals.requested() in (signal.SIGTERM,
                                                                  signal.SIGHUP) else signal.SIGINT
        stopping.set()
        for future in futures:
            future.cancel()
        with lock:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(forwarded[0])
        for future, record in futures.items():
            if future.cancelled():
                record.status = "not run"
            else:
                _apply(record, future.result())
        return False
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_ray(job: Sweep, records: list[Record], *, address: str | None, workers: int,
            on_update: Callable[[list[Record]], None]) -> bool:
    """Run each pending record as a Ray task, on a cluster (address) or a local instance.

    On a cluster every node needs echo-cli installed and the config and --out directory on a
    shared filesystem, since each task writes its own run directory there.
    """
    try:
        import ray
    except ImportError:
        raise SweepError("--executor ray needs Ray; install it with `pip install '.[ray]'` or "
                         "`make setup EXTRAS=dev,jax,ray`") from None
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        except Exception as err:  # Ray raises many types for an unreachable cluster
            raise SweepError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                             f"{str(err).strip().splitlines()[0][:160]}") from None
    remote = ray.remote(num_cpus=1)(run_point)
    todo = [r for r in records if r.status == "not run"]
    refs = {}
    for record in todo:
        record.status = "running"
        refs[remote.remote(str(job.config.resolve()), job.overrides(record.point),
                           str(record.run_dir.resolve()), extra_env=SINGLE_THREAD_ENV)] = record
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                _apply(refs[ref], _ray_outcome(ray, ref))
            on_update(records)
            signals.check()
        return True
    except (KeyboardInterrupt, signals.StopRequested):
        running = [ref for ref, record in refs.items() if record.status == "running"]
        for ref in running:
            ray.cancel(ref)  # not forced: the task forwards SIGINT to its run, which keeps it
        for ref in running:
            _apply(refs[ref], _ray_outcome(ray, ref))
        return False


def _ray_outcome(ray, ref) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except Exception as err:  # a cancelled or crashed task
        cancelled = type(err).__name__ == "TaskCancelledError"
        return {"status": "not run" if cancelled else "failed",
                "error": "" if cancelled else str(err).strip().splitlines()[0][:200],
                "metrics": {}}


def _apply(record: Record, outcome: dict[str, Any]) -> None:
    """Take a run's outcome (plain data, from a thread or a Ray task) into its record."""
    record.status, record.error = outcome["status"], outcome["error"]
    record.metrics = (rundir.metrics_from_dict(outcome["metrics"], where=record.run_dir)
                      if outcome["metrics"] else None)
    if record.status == "interrupted":
        record.status = "not run"
