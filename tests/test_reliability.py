"""Nothing lost, nothing mixed: signals, kills, races and late failures, on real processes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_RUN, invoke, sets

from echo_cli.store import rundir

ROOT = Path(__file__).resolve().parent.parent
LONG = ["data.n_unique=8", "data.length=10", "data.window=2", "model.units=4",
        "train.batch_size=3", "eval.sequences=10", "model.stateful=false",
        "train.backend=tensorflow"]


def spawn(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "echo_cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "100"}, **kwargs)


def train_args(out: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", str(ROOT / "configs/lag1.yaml"), *sets([*LONG, f"train.epochs={epochs}",
                                                             *extra]), "--out", str(out)]


def history_rows(run: Path) -> list[dict[str, str]]:
    try:
        with (run / rundir.HISTORY).open() as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def wait_for_rows(run: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(history_rows(run)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.1)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def assert_kept_as_interrupted(run: Path) -> dict:
    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["interrupted"] is True and metrics["heldout_accuracy"] is None
    rows = history_rows(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, metrics["epochs_completed"] + 1))
    assert (run / rundir.MODEL).is_file() and not (run / rundir.LOCK).exists()
    return metrics


# -------------------------------------------------------------------------------- signals

@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "name"),
                         [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP"),
                          (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signal_during_training_keeps_the_run_and_exits_with_its_code(tmp_path, signum,
                                                                         code, name):
    run = tmp_path / "run"
    proc = spawn(train_args(run, 100_000), tmp_path)
    wait_for_rows(run, 3, proc)
    proc.send_signal(signum)
    rc, out, err = finish(proc)
    assert rc == code, err
    metrics = assert_kept_as_interrupted(run)
    assert 3 <= metrics["epochs_completed"] < 100_000
    if signum != signal.SIGHUP:  # after SIGHUP the terminal is gone, so nothing is printed
        assert f"interrupted by {name} after {metrics['epochs_completed']} of 100000" in \
               " ".join(out.split())


@pytest.mark.slow
def test_ctrl_c_at_any_moment_is_honoured(tmp_path):
    """From importing the command line to training: every Ctrl-C ends the run with 130, and a
    run directory, if one was made, is a kept, interrupted run. (The first tenth of a second,
    Python's own start-up, is Python's: a Ctrl-C there kills it at once, as for any program.)
    """
    delays = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.5, 7.0)  # side by side, each its own process
    procs = {d: spawn(train_args(tmp_path / f"run-{d}", 100_000), tmp_path) for d in delays}
    start = time.monotonic()
    for delay, proc in procs.items():
        time.sleep(max(0.0, start + delay - time.monotonic()))
        proc.send_signal(signal.SIGINT)
    for delay, proc in procs.items():
        rc, _, err = finish(proc)
        assert rc == 130, (delay, err)
        if (tmp_path / f"run-{delay}").exists():
            assert_kept_as_interrupted(tmp_path / f"run-{delay}")


@pytest.mark.slow
def test_kill_9_leaves_the_history_written_so_far(tmp_path):
    run = tmp_path / "run"
    proc = spawn(train_args(run, 100_000), tmp_path)
    wait_for_rows(run, 3, proc)
    time.sleep(1.5)  # history is flushed at least every second
    proc.kill()
    proc.communicate()
    rows = history_rows(run)
    assert len(rows) > 3 and [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    assert not (run / rundir.METRICS).exists()
    assert (run / rundir.LOCK).exists() and not rundir.is_live(run)  # the lock died with it


# -------------------------------------------------------------------------------- races

@pytest.mark.slow
def test_two_trainings_with_the_same_out_never_mix(tmp_path):
    """The issue's reproduction: a long run, then a short one with the same --out a second
    later. The second is refused with one line; the directory is the first run's alone."""
    out = tmp_path / "X"
    first = spawn(train_args(out, 600, "seed=1"), tmp_path)
    time.sleep(1)
    second = spawn(train_args(out, 20, "seed=2"), tmp_path)
    rc2, _, err2 = finish(second)
    rc1, _, err1 = finish(first)
    assert rc1 == 0, err1
    assert rc2 == 2 and len(err2.strip().splitlines()) == 1, err2
    assert "--out" in err2 and ("is being written by another run" in err2
                                or "already holds files" in err2)
    metrics = json.loads((out / rundir.METRICS).read_text())
    assert metrics["seed"] == 1 and metrics["epochs"] == 600
    assert "seed: 1" in (out / rundir.CONFIG).read_text()
    assert len(history_rows(out)) == 600


