"""Shared fixtures: quiet TensorFlow and small, fast configs."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from echo_cli.config import load_config  # noqa: E402

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
