"""Everything that leans on Keras beyond its documented API, in one place.

Keras 3 leaves a stateful RNN layer's state variables untracked, so its JAX `fit` and
`predict` (pure functions of the tracked variables) silently restart every batch from the old
state. echo-cli carries that state itself, through a stateless forward pass:

    forward = stateless_forward(model)
    y, states, non_trainable = forward(trainable, non_trainable, states, x, training=False)
    one_batch = stateless_train_step(model, sample=(x, y, w), hits=hits)   # for a jax.lax.scan

`INTERNALS` names each attribute this relies on that Keras does not document;
`missing_internals()` says, in one line each, which of them a Keras release no longer has.
Keras is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from echo_cli.errors import EchoError


class KerasChangedError(EchoError, RuntimeError):
    """This Keras lacks an internal that the JAX engine needs."""

# (owner, attribute, what echo-cli uses it for). Only `_symbolic_build` is private by name; the
# others are public but undocumented, and the JAX engine would break the same way without them.
INTERNALS: tuple[tuple[str, str, str], ...] = (
    ("keras.Model", "_symbolic_build",
     "builds the compiled loss and metrics before the first stateless train step"),
    ("keras.Model", "stateless_compute_loss", "the loss of one batch inside the compiled step"),
    ("keras.optimizers.Optimizer", "stateless_apply", "one Adam update inside the compiled step"),
    ("keras.StatelessScope", "get_current_value",
     "reads the RNN state a stateless forward pass leaves behind"),
    ("keras.layers.RNN", "states", "the state variables of a stateful recurrent layer"),
    ("keras.src.utils.module_utils.tensorflow", "_available",
     "saving under JAX without importing TensorFlow"),
)


def _owner(dotted: str) -> Any:
    import importlib

    import keras

    if dotted.startswith("keras.src."):
        module, _, name = dotted.rpartition(".")
        return getattr(importlib.import_module(module), name)
    obj: Any = keras
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


@functools.cache
def _missing() -> tuple[str, ...]:
    return tuple(missing_internals())


def missing_internals() -> list[str]:
    """One message per internal this Keras lacks; empty when the JAX engine can run."""
    import keras

    problems = []
    for owner, name, why in INTERNALS:
        cls = _owner(owner)
        present = hasattr(cls, name) or (name == "states" and _rnn_has_states())
        if not present:
            problems.append(f"Keras {keras.__version__} changed `{owner}.{name}`; echo-cli's JAX "
                            f"engine needs it ({why}); use keras 3.10-3.15 or "
                            f"train.backend: tensorflow")
    return problems


def _rnn_has_states() -> bool:
    """RNN.states is an instance attribute: look for it on a built stateful layer."""
    import keras

    layer = keras.layers.SimpleRNN(1, stateful=True)
    layer.build((1, 1, 1))
    return getattr(layer, "states", None) is not None


@contextlib.contextmanager
def without_tensorflow():
    """Under JAX, tell Keras's serializer that TensorFlow is absent while saving: it imports
    TensorFlow (about 3 s and 500 MB) only to test whether a value is a TensorFlow shape, and
    under JAX none is. Nothing changes on the TensorFlow backend, or if TensorFlow is loaded."""
    import sys

    import keras

    lazy = _owner("keras.src.utils.module_utils.tensorflow")
    if keras.backend.backend() != "jax" or "tensorflow" in sys.modules:
        yield
        return
    saved = lazy._available
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = saved


def stateful_layers(model) -> list:
    return [layer for layer in model.layers if getattr(layer, "stateful", False)]


def rnn_state_variables(model) -> list:
    """The state variables of stateful layers, which Keras leaves untracked: they are not in
    model.non_trainable_variables, and its JAX train and predict functions drop their updates."""
    return [v for layer in stateful_layers(model) for v in layer.states]


def stateless_forward(model):
    """A pure forward pass that carries stateful layers' state explicitly (for JAX).

    Returns:
        forward(trainable, non_trainable, rnn_states, x, training) ->
        (y_pred, new_rnn_states, new_non_trainable), values in the order of the model's lists.
    """
    import keras

    states = rnn_state_variables(model)

    def forward(trainable, non_trainable, rnn_states, x, training):
        mapping = [*zip(model.trainable_variables, trainable, strict=True),
                   *zip(model.non_trainable_variables, non_trainable, strict=True),
                   *zip(states, rnn_states, strict=True)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            y_pred = model(x, training=training)
        return (y_pred, [scope.get_current_value(v) for v in states],
                [scope.get_current_value(v) for v in model.non_trainable_variables])

    return forward


def stateless_train_step(model, *, sample: tuple[np.ndarray, np.ndarray, np.ndarray],
                         hits: Callable[[Any, Any, Any], Any]):
    """Keras's own training step as a pure function, for a compiled JAX loop.

    Builds the compiled loss, metrics and optimizer (what `fit` does first), then returns
    one_batch((trainable, non_trainable, optimizer, rnn_states), (x, y, w)) ->
    (new carry, (loss, hits)): a stateless forward pass, `stateless_compute_loss`, the gradient
    and `optimizer.stateless_apply`. The RNN state passes through with no gradient through it
    (Keras stops gradients at batch boundaries too).

    Args:
        model: compiled. sample: one batch (x, y, w), to build the loss and metrics.
        hits(y_pred, y, w): the batch's correct predictions, as the task counts them.

    Raises:
        KerasChangedError: this Keras lacks an internal the step needs.
    """
    import jax

    problems = _missing()
    if problems:
        raise KerasChangedError(problems[0])
    model._symbolic_build(data_batch=sample)  # what fit does first
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    forward = stateless_forward(model)
    metrics = [v.value for v in model.metrics_variables]

    def loss_fn(trainable, non_trainable, states, xb, yb, wb):
        y_pred, states, non_trainable = forward(trainable, non_trainable, states, xb, True)
        loss, _ = model.stateless_compute_loss(trainable, non_trainable, metrics, x=xb,
                                               y=yb, y_pred=y_pred, sample_weight=wb,
                                               training=True)
        return loss, (y_pred, states, non_trainable)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def one_batch(carry, data):
        trainable, non_trainable, optimizer, states = carry
        xb, yb, wb = data
        (loss, (y_pred, states, non_trainable)), grads = grad_fn(
            trainable, non_trainable, jax.lax.stop_gradient(states), xb, yb, wb)
        trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
        return (trainable, non_trainable, optimizer, states), (loss, hits(y_pred, yb, wb))

    return one_batch


def jax_stateful_steps(runner):
    """A jitted scan of a stateful model over consecutive batches from a zero state, carrying
    the state explicitly (Keras's own JAX predict drops it between batches).

    Returns:
        run(steps) -> outputs stacked per step, with the runner's current weights.
    """
    import jax
    import jax.numpy as jnp

    forward = stateless_forward(runner)
    zero_states = [jnp.zeros(v.shape, v.dtype) for v in rnn_state_variables(runner)]

    @jax.jit
    def scan(trainable, non_trainable, steps):
        def step(states, xb):
            y_pred, states, _ = forward(trainable, non_trainable, states, xb, False)
            return states, y_pred

        return jax.lax.scan(step, zero_states, steps)[1]

    def run(steps: np.ndarray) -> np.ndarray:
        return np.asarray(scan([v.value for v in runner.trainable_variables],
                               [v.value for v in runner.non_trainable_variables], steps))

    return run
