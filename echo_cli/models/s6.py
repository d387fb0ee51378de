"""A minimal selective state space model (s6): Mamba's block (Gu & Dao 2023, "Mamba: linear-time
sequence modeling with selective state spaces", Section 3 and Algorithm 2), small and readable.

    features = S6.build(h, cfg.model, sig)      # (batch, units), or (batch, steps, units)

A Dense layer maps the encoded inputs to H = model.units features, then model.blocks pre-norm
residual blocks each compute, for D = 2H channels and N = model.state_size:

    x, z = in_proj(LayerNorm(h))                    # (batch, steps, D) each
    u = SiLU(causal depthwise conv1d(x))            # kernel 4
    Δ, B, C = softplus(dt_proj(x_proj(u)_Δ)), x_proj(u)_B, x_proj(u)_C   # the selection
    Ā = exp(Δ A),  B̄u = Δ B u                       # discretisation (eq. 4; B̄ by Euler)
    s_t = Ā_t s_{t-1} + B̄_t u_t,  y_t = C_t s_t + D ⊙ u_t        # eq. 2a-2b, per channel
    h + out_proj(y ⊙ SiLU(z))

with A = -exp(A_log) diagonal (A_log = log 1..N, S4D-real), D = 1 and Δ's bias the inverse
softplus of a step log-uniform in [0.001, 0.1] at the start. Δ, B and C depend on the input, so
each step chooses what to let in and what to forget. The recurrence is linear in s, so it can run
as an associative scan (model.scan: parallel; scans.py). Both forms hold every state
(batch, steps, D, N) at once, like Mamba's reference scan, not its fused kernel.
"""

from __future__ import annotations

import math

import numpy as np

import echo_cli.models.scans as scans
from echo_cli.models.base import Kind, Signature, Size

EXPAND = 2  # channels D per feature, Mamba's default
CONV = 4  # the causal depthwise convolution's kernel
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4  # Δ's initial range


def dt_rank(units: int) -> int:
    """Δ's low rank, ⌈H/16⌉ as in Mamba."""
    return math.ceil(units / 16)


