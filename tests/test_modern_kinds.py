"""The lru, s6 and esn kinds: their scans equal a numpy loop, parallel equals sequential, what
inspect recomputes equals Keras, the seed fixes the weights, saved models load in safe mode,
the reservoir stays fixed, and the LRU learns copy memory through the CLI.

The tests run on TensorFlow; the JAX checks run in one child process (Keras keeps its first
backend), which also loads the models saved here on TensorFlow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, invoke, sets

from echo_cli import models
from echo_cli.config.loading import load_config
from echo_cli.config.schema import ConfigError
from echo_cli.models import esn, lru, s6
from echo_cli.models.cells import Cell, Trace
from echo_cli.models.scans import layers_of
from echo_cli.training.loop import build

HERE = Path(__file__).resolve().parent
KINDS = ("lru", "s6", "esn")
LINEAR = ("lru", "s6")
LAYER = {"lru": "LRUBlock", "s6": "S6Block", "esn": "Reservoir"}
# Small copy memory; lru and s6 with two blocks, so that a block reads another's output.
SMALL = ["data.task=copy", "data.delay=6", "data.recall=3", "model.units=8"]
OWN = {"lru": ["model.state_size=6"], "s6": ["model.state_size=5"],
       "esn": ["model.connectivity=0.3", "model.spectral_radius=0.95", "model.leak=0.7"]}


def config(kind: str, *extra: str):
    return load_config(overrides=[*SMALL, f"model.kind={kind}", *OWN[kind], *extra])


def relative(got, want) -> float:
    """The largest difference, relative to the largest value."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def summary(kind: str, states) -> np.ndarray:
    """A block's Keras states as inspect's Trace shows them (models/cells.py)."""
    if kind == "lru":
        return np.concatenate([np.asarray(part) for part in states], axis=-1)
    states = np.asarray(states)
    return states.sum(-1) if kind == "s6" else states


def scan_errors(kind: str, scan: str = "sequential") -> dict[str, float]:
    """Keras's scan against the numpy loop inspect uses, on fresh copy-memory sequences: the
    features that feed the output layer, each block's states, and inspect's trace."""
    import keras

    from echo_cli.models.base import model_ids

    cfg = config(kind, *([f"model.scan={scan}"] if kind in LINEAR else []))
    model = build(cfg)
    seqs = cfg.task.sequences(cfg, "heldout", 6)
    xs, mask = Cell.inputs(model, seqs, masked=False)
    found = {"lru": lru, "s6": s6, "esn": esn}[kind].recompute(model, xs)
    blocks = layers_of(model, LAYER[kind])
    ins = keras.Model(model.input, [block.input for block in blocks]).predict(
        model_ids(seqs), verbose=0)
    ins = ins if isinstance(ins, list) else [ins]
    keras_states = [block.states(keras.ops.convert_to_tensor(x))
                    for block, x in zip(blocks, ins, strict=True)]
    features = keras.Model(model.input, blocks[-1].output).predict(model_ids(seqs), verbose=0)
    trace: Trace = Cell.of(model).run(xs, mask=mask)
    shown = np.concatenate([summary(kind, st) for st in keras_states], axis=-1)
    errors = {"features": relative(features, found.outputs[-1]), "trace": relative(trace.h, shown)}
    if kind == "s6":  # the whole state, not only its sum
        errors["states"] = max(relative(np.asarray(st), full) for st, full in
                               zip(keras_states, s6.full_states(model, xs), strict=True))
    return errors


@pytest.mark.parametrize("kind", KINDS)
def test_the_scan_and_what_inspect_draws_equal_a_numpy_loop(kind):
    errors = scan_errors(kind)
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("kind", LINEAR)
def test_the_parallel_scan_equals_the_sequential_one(kind):
    from echo_cli.models.base import model_ids

    seq, par = build(config(kind)), build(config(kind, "model.scan=parallel"))
    ids = model_ids(config(kind).task.sequences(config(kind), "heldout", 6))
    assert relative(par.predict(ids, verbose=0), seq.predict(ids, verbose=0)) < 1e-5
    assert scan_errors(kind, "parallel")["features"] < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_the_seed_fixes_every_weight(kind):
    first, again, other = (build(config(kind, f"seed={seed}")) for seed in (3, 3, 4))
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    own = {v.path.split("/")[-1] for v in first.variables} & set(models.get(kind).variables)
    assert own, "the kind's own weights are drawn from the seed"
    differ = [not np.array_equal(a.numpy(), b.numpy()) for a, b in
              zip(first.variables, other.variables, strict=True)
              if a.path.split("/")[-1] in own]
    assert all(differ)


