"""Where a sweep's runs run: long-lived worker processes here, or Ray tasks on a cluster.

    finished = run_local(job, records, workers=2, on_update=lambda records: None)
    finished = run_ray(job, records, address=None, workers=2, on_update=...)

A worker (worker.py) imports Keras once and trains run after run, each exactly as `echo-cli
train` would, into its own run directory. A run that crashes its worker, or is killed for
memory, fails alone: it is recorded with the reason and the worker is replaced. Both return
False after Ctrl-C, when the runs in progress were told to stop (each keeps what it did). A
worker whose sweep dies, even by kill -9, stops too: it reads its jobs from a pipe that only
the sweep holds. Under Ray each task trains in the Ray worker process, which Ray reuses from
task to task. This module imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from echo_cli.store import rundir
from echo_cli.sweeps.sweep import Record, Sweep, SweepError
from echo_cli.training import signals

# One thread per worker process: several runs share the cores without oversubscribing them.
SINGLE_THREAD_ENV = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
WORKERS_LOG = "workers.log"  # what the workers' libraries print, for a crash's post-mortem


def backend_of(job: Sweep, record: Record) -> str:
    """The backend a run will use, as `echo-cli train` would choose it in a new process.

    Raises:
        ConfigError, BackendError: one line, recorded as the run's error.
    """
    from echo_cli.config.loading import load_config
    from echo_cli.training.backends import choose

    cfg = load_config(job.config, overrides=job.overrides(record.point))
    return choose(cfg.train.backend, engine="fast", here=False)[0]


class Worker:
    """One worker process (`python -m echo_cli.sweeps.worker`) on one backend."""

    def __init__(self, backend: str, log: Path):
        self.backend = backend
        env = {**os.environ, **SINGLE_THREAD_ENV, "COLUMNS": "100", "KERAS_BACKEND": backend}
        env.pop(signals.STOP_ON_EOF, None)  # its stdin carries jobs; the worker watches it
        env.pop("MLFLOW_TRACKING_URI", None)  # the sweep logs its runs, as children
        with open(log, "ab") as sink:
            # A session of its own: a terminal's Ctrl-C reaches the sweep, which forwards one.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "echo_cli.sweeps.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=sink, text=True, env=env,
                start_new_session=True)
        self.busy = False
        self.runs = 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, config: str, overrides: list[str], run_dir: str) -> dict[str, Any]:
        """Train one run; {"status", "error", "metrics"}, as worker.outcome gives it."""
        self.runs += 1
        try:
            self.proc.stdin.write(json.dumps({"config": config, "overrides": overrides,
                                              "run_dir": run_dir}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except (OSError, ValueError):
            answer = ""
        if not answer:
            return self._died(run_dir)
        result = json.loads(answer)
        if result.get("crashed") or result["status"] == "interrupted":
            self._wait()  # it is ending: no later run may be handed to it
        return result

    def _wait(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def _died(self, run_dir: str) -> dict[str, Any]:
        """The worker ended without an answer: a crash, or a kill (out of memory, say), or a
        stop that reached it before it took the run (exit 0: the run is not run)."""
        code = self._wait()
        how = (f"killed by {signal.Signals(-code).name}" +
               (", perhaps for memory" if code == -signal.SIGKILL else "")
               if code < 0 else f"exit code {code}")
        found = rundir.try_read_metrics(Path(run_dir))
        if code in (0, 130, 143, 129, -signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP):
            return {"status": "interrupted", "error": "interrupted",
                    "metrics": found.to_dict() if found else {}}
        return {"status": "failed", "error": f"its worker process died during the run ({how}); "
                                             f"what it printed is in {WORKERS_LOG}",
                "metrics": found.to_dict() if found else {}}

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def close(self) -> None:
        """End the worker: the end of its jobs tells it to exit."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._wait()
        self.proc.stdout.close()


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


NOT_RUN = {"status": "not run", "error": "", "metrics": {}}


