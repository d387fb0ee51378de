"""Shared fixtures: quiet TensorFlow and small, fast configs."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests were written for TensorFlow, and in one process Keras keeps its first backend, so
# the tests run on it (child processes too); tests of `auto` itself clear it for their child.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# A compile cache of the tests' own, so they neither read nor fill the user's.
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(os.path.dirname(__file__), "..",
                                                     ".pytest_cache", "xdg"))

from pathlib import Path  # noqa: E402

from echo_cli.store import rundir  # noqa: E402
from echo_cli.config.loading import load_config, to_yaml  # noqa: E402
from echo_cli.store.files import write_json  # noqa: E402

# Small versions of the tutorial's experiments that learn (or fail to) in about a second.
SMALL = {
    "echo_current": ["data.lag=0", "data.window=1", "model.units=15", "model.stateful=false",
                     "train.epochs=150", "data.n_unique=20"],
    "lag1": ["data.n_unique=20", "data.window=3", "model.units=30", "train.epochs=400",
             "train.learning_rate=0.01"],
    "lag_no_context": ["data.n_unique=20", "data.window=1", "train.batch_size=6",
                       "train.epochs=300", "train.learning_rate=0.01"],
}


@pytest.fixture
def small_config():
    def make(kind: str, *extra: str):
        return load_config(overrides=[*SMALL[kind], "eval.sequences=200", *extra])

    return make


@pytest.fixture
def tiny_overrides():
    """A run that takes well under a second: for CLI plumbing, not for learning."""
    return ["data.n_unique=8", "data.length=10", "data.window=2", "model.units=4",
            "train.epochs=6", "train.batch_size=3", "eval.sequences=12"]


# A finished run's metrics.json, as train writes it, for tests that need no training.
METRICS = {
    "name": "lag1", "seed": 1, "data_source": "random", "engine": "fast",
    "backend": "tensorflow", "epochs": 6, "epochs_completed": 6, "interrupted": False,
    "model_kind": "lstm", "parameters": 248, "multiply_adds_per_sample": 416, "updates": 18,
    "samples": 54, "train_seconds": 1.2, "peak_rss_mb": 880.0, "chance_accuracy": 0.125,
    "final_train_loss": 2.1, "final_train_accuracy": 0.2, "heldout_accuracy": 0.25,
    "heldout_correct": 27, "heldout_targets": 108, "heldout_sequences": 12, "ci95_low": 0.18,
    "ci95_high": 0.34,
}


def fake_run(path: Path, metrics: dict | None = None, overrides: list[str] = ()) -> Path:
    """A run directory as train leaves it, without training: config.yaml and metrics.json."""
    path.mkdir(parents=True)
    writer = rundir.RunWriter(path)
    writer.save_config(to_yaml(load_config(overrides=list(overrides))))
    write_json(path / rundir.METRICS, metrics or METRICS)  # as given, even if damaged
    return path


# A stateless sweep point that trains in well under a second: for plumbing, not learning.
TINY = ["data.n_unique=8", "data.length=10", "data.window=2", "model.units=4",
        "train.epochs=4", "train.batch_size=3", "eval.sequences=10", "model.stateful=false"]


def sets(items: list[str]) -> list[str]:
    """--set arguments for a list of KEY=VALUE items."""
    return [arg for item in items for arg in ("--set", item)]
