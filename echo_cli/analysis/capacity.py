"""Memory capacity (Jaeger 2001, "Short term memory in echo state networks"): how much of its
past input a network's state holds, beside the bound N that a linear network reaches.

    mc = memory_capacity(states, k_max=100, scale=0.8, seed=1)   # states(u) -> (T, N)
    mc.total, mc.r2[:5], mc.bound                                 # Σ r²(k), r²(k), N
    mc = run_capacity(trained_run)                                # for a trained model

For i.i.d. input u(t) ~ U(−scale, scale), MC = Σ_k r²(k), with r²(k) the squared correlation
between u(t−k) and its best linear readout from the state at t. For N state units, MC ≤ N,
reached by a linear network whose controllability matrix has full rank.

The protocol is reservoirpy 0.4's `memory_capacity`, so the two agree on the same states:
one series of 10·k_max values, windowed so that row t holds u(t) and u(t−1) .. u(t−k_max);
the last round(0.2·10·k_max) rows are held out; the state runs from zeros through the rows in
order (the held-out rows continue from the last fitted one); the readouts are ridge
regressions with a centred, unregularised bias, fitted on the first rows after k_max of
warm-up and scored on the held-out rows. This module imports no Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RIDGE = 1e-4  # reservoirpy's documented example
HELD_OUT = 0.2


@dataclass
class Capacity:
    """Memory capacity: its total, r²(k) for k = 1 .. k_max, and the bound N."""

    total: float
    r2: list[float]
    bound: int
    scale: float
    k_max: int
    fitted: int  # rows the readouts were fitted on (after the warm-up)
    scored: int  # held-out rows they were scored on


def series(k_max: int, *, scale: float, seed: int) -> np.ndarray:
    """The input: 10·k_max i.i.d. values from U(−scale, scale), (10·k_max, 1)."""
    return np.random.default_rng(seed).uniform(-scale, scale, size=(10 * k_max, 1))


def ridge(states: np.ndarray, targets: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge readout weights and bias: centred normal equations, the bias unregularised."""
    n = len(states)
    xm, ym = states.mean(0), targets.mean(0)
    gram = states.T @ states - n * np.outer(xm, xm)
    cross = states.T @ targets - n * np.outer(xm, ym)
    weights = np.linalg.solve(gram + lam * np.eye(states.shape[1]), cross)
    return weights, ym - xm @ weights


def memory_capacity(states: Callable[[np.ndarray], np.ndarray], *, k_max: int,
                    u: np.ndarray | None = None, scale: float = 0.8, seed: int = 1,
                    lam: float = RIDGE, bound: int | None = None) -> Capacity:
    """MC of the network whose state over an input series `states(u)` gives.

    Args:
        states: u (T, 1) -> the state after each step, (T, N), from a zero state.
        k_max: the longest delay read out.
        u: the input series (default: series(k_max, scale=scale, seed=seed)).
        lam: the ridge.
        bound: N, the state units (default: the states' width).
    """
    u = series(k_max, scale=scale, seed=seed) if u is None else np.asarray(u, dtype=np.float64)
    held = round(len(u) * HELD_OUT)
    rows = sliding_window_view(u[:, 0], k_max + 1)[:, ::-1]  # u(t), u(t-1) .. u(t-k_max)
    inputs, targets = rows[:, :1], rows[:, 1:]
    s = np.asarray(states(np.ascontiguousarray(inputs)), dtype=np.float64)
    fit_s, fit_y = s[:-held][k_max:], targets[:-held][k_max:]
    weights, bias = ridge(fit_s, fit_y, lam)
    predicted = s[-held:] @ weights + bias
    r2 = [float(np.corrcoef(p, y)[0, 1] ** 2) if np.std(p) > 0 else 0.0
          for p, y in zip(predicted.T, targets[-held:].T, strict=True)]
    return Capacity(total=float(np.sum(r2)), r2=r2, bound=bound or s.shape[1], scale=scale,
                    k_max=k_max, fitted=len(fit_s), scored=held)


def linear_states(w: np.ndarray, w_in: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """states(u) of the linear network x(t) = W x(t−1) + w_in u(t): the theory's case."""
    def run(u: np.ndarray) -> np.ndarray:
        x, out = np.zeros(len(w)), np.empty((len(u), len(w)))
        for t, value in enumerate(u[:, 0]):
            x = w @ x + w_in[:, 0] * value
            out[t] = x
        return out

    return run


def scalar_inputs(model, sig, u: np.ndarray) -> np.ndarray:
    """What a trained model's recurrent layer reads for scalar inputs u (T, 1): its input
    layer, as for the task it was trained on. Numbers in (the adding problem): u is the value,
    every other feature 0. Symbols in: u times w, the average of the symbols' input vectors
    (the one-hot or embedding table's rows) scaled to unit length, the scalar-input variant."""
    if sig.symbols is None:
        xs = np.zeros((len(u), sig.features))
        xs[:, 0] = u[:, 0]
        return xs
    names = {layer.name: layer for layer in model.layers}
    table = next(names[n] for n in ("one_hot", "embedding") if n in names).get_weights()[0]
    w = np.asarray(table[1:], dtype=np.float64).mean(axis=0)
    return u * (w / max(np.linalg.norm(w), 1e-12))


def model_states(model, sig) -> Callable[[np.ndarray], np.ndarray]:
    """states(u) of a trained model's recurrent layer, recomputed in numpy (models/cells.py)."""
    from echo_cli.models.cells import Cell

    cell = Cell.of(model)

    def run(u: np.ndarray) -> np.ndarray:
        return cell.run(scalar_inputs(model, sig, u)[None]).h[0]

    return run


def run_capacity(run, *, scale: float = 0.8, k_max: int | None = None, seed: int = 1,
                 lam: float = RIDGE) -> Capacity:
    """MC of a trained run's model (analysis.trained.TrainedRun), k = 1 .. 2N by default."""
    states = model_states(run.model, run.cfg.signature)
    width = states(np.zeros((2, 1))).shape[1]
    return memory_capacity(states, k_max=k_max or 2 * width, scale=scale, seed=seed, lam=lam,
                           bound=width)


def eigen_curve(model, k_max: int) -> dict[str, list[float]] | None:
    """For a model with a diagonal linear recurrence (the LRU): the decay of its state's memory
    of u(t−k) that its eigenvalues allow, squared as r² is, k = 1 .. k_max: the mean of
    |λ_j|^(2k), and the slowest mode's |λ|^(2k); None for the other kinds."""
    from echo_cli.models.cells import Cell

    eigenvalues = getattr(Cell.of(model), "eigenvalues", None)
    moduli = eigenvalues() if callable(eigenvalues) else None
    if moduli is None or len(moduli) == 0:
        return None
    moduli = np.abs(np.asarray(moduli))
    ks = range(1, k_max + 1)
    return {"mean |λ|^2k": [float(np.mean(moduli ** (2 * k))) for k in ks],
            "slowest |λ|^2k": [float(moduli.max() ** (2 * k)) for k in ks]}