class _LocalPool:
    """Threads, each driving one long-lived worker process, that take the records in turn."""

    def __init__(self, job: Sweep):
        self.job = job
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started: list[Worker] = []
        self.local = threading.local()  # each pool thread keeps its own worker
        self.log = job.out / WORKERS_LOG

    def worker_for(self, backend: str) -> Worker:
        current = getattr(self.local, "worker", None)
        if current is not None and (current.backend != backend or not current.alive()):
            current.close()  # a crashed worker is replaced; another backend needs its own
            current = None
        if current is None:
            current = self.local.worker = Worker(backend, self.log)
            with self.lock:
                self.started.append(current)
        return current

    def work(self, record: Record) -> dict[str, Any]:
        from echo_cli.errors import EchoError

        if self.stopping.is_set():
            return NOT_RUN
        try:
            backend = backend_of(self.job, record)
        except EchoError as err:
            return {"status": "failed", "error": str(err), "metrics": {}}
        worker = self.worker_for(backend)
        with self.lock:
            if self.stopping.is_set():
                return NOT_RUN
            worker.busy = True
            record.status = "running"
        try:
            return worker.run(str(self.job.config), self.job.overrides(record.point),
                              str(record.run_dir))
        finally:
            worker.busy = False

    def stop(self) -> None:
        """Forward the stop to the runs in progress: SIGTERM for SIGTERM or SIGHUP, else
        SIGINT; each keeps what it did."""
        forwarded = (signal.SIGTERM if signals.requested() in (signal.SIGTERM, signal.SIGHUP)
                     else signal.SIGINT)
        with self.lock:
            self.stopping.set()
            for worker in self.started:
                if worker.busy:
                    worker.signal(forwarded)

    def close(self) -> None:
        for worker in self.started:
            worker.close()


def run_local(job: Sweep, records: list[Record], *, workers: int,
              on_update: Callable[[list[Record]], None]) -> bool:
    """Run the records that are not done on `workers` long-lived worker processes.

    Returns:
        True if every run finished; False after a stop signal (signals.py) or Ctrl-C, when the
        runs in progress were sent the same signal (they keep what they did) and the rest stay
        "not run".
    """
    pool, threads = _LocalPool(job), ThreadPoolExecutor(max_workers=workers)
    futures: dict[Future, Record] = {threads.submit(pool.work, r): r
                                     for r in records if r.status == "not run"}
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
        pool.stop()
        for future in futures:
            future.cancel()
        for future, record in futures.items():
            if future.cancelled():
                record.status = "not run"
            else:
                _apply(record, future.result())
        return False
    finally:
        threads.shutdown(wait=True, cancel_futures=True)
        pool.close()


def connect_ray(address: str | None, workers: int):
    """Start a local Ray instance, or connect to the cluster at `address`; the `ray` module.
    The sweep calls it before its directory exists, so an unreachable address costs nothing.

    Raises:
        SweepError: Ray is not installed, or it cannot start or be reached.
    """
    try:
        import ray
    except ImportError:
        raise SweepError("--executor ray needs Ray; install it with `pip install '.[ray]'` or "
                         "`make setup EXTRAS=dev,jax,ray`") from None
    if not ray.is_initialized():
        if address and address.startswith("ray://"):
            _reachable(address)  # Ray's client retries an unreachable address for 30 s
        kwargs = {"address": address} if address else {"num_cpus": workers}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        except Exception as err:  # Ray raises many types for an unreachable cluster
            raise SweepError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                             f"{str(err).strip().splitlines()[0][:160]}") from None
    return ray


def _reachable(address: str) -> None:
    """Refuse at once a ray://HOST:PORT where nothing listens.

    Raises:
        SweepError: the address has no port, or nothing answers there within 5 s.
    """
    host, _, port = address.removeprefix("ray://").partition("/")[0].rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address {address} needs a host and a port, e.g. "
                         f"ray://127.0.0.1:10001")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise SweepError(f"cannot start or reach Ray at {address}: {err.strerror or err}; is "
                         f"the cluster's head running (ray start --head) with its client "
                         f"port open?") from None


def run_ray(job: Sweep, records: list[Record], *, address: str | None, workers: int,
            on_update: Callable[[list[Record]], None]) -> bool:
    """Run each pending record as a Ray task, on a cluster (address) or a local instance.

    On a cluster every node needs echo-cli installed and the config and --out directory on a
    shared filesystem, since each task writes its own run directory there.
    """
    ray = connect_ray(address, workers)
    from echo_cli.errors import EchoError
    from echo_cli.sweeps.worker import run_job

    # Ray reuses a worker process for the tasks that share a runtime_env, so each backend's
    # runs share processes that import Keras once. A task whose process dies is not retried:
    # its run is recorded as failed.
    remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
    todo = [r for r in records if r.status == "not run"]
    refs = {}
    for record in todo:
        try:
            backend = backend_of(job, record)
        except EchoError as err:
            _apply(record, {"status": "failed", "error": str(err), "metrics": {}})
            continue
        record.status = "running"
        env = {**SINGLE_THREAD_ENV, "COLUMNS": "100", "KERAS_BACKEND": backend,
               "MLFLOW_TRACKING_URI": ""}  # the sweep logs its runs, as children
        task = remote.options(runtime_env={"env_vars": env})
        refs[task.remote(str(job.config.resolve()), job.overrides(record.point),
                         str(record.run_dir.resolve()))] = record
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
            ray.cancel(ref)  # not forced: the run takes it as Ctrl-C and keeps what it did
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
