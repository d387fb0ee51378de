"""What the lru, s6 and esn kinds share: their time recurrences, their model keys, how their
Keras layers are made, and the numpy twins of the Keras pieces their blocks are built from.

    h = linear(a, b, parallel=False)                    # h_t = a_t ⊙ h_{t-1} + b_t, h_0 = 0
    re, im = rotation((lam_re, lam_im), (b_re, b_im), parallel=True)   # the same, complex
    x = recurrence(step, x0, u)                         # any step: x_t = step(x_{t-1}, u_t)

Every recurrence takes and gives (batch, steps, ...) tensors. model.scan: sequential runs one
step at a time (`keras.ops.scan`); parallel runs `keras.ops.associative_scan`, which pairs
steps up in log2(steps) rounds and works only for a recurrence linear in its state, where
(a, b) ∘ (a', b') = (a·a', a'·b + b') composes two steps into one. The time axis must have a
known length (Signature.steps always has one): TensorFlow's associative scan loses the shape
of an unknown one. Keras is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

# ------------------------------------------------------------------ the keys lru and s6 share
STATE_SIZE = (int, Field(64, ge=1, le=4096, description=(
    "lru and s6: N, the state's size: complex numbers per block for lru, numbers per channel "
    "for s6 (64: enough to hold copy memory's 10 symbols at small scale)")))
BLOCKS = (int, Field(2, ge=1, le=64, description=(
    "lru and s6: residual blocks stacked, each pre-norm: LayerNorm, the recurrence, a gated "
    "output, the block's input added back")))
SCAN = (Literal["sequential", "parallel"], Field("sequential", description=(
    "lru and s6: how the recurrence runs over time: sequential (keras.ops.scan, one step at a "
    "time) or parallel (keras.ops.associative_scan, log2 of the steps in rounds)")))
SHARED_KEYS = {"state_size": STATE_SIZE, "blocks": BLOCKS, "scan": SCAN}

EPSILON = 1e-5  # the blocks' LayerNorm, and its numpy twin


# ------------------------------------------------------------------ the Keras recurrences
def recurrence(step: Callable, init, xs):
    """x_t = step(x_{t-1}, xs_t) from x_0 = init, one step at a time (keras.ops.scan).

    Args:
        step: (carry, x_t) -> new carry, in Keras ops.
        init: the state before the first step, (batch, ...) (or a tuple of them).
        xs: (batch, steps, ...) tensors (or a tuple of them), read one step at a time.

    Returns:
        Every state, (batch, steps, ...), structured like init.
    """
    import keras
    from keras import ops

    def scanned(carry, x):
        new = step(carry, x)
        return new, new  # TensorFlow's scan wants the output shaped like the carry

    _, ys = ops.scan(scanned, init, keras.tree.map_structure(lambda t: ops.moveaxis(t, 1, 0),
                                                             xs))
    return keras.tree.map_structure(lambda t: ops.moveaxis(t, 0, 1), ys)


def _parallel(compose: Callable, elems: tuple) -> tuple:
    """The associative scan along the time axis. The reshape gives back the static shape,
    which TensorFlow's scan leaves unknown."""
    from keras import ops

    out = ops.associative_scan(compose, elems, axis=1)
    return tuple(ops.reshape(o, ops.shape(e)) for o, e in zip(out, elems, strict=True))


def _compose_real(earlier, later):
    (a1, b1), (a2, b2) = earlier, later
    return a1 * a2, a2 * b1 + b2


def _compose_complex(earlier, later):
    """Two steps of h ↦ λh + b with complex λ and b held as (re, im) pairs, as one step."""
    ar, ai, br, bi = earlier
    cr, ci, dr, di = later
    return (cr * ar - ci * ai, cr * ai + ci * ar,  # λ' · λ
            cr * br - ci * bi + dr, cr * bi + ci * br + di)  # λ' · b + b'


