"""A sweep worker keeps a model and its compiled steps for the runs of the same shapes
(training/warm.py): a run that takes them is the run a fresh process would train, number for
number, whatever ran before it in the worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, SMALL, saved_weights

from echo_cli.config.loading import load_config
from echo_cli.store import rundir
from echo_cli.training import backends, warm

needs_jax = pytest.mark.skipif(not backends.jax_installed(), reason="JAX is not installed")

LAG1 = [*SMALL["lag1"], "train.epochs=80", "eval.sequences=40"]
# (name, config, overrides): in this order in one worker; the later runs of each config take
# the model of the first, with another seed, learning rate, epochs (another chunk shape), or
# a validation target
JOBS = [
    ("lag1-a", "lag1.yaml", [*LAG1, "seed=5", "train.learning_rate=0.02"]),
    ("adding-a", "adding.yaml", ["data.length=20", "model.units=8", "train.epochs=6",
                                 "eval.sequences=30"]),
    ("lag1-b", "lag1.yaml", [*LAG1, "seed=2", "train.learning_rate=0.005"]),
    ("lag1-c", "lag1.yaml", [*LAG1, "seed=3", "train.epochs=50"]),
    ("lag1-d", "lag1.yaml", [*LAG1, "seed=4", "train.target_accuracy=0.5",
                             "train.validate_every=10", "eval.validation_sequences=20"]),
    ("adding-b", "adding.yaml", ["data.length=20", "model.units=8", "train.epochs=9",
                                 "eval.sequences=30", "seed=7", "train.learning_rate=0.003"]),
]
REUSED = {"lag1-b", "lag1-c", "lag1-d", "adding-b"}

# the jobs in one worker process; then the runs that took a kept model, each trained by
# `echo-cli train` in a process that keeps nothing (train never does)
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from echo_cli.cli import app
from echo_cli.sweeps.worker import run_job
from echo_cli.training import warm
mode, jobs, root = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
seen = []
for name, config, overrides in jobs:
    before = warm.reused
    if mode == "worker":
        answer = run_job(config, overrides, f"{root}/{name}")
        if answer["status"] != "done":
            sys.exit(f"{name}: {answer}")
    else:
        sets = [a for o in overrides for a in ("--set", o)]
        done = CliRunner().invoke(app, ["train", config, *sets, "--out", f"{root}/{name}", "-q"])
        if done.exit_code != 0:
            sys.exit(f"{name}: exit {done.exit_code}\\n{done.output}")
    seen.append([name, warm.reused > before])
print(json.dumps(seen))
"""


def _run(mode: str, jobs: list, root: Path) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, json.dumps(jobs), str(root)],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def worked(tmp_path_factory) -> tuple[Path, dict[str, bool], dict[str, bool]]:
    """The jobs one after another in one worker process, and the reused ones trained fresh,
    all on JAX."""
    root = tmp_path_factory.mktemp("warm")
    jobs = [(name, str(CONFIGS / config), overrides) for name, config, overrides in JOBS]
    seen = _run("worker", jobs, root / "worker")
    fresh = _run("fresh", [j for j in jobs if j[0] in REUSED], root / "fresh")
    return root, seen, fresh


@needs_jax
@pytest.mark.slow
def test_runs_of_the_same_shapes_take_the_kept_model_and_train_keeps_none(worked):
    _, seen, fresh = worked
    assert {name for name, took in seen.items() if took} == REUSED
    assert set(fresh) == REUSED and not any(fresh.values())


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REUSED))
def test_a_run_on_a_kept_model_is_the_run_a_fresh_process_trains(worked, name):
    root = worked[0]
    kept, alone = root / "worker" / name, root / "fresh" / name
    a, b = (json.loads((run / rundir.METRICS).read_text()) for run in (kept, alone))
    for key in ("heldout_accuracy", "heldout_correct", "heldout_loss", "final_train_loss",
                "epochs_completed", "reached_target", "epochs_to_target", "parameters"):
        assert a.get(key) == b.get(key), key
    for x, y in zip(saved_weights(kept), saved_weights(alone), strict=True):
        np.testing.assert_array_equal(x, y)
    assert rundir.read_history(kept) == rundir.read_history(alone)


def test_the_key_ignores_what_only_changes_values_and_not_what_changes_shapes():
    cfg = load_config(CONFIGS / "lag1.yaml")
    same = load_config(CONFIGS / "lag1.yaml", overrides=[
        "seed=9", "train.learning_rate=0.1", "train.epochs=7", "eval.sequences=3", "name=other",
        "train.target_accuracy=0.9"])
    assert warm.key(cfg) == warm.key(same)
    for change in ("model.units=51", "train.batch_size=4", "data.window=4",
                   "train.clipnorm=1.0", "model.stateful=false"):
        assert warm.key(load_config(CONFIGS / "lag1.yaml", overrides=[change])) != warm.key(cfg)


@needs_jax
def test_a_worker_keeps_at_most_keep_models_and_frees_the_rest():
    """A model dropped from the kept ones goes with its compiled steps: nothing else holds it."""
    script = """
import gc, weakref
from echo_cli.training import backends, engines, loop, warm
from echo_cli.config.loading import load_config
backends.import_keras("jax")
warm.enable()
refs = []
for units in range(2, 2 + 2 * warm.KEEP):
    cfg = load_config(sys.argv[1], overrides=[f"model.units={units}"])
    model, _ = warm.model(cfg, loop.build)
    engines.compile_for(model, cfg)
    warm.engine(model, lambda model=model: type("Engine", (), {"model": model})())
    warm.predictor(model, (1,), lambda model=model: type("Predictor", (), {"model": model})())
    refs.append(weakref.ref(model))
    del model
gc.collect()
print(len(warm._kept), warm.KEEP, sum(r() is not None for r in refs))
"""
    done = subprocess.run([sys.executable, "-c", "import sys\n" + script,
                           str(CONFIGS / "lag1.yaml")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-2000:]
    kept, keep, alive = map(int, done.stdout.split()[-3:])
    assert kept == keep == alive
