"""A hostile user's cases: closed and broken output, contracts that must agree, messages that
name the real problem, signals outside train, and memory the estimate must see."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import CONFIGS, ROOT, TINY_RUN, invoke, one_line_error, sets

from echo_cli.config import limits
from echo_cli.config.loading import load_config
from echo_cli.store import rundir

STREAM = ["data.n_unique=6", "data.length=8", "model.units=6", "train.epochs=4",
          "train.batch_size=3", "eval.sequences=6", "train.backend=tensorflow"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny echo run and a tiny streaming run, trained once for the module."""
    root = tmp_path_factory.mktemp("hostile")
    made = {}
    for name, config, items in (("lag", "lag1.yaml", TINY_RUN), ("stream", "stream.yaml",
                                                                 STREAM)):
        result = invoke("train", CONFIGS / config, *sets(items), "--out", root / name)
        assert result.exit_code == 0, result.output
        made[name] = root / name
    return made


def shell(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "100"})


# -------------------------------------------------------------------------- closed output

@pytest.mark.slow
def test_a_closed_or_broken_stdout_ends_every_command_quietly(runs, tmp_path):
    """`>&-` (stdout closed), `2>&- >&-` (both), and `| head -1` (the reader leaves): no
    traceback, and the exit code is the work's own (0: done)."""
    exe = f"{sys.executable} -m echo_cli"
    lag = runs["lag"]
    commands = {
        "check-data": "check-data",
        "config show": f"config show {CONFIGS / 'lag1.yaml'}",
        "config keys": "config keys",
        "predict": f"predict {lag} 1 2 3 4 5 6",
        "predict --json": f"predict {lag} 1 2 3 4 5 6 --json",
        "results": f"results {lag} --out res-$RANDOM",
        "compare": f"compare {lag} {lag}",
        "stream": f"stream {runs['stream']} --heldout 3",
        "train": f"train {CONFIGS / 'lag1.yaml'} {' '.join(sets(TINY_RUN))} --out t-$RANDOM",
    }
    for name, args in commands.items():
        for how in (f"{exe} {args} >&-", f"{exe} {args} 2>&- >&-",
                    f"set -o pipefail; {exe} {args} | head -1 > /dev/null"):
            done = shell(how, tmp_path)
            assert done.returncode == 0, (name, how, done.returncode, done.stderr[-500:])
            assert "Traceback" not in done.stderr, (name, how, done.stderr[-500:])


# -------------------------------------------------------------------------- one set of rules

def test_config_show_refuses_what_train_would_refuse_for_memory(tmp_path):
    for key in ("train.epochs=1000000000000", "data.n_unique=1000000000",
                "model.units=10000000"):
        shown = invoke("config", "show", CONFIGS / "lag1.yaml", "--set", key,
                       "--set", "model.encoding=embedding" if "n_unique" in key else "seed=1")
        trained = invoke("train", CONFIGS / "lag1.yaml", "--set", key, "--set",
                         "model.encoding=embedding" if "n_unique" in key else "seed=1",
                         "--out", tmp_path / "never")
        assert one_line_error(shown) == one_line_error(trained), key
        assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_an_unreachable_ray_is_refused_before_the_sweep_directory_exists(tmp_path):
    pytest.importorskip("ray")
    result = invoke("sweep", CONFIGS / "lag1.yaml", "--grid", "model.units=3,4", "--executor",
                    "ray", "--address", "ray://127.0.0.1:9", "--out", tmp_path / "sw")
    one_line_error(result, "cannot start or reach Ray at ray://127.0.0.1:9")
    assert not (tmp_path / "sw").exists()


def test_a_sweep_whose_disk_fills_while_it_starts_leaves_nothing_and_retries(tmp_path,
                                                                           monkeypatch):
    real = os.pwrite

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    args = ["sweep", CONFIGS / "lag1.yaml", "--grid", "model.units=3", "--workers", "1",
            *sets(["train.epochs=2", "eval.sequences=4", "data.n_unique=6", "data.length=8",
                   "data.window=2", "train.batch_size=3"]), "--out", tmp_path / "sw"]
    one_line_error(invoke(*args), "no space left on device")
    assert not (tmp_path / "sw").exists()  # nothing left that would block the retry
    monkeypatch.setattr(os, "pwrite", real)


def test_results_names_and_skips_unfinished_runs_and_tabulates_the_rest(runs, tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / rundir.CONFIG).write_text((runs["lag"] / rundir.CONFIG).read_text())
    result = invoke("results", runs["lag"], half, "--out", tmp_path / "res")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"skipped {half} did not finish (no metrics.json)" in text
    assert "train CONFIG --out" not in text  # no advice that would be refused
    assert (tmp_path / "res" / "results.md").read_text().count("| lag1 |") == 1


