"""The cells recomputed in numpy equal what Keras computes: states, masks, carried state."""

import numpy as np
import pytest

from echo_cli.config.loading import load_config
from echo_cli.models import factory as models
from echo_cli.models.cells import GATES, Cell, NotRecurrentError
from echo_cli.training.loop import build

RNG = np.random.default_rng(0)


def random_layer_model(layer_name: str, *, steps: int = 9, width: int = 5, units: int = 6):
    import keras

    inputs = keras.Input((steps, width))
    layer = getattr(keras.layers, layer_name)(units, return_sequences=True, return_state=True)
    outputs = layer(inputs)
    model = keras.Model(inputs, outputs)
    for w in model.weights:  # far from the initial weights, so every gate does something
        w.assign(RNG.normal(0, 0.8, w.shape).astype("float32"))
    return model


@pytest.mark.parametrize("layer_name", ["LSTM", "GRU", "SimpleRNN"])
def test_recomputed_states_equal_keras_on_random_inputs(layer_name):
    model = random_layer_model(layer_name)
    x = RNG.normal(size=(4, 9, 5)).astype("float32")
    sequence, *last = model.predict(x, verbose=0)
    trace = Cell.of(model).run(x.astype(np.float64))
    np.testing.assert_allclose(trace.h, sequence, atol=1e-5)
    np.testing.assert_allclose(trace.h[:, -1], last[0], atol=1e-5)
    if layer_name == "LSTM":
        np.testing.assert_allclose(trace.c[:, -1], last[1], atol=1e-5)  # the cell state too
    assert set(trace.gates) == set(GATES[Cell.of(model).kind])
    for name, gate in trace.gates.items():
        if name not in ("cell", "candidate"):
            assert (gate >= 0).all() and (gate <= 1).all()


@pytest.mark.parametrize("layer_name", ["LSTM", "GRU", "SimpleRNN"])
def test_a_masked_step_keeps_the_state_as_keras_does(layer_name):
    import keras

    inputs = keras.Input((7, 4))
    masked = keras.layers.Masking(0.0)(inputs)
    out = getattr(keras.layers, layer_name)(5, return_sequences=True)(masked)
    model = keras.Model(inputs, out)
    x = RNG.normal(size=(3, 7, 4)).astype("float32")
    x[:, :2] = 0.0  # left padding, as the full-context framing has
    x[1, 4] = 0.0  # and a gap
    mask = np.abs(x).sum(-1) > 0
    trace = Cell.of(model).run(x.astype(np.float64), mask=mask)
    np.testing.assert_allclose(trace.h[mask], model.predict(x, verbose=0)[mask], atol=1e-5)
    assert (trace.h[:, :2] == 0).all() and np.array_equal(trace.h[1, 4], trace.h[1, 3])


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_the_state_carried_between_batches_is_keras_stateful_state(kind):
    """A stateful echo model fed row after row (the state of row r from row r - batch), as
    probing does it, gives the hidden state Keras computes with its own carried state."""
    import keras

    from echo_cli.analysis.probing import column_states
    from echo_cli.models.base import model_ids
    from echo_cli.tasks.base import stream_rng
    from echo_cli.tasks.echo import plan
    from echo_cli.tasks.framing import frame, generate_sequences

    cfg = load_config(overrides=[f"model.kind={kind}", "model.units=7", "data.n_unique=12",
                                 "data.window=3", "train.batch_size=4"])
    model = build(cfg)
    for w in model.trainable_weights:
        w.assign(RNG.normal(0, 0.5, w.shape).astype("float32"))
    seqs = generate_sequences(stream_rng(3, "heldout"), count=1, length=25, n_unique=12)
    states = column_states(model, cfg, seqs)
    hidden = keras.Model(model.input, model.get_layer(kind).output)
    framed = frame(seqs, plan(cfg))
    models.reset_states(model)
    by_keras = np.concatenate([hidden.predict_on_batch(model_ids(batch))
                               for batch in framed.x[0].reshape(-1, 4, 3)])
    models.reset_states(model)
    np.testing.assert_allclose(states.trace.h[0], by_keras, atol=1e-5)
    assert states.t.tolist() == framed.t.tolist()


def test_a_model_without_a_recurrent_layer_has_no_cell():
    cfg = load_config(overrides=["model.kind=mlp", "model.stateful=false", "model.units=4"])
    with pytest.raises(NotRecurrentError):
        Cell.of(build(cfg))


def test_the_cell_module_imports_no_keras():
    import subprocess
    import sys

    code = ("import sys, echo_cli.models.cells, echo_cli.analysis.probing\n"
            "assert not [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)
