"""Checkpoints and resume: a run killed part way and resumed ends with the same weights and
held-out numbers as one never stopped; a checkpoint that does not match is refused in one line;
a sweep resumes a killed run from its checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, TINY_RUN, invoke, one_line_error, sets

import echo_cli.notebook as ec
from echo_cli.store import rundir

# a lag-1 echo that learns in a few hundred epochs; chunks of 50 epochs, a checkpoint at each
LEARNS = ["data.n_unique=20", "data.window=3", "model.units=30", "train.epochs=400",
          "train.learning_rate=0.01", "train.checkpoint_every=50", "eval.sequences=50"]


def child_env(backend: str) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)  # train.backend decides
    return env


def train_cli(backend: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "echo_cli", "train", *args, "-q"], env=child_env(backend),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(run: Path) -> int:
    try:
        return len((run / rundir.HISTORY).read_text().splitlines()) - 1
    except OSError:
        return 0


def weights(run: Path) -> list[np.ndarray]:
    """The saved model's weights, read from model.keras without building a model."""
    import zipfile

    import h5py

    with zipfile.ZipFile(run / rundir.MODEL) as z, z.open("model.weights.h5") as f:
        h5 = h5py.File(f, "r")
        found: list[np.ndarray] = []
        h5.visititems(lambda name, obj: found.append(np.asarray(obj))
                      if isinstance(obj, h5py.Dataset) else None)
        return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_a_killed_run_resumed_equals_one_never_stopped(tmp_path, backend):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    overrides = sets([*LEARNS, f"train.backend={backend}"])
    child = train_cli(backend, str(CONFIGS / "lag1.yaml"), *overrides, "--out", str(killed))
    deadline = time.monotonic() + 300
    while not ((killed / rundir.CHECKPOINT).is_file() and rows(killed) >= 120):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # no chance to save anything more
    child.wait()
    assert not (killed / rundir.METRICS).exists()
    resumed = subprocess.run([sys.executable, "-m", "echo_cli", "train", "--resume",
                              str(killed), "-q"], env=child_env(backend), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "held-out accuracy" in resumed.stdout
    assert "resumed at epoch" in (killed / rundir.COMMAND).read_text()
    done = train_cli(backend, str(CONFIGS / "lag1.yaml"), *overrides, "--out", str(whole))
    assert done.wait(timeout=600) == 0, done.communicate()

    a, b = (json.loads((run / rundir.METRICS).read_text()) for run in (killed, whole))
    for key in ("heldout_accuracy", "heldout_correct", "epochs_completed", "updates"):
        assert a[key] == b[key], key
    for key in ("heldout_loss", "final_train_loss"):
        assert a[key] == pytest.approx(b[key], rel=1e-5), key
    for x, y in zip(weights(killed), weights(whole), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    history = [(run / rundir.HISTORY).read_text().splitlines() for run in (killed, whole)]
    assert [r.split(",")[0] for r in history[0]] == [r.split(",")[0] for r in history[1]]
    assert not (killed / rundir.CHECKPOINT).exists()  # finished: model.keras holds it


# ---------------------------------------------------------------------------------------------
# a run stopped with a checkpoint, made in-process in a second

# chunks of two epochs (validation every 2), a checkpoint at each
STOPPABLE = [*TINY_RUN, "train.epochs=8", "train.target_accuracy=0.999",
             "train.validate_every=2", "train.checkpoint_every=2"]


@pytest.fixture
def stopped(tmp_path, monkeypatch):
    """A run interrupted after epoch 4, as Jupyter's stop button would, with its checkpoint."""
    def stop_at_epoch_4(self, epoch, row):
        if epoch == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(ec._Bar, "update", stop_at_epoch_4)
    cfg = ec.load(CONFIGS / "lag1.yaml", [*STOPPABLE, "train.backend=tensorflow"])
    with pytest.raises(KeyboardInterrupt):
        ec.train(cfg, out=tmp_path / "run", progress=False)
    monkeypatch.undo()
    return tmp_path / "run"


def test_an_interrupted_run_keeps_a_checkpoint_and_resumes_to_the_end(stopped):
    assert (stopped / rundir.CHECKPOINT).is_file()
    result = invoke("train", "--resume", stopped)
    assert result.exit_code == 0, result.output
    assert f"resuming {stopped} at epoch 4 of 8" in " ".join(result.output.split())
    metrics = json.loads((stopped / rundir.METRICS).read_text())
    assert metrics["epochs_completed"] == 8 and not metrics["interrupted"]
    assert [int(r.split(",")[0]) for r in
            (stopped / rundir.HISTORY).read_text().splitlines()[1:]] == list(range(1, 9))
    assert not (stopped / rundir.CHECKPOINT).exists()
    again = invoke("train", "--resume", stopped)
    one_line_error(again, "finished; there is nothing to resume")


def test_the_same_command_with_resume_continues_it(stopped):
    result = invoke("train", CONFIGS / "lag1.yaml", *sets([*STOPPABLE, "train.backend=tensorflow"]),
                    "--out", stopped, "--resume", stopped)
    assert result.exit_code == 0, result.output
    assert json.loads((stopped / rundir.METRICS).read_text())["epochs_completed"] == 8


@pytest.mark.parametrize(("args", "fragment"), [
    (["--set", "train.epochs=9"], "was trained with another config (it differs in "
                                  "train.epochs); resume with the config it was trained with"),
    (["--out", "elsewhere"], "continues that directory; leave out --out"),
])
def test_resume_refuses_another_config_or_directory(stopped, args, fragment):
    before = {p.name: p.read_bytes() for p in stopped.iterdir() if p.is_file()}
    one_line_error(invoke("train", "--resume", stopped, *args), fragment)
    assert {p.name: p.read_bytes() for p in stopped.iterdir() if p.is_file()} == before


def test_a_checkpoint_of_another_version_is_refused(stopped):
    data = dict(np.load(stopped / rundir.CHECKPOINT))
    meta = json.loads(str(data["meta"]))
    meta["version"] = "0.0.1"
    data["meta"] = np.array(json.dumps(meta))
    np.savez(stopped / rundir.CHECKPOINT, **data)
    one_line_error(invoke("train", "--resume", stopped),
                   "was written by echo-cli 0.0.1", "resume it with that version, or train")


def test_a_checkpoint_of_another_config_is_refused(stopped):
    data = dict(np.load(stopped / rundir.CHECKPOINT))
    meta = json.loads(str(data["meta"]))
    meta["config_sha256"] = "0" * 64
    data["meta"] = np.array(json.dumps(meta))
    np.savez(stopped / rundir.CHECKPOINT, **data)
    one_line_error(invoke("train", "--resume", stopped), "was made with another config")


def test_resume_needs_a_run_with_a_checkpoint(stopped, tmp_path):
    (stopped / rundir.CHECKPOINT).unlink()
    one_line_error(invoke("train", "--resume", stopped), "has no checkpoint.npz to resume from")
    (tmp_path / "empty").mkdir()
    one_line_error(invoke("train", "--resume", tmp_path / "empty"), "is not a run directory")


def test_checkpoint_every_zero_saves_none(tmp_path, monkeypatch):
    def stop_at_epoch_4(self, epoch, row):
        if epoch == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(ec._Bar, "update", stop_at_epoch_4)
    cfg = ec.load(CONFIGS / "lag1.yaml", [*STOPPABLE, "train.checkpoint_every=0"])
    with pytest.raises(KeyboardInterrupt):
        ec.train(cfg, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / rundir.CHECKPOINT).exists()


# ---------------------------------------------------------------------------------------------
# sweeps

@pytest.mark.slow
def test_a_sweep_resumes_a_killed_run_from_its_checkpoint(tmp_path):
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "echo_cli", "sweep", str(CONFIGS / "lag1.yaml"),
            "--grid", "model.units=30", "--workers", "1", "--out", str(out),
            *sets([*(o for o in LEARNS if not o.startswith(("model.units", "train.epochs"))),
                   "train.backend=tensorflow", "train.epochs=1000"])]
    first = subprocess.Popen(args, env=child_env("tensorflow"), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = out / "runs" / "units=30,seed=1"
    deadline = time.monotonic() + 300
    while not ((run / rundir.CHECKPOINT).is_file() and rows(run) >= 200):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep and its worker, at once
    first.wait()
    time.sleep(0.5)
    saved_at = json.loads(str(np.load(run / rundir.CHECKPOINT)["meta"]))["epoch"]
    again = subprocess.run(args, env=child_env("tensorflow"), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resumed at epoch {saved_at}" in (run / rundir.COMMAND).read_text()
    assert not list((out / "runs").glob(f"*{rundir.FAILED_MARK}*"))  # not moved aside
    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["epochs_completed"] == 1000
