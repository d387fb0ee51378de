"""A sweep's long-lived workers: a reused worker trains what a fresh process trains, and a run
that kills its worker fails alone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, sets

from echo_cli.sweeps import executors
from echo_cli.sweeps.worker import outcome
from echo_cli.training import backends

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs/lag1.yaml")
# two different stateful runs, so that anything the first leaves behind would show in the second
RUNS = {"a": [*TINY[:-1], "data.lag=0", "seed=1"], "b": [*TINY[:-1], "data.lag=1", "seed=2"]}
INSTALLED = ["tensorflow", *(["jax"] if backends.jax_installed() else [])]


def fresh_process(backend: str, overrides: list[str], run_dir: Path) -> None:
    env = {**os.environ, **executors.SINGLE_THREAD_ENV, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "echo_cli", "train", CONFIG, "--out",
                           str(run_dir), *sets(overrides)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr


def numbers(run_dir: Path) -> tuple:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return ((run_dir / "history.csv").read_text(), metrics["heldout_correct"],
            metrics["final_train_loss"], metrics["backend"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", INSTALLED)
def test_two_runs_in_one_worker_match_two_fresh_processes(tmp_path, backend):
    worker = executors.Worker(backend, tmp_path / "workers.log")
    try:
        answers = {name: worker.run(CONFIG, overrides, str(tmp_path / "worker" / name))
                   for name, overrides in RUNS.items()}
        assert worker.alive() and worker.runs == 2  # one process trained both
    finally:
        worker.close()
    assert worker.proc.returncode == 0  # the end of its jobs ended it
    for name, overrides in RUNS.items():
        assert answers[name]["status"] == "done", answers[name]
        fresh_process(backend, overrides, tmp_path / "fresh" / name)
        assert numbers(tmp_path / "worker" / name) == numbers(tmp_path / "fresh" / name)
        assert answers[name]["metrics"]["heldout_correct"] == numbers(tmp_path / "fresh" /
                                                                      name)[1]


def test_a_run_that_fails_is_its_one_line_error_and_the_worker_goes_on(tmp_path):
    worker = executors.Worker("tensorflow", tmp_path / "workers.log")
    try:
        bad = worker.run(CONFIG, [*TINY, "model.kind=mlp", "model.stateful=true"],
                         str(tmp_path / "bad"))
        assert bad["status"] == "failed"
        assert "model.stateful: true needs a model.kind that carries its state" in bad["error"]
        assert "\n" not in bad["error"] and worker.alive()
        good = worker.run(CONFIG, TINY, str(tmp_path / "good"))
        assert good["status"] == "done" and (tmp_path / "good/metrics.json").exists()
    finally:
        worker.close()


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_fails_alone_and_the_worker_is_replaced(tmp_path):
    """kill -9 of the worker, as the kernel's out-of-memory killer does, in the middle run."""
    out = tmp_path / "sw"
    proc = subprocess.Popen(
        [sys.executable, "-m", "echo_cli", "sweep", CONFIG, "--grid",
         "data.lag+train.epochs=0:4,1:100000,2:4", "--workers", "1", *sets(TINY[:4]),
         *sets(["train.batch_size=3", "eval.sequences=10", "model.stateful=false"]),
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    victim = out / "runs" / "lag=1,epochs=100000,seed=1"
    deadline = time.monotonic() + 120
    while not (victim / "history.csv").exists() or \
            len((victim / "history.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    pid = json.loads((victim / ".echo-cli.lock").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # a run failed; the sweep itself finished
    rows = {r["name"]: r for r in read_rows(out)}
    assert rows["lag=0,epochs=4,seed=1"]["status"] == "done"
    assert rows["lag=2,epochs=4,seed=1"]["status"] == "done"  # on a new worker
    failed = rows["lag=1,epochs=100000,seed=1"]
    assert failed["status"] == "failed"
    assert "its worker process died during the run (killed by SIGKILL, perhaps for memory)" \
        in failed["error"]
    assert "1 of 3 runs failed" in " ".join(stdout.split())
    late = json.loads((out / "runs" / "lag=2,epochs=4,seed=1" / "metrics.json").read_text())
    assert late["heldout_targets"] > 0


CRASH = """
from echo_cli.sweeps import worker

_train_job = worker.train_job


def train_job(config, overrides, run_dir):  # planted: a bug (not an EchoError) at data.lag=0
    if "data.lag=0" in overrides:
        raise RuntimeError("planted crash")
    return _train_job(config, overrides, run_dir)


worker.train_job = train_job
"""


@pytest.mark.slow
def test_a_run_that_crashes_its_worker_fails_alone_and_the_next_run_gets_a_new_one(tmp_path):
    """A Python error in a run (a bug, not a bad config) ends its worker; the run after it must
    go to a new worker, never to the one that is ending."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(CRASH)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"}
    out = tmp_path / "sw"
    done = subprocess.run(
        [sys.executable, "-m", "echo_cli", "sweep", CONFIG, "--grid", "data.lag=0,1,2",
         "--workers", "1", *sets([item for item in TINY if not item.startswith("data.lag")]),
         "--out", str(out)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 1, done.stderr  # one run failed; the sweep finished
    rows = {r["name"]: r for r in read_rows(out)}
    assert rows["lag=0,seed=1"]["status"] == "failed"
    assert "planted crash" in rows["lag=0,seed=1"]["error"]
    assert rows["lag=1,seed=1"]["status"] == "done", rows["lag=1,seed=1"]["error"]
    assert rows["lag=2,seed=1"]["status"] == "done", rows["lag=2,seed=1"]["error"]
    assert "1 of 3 runs failed" in " ".join(done.stdout.split())


def read_rows(out: Path) -> list[dict]:
    import csv

    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_outcome_reads_exit_codes_as_the_sweep_records_them(tmp_path):
    assert outcome(0, "", str(tmp_path))["status"] == "done"
    for code in (130, 143, 129, -2, -15):
        assert outcome(code, "", str(tmp_path))["status"] == "interrupted"
    failed = outcome(2, "some notice\nerror: data.lag must be >= 0\n", str(tmp_path))
    assert failed == {"status": "failed", "error": "data.lag must be >= 0", "metrics": {}}
    assert outcome(1, "", str(tmp_path))["error"] == "exit code 1"
