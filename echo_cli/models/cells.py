"""A trained recurrent layer, recomputed step by step in numpy: its state and its gates.

    cell = Cell.of(model)                       # the LSTM, GRU or SimpleRNN layer's weights,
                                                # or the lru, s6 or esn blocks (Blocks)
    xs, mask = cell.inputs(model, ids)          # what the layer reads (one-hot, embedding)
    trace = cell.run(xs, mask=mask)             # trace.h, trace.c, trace.gates["forget"], ...

This is the only place that knows how each Keras cell lays out its weights and gates:
- LSTM: kernel (d, 4u) and recurrent kernel (u, 4u), gates in the order input, forget, cell,
  output; c = f·c + i·tanh(zc), h = o·tanh(c).
- GRU (reset_after, Keras 3's default): kernel (d, 3u), recurrent kernel (u, 3u), bias (2, 3u)
  for inputs and state; gates update z, reset r; h = z·h + (1 - z)·tanh(xh + r·(h·Uh + bh)).
- SimpleRNN: h = tanh(x·W + h·U + b).
A masked step (missing input) leaves the state as it was, as Keras does. tests/test_cells.py
checks the recomputed states against Keras's own outputs to 1e-5. The lru, s6 and esn kinds
recompute their blocks in their own modules (`recompute`), whose states Blocks reports as a
Trace: for lru each block's complex state, real parts then imaginary; for s6 each block's state
summed over its N entries per channel, and the gate `keep`; for esn the reservoir's state
(tests/test_modern_kinds.py). Keras is not imported here: the model's layers are read through
their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from echo_cli.models import esn, lru, s6

GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("update", "reset", "candidate"),
         "simple_rnn": (), "lru": (), "s6": ("keep",), "esn": ()}
KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}
BLOCKS = {"LRUBlock": "lru", "S6Block": "s6", "Reservoir": "esn"}  # their layers' classes
RECOMPUTE = {"lru": lru.recompute, "s6": s6.recompute, "esn": esn.recompute}
EIGENVALUES = {"lru": lru.eigenvalues}  # kinds whose memory their eigenvalues show


class NotRecurrentError(ValueError):
    """A model with no recurrent layer: nothing carries state."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow


ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0),
               "linear": lambda z: z}


@dataclass
class Trace:
    """A run of the cell over (batch, steps): the state after every step, and the gates.

    h, c: (batch, steps, units); c is None for GRU and SimpleRNN. gates: name -> (batch,
    steps, units), in the cell's own order (GATES).
    """

    h: np.ndarray
    c: np.ndarray | None
    gates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    kind: str  # lstm | gru | simple_rnn
    units: int
    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"

    @staticmethod
    def of(model) -> Cell | Blocks:
        """The model's recurrent layer (LSTM, GRU or SimpleRNN) as a Cell, or its lru, s6 or
        esn blocks as Blocks.

        Raises:
            NotRecurrentError: the model has none.
        """
        layer = next((lay for lay in model.layers if type(lay).__name__ in KINDS), None)
        if layer is None:
            block = next((lay for lay in model.layers if type(lay).__name__ in BLOCKS), None)
            if block is not None:
                return Blocks(kind=BLOCKS[type(block).__name__], model=model)
            raise NotRecurrentError("the model has no recurrent layer")
        kind = KINDS[type(layer).__name__]
        cell = layer.cell
        if kind == "gru" and not cell.reset_after:
            raise NotRecurrentError("GRU with reset_after=False is not supported")
        kernel, recurrent, *rest = [np.asarray(w, dtype=np.float64) for w in cell.get_weights()]
        units = recurrent.shape[0]
        width = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind] * units
        bias = rest[0] if rest else np.zeros((2, width) if kind == "gru" else width)
        recurrent_activation = getattr(cell, "recurrent_activation", None)
        return Cell(kind=kind, units=units, kernel=kernel, recurrent=recurrent, bias=bias,
                    activation=cell.activation.__name__,
                    recurrent_activation=(recurrent_activation.__name__
                                          if recurrent_activation is not None else "sigmoid"))

    @staticmethod
    def inputs(model, ids: np.ndarray | None = None, numbers: np.ndarray | None = None,
               *, masked: bool) -> tuple[np.ndarray, np.ndarray]:
        """What the recurrent layer reads, from ids (-1 missing) through the model's one-hot
        or embedding table, or from the adding problem's numbers as they are.

        Returns:
            (xs (..., steps, width), mask (..., steps) True where the step is read).
        """
        if numbers is not None:
            return np.asarray(numbers, dtype=np.float64), np.ones(numbers.shape[:-1], bool)
        names = {layer.name: layer for layer in model.layers}
        table = next(names[n] for n in ("one_hot", "embedding") if n in names).get_weights()[0]
        ids = np.asarray(ids)
        xs = np.asarray(table, dtype=np.float64)[ids + 1]
        mask = (ids >= 0) if masked else np.ones(ids.shape, bool)
        return xs, mask

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray | None):
        """One step for a batch: x (batch, width), h (batch, units). Returns (h, c, gates)."""
        act = ACTIVATIONS[self.activation]
        gate = ACTIVATIONS[self.recurrent_activation]
        u = self.units
        if self.kind == "lstm":
            z = x @ self.kernel + h @ self.recurrent + self.bias
            i, f, zc, o = (z[:, k * u : (k + 1) * u] for k in range(4))
            i, f, o = gate(i), gate(f), gate(o)
            cand = act(zc)
            c = f * c + i * cand
            h = o * act(c)
            return h, c, {"input": i, "forget": f, "cell": cand, "output": o}
        if self.kind == "gru":
            mx = x @ self.kernel + self.bias[0]
            mh = h @ self.recurrent + self.bias[1]
            zg = gate(mx[:, :u] + mh[:, :u])
            r = gate(mx[:, u : 2 * u] + mh[:, u : 2 * u])
            cand = act(mx[:, 2 * u :] + r * mh[:, 2 * u :])
            h = zg * h + (1.0 - zg) * cand
            return h, None, {"update": zg, "reset": r, "candidate": cand}
        h = act(x @ self.kernel + h @ self.recurrent + self.bias)
        return h, None, {}

    def run(self, xs: np.ndarray, *, mask: np.ndarray | None = None,
            h0: np.ndarray | None = None, c0: np.ndarray | None = None) -> Trace:
        """Run over xs (batch, steps, width) from h0, c0 (zeros by default); a masked step
        keeps the state (and reports the gates it would have had)."""
        batch, steps, _ = xs.shape
        h = np.zeros((batch, self.units)) if h0 is None else np.array(h0, dtype=np.float64)
        c = None
        if self.kind == "lstm":
            c = np.zeros((batch, self.units)) if c0 is None else np.array(c0, dtype=np.float64)
        mask = np.ones((batch, steps), bool) if mask is None else mask
        hs, cs = np.zeros((batch, steps, self.units)), np.zeros((batch, steps, self.units))
        gates = {name: np.zeros((batch, steps, self.units)) for name in GATES[self.kind]}
        for t in range(steps):
            h_new, c_new, g = self.step(xs[:, t], h, c)
            keep = mask[:, t][:, None]
            h = np.where(keep, h_new, h)
            if c is not None:
                c = np.where(keep, c_new, c)
                cs[:, t] = c
            hs[:, t] = h
            for name, value in g.items():
                gates[name][:, t] = value
        return Trace(h=hs, c=cs if self.kind == "lstm" else None, gates=gates)


