"""The echo state network (esn; Jaeger 2001), where "echo" comes from: a fixed random reservoir
of model.units tanh units that the inputs stir, and a trained read-out.

    features = ESN.build(h, cfg.model, sig)     # (batch, units), or (batch, steps, units)

    x_t = (1 - a)·x_{t-1} + a·tanh(W x_{t-1} + W_in u_t + b),   x_0 = 0,   a = model.leak

W is sparse (a share model.connectivity of its entries nonzero, standard normal) and scaled to
spectral radius model.spectral_radius: below 1 the echo of each input fades, the echo state
property. W_in and b are uniform in ±model.input_scaling. All three are drawn from the seed and
never trained: only the output layer the factory adds learns, by gradient descent here rather
than the ridge regression reservoir computing usually fits. The step is not linear in the
state, so it has no associative form: it always runs one step at a time (it reads no
model.scan; setting one only warns that esn ignores it).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import echo_cli.models.scans as scans
from echo_cli.models.base import Kind, Signature, Size, last_step

KEYS = {
    "spectral_radius": (float, Field(0.9, gt=0, le=10, description=(
        "esn: the reservoir's largest |eigenvalue|; below 1 the echo of each input fades"))),
    "connectivity": (float, Field(0.1, gt=0, le=1, description=(
        "esn: the share of the reservoir's connections that are nonzero"))),
    "input_scaling": (float, Field(1.0, gt=0, le=100, description=(
        "esn: the input weights and the bias are uniform in ±this"))),
    "leak": (float, Field(1.0, gt=0, le=1, description=(
        "esn: the leaking rate a, x_t = (1 - a)·x_{t-1} + a·tanh(...); 1: no leak"))),
}


# ------------------------------------------------------------------ the weights, from the seed
def reservoir(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """W (units, units): standard normal entries kept with probability model.connectivity,
    scaled so that its spectral radius is model.spectral_radius."""
    w = rng.standard_normal(shape) * (rng.uniform(size=shape) < model.connectivity)
    radius = np.abs(np.linalg.eigvals(w)).max()
    return (w * (model.spectral_radius / radius) if radius > 0 else w).astype("float32")


def scaled_uniform(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """W_in (width, units) or b (units,): uniform in ±model.input_scaling."""
    s = model.input_scaling
    return rng.uniform(-s, s, size=shape).astype("float32")


VARIABLES = {"reservoir_kernel": reservoir, "input_kernel": scaled_uniform,
             "reservoir_bias": scaled_uniform}


# ------------------------------------------------------------------ the Keras layer
class _Reservoir:
    """The reservoir: (batch, steps, width) in, every state (batch, steps, units) out (so
    `states(u)` is the output). Its weights are not trainable."""

    def __init__(self, units: int, leak: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.leak = units, leak

    def build(self, input_shape):
        u = self.units
        self.input_kernel = self.add_weight(shape=(input_shape[-1], u), trainable=False,
                                            name="input_kernel")
        self.reservoir_kernel = self.add_weight(shape=(u, u), trainable=False,
                                                name="reservoir_kernel")
        self.reservoir_bias = self.add_weight(shape=(u,), initializer="zeros", trainable=False,
                                              name="reservoir_bias")

    def call(self, u):
        from keras import ops

        a, w = self.leak, self.reservoir_kernel
        drive = ops.matmul(u, self.input_kernel) + self.reservoir_bias  # W_in u_t + b, all t

        def step(x, d):
            return (1 - a) * x + a * ops.tanh(ops.matmul(x, w) + d)

        return scans.recurrence(step, ops.zeros_like(drive[:, 0]), drive)

    def states(self, u):
        return self.call(u)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "leak": self.leak}


def layer_class():
    """The Keras Reservoir layer (registered on first use)."""
    return scans.keras_layer(_Reservoir)


def _build(h, model, sig: Signature):
    return last_step(layer_class()(model.units, model.leak, name="esn")(h), sig)


def _size(model, width: int, steps: int) -> Size:
    u = model.units
    return Size(input_kernels=width * u, hidden_kernels=u * u + u, layers=1)


# ------------------------------------------------------------------ numpy, for inspect
def recompute(model, xs: np.ndarray) -> scans.Recomputed:
    """The reservoir in numpy over the encoded inputs xs (batch, steps, width): its state is
    its output, (batch, steps, units)."""
    layer = scans.layers_of(model, "Reservoir")[0]
    w, a = scans.weights, layer.leak
    drive = np.asarray(xs, dtype=np.float64) @ w(layer.input_kernel) + w(layer.reservoir_bias)
    kernel = w(layer.reservoir_kernel)
    x = np.zeros((drive.shape[0], layer.units))
    states = np.zeros(drive.shape)
    for t in range(drive.shape[1]):
        x = (1 - a) * x + a * np.tanh(x @ kernel + drive[:, t])
        states[:, t] = x
    return scans.Recomputed(states=[states], outputs=[states])


def _check(model) -> str | None:
    if model.scan == "parallel":
        return ("model.scan: parallel needs a recurrence linear in its state (lru or s6); an "
                "echo state network's tanh is not, so leave model.scan at sequential")
    return None


ESN = Kind(name="esn", layers=layer_class, check=_check,
           summary="an echo state network: a fixed random tanh reservoir; only the "
                   "output layer learns (Jaeger 2001)",
           build=_build, size=_size, recurrent=True, stateful=False, per_step=True,
           masking=False, body="esn", cell="esn", keys=KEYS, variables=VARIABLES)
