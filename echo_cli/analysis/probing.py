"""What a trained recurrent network holds: its state over a sequence, fed exactly as in
training, and linear read-outs of X(t-k) from that state (a memory curve).

    states = column_states(model, cfg, seqs)        # the state at every t of every sequence
    curve = memory_curve(model, cfg, sequences=200, max_lag=24)
    curve[1].accuracy                               # X(t-1) read from the state at t

How the state at t is made follows the config, as training made it:
- a window (the tutorial's framing): the state at the end of the window that ends at X(t); a
  stateful model starts that window from the state the window `batch_size` rows earlier left
  (Keras carries state from sample i of a batch to sample i of the next), a stateless one from
  zeros;
- the whole sequence so far (context: full, and configs/stream.yaml): one number at a time,
  masked padding leaving the state at zero;
- copy memory and the adding problem: one step at a time through the whole sequence.

For copy memory the probes ask only about the symbols to remember (X(t-k) in 1..8), not the
blanks and markers that fill most steps. The read-out is ridge regression, closed form, on
one-hot targets (argmax to predict), with
ridge λ = 1 and a bias; for the adding problem's real values it is the same regression scored
by R². Probes are fitted on states of the validation stream and scored on the held-out stream,
so a probe is never scored on what it was fitted to. This module imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echo_cli.config.schema import Config
from echo_cli.models.cells import States
from echo_cli.training import signals

RIDGE = 1.0


def column_states(model, cfg: Config, seqs: np.ndarray) -> States:
    """Run the network's recurrent layer over each sequence, as in training (the task says
    how: module docs)."""
    return cfg.task.state_columns(model, cfg, seqs)


# ---------------------------------------------------------------------------------------------
# linear probes: how far back the state remembers

@dataclass
class Probe:
    k: int
    accuracy: float  # share of X(t-k) read right (R² for the adding problem's values)
    chance: float  # the most common X(t-k) guessed every time (0 for R²)
    fitted: int  # (state, X(t-k)) pairs the read-out was fitted on, from the validation stream
    scored: int  # pairs it was scored on, from the held-out stream


def pairs(states: States, k: int, *, keep=None) -> tuple[np.ndarray, ...]:
    """(state at t, X(t-k)) for every column with t - k ≥ 0: (pairs, units), (pairs,).
    keep(y): which X(t-k) to ask about (copy memory: only the symbols to remember, not the
    blanks and markers that fill most steps), or None for all of them."""
    columns = states.t - k >= 0
    h = states.trace.h[:, columns].reshape(-1, states.trace.h.shape[-1])
    y = states.values[:, states.t[columns] - k].reshape(-1)
    chosen = keep(y) if keep is not None else None
    if chosen is not None:
        h, y = h[chosen], y[chosen]
    return h, y


def fit(h: np.ndarray, y: np.ndarray, *, classes: int | None) -> np.ndarray:
    """Ridge read-out weights (units + 1, classes), or (units + 1, 1) for real values."""
    features = np.hstack([h, np.ones((len(h), 1))])
    targets = (np.eye(classes)[y] if classes else y[:, None]).astype(np.float64)
    gram = features.T @ features + RIDGE * np.eye(features.shape[1])
    return np.linalg.solve(gram, features.T @ targets)


def score(weights: np.ndarray, h: np.ndarray, y: np.ndarray, *, classes: int | None) -> float:
    """Accuracy of argmax (classes), or R² (real values), on held-out pairs."""
    out = np.hstack([h, np.ones((len(h), 1))]) @ weights
    if classes:
        return float((out.argmax(axis=1) == y).mean())
    residual = ((out[:, 0] - y) ** 2).sum()
    return float(1.0 - residual / max(((y - y.mean()) ** 2).sum(), 1e-12))


def memory_curve(model, cfg: Config, *, sequences_each: int, max_lag: int) -> list[Probe]:
    """Probes of X(t-k) for k = 0 .. max_lag, fitted on fresh validation sequences and scored
    on fresh held-out ones."""
    task = cfg.task
    fit_states = column_states(model, cfg, task.sequences(cfg, "validation", sequences_each))
    test_states = column_states(model, cfg, task.sequences(cfg, "heldout", sequences_each))
    classes = task.probe_classes(cfg)
    curve = []
    for k in range(max_lag + 1):
        signals.check()
        h_fit, y_fit = pairs(fit_states, k, keep=task.probe_keep)
        h_test, y_test = pairs(test_states, k, keep=task.probe_keep)
        if not len(y_fit) or not len(y_test):
            break
        weights = fit(h_fit, y_fit, classes=classes)
        chance = (float(np.bincount(y_test.astype(int)).max() / len(y_test)) if classes
                  else 0.0)
        curve.append(Probe(k=k, accuracy=score(weights, h_test, y_test, classes=classes),
                           chance=chance, fitted=len(y_fit), scored=len(y_test)))
    return curve


def fades_at(curve: list[Probe]) -> int | None:
    """The first k whose probe falls below twice chance (None if none does)."""
    return next((p.k for p in curve if p.accuracy < 2 * p.chance), None)


# ---------------------------------------------------------------------------------------------
# one sequence, for state.png

@dataclass
class Picture:
    """What state.png draws: columns t, the input read at each, the panels, a mark and a span."""

    t: list[int]
    labels: list[str]
    panels: list[tuple[str, np.ndarray, tuple[float, float]]]
    mark: tuple[int, str] | None
    shade: tuple[int, int, str] | None
    origin: str


def picture(model, cfg: Config, seq: np.ndarray, *, origin: str) -> Picture:
    """The state and gates over one sequence (ids, or the adding problem's (T, 2) numbers),
    with what the task marks on it."""
    states = column_states(model, cfg, seq[None])
    tr, t = states.trace, states.t
    labels, mark, shade = cfg.task.picture(cfg, seq, t)
    panels = [("hidden h", tr.h[0].T, (-1.0, 1.0))]
    if tr.c is not None:
        top = float(max(np.abs(tr.c).max(), 1e-6))
        panels.append(("cell c", tr.c[0].T, (-top, top)))
    for name, values in tr.gates.items():
        if name not in ("cell", "candidate"):  # the candidate is what the cell state takes in
            panels.append((f"{name} gate", values[0].T, (0.0, 1.0)))
    return Picture(t=[int(x) for x in t], labels=labels, panels=panels, mark=mark, shade=shade,
                   origin=origin)