@dataclass(frozen=True)
class Blocks:
    """The lru, s6 or esn layers of a model, recomputed in numpy by their kind's module, with
    a Cell's `inputs` and `run`. They carry no state from batch to batch and skip no steps."""

    kind: str  # lru | s6 | esn
    model: Any
    inputs = staticmethod(Cell.inputs)

    def run(self, xs: np.ndarray, *, mask: np.ndarray | None = None,
            h0: np.ndarray | None = None, c0: np.ndarray | None = None) -> Trace:
        """Run over xs (batch, steps, width), what the kind reads, from zeros: h is every
        block's state side by side (the module docs say what each holds)."""
        if h0 is not None or c0 is not None:
            raise ValueError(f"{self.kind} starts every sequence from zeros")
        if mask is not None and not np.all(mask):
            raise ValueError(f"{self.kind} reads every step; it cannot skip masked ones")
        found = RECOMPUTE[self.kind](self.model, xs)
        return Trace(h=np.concatenate(found.states, axis=-1), c=None, gates=found.gates)

    def eigenvalues(self) -> np.ndarray | None:
        """The eigenvalues of a diagonal linear recurrence (lru), or None."""
        find = EIGENVALUES.get(self.kind)
        return None if find is None else find(self.model)


@dataclass
class States:
    """The state at each column t of each sequence, and what the network read there.

    t: (cols,) the step of each column. trace: h, c, gates as (N, cols, units).
    values: (N, length) what the sequence holds at every step (ids, or the adding problem's
    values), so that X(t-k) can be looked up for any column.
    """

    t: np.ndarray
    trace: Trace
    values: np.ndarray


def columns(trace: Trace, steps: np.ndarray) -> Trace:
    """The trace at some steps only."""
    return Trace(h=trace.h[:, steps], c=None if trace.c is None else trace.c[:, steps],
                 gates={k: v[:, steps] for k, v in trace.gates.items()})


def stack(traces: list[Trace]) -> Trace:
    """Traces of single columns side by side, in order."""
    return Trace(h=np.concatenate([tr.h for tr in traces], axis=1),
                 c=None if traces[0].c is None else np.concatenate([tr.c for tr in traces],
                                                                   axis=1),
                 gates={k: np.concatenate([tr.gates[k] for tr in traces], axis=1)
                        for k in traces[0].gates})


def whole_sequences(model, seqs: np.ndarray, *, numbers: bool) -> Trace:
    """The recurrent layer run over whole sequences step by step, from zeros: ids (N, T), or
    numbers (N, T, features)."""
    cell = Cell.of(model)
    xs, mask = (Cell.inputs(model, numbers=seqs, masked=False) if numbers
                else Cell.inputs(model, seqs, masked=False))
    return cell.run(xs, mask=mask)