def test_the_lru_starts_on_its_ring():
    cfg = config("lru", "model.r_min=0.5", "model.r_max=0.8", "model.max_phase=1.0",
                 "model.state_size=200")
    nu_log, theta_log, gamma_log = layers_of(build(cfg), "LRUBlock")[0].ring.numpy()
    radius, phase = np.exp(-np.exp(nu_log)), np.exp(theta_log)
    assert (radius >= 0.5 - 1e-6).all() and (radius <= 0.8 + 1e-6).all()
    assert (phase >= 0).all() and (phase <= 1.0 + 1e-6).all()
    np.testing.assert_allclose(np.exp(gamma_log), np.sqrt(1 - radius**2), rtol=1e-5)


def test_the_reservoir_is_fixed_and_has_the_spectral_radius_asked_for():
    model = build(config("esn"))
    reservoir = model.get_layer("esn")
    assert not reservoir.trainable_weights
    assert {w.path.split("/")[-1] for w in reservoir.non_trainable_weights} == {
        "input_kernel", "reservoir_kernel", "reservoir_bias"}
    assert [w.path for w in model.trainable_weights] == ["echo/kernel", "echo/bias"]
    w = reservoir.reservoir_kernel.numpy().astype(np.float64)
    assert abs(np.abs(np.linalg.eigvals(w)).max() - 0.95) < 1e-5
    assert 0.1 < np.mean(w != 0) < 0.5  # connectivity 0.3


def test_an_esn_refuses_the_parallel_scan_and_says_why():
    """tanh makes the reservoir's recurrence non-linear, so no associative scan can run it."""
    with pytest.raises(ConfigError) as err:
        config("esn", "model.scan=parallel")
    assert ("model.scan: parallel needs a recurrence linear in its state (lru or s6)"
            in str(err.value))
    assert "leave model.scan at sequential" in str(err.value)


def test_inspect_refuses_state_carried_in():
    model = build(config("esn"))
    xs = np.zeros((2, 12, 10))
    with pytest.raises(ValueError, match="starts every sequence from zeros"):
        Cell.of(model).run(xs, h0=np.zeros((2, 8)))


JAX_CHILD = """
import json, sys
import numpy as np
import keras
sys.path.insert(0, {here!r})
from test_modern_kinds import KINDS, LINEAR, relative, scan_errors
from echo_cli import models
models.register_layers()  # what loading a run needs before load_model (safe mode)
saved = json.loads(sys.argv[1])
out = {{"backend": keras.backend.backend()}}
for kind in KINDS:
    out[kind] = max(scan_errors(kind).values())
for kind in LINEAR:
    out[kind + "/parallel"] = max(scan_errors(kind, "parallel").values())
for kind, (path, ids, want) in saved.items():
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    out[kind + "/loaded"] = relative(model.predict(np.array(ids), verbose=0), np.array(want))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_on_jax_and_across_a_save_in_safe_mode(tmp_path):
    """Saved here on TensorFlow, loaded in safe mode here and in a JAX child, which also runs
    the scan checks on JAX."""
    import keras

    from echo_cli.models.base import model_ids

    saved = {}
    for kind in KINDS:
        cfg = config(kind)
        model = build(cfg)
        ids = model_ids(cfg.task.sequences(cfg, "heldout", 4))
        want = model.predict(ids, verbose=0)
        path = tmp_path / f"{kind}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
        assert relative(loaded.predict(ids, verbose=0), want) < 1e-6
        assert type(loaded.get_layer(models.get(kind).body)).__name__ == LAYER[kind]
        saved[kind] = (str(path), ids.tolist(), want.tolist())
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", JAX_CHILD.format(here=str(HERE)),
                          json.dumps(saved)], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got.pop("backend") == "jax"
    assert all(error < 1e-5 for error in got.values()), got


@pytest.mark.parametrize("kind", ["s6", "esn"])
def test_train_on_copy_memory_through_the_cli(kind, tmp_path):
    result = invoke("train", CONFIGS / "copy_memory.yaml", *sets(
        [f"model.kind={kind}", "model.units=4", "model.state_size=4", "data.delay=3",
         "data.recall=2", "train.epochs=3", "eval.sequences=8", "train.target_accuracy=null"]),
                    "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run").is_dir()


def test_the_lru_learns_copy_memory_through_the_cli(tmp_path):
    """Five symbols across five blanks, recalled from 100 updates or so (about 10 s)."""
    from echo_cli.store import rundir

    result = invoke("train", CONFIGS / "copy_memory.yaml", *sets(
        ["model.kind=lru", "model.units=16", "model.state_size=32", "data.delay=5",
         "data.recall=5", "train.epochs=300", "eval.sequences=100"]),
                    "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert rundir.read_metrics(tmp_path / "run").heldout_accuracy > 0.9
