"""The tests' environment and fixtures; what the tests share otherwise is in helpers.py."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests were written for TensorFlow, and in one process Keras keeps its first backend, so
# the tests run on it (child processes too); tests of `auto` itself clear it for their child.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# A compile cache of the tests' own, so they neither read nor fill the user's.
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(os.path.dirname(__file__), "..",
                                                     ".pytest_cache", "xdg"))

from helpers import SMALL, TINY_RUN  # noqa: E402

from echo_cli.config.loading import load_config  # noqa: E402


@pytest.fixture
def small_config():
    def make(kind: str, *extra: str):
        return load_config(overrides=[*SMALL[kind], "eval.sequences=200", *extra])

    return make


@pytest.fixture
def tiny_overrides():
    """A run that takes well under a second: for CLI plumbing, not for learning."""
    return list(TINY_RUN)