def linear(a, b, *, parallel: bool):
    """h_t = a_t ⊙ h_{t-1} + b_t from h_0 = 0, for a, b (batch, steps, ...) of one shape."""
    from keras import ops

    if parallel:
        return _parallel(_compose_real, (a, b))[1]
    return recurrence(lambda h, ab: ab[0] * h + ab[1], ops.zeros_like(b[:, 0]), (a, b))


def rotation(lam: tuple, b: tuple, *, parallel: bool) -> tuple:
    """h_t = λ ⊙ h_{t-1} + b_t from h_0 = 0, complex, as (re, im) pairs.

    Args:
        lam: (re, im) of the diagonal λ, (n,) each: the same at every step.
        b: (re, im), (batch, steps, n) each.

    Returns:
        (re, im) of every state, (batch, steps, n) each.
    """
    from keras import ops

    lr, li = lam
    br, bi = b
    if parallel:
        full = (ops.broadcast_to(lr, ops.shape(br)), ops.broadcast_to(li, ops.shape(br)))
        return _parallel(_compose_complex, (*full, br, bi))[2:]

    def step(h, x):
        (hr, hi), (xr, xi) = h, x
        return lr * hr - li * hi + xr, lr * hi + li * hr + xi

    zeros = ops.zeros_like(br[:, 0])
    return recurrence(step, (zeros, zeros), (br, bi))


# ------------------------------------------------------------------ the Keras layers
@functools.cache
def keras_layer(mixin: type):
    """The Keras layer class of a kind's layer, made on first use: the methods are the plain
    class `mixin`'s (its name less a leading _), the base is keras.layers.Layer, registered
    for model.keras's safe mode as echo_cli>Name. (Defined here, not at import, so that
    importing the kinds imports no Keras.)"""
    import keras

    cls = type(mixin.__name__.lstrip("_"), (mixin, keras.layers.Layer),
               {"__doc__": mixin.__doc__, "__module__": mixin.__module__})
    return keras.saving.register_keras_serializable(package="echo_cli")(cls)


class Block:
    """What the lru and s6 blocks share: (batch, steps, units) in and out, and their config."""

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "state_size": self.state_size,
                "scan": self.scan}


def stacked(h, model, sig, block, prefix: str):
    """A Dense to model.units features, then model.blocks of `block` (lru_block1, ...), then
    the output the signature asks for (the last step, or every step)."""
    from keras import layers

    from echo_cli.models.base import last_step

    h = layers.Dense(model.units, name=f"{prefix}_in")(h)
    for i in range(1, model.blocks + 1):
        h = block(model.units, model.state_size, model.scan, name=f"{prefix}_block{i}")(h)
    return last_step(h, sig)


# ------------------------------------------------------------------ numpy, for inspect
@dataclass
class Recomputed:
    """A kind's blocks run step by step in numpy (float64) over (batch, steps, width) inputs.

    states: each block's state after every step, (batch, steps, size) each.
    outputs: each block's output, (batch, steps, units) each: the last feeds the output layer.
    gates: name -> (batch, steps, size), where the kind has gates.
    """

    states: list[np.ndarray]
    outputs: list[np.ndarray]
    gates: dict[str, np.ndarray] = field(default_factory=dict)


def weights(variable: Any) -> np.ndarray:
    return np.asarray(variable, dtype=np.float64)


def dense(layer, x: np.ndarray) -> np.ndarray:
    """A Keras Dense layer (no activation) in numpy."""
    out = x @ weights(layer.kernel)
    return out + weights(layer.bias) if layer.use_bias else out


def layer_norm(layer, x: np.ndarray) -> np.ndarray:
    """A Keras LayerNormalization over the last axis in numpy."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * weights(layer.gamma) + weights(layer.beta)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (keras.ops.gelu's default)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def layers_of(model, class_name: str) -> list:
    """The model's layers of one class, in order."""
    return [layer for layer in model.layers if type(layer).__name__ == class_name]
