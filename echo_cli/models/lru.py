"""The linear recurrent unit (lru; Orvieto et al. 2023, "Resurrecting recurrent neural networks
for long sequences"): a diagonal complex linear recurrence in pre-norm residual blocks.

    features = LRU.build(h, cfg.model, sig)     # (batch, units), or (batch, steps, units)

A Dense layer maps the encoded inputs to H = model.units features, then model.blocks blocks
each run LayerNorm → LRU → GELU → GLU (two Dense layers, one sigmoid-gated) → + the block's
input. The LRU keeps N = model.state_size complex numbers:

    x_k = Λ x_{k-1} + exp(γ) ⊙ (B u_k),   y_k = Re(C x_k) + D ⊙ u_k
    Λ = diag(λ),  λ = exp(-exp(ν) + i·exp(θ)),   γ = log √(1 - |λ|²) at the start

λ starts uniform on the ring r_min ≤ |λ| ≤ r_max (uniform in area) with phase in
[0, max_phase]; exp(γ) keeps the state's scale whatever |λ| is. Complex numbers are held as
real and imaginary float32 pairs. Being linear in the state, the recurrence can run as an
associative scan (model.scan: parallel; scans.py).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

import echo_cli.models.scans as scans
from echo_cli.models.base import Kind, Signature, Size

KEYS = {
    **scans.SHARED_KEYS,
    "r_min": (float, Field(0.9, ge=0, lt=1, description=(
        "lru: the smallest |λ| of the ring the eigenvalues start on (0.9, the paper's "
        "long-range setting: slow decay, so a symbol survives long blank stretches)"))),
    "r_max": (float, Field(0.999, gt=0, lt=1, description=(
        "lru: the largest |λ| of the ring the eigenvalues start on (below 1: stable)"))),
    "max_phase": (float, Field(6.283, gt=0, le=2 * math.pi, description=(
        "lru: the eigenvalues start with phases in [0, max_phase] radians (2π ≈ 6.283, the "
        "full circle: the phases tell the steps apart, and copy memory is learnt in about 100 "
        "updates at units 32; the paper's π/10 ≈ 0.314 for smooth long-range tasks learns it "
        "far slower)"))),
}


# ------------------------------------------------------------------ the weights, from the seed
def ring(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """(3, N): rows ν_log, θ_log, γ_log, the paper's ring initialisation."""
    n = shape[1]
    u1, u2 = rng.uniform(size=n), rng.uniform(size=n)
    radius2 = np.maximum(u1 * (model.r_max**2 - model.r_min**2) + model.r_min**2, 1e-12)
    nu_log = np.log(-0.5 * np.log(radius2))
    theta_log = np.log(np.maximum(model.max_phase * u2, 1e-12))
    gamma_log = np.log(np.sqrt(1.0 - radius2))
    return np.stack([nu_log, theta_log, gamma_log]).astype("float32")


