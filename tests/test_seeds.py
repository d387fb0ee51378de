"""train.seeds: several seeds of one config trained as one compiled program, each exactly the
run it would be on its own (weights, held-out numbers, history, stop at a target), saved as a
run directory of its own that every command reads, with a summary across them; a sweep's seed
axis uses it where the engine allows, and says so where it cannot."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    CONFIGS,
    METRICS,
    SMALL,
    TINY,
    fake_run,
    invoke,
    one_line_error,
    saved_weights,
    sets,
)

from echo_cli.config.loading import load_config, to_yaml
from echo_cli.stats import t_interval
from echo_cli.store import rundir
from echo_cli.store import seeds as records
from echo_cli.store.metrics import Metrics
from echo_cli.sweeps import sweep
from echo_cli.training import backends

needs_jax = pytest.mark.skipif(not backends.jax_installed(), reason="JAX is not installed")

# (config, overrides, seeds): small runs that train in a second or two each
CASES = {
    # four seeds: two shards of two on a machine of two cores or more (vmapped.py)
    "lag1": ("lag1.yaml", [*SMALL["lag1"], "train.epochs=60", "eval.sequences=50"], 4),
    "copy": ("copy_memory.yaml", ["data.delay=5", "model.units=8", "train.epochs=8",
                                  "eval.sequences=40", "eval.validation_sequences=20"], 2),
    "adding": ("adding.yaml", ["data.length=20", "model.units=8", "train.epochs=8",
                               "eval.sequences=40"], 2),
    # seeds 1-3 reach 0.99 at epochs 140, 170 and 200
    "target": ("lag1.yaml", [*SMALL["lag1"], "train.target_accuracy=0.99",
                             "train.validate_every=10", "eval.sequences=50",
                             "eval.validation_sequences=50"], 3),
}
SWEEP = ["sweep", str(CONFIGS / "lag1.yaml"), "--grid", "data.lag=0,1", "--seeds", "2",
         "--workers", "1", *sets(TINY)]

# every run in one JAX process (Keras keeps its first backend, and the tests' is TensorFlow)
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from echo_cli.cli import app
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        sys.exit(f"{args}: exit {result.exit_code}\\n{result.output}")
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Each case trained together and, seed by seed, on its own; and a sweep, all on JAX."""
    root = tmp_path_factory.mktemp("seeds")
    jobs = []
    for name, (config, overrides, n) in CASES.items():
        base = ["train", str(CONFIGS / config), *sets(overrides), "-q"]
        jobs.append([*base, "--seeds", str(n), "--out", str(root / name / "together")])
        jobs += [[*base, "--set", f"seed={s}", "--out", str(root / name / f"alone-{s}")]
                 for s in range(1, n + 1)]
    jobs.append([*SWEEP, "--out", str(root / "sweep")])
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(jobs)], capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def history(run: Path) -> list[dict[str, float]]:
    return rundir.read_history(run)


# ---------------------------------------------------------------------------------------------
# the seeds trained together are the runs they would be on their own

