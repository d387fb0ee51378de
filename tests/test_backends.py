"""The JAX backend: its compiled engine makes the tutorial loop's updates, state included.

Keras picks its backend once per process, so these run in a child process.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed (make setup EXTRAS=dev,jax)")

RUN = """
import json
from echo_cli.config.loading import load_config
from echo_cli.training.loop import train
results = {{}}
for name, (engine, overrides) in {jobs!r}.items():
    cfg = load_config(overrides=overrides)
    _, result = train(cfg, engine=engine)
    results[name] = {{
        "backend": result.backend,
        "loss": [r["loss"] for r in result.history],
        "accuracy": [r["accuracy"] for r in result.history],
        "updates": result.updates,
        "heldout_correct": result.heldout.correct,
    }}
print(json.dumps(results))
"""


def run_child(backend: str, jobs: dict[str, tuple[str, list[str]]]) -> dict:
    """Train every job (name -> (engine, overrides)) in one child process on `backend`."""
    jobs = {name: (engine, [*items, "eval.sequences=40"]) for name, (engine, items) in
            jobs.items()}
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", RUN.format(jobs=jobs)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(r["backend"] == backend for r in got.values())
    return got


CASES = {
    # stateful, value target: state carried between the 4 batches of every sequence
    "stateful": ["data.n_unique=20", "data.window=3", "model.units=16", "train.epochs=30",
                 "train.learning_rate=0.01"],
    # stateful, sequence target with unscored positions, masked padding
    "sequence-mask": ["data.n_unique=12", "data.window=4", "data.target=sequence",
                      "data.missing=mask", "model.units=8", "train.epochs=12",
                      "train.batch_size=4", "data.length=13", "train.learning_rate=0.01"],
    # stateless
    "stateless": ["data.n_unique=10", "data.lag=0", "data.window=1", "model.stateful=false",
                  "model.units=6", "train.epochs=10"],
}


@pytest.fixture(scope="module")
def trained():
    """Every case trained once per backend, each backend in one child process: the JAX
    engine, and on TensorFlow the tutorial's loop (echo) or Keras's own fit (memory tasks)."""
    jax = run_child("jax", {**{c: ("fast", items) for c, items in CASES.items()},
                            **{c: ("fast", items) for c, items in MEMORY_CASES.items()}})
    tensorflow = run_child("tensorflow", {
        **{c: ("tutorial", items) for c, items in CASES.items()},
        **{c: ("fast", items) for c, items in MEMORY_CASES.items()}})
    return jax, tensorflow


@needs_jax
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_jax_engine_makes_the_tensorflow_tutorial_loops_updates(case, trained):
    """Same numpy-drawn initial weights, same batches and resets: the compiled JAX engine
    reproduces the tutorial's one-fit-per-sequence loop on TensorFlow, state included."""
    jax_fast, tf_tutorial = trained[0][case], trained[1][case]
    assert jax_fast["updates"] == tf_tutorial["updates"]
    assert jax_fast["accuracy"] == tf_tutorial["accuracy"]
    gap = max(abs(a - b) for a, b in zip(jax_fast["loss"], tf_tutorial["loss"], strict=True))
    assert gap < 1e-4
    assert jax_fast["heldout_correct"] == tf_tutorial["heldout_correct"]


MEMORY_CASES = {
    # copy memory through the convolutional engine path (one compiled update per batch)
    "copy-tcn": ["data.task=copy", "data.delay=5", "data.recall=3", "model.kind=tcn",
                 "model.units=6", "model.kernel_size=3", "train.epochs=12", "train.batch_size=8"],
    # the adding problem through the scanned recurrent path, with its regression loss
    "adding-gru": ["data.task=adding", "data.length=10", "model.kind=gru", "model.units=6",
                   "train.epochs=12", "train.batch_size=8"],
}


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("case", list(MEMORY_CASES))
def test_memory_tasks_train_the_same_on_both_backends(case, trained):
    """The JAX engine's loss, accuracy figure (recalled symbols, sums within 0.04) and
    clipped updates are Keras's own fit on TensorFlow, update by update."""
    jax_fast, tf_fast = trained[0][case], trained[1][case]
    assert jax_fast["updates"] == tf_fast["updates"] == 12
    assert jax_fast["accuracy"] == tf_fast["accuracy"]
    gap = max(abs(a - b) for a, b in zip(jax_fast["loss"], tf_fast["loss"], strict=True))
    assert gap < 1e-4
    assert jax_fast["heldout_correct"] == tf_fast["heldout_correct"]


@needs_jax
def test_tutorial_engine_refuses_a_stateful_model_on_jax(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", "configs/lag1.yaml", "--engine", "tutorial",
         "--set", "train.backend=jax", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "silently drops the state" in out.stderr
    assert not (tmp_path / "r").exists()


@needs_jax
@pytest.mark.slow
def test_train_cli_on_jax_writes_the_backend(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", "configs/lag1.yaml", "--set", "train.epochs=3",
         "--set", "eval.sequences=5", "--set", "train.backend=jax", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "r/metrics.json").read_text())["backend"] == "jax"
    assert "port.cc" not in out.stderr  # TensorFlow's C++ start-up notices stay quiet


def test_switching_backend_in_a_running_process_is_a_clear_error():
    from echo_cli.training.backends import BackendError, import_keras, resolve_backend

    keras = import_keras()
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    if other == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    with pytest.raises(BackendError, match="already running on"):
        resolve_backend(other)