def input_matrix(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """B as (re, im) pairs, (2, H, N): normal with variance 1/(2H)."""
    return (rng.standard_normal(shape) / math.sqrt(2 * shape[1])).astype("float32")


def output_matrix(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """C as (re, im) pairs, (2, N, H): normal with variance 1/N."""
    return (rng.standard_normal(shape) / math.sqrt(shape[1])).astype("float32")


def skip(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """D, (H,): standard normal."""
    return rng.standard_normal(shape).astype("float32")


VARIABLES = {"ring": ring, "input_matrix": input_matrix, "output_matrix": output_matrix,
             "skip": skip}


# ------------------------------------------------------------------ the Keras layer
class _LRUBlock(scans.Block):
    """One pre-norm residual block: LayerNorm → LRU → GELU → GLU → + input; (batch, steps,
    units) in and out. `states(h)` gives the LRU's states (re, im), (batch, steps, N) each."""

    def __init__(self, units: int, state_size: int, scan: str = "sequential", **kwargs):
        from keras import layers

        super().__init__(**kwargs)
        self.units, self.state_size, self.scan = units, state_size, scan
        self.norm = layers.LayerNormalization(epsilon=scans.EPSILON, name="norm")
        self.glu_value = layers.Dense(units, name="glu_value")
        self.glu_gate = layers.Dense(units, name="glu_gate")

    def build(self, input_shape):
        h, n = self.units, self.state_size
        self.norm.build(input_shape)
        self.ring = self.add_weight(shape=(3, n), initializer="zeros", name="ring")
        self.input_matrix = self.add_weight(shape=(2, h, n), name="input_matrix")
        self.output_matrix = self.add_weight(shape=(2, n, h), name="output_matrix")
        self.skip = self.add_weight(shape=(h,), initializer="ones", name="skip")
        self.glu_value.build((*input_shape[:-1], h))
        self.glu_gate.build((*input_shape[:-1], h))

    def _recur(self, u):
        from keras import ops

        nu, theta, gamma = ops.exp(self.ring[0]), ops.exp(self.ring[1]), ops.exp(self.ring[2])
        lam = (ops.exp(-nu) * ops.cos(theta), ops.exp(-nu) * ops.sin(theta))
        b = (ops.matmul(u, self.input_matrix[0]) * gamma,
             ops.matmul(u, self.input_matrix[1]) * gamma)
        return scans.rotation(lam, b, parallel=self.scan == "parallel")

    def states(self, h):
        return self._recur(self.norm(h))

    def call(self, h):
        from keras import ops

        u = self.norm(h)
        re, im = self._recur(u)
        y = (ops.matmul(re, self.output_matrix[0]) - ops.matmul(im, self.output_matrix[1])
             + self.skip * u)
        y = ops.gelu(y)
        return h + self.glu_value(y) * ops.sigmoid(self.glu_gate(y))



def layer_class():
    """The Keras LRUBlock layer (registered on first use)."""
    return scans.keras_layer(_LRUBlock)


def _build(h, model, sig: Signature):
    return scans.stacked(h, model, sig, layer_class(), "lru")


def _size(model, width: int, steps: int) -> Size:
    u, n, blocks = model.units, model.state_size, model.blocks
    per_block = 4 * u * n + 3 * n + 2 * u * u + 5 * u
    return Size(input_kernels=width * u + u, hidden_kernels=blocks * per_block,
                layers=blocks * (6 + math.ceil(6 * n / u)))


# ------------------------------------------------------------------ numpy, for inspect
def _recompute_block(block, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One block step by step: (states (batch, steps, N) complex, output)."""
    w = scans.weights
    nu_log, theta_log, gamma_log = w(block.ring)
    lam = np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))
    b = w(block.input_matrix)
    c = w(block.output_matrix)
    u = scans.layer_norm(block.norm, h)
    bu = (u @ (b[0] + 1j * b[1])) * np.exp(gamma_log)
    x = np.zeros(bu.shape[::2], dtype=np.complex128)
    states = np.zeros(bu.shape, dtype=np.complex128)
    for k in range(h.shape[1]):
        x = lam * x + bu[:, k]
        states[:, k] = x
    y = (states @ (c[0] + 1j * c[1])).real + w(block.skip) * u
    y = scans.gelu(y)
    out = h + scans.dense(block.glu_value, y) * scans.sigmoid(scans.dense(block.glu_gate, y))
    return states, out


def eigenvalues(model) -> np.ndarray:
    """Every block's λ = exp(−exp(ν) + i·exp(θ)), as trained: |λ|^k is how the contribution
    of an input k steps back decays in its state."""
    found = []
    for block in scans.layers_of(model, "LRUBlock"):
        nu_log, theta_log, _ = scans.weights(block.ring)
        found.append(np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log)))
    return np.concatenate(found)


def recompute(model, xs: np.ndarray) -> scans.Recomputed:
    """The model's LRU blocks in numpy over its encoded inputs xs (batch, steps, width); each
    block's state as its real parts, then its imaginary parts, (batch, steps, 2N)."""
    h = scans.dense(model.get_layer("lru_in"), np.asarray(xs, dtype=np.float64))
    states, outputs = [], []
    for block in scans.layers_of(model, "LRUBlock"):
        x, h = _recompute_block(block, h)
        states.append(np.concatenate([x.real, x.imag], axis=-1))
        outputs.append(h)
    return scans.Recomputed(states=states, outputs=outputs)


LRU = Kind(name="lru", layers=layer_class,
           summary="a linear recurrent unit: residual blocks of a diagonal complex "
                   "linear recurrence (Orvieto et al. 2023)",
           build=_build, size=_size, recurrent=True, stateful=False, per_step=True,
           masking=False, body="lru_block1", cell="lru", keys=KEYS, variables=VARIABLES)