# ------------------------------------------------------------------ the weights, from the seed
def conv_weights(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """The depthwise kernel (4, D) or bias (D,): uniform ±1/√4, as PyTorch starts Conv1d."""
    return rng.uniform(-1 / math.sqrt(CONV), 1 / math.sqrt(CONV), size=shape).astype("float32")


def dt_kernel(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """dt_proj's kernel (rank, D): uniform ±rank^-½ (Mamba's dt_init "random")."""
    limit = shape[0] ** -0.5
    return rng.uniform(-limit, limit, size=shape).astype("float32")


def dt_bias(rng: np.random.Generator, shape: tuple[int, ...], model) -> np.ndarray:
    """dt_proj's bias (D,): softplus⁻¹ of a step log-uniform in [DT_MIN, DT_MAX]."""
    dt = np.exp(rng.uniform(math.log(DT_MIN), math.log(DT_MAX), size=shape))
    dt = np.maximum(dt, DT_FLOOR)
    return (dt + np.log(-np.expm1(-dt))).astype("float32")


VARIABLES = {"conv_kernel": conv_weights, "conv_bias": conv_weights, "dt_kernel": dt_kernel,
             "dt_bias": dt_bias}


# ------------------------------------------------------------------ the Keras layer
class _S6Block(scans.Block):
    """One pre-norm residual Mamba block; (batch, steps, units) in and out. `states(h)` gives
    the selective scan's states, (batch, steps, D, N)."""

    def __init__(self, units: int, state_size: int, scan: str = "sequential", **kwargs):
        from keras import layers

        super().__init__(**kwargs)
        self.units, self.state_size, self.scan = units, state_size, scan
        self.channels, self.rank = EXPAND * units, dt_rank(units)
        self.norm = layers.LayerNormalization(epsilon=scans.EPSILON, name="norm")
        self.in_proj = layers.Dense(2 * self.channels, use_bias=False, name="in_proj")
        self.x_proj = layers.Dense(self.rank + 2 * state_size, use_bias=False, name="x_proj")
        self.out_proj = layers.Dense(units, use_bias=False, name="out_proj")

    def build(self, input_shape):
        d, n, lead = self.channels, self.state_size, tuple(input_shape[:-1])
        self.norm.build(input_shape)
        self.in_proj.build(input_shape)
        self.conv_kernel = self.add_weight(shape=(CONV, d), name="conv_kernel")
        self.conv_bias = self.add_weight(shape=(d,), initializer="zeros", name="conv_bias")
        self.x_proj.build((*lead, d))
        self.dt_kernel = self.add_weight(shape=(self.rank, d), name="dt_kernel")
        self.dt_bias = self.add_weight(shape=(d,), initializer="zeros", name="dt_bias")
        self.a_log = self.add_weight(  # S4D-real: A = -(1, 2, ..., N) in every channel
            shape=(d, n), name="a_log",
            initializer=lambda shape, dtype=None: np.log(np.broadcast_to(
                np.arange(1, shape[1] + 1, dtype="float32"), shape)))
        self.skip = self.add_weight(shape=(d,), initializer="ones", name="skip")
        self.out_proj.build((*lead, d))

    def _mix(self, h):
        """u = SiLU(conv(x)) and the gate z, (batch, steps, D) each."""
        from keras import ops

        x, z = ops.split(self.in_proj(self.norm(h)), 2, axis=-1)
        steps = x.shape[1]
        padded = ops.pad(x, ((0, 0), (CONV - 1, 0), (0, 0)))
        conv = sum(padded[:, k : k + steps] * self.conv_kernel[k] for k in range(CONV))
        return ops.silu(conv + self.conv_bias), z

    def _scan(self, u):
        """The selective scan's states (batch, steps, D, N), and C (batch, steps, N)."""
        from keras import ops

        n = self.state_size
        low, b, c = ops.split(self.x_proj(u), [self.rank, self.rank + n], axis=-1)
        delta = ops.softplus(ops.matmul(low, self.dt_kernel) + self.dt_bias)  # (B, T, D)
        a = ops.exp(delta[..., None] * -ops.exp(self.a_log))  # Ā = exp(ΔA)
        bu = (delta * u)[..., None] * b[:, :, None, :]  # B̄u = ΔBu
        return scans.linear(a, bu, parallel=self.scan == "parallel"), c

    def states(self, h):
        return self._scan(self._mix(h)[0])[0]

    def call(self, h):
        from keras import ops

        u, z = self._mix(h)
        s, c = self._scan(u)
        y = ops.sum(s * c[:, :, None, :], axis=-1) + self.skip * u
        return h + self.out_proj(y * ops.silu(z))



def layer_class():
    """The Keras S6Block layer (registered on first use)."""
    return scans.keras_layer(_S6Block)


def _build(h, model, sig: Signature):
    return scans.stacked(h, model, sig, layer_class(), "s6")


def _size(model, width: int, steps: int) -> Size:
    u, n, blocks = model.units, model.state_size, model.blocks
    d, r = EXPAND * u, dt_rank(u)
    per_block = (u * 2 * d + (CONV + 1) * d + d * (r + 2 * n) + (r + 1) * d + d * n + d
                 + d * u + 2 * u)
    return Size(input_kernels=width * u + u, hidden_kernels=blocks * per_block,
                layers=blocks * (8 + 3 * EXPAND * n))


# ------------------------------------------------------------------ numpy, for inspect
def _recompute_block(block, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block step by step: (states (batch, steps, D, N), Ā (batch, steps, D, N), output)."""
    w = scans.weights
    d, n, steps = block.channels, block.state_size, h.shape[1]
    x, z = np.split(scans.dense(block.in_proj, scans.layer_norm(block.norm, h)), 2, axis=-1)
    padded = np.pad(x, ((0, 0), (CONV - 1, 0), (0, 0)))
    kernel = w(block.conv_kernel)
    u = scans.silu(sum(padded[:, k : k + steps] * kernel[k] for k in range(CONV))
                   + w(block.conv_bias))
    low, b, c = np.split(scans.dense(block.x_proj, u), [block.rank, block.rank + n], axis=-1)
    delta = scans.softplus(low @ w(block.dt_kernel) + w(block.dt_bias))
    a = -np.exp(w(block.a_log))
    s = np.zeros((h.shape[0], d, n))
    states, keeps = np.zeros((*h.shape[:2], d, n)), np.zeros((*h.shape[:2], d, n))
    y = np.zeros((*h.shape[:2], d))
    for t in range(steps):
        keeps[:, t] = np.exp(delta[:, t, :, None] * a)
        s = keeps[:, t] * s + (delta[:, t] * u[:, t])[:, :, None] * b[:, t, None, :]
        states[:, t] = s
        y[:, t] = (s * c[:, t, None, :]).sum(-1) + w(block.skip) * u[:, t]
    out = h + scans.dense(block.out_proj, y * scans.silu(z))
    return states, keeps, out


def _blocks(model, xs: np.ndarray):
    """Each block's (states, Ā, output) in turn, from the encoded inputs xs."""
    h = scans.dense(model.get_layer("s6_in"), np.asarray(xs, dtype=np.float64))
    for block in scans.layers_of(model, "S6Block"):
        s, keep, h = _recompute_block(block, h)
        yield s, keep, h


def recompute(model, xs: np.ndarray) -> scans.Recomputed:
    """The model's S6 blocks in numpy over its encoded inputs xs (batch, steps, width).

    The state shown per block is the selective scan's state summed over its N entries, one
    number per channel (batch, steps, D): the whole state (D·N numbers) is too large to draw
    (full_states has it). The gate `keep` is Ā averaged over the N entries, per channel: how
    much of its state each channel keeps at that step, which the input chooses.
    """
    found = list(_blocks(model, xs))
    return scans.Recomputed(states=[s.sum(-1) for s, _, _ in found],
                            outputs=[out for _, _, out in found],
                            gates={"keep": np.concatenate([k.mean(-1) for _, k, _ in found],
                                                          axis=-1)})


def full_states(model, xs: np.ndarray) -> list[np.ndarray]:
    """Each block's whole state, (batch, steps, D, N)."""
    return [s for s, _, _ in _blocks(model, xs)]


S6 = Kind(name="s6", layers=layer_class,
           summary="a selective state space model: Mamba's residual blocks, whose "
                   "step, B and C depend on the input (Gu & Dao 2023)",
          build=_build, size=_size, recurrent=True, stateful=False, per_step=True,
          masking=False, body="s6_block1", cell="s6", keys=dict(scans.SHARED_KEYS),
          variables=VARIABLES)