EXACT = ("heldout_correct", "heldout_targets", "heldout_accuracy", "epochs_completed", "updates",
         "samples", "reached_target", "epochs_to_target", "samples_to_target", "seed",
         "parameters", "interrupted")


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_seed_is_the_run_it_would_be_on_its_own(trained, case):
    _, _, n = CASES[case]
    together = trained / case / "together"
    for seed in range(1, n + 1):
        mine, alone = rundir.seed_dir(together, seed), trained / case / f"alone-{seed}"
        a, b = (json.loads((run / rundir.METRICS).read_text()) for run in (mine, alone))
        for key in EXACT:
            assert a.get(key) == b.get(key), (seed, key)
        for key in ("heldout_loss", "final_train_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (seed, key)
        for x, y in zip(saved_weights(mine), saved_weights(alone), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
        rows = [history(run) for run in (mine, alone)]
        assert [r["epoch"] for r in rows[0]] == [r["epoch"] for r in rows[1]]
        for x, y in zip(*rows, strict=True):
            assert x == pytest.approx(y, rel=1e-5, abs=1e-6)
        # its config.yaml is the run's own: `train RUN/seeds/seed=S/config.yaml` repeats it
        assert (mine / rundir.CONFIG).read_text() == (alone / rundir.CONFIG).read_text()


@needs_jax
@pytest.mark.slow
def test_seeds_stop_on_their_own_at_the_target(trained):
    summary = records.read_summary(trained / "target" / "together")
    runs = summary.runs
    assert all(r.reached_target and r.epochs_completed == r.epochs_to_target for r in runs)
    assert len({r.epochs_to_target for r in runs}) > 1  # each stopped when it got there
    assert summary.spread["epochs_to_target"].mean == pytest.approx(
        sum(r.epochs_to_target for r in runs) / len(runs))
    for r in runs:  # and trained no further: its history ends there
        rows = history(trained / "target" / "together" / r.run_dir)
        assert rows[-1]["epoch"] == r.epochs_to_target
        assert rows[-1]["validation_accuracy"] >= 0.99


# ---------------------------------------------------------------------------------------------
# the run directory: one run per seed, and the summary

@needs_jax
@pytest.mark.slow
def test_the_run_directory_holds_a_run_per_seed_and_the_summary(trained):
    run = trained / "lag1" / "together"
    assert load_config(run / rundir.CONFIG).train.seeds == 4
    seeds = [rundir.seed_dir(run, s) for s in (1, 2, 3, 4)]
    assert rundir.find([run]) == seeds and not rundir.is_unfinished(run)
    for seed_run in seeds:
        assert {rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.METRICS, rundir.CURVES,
                rundir.COMMAND} <= {p.name for p in seed_run.iterdir()}
        metrics = rundir.read(seed_run).metrics
        assert metrics.scored and metrics.seeds_together == 4  # its train_seconds are shared
    summary = records.read_summary(run)
    accuracies = [rundir.read_metrics(s).heldout_accuracy for s in seeds]
    assert [r.heldout_accuracy for r in summary.runs] == accuracies
    mean, low, high = t_interval(accuracies)
    spread = summary.spread["heldout_accuracy"]
    assert (spread.mean, spread.ci95_low, spread.ci95_high) == pytest.approx(
        (mean, max(low, 0.0), min(high, 1.0)))
    with pytest.raises(rundir.RunDirError, match="holds several seeds"):
        rundir.read(run)


@needs_jax
@pytest.mark.slow
def test_every_command_reads_a_seed_and_the_tables_show_the_seeds_and_their_mean(
        trained, tmp_path):
    run = trained / "lag1" / "together"
    seed_run = rundir.seed_dir(run, 2)
    # in a process of its own: the run names its backend, jax, and Keras keeps its first
    predicted = subprocess.run([sys.executable, "-m", "echo_cli", "predict", str(seed_run), "1",
                                "2", "3", "4", "5"], capture_output=True, text=True, timeout=300)
    assert predicted.returncode == 0 and "predictions match" in predicted.stdout, \
        predicted.stderr
    one_line_error(invoke("predict", run, "1", "2", "3"), "holds several seeds",
                   str(rundir.seed_dir(run, 1)))
    done = invoke("results", run, "--out", tmp_path / "results")
    assert done.exit_code == 0, done.output
    names = [r.split(",")[0] for r in
             (tmp_path / "results" / "results.csv").read_text().splitlines()[1:]]
    assert names == ["lag1 (seed=1)", "lag1 (seed=2)", "lag1 (seed=3)", "lag1 (seed=4)",
                     "lag1 (mean of 4 seeds)"]
    compared = invoke("compare", run, trained / "copy" / "together")
    assert compared.exit_code == 0, compared.output
    text = " ".join(compared.output.split())
    assert "6 runs" in text and "runs of several seeds" in text
    table = invoke("memory-table", run, trained / "copy" / "together", "--out", tmp_path / "m")
    assert table.exit_code == 0, table.output
    memory = (tmp_path / "m" / "memory.md").read_text()
    assert "lstm (mean of 4 seeds)" in memory and "tcn (mean of 2 seeds)" in memory


# ---------------------------------------------------------------------------------------------
# sweeps

@needs_jax
@pytest.mark.slow
def test_a_sweeps_seed_axis_trains_each_points_seeds_as_one_program(trained):
    out = trained / "sweep"
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["lag=0,seeds=1-2",
                                                                "lag=1,seeds=1-2"]
    with (out / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["data.lag"], r["seed"], r["status"]) for r in rows] == [
        ("0", "1", "done"), ("0", "2", "done"), ("1", "1", "done"), ("1", "2", "done")]
    for r in rows:
        metrics = rundir.read_metrics(Path(r["run_dir"]))
        assert metrics.seed == int(r["seed"])
        assert float(r["heldout_accuracy"]) == metrics.heldout_accuracy


@pytest.mark.slow
def test_a_sweep_on_tensorflow_says_so_and_runs_the_seeds_one_after_another(tmp_path):
    result = invoke(*SWEEP[:3], "data.lag=0", *SWEEP[4:], "--set",
                    "train.backend=tensorflow", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ("note: the 2 seeds of 1 grid points run one after another: the tensorflow backend "
            "trains one seed at a time") in text
    assert sorted(p.name for p in (tmp_path / "s" / "runs").iterdir()) == ["lag=0,seed=1",
                                                                          "lag=0,seed=2"]


def test_the_grid_groups_a_points_seeds_where_it_may():
    grid = sweep.parse_grid(["data.lag=1,2"])
    points = sweep.expand(grid, seeds=3, base_seed=5, together=lambda values: values[0][1] == 1)
    assert [p.name for p in points] == ["lag=1,seeds=5-7", "lag=2,seed=5", "lag=2,seed=6",
                                        "lag=2,seed=7"]
    assert points[0].overrides() == ["data.lag=1", "seed=5", "train.seeds=3"]
    assert [p.name for p in points[0].each_seed()] == ["lag=1,seed=5", "lag=1,seed=6",
                                                       "lag=1,seed=7"]
    job = sweep.Sweep(Path("unused"), config=CONFIGS / "lag1.yaml", grid=grid, seeds=3,
                      base_seed=5, together=lambda values: False)
    assert job.overrides(job.points[0])[-2:] == ["seed=5", "train.seeds=1"]


@pytest.mark.parametrize("args", [["--grid", "train.seeds=1,2"], ["--set", "train.seeds=2"]])
def test_a_sweeps_seeds_are_its_seeds_option(tmp_path, args):
    result = invoke("sweep", CONFIGS / "lag1.yaml", "--grid", "data.lag=1", *args, "--out",
                    tmp_path / "s")
    one_line_error(result, "--seeds N")
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------------------------
# what cannot run is refused in one line, before anything is written

@pytest.mark.parametrize(("args", "fragments"), [
    (["--set", "train.backend=tensorflow"],
     ["train.seeds: 2 trains the seeds as one compiled JAX program", "train.backend=jax"]),
    (["--engine", "tutorial"], ["--engine tutorial trains one seed at a time"]),
    (["--set", "seed=4294967295"], ["reaches past 2**32 - 1"]),
])
def test_seeds_that_cannot_run_are_refused_in_one_line(tmp_path, args, fragments):
    result = invoke("train", CONFIGS / "lag1.yaml", "--seeds", "2", *args, "--out",
                    tmp_path / "run")
    one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_a_run_of_several_seeds_is_not_resumed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rundir.RunWriter(run).save_config(to_yaml(load_config(overrides=["train.seeds=2"])))
    one_line_error(invoke("train", "--resume", run), "trained 2 seeds in one program",
                   "keeps no checkpoints")


# ---------------------------------------------------------------------------------------------
# the record, without training

def _seed_metrics(seed: int, correct: int) -> Metrics:
    from echo_cli.stats import wilson_interval

    low, high = wilson_interval(correct, 108)
    return Metrics(**{**METRICS, "seed": seed, "heldout_correct": correct,
                      "heldout_accuracy": correct / 108, "ci95_low": low, "ci95_high": high})


def test_the_summary_is_the_mean_and_the_95_percent_interval_of_the_mean(tmp_path):
    group = [(1, _seed_metrics(1, 27)), (2, _seed_metrics(2, 54)), (3, None)]
    summary = records.summarize(group, name="lag1", program={
        "task": "echo", "model_kind": "lstm", "engine": "fast", "backend": "jax",
        "epochs": 6, "interrupted": False, "train_seconds": 1.5})
    assert [r.status for r in summary.runs] == ["done", "done", "failed"]
    spread = summary.spread["heldout_accuracy"]
    half = 12.706 * math.sqrt(((0.25 - 0.375) ** 2 + (0.5 - 0.375) ** 2) / 1) / math.sqrt(2)
    assert spread.n == 2 and spread.mean == pytest.approx(0.375)
    assert (spread.ci95_low, spread.ci95_high) == (0.0, pytest.approx(min(1.0, 0.375 + half)))
    records.write_summary(tmp_path, summary)
    assert records.read_summary(tmp_path) == summary
    (tmp_path / rundir.SEEDS_SUMMARY).write_text("[1]")
    with pytest.raises(rundir.DamagedRunError, match="seeds.json"):
        records.read_summary(tmp_path)


def test_t_interval_matches_students_t():
    assert t_interval([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2.0 - 2.484, 2.0 + 2.484),
                                                         abs=1e-3)
    assert math.isnan(t_interval([1.0])[1])


def test_a_fake_run_of_several_seeds_is_found_seed_by_seed(tmp_path):
    run = tmp_path / "run"
    for seed in (1, 2):
        fake_run(rundir.seed_dir(run, seed), {**METRICS, "seed": seed}, [f"seed={seed}"])
    rundir.RunWriter(run).save_config(to_yaml(load_config(overrides=["train.seeds=2"])))
    assert rundir.is_unfinished(run) and rundir.find([rundir.seed_dir(run, 1)])
    summary = records.summarize([(s, rundir.read_metrics(rundir.seed_dir(run, s)))
                                 for s in (1, 2)], name="lag1", program={
        "task": "echo", "model_kind": "lstm", "engine": "fast", "backend": "jax",
        "epochs": 6, "interrupted": False, "train_seconds": 1.5})
    records.write_summary(run, summary)
    assert not rundir.is_unfinished(run) and rundir.is_seeds(run)
    assert rundir.find([run]) == [rundir.seed_dir(run, 1), rundir.seed_dir(run, 2)]
    assert records.find_seeds([run, tmp_path]) == [run]
    assert records.finished(run)


def test_drawing_a_seeds_weights_into_a_built_model_is_building_it_with_that_seed():
    from echo_cli.models import factory

    cfg = load_config(overrides=["model.units=6", "data.n_unique=8"])
    model = factory.build_model(cfg.signature, cfg.model, seed=1, batch_size=5)
    factory.draw_weights(model, cfg.model, seed=7)
    built = factory.build_model(cfg.signature, cfg.model, seed=7, batch_size=5)
    for x, y in zip(model.get_weights(), built.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_sweeps_failed_seeds_each_keep_their_own_error(tmp_path):
    """results.csv names each failed seed's error, not the first failed seed's for all."""
    from echo_cli.sweeps.grid import Point

    run = tmp_path / "lag=1,seeds=1-3"
    errors = {1: None, 2: "the training loss became nan at epoch 7; lower train.learning_rate",
              3: "history.csv: no space left on device"}
    for seed, error in errors.items():
        failure = {"failed_step": "train", "error": error} if error else {}
        fake_run(rundir.seed_dir(run, seed), {**METRICS, "seed": seed, **failure},
                 [f"seed={seed}"])
    point = Point(values=(("data.lag", 1),), seed=1, seeds=3)
    record = sweep.Record(point=point, run_dir=run, status="failed",
                          error=f"seed 2: {errors[2]} (and 1 more seeds)")
    found = {r.point.seed: (r.status, r.error) for r in sweep.each_run([record])}
    assert found == {1: ("done", ""), 2: ("failed", errors[2]), 3: ("failed", errors[3])}


@needs_jax
@pytest.mark.slow
def test_ctrl_c_keeps_every_seeds_epochs_so_far(tmp_path):
    """A stop while the seeds train (a chunk in flight in the shards' threads): exit 130, and
    every seed's run is kept as an interrupted run with the same whole epochs."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "echo_cli", "train", str(CONFIGS / "lag1.yaml"),
         *sets([*SMALL["lag1"], "train.epochs=100000"]), "--seeds", "4", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"})
    first = rundir.seed_dir(run, 1) / rundir.HISTORY
    deadline = time.monotonic() + 120
    while not first.exists() or len(first.read_text().splitlines()) < 60:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    done = set()
    for seed in (1, 2, 3, 4):
        seed_run = rundir.seed_dir(run, seed)
        metrics = json.loads((seed_run / rundir.METRICS).read_text())
        assert metrics["interrupted"] is True and metrics["heldout_accuracy"] is None
        epochs = [r["epoch"] for r in history(seed_run)]
        assert epochs == list(range(1, metrics["epochs_completed"] + 1))
        assert (seed_run / rundir.MODEL).is_file()
        done.add(metrics["epochs_completed"])
    assert len(done) == 1 and done.pop() >= 59
    summary = json.loads((run / rundir.SEEDS_SUMMARY).read_text())
    assert summary["interrupted"] is True
