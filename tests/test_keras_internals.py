"""The Keras internals echo-cli relies on, named one by one, so an upgrade fails clearly."""

import pytest

from echo_cli.models import keras_internals
from echo_cli.models.base import model_ids
from echo_cli.training.loop import build


@pytest.mark.parametrize(("owner", "name", "why"), keras_internals.INTERNALS,
                         ids=[f"{o}.{n}" for o, n, _ in keras_internals.INTERNALS])
def test_this_keras_has_each_internal(owner, name, why):
    import keras

    present = [p for p in keras_internals.missing_internals() if f"`{owner}.{name}`" in p]
    assert not present, (f"Keras {keras.__version__} changed `{owner}.{name}`; echo-cli's JAX "
                         f"engine needs it ({why})")


def test_a_missing_internal_is_one_clear_line(monkeypatch):
    import keras

    monkeypatch.setattr(keras_internals, "INTERNALS",
                        (("keras.Model", "_gone_in_keras_4", "a step of the JAX engine"),))
    (message,) = keras_internals.missing_internals()
    assert message == (f"Keras {keras.__version__} changed `keras.Model._gone_in_keras_4`; "
                       f"echo-cli's JAX engine needs it (a step of the JAX engine); use keras "
                       f"3.10-3.15 or train.backend: tensorflow")
    assert "\n" not in message


def test_the_stateless_forward_pass_carries_the_state(small_config):
    """What the internals are for: the state a stateless pass returns is the layer's own."""
    import numpy as np

    from echo_cli.models import factory as models

    cfg = small_config("lag1", "model.units=3")
    model = build(cfg)
    x = model_ids(np.random.default_rng(0).integers(0, 20, (5, 3)))
    forward = keras_internals.stateless_forward(model)
    states = [np.zeros(v.shape, "float32") for v in keras_internals.rnn_state_variables(model)]
    weights = ([v.value for v in model.trainable_variables],
               [v.value for v in model.non_trainable_variables])
    y1, states, _ = forward(*weights, states, x, False)
    y2, _, _ = forward(*weights, states, x, False)
    models.reset_states(model)
    np.testing.assert_allclose(np.asarray(y1), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y2), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(y1), np.asarray(y2))  # the second call started elsewhere