# -------------------------------------------------------------------------------- late failures

def test_a_failed_evaluation_keeps_the_trained_run(tmp_path, monkeypatch):
    import echo_cli.training.evaluate

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 182. TiB")

    monkeypatch.setattr(echo_cli.training.evaluate, "evaluate", out_of_memory)
    run = tmp_path / "r"
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets(TINY_RUN), "--out", run)
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("error: the evaluate step failed (MemoryError: Unable to allocate")
    assert "\n" not in line and "history.csv, model.keras, metrics.json, curves.png" in line
    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["failed_step"] == "evaluate" and metrics["error"].startswith("MemoryError")
    assert metrics["epochs_completed"] == 6 and metrics["heldout_accuracy"] is None
    assert len(history_rows(run)) == 6 and (run / rundir.MODEL).stat().st_size > 0


def test_a_full_disk_while_saving_the_model_keeps_the_rest(tmp_path, monkeypatch):
    import echo_cli.training.backends

    def disk_full(model, path):
        Path(path).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(echo_cli.training.backends, "save_model", disk_full)
    run = tmp_path / "r"
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets(TINY_RUN), "--out", run)
    assert result.exit_code == 1, result.output
    assert (f"the model step failed (no space left on device (the disk holding {run}, writing "
            f"model.keras)") in " ".join(result.stderr.split())
    assert not (run / rundir.MODEL).exists()  # no truncated model.keras is left behind
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []
    metrics = json.loads((run / rundir.METRICS).read_text())
    assert metrics["failed_step"] == "model" and metrics["heldout_accuracy"] is not None


def test_a_loss_that_diverges_stops_with_one_line_and_no_nan_in_json(tmp_path):
    """Exit 1 with the run kept and recorded as failed (not 2: the input was valid, and the
    history says where the loss went)."""
    run = tmp_path / "r"
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets(TINY_RUN), "--set",
                    "train.learning_rate=1e38", "--set", "train.epochs=40", "--out", run)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error: training stopped: the training loss became nan" in lines[0]
    assert "lower train.learning_rate (now 1e+38)" in lines[0]

    def no_constants(name):
        raise AssertionError(f"{name} in metrics.json")

    metrics = json.loads((run / rundir.METRICS).read_text(), parse_constant=no_constants)
    assert metrics["failed_step"] == "train" and metrics["epochs_completed"] < 40
    assert len(history_rows(run)) == metrics["epochs_completed"]


# -------------------------------------------------------------------------------- limits

@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=1000000000000", "train.epochs=1000000000000 needs about"),
        ("data.n_unique=1000000000", "data.n_unique=1000000000 needs about"),
        ("model.units=10000000", "model.units=10000000 needs about"),
        ("data.length=100000000", "needs about"),
        ("model.embedding_dim=100000000", "model.embedding_dim=100000000 needs about"),
        ("eval.sequences=1000000000000", "eval.sequences=1000000000000 needs about"),
    ],
)
def test_what_cannot_fit_is_refused_before_anything_is_created(tmp_path, monkeypatch,
                                                                 override, message):
    monkeypatch.chdir(tmp_path)
    extra = ["model.encoding=embedding"] if "embedding_dim" in override else []
    result = invoke("train", ROOT / "configs/lag1.yaml", "--set", override, *sets(extra))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and message in line and "this machine has" in line
    assert not Path("runs").exists()


def test_out_must_name_a_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in ("", "."):
        result = invoke("train", ROOT / "configs/lag1.yaml", "--out", out)
        assert result.exit_code == 2 and "--out needs the name of a new or empty directory" \
            in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_terminal_escape_in_a_path_is_printed_escaped(tmp_path):
    run = tmp_path / "o\x1b]0;x\x07"
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets(TINY_RUN), "--out", run)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "o\\x1b]0;x\\x07/" in result.output.replace("\n", "")
    rows = invoke("results", run, "--out", tmp_path / "res")
    assert rows.exit_code == 0 and "\x1b" not in (tmp_path / "res/results.md").read_text()