def test_an_edited_config_is_caught_even_without_metrics(runs, tmp_path):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(runs["lag"], run)
    (run / rundir.METRICS).unlink()
    (run / rundir.CONFIG).write_text((run / rundir.CONFIG).read_text().replace("lag: 1",
                                                                               "lag: 2"))
    one_line_error(invoke("predict", run, "1", "2", "3", "4"), "config.yaml was changed after "
                                                               "training")


# -------------------------------------------------------------------------- messages

def test_messages_name_the_real_problem(runs, tmp_path):
    one_line_error(invoke("predict", runs["lag"], "1", "12345678901234567890"),
                   "integer too large (max 7")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    one_line_error(invoke("train", tmp_path / "a"), "is a symlink loop")
    one_line_error(invoke("check-data", *sets(["data.source=csv", f"data.path={tmp_path}",
                                               "data.column=x"])), "is a directory")
    one_line_error(invoke("check-data", *sets(["data.source=csv", "data.path=/dev/zero",
                                               "data.column=x"])),
                   "is not a regular file (a device)")


def test_an_unsafe_model_is_refused_by_name(runs, tmp_path):
    """A model.keras holding a Lambda layer (code) is refused in safe mode, and says so."""
    import shutil

    run = tmp_path / "r"
    shutil.copytree(runs["lag"], run)
    code = (f"import keras\nm = keras.Sequential([keras.Input((2,)), "
            f"keras.layers.Lambda(lambda v: v * 2)])\nm.save({str(run / 'model.keras')!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    one_line_error(invoke("predict", run, "1", "2", "3", "4"),
                   "refused by Keras safe mode: the model holds a Lambda layer or custom code")


# -------------------------------------------------------------------------- signals

@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stream_ends_with_the_signals_code_and_keeps_its_answers(runs, signum, code):
    proc = subprocess.Popen([sys.executable, "-m", "echo_cli", "stream", str(runs["stream"])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for value in (1, 2, 3):
        proc.stdin.write(f"{value}\n")
        proc.stdin.flush()
    answers = [proc.stdout.readline() for _ in range(3)]  # it answered: it is reading stdin
    assert all(a.strip() for a in answers)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err


def test_a_stream_line_longer_than_the_limit_is_one_line(runs, tmp_path):
    from echo_cli.cli import use

    path = tmp_path / "long.txt"
    path.write_text("1\n" + "7" * (use.MAX_LINE + 5) + "\n")
    done = shell(f"{sys.executable} -m echo_cli stream {runs['stream']} < {path}", tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: a line of stdin is longer")
    assert done.stdout.splitlines() == ["-"]  # the answer before it was given


# -------------------------------------------------------------------------- memory

def test_a_csv_counts_in_the_memory_estimate(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x\n" + "1\n" * 5000)
    cfg = load_config(CONFIGS / "csv_colours.yaml", overrides=[f"data.path={path}",
                                                               "data.column=x"])
    reading = next(n for n in limits.needs(cfg) if n.key == "data.path")
    assert reading.bytes == path.stat().st_size * 8


def test_a_sweep_runs_only_as_many_workers_as_fit(monkeypatch):
    cfg = load_config(CONFIGS / "lag1.yaml")
    per_run = sum(n.bytes for n in limits.needs(cfg)) + limits.RUNTIME_BYTES
    monkeypatch.setattr(limits, "machine_memory", lambda: per_run * 3 + 1)
    assert limits.workers_that_fit([cfg], 2) == (2, None)
    workers, note = limits.workers_that_fit([cfg], 8)
    assert workers == 3 and "--workers 8 would hold about" in note and "3 at a time" in note


def test_metrics_json_that_disagrees_with_itself_is_refused(runs, tmp_path):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(runs["lag"], run)
    record = json.loads((run / rundir.METRICS).read_text())
    record["heldout_accuracy"] = 0.99  # beside its own counts
    (run / rundir.METRICS).write_text(json.dumps(record))
    digest = rundir.digest((run / rundir.CONFIG).read_text())
    assert record["config_sha256"] == digest
    result = invoke("results", run, "--out", tmp_path / "res")
    one_line_error(result, "is not heldout_correct / heldout_targets")


def test_two_quick_ctrl_c_stop_a_training_at_once(tmp_path):
    """However close together, the second Ctrl-C ends the process at once (exit 130)."""
    proc = subprocess.Popen([sys.executable, "-m", "echo_cli", "train",
                             str(CONFIGS / "lag1.yaml"), *sets(["train.epochs=1000000",
                                                                "train.backend=tensorflow",
                                                                "eval.sequences=4"]),
                             "--out", str(tmp_path / "r")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "r" / rundir.HISTORY).exists() or \
            (tmp_path / "r" / rundir.HISTORY).stat().st_size < 200:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT)
    assert time.monotonic() - began < 30  # not the whole finishing: the run stopped at once
