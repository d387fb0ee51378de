"""The JAX backend: its compiled engine makes exactly the tutorial loop's updates.

Keras picks its backend once per process, so these run in a child process.
"""

import importlib.util
import json
import subprocess
import sys

import pytest

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed (make setup EXTRAS=dev,jax)")

ENGINES_AGREE = """
import json, numpy as np
from echo_cli.config import load_config
from echo_cli.train import train
cfg = load_config(overrides=[{overrides}])
_, fast = train(cfg, engine="fast")
_, slow = train(cfg, engine="tutorial")
print(json.dumps({{
    "backend": fast.backend,
    "fast_acc": [r["accuracy"] for r in fast.history],
    "slow_acc": [r["accuracy"] for r in slow.history],
    "loss_gap": float(np.abs(np.array([r["loss"] for r in fast.history])
                             - [r["loss"] for r in slow.history]).max()),
    "updates": [fast.updates, slow.updates],
    "heldout": [fast.heldout.correct, slow.heldout.correct],
}}))
"""


def run_child(code: str, backend: str) -> dict:
    env = {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_jax
@pytest.mark.parametrize(
    "overrides",
    [
        # stateful, value target: 12 sequences of 4 batches (chunks of 12 sequences)
        ["data.n_unique=20", "data.window=3", "model.units=16", "train.epochs=12",
         "train.learning_rate=0.01"],
        # stateful, sequence target with unscored positions, masked padding
        ["data.n_unique=12", "data.window=4", "data.target=sequence", "data.missing=mask",
         "model.units=8", "train.epochs=7", "train.batch_size=4", "data.length=13"],
        # stateless
        ["data.n_unique=10", "data.lag=0", "data.window=1", "model.stateful=false",
         "model.units=6", "train.epochs=10"],
    ],
    ids=["stateful", "sequence-mask", "stateless"],
)
def test_jax_compiled_engine_matches_the_tutorial_loop(overrides):
    quoted = ", ".join(repr(o) for o in [*overrides, "eval.sequences=20"])
    got = run_child(ENGINES_AGREE.format(overrides=quoted), "jax")
    assert got["backend"] == "jax"
    assert got["fast_acc"] == got["slow_acc"]
    assert got["loss_gap"] < 1e-4
    assert got["updates"][0] == got["updates"][1]
    assert got["heldout"][0] == got["heldout"][1]


@needs_jax
def test_train_cli_on_jax_writes_the_backend(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", "configs/lag1.yaml", "--set", "train.epochs=3",
         "--set", "eval.sequences=5", "--set", "train.backend=jax", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
        cwd=__import__("pathlib").Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "r/metrics.json").read_text())["backend"] == "jax"
    assert "port.cc" not in out.stderr  # TensorFlow's C++ start-up notices stay quiet


def test_switching_backend_in_a_running_process_is_a_clear_error():
    from echo_cli.models import BackendError, import_keras, resolve_backend

    keras = import_keras()
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    if other == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    with pytest.raises(BackendError, match="already running on"):
        resolve_backend(other)
