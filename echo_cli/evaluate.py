"""Prediction and held-out evaluation, shared by training, `predict` and `stream`.

    heldout = evaluate(model, cfg)                     # fresh sequences of the held-out seed
    predicted, probability = Predictor(model, cfg, sequences=7)(framed.x)

A stateful model is reset at the start of every sequence and fed its batches in order, exactly
as in training. Everything returned is plain numbers and lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from echo_cli import limits, models, signals
from echo_cli.config import Config
from echo_cli.data import Dataset, Framed, frame, generate_sequences, stream_rng
from echo_cli.keras_internals import jax_stateful_steps
from echo_cli.stats import wilson_interval

EVAL_CHUNK = limits.EVAL_CHUNK  # held-out sequences predicted side by side, at most


@dataclass
class Example:
    """One decoded held-out sequence: inputs and, per row, expected and predicted ids."""

    sequence: list[int]
    t: list[int]
    expected: list  # ints, or lists of ints (-1 unscored) for sequence targets
    predicted: list


@dataclass
class Heldout:
    accuracy: float
    correct: int
    targets: int
    ci95_low: float
    ci95_high: float
    sequences: int
    unscored: int = 0
    exact_match: float | None = None
    per_position: list[float | None] | None = None
    examples: list[Example] = field(default_factory=list)


def backend() -> str:
    import keras

    return keras.backend.backend()


class Predictor:
    """Predicted ids for framed sequences x: (N, rows, timesteps), reset per sequence.

    A stateful model is copied to a batch of chunk * batch_size, so that sequences run side
    by side: slot i of every step continues slot i of the step before, exactly as in training.
    The copy is built once and takes the model's current weights at every call.
    """

    def __init__(self, model, cfg: Config, *, sequences: int):
        self.model, self.cfg = model, cfg
        self.chunk = min(sequences, EVAL_CHUNK, limits.eval_chunk(cfg, sequences))
        self.runner = (models.copy_with_batch(model, cfg, self.chunk * cfg.train.batch_size)
                       if cfg.model.stateful else None)
        self._jax_steps = (jax_stateful_steps(self.runner)
                           if self.runner is not None and backend() == "jax" else None)

    def _run_steps(self, steps: np.ndarray) -> np.ndarray:
        """Outputs for consecutive batches (steps, chunk*batch, ...) from a zero state."""
        if self._jax_steps is not None:
            return self._jax_steps(steps)
        models.reset_states(self.runner)
        outs = [self.runner.predict_on_batch(step) for step in steps]
        models.reset_states(self.runner)
        return np.stack(outs)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (predicted ids, their probabilities), each (N, rows) or (N, rows, steps)."""
        n, rows, steps = x.shape
        batch, chunk = self.cfg.train.batch_size, self.chunk
        preds, probs = [], []
        if self.runner is not None:
            self.runner.set_weights(self.model.get_weights())
        for start in range(0, n, chunk):
            signals.check()
            part = x[start : start + chunk]
            if self.runner is None:
                out = self.model.predict(models.model_input(part.reshape(-1, steps)),
                                         batch_size=1024, verbose=0)
                out = out.reshape(len(part), rows, *out.shape[1:])
            else:
                real = len(part)
                if real < chunk:  # pad with empty sequences to the runner's fixed batch
                    part = np.concatenate([part, np.full((chunk - real, rows, steps), -1)])
                # (chunk, rows) -> steps of (chunk * batch): slot (s, i) is row j*batch+i of s
                stepped = part.reshape(chunk, rows // batch, batch, steps).transpose(1, 0, 2, 3)
                outs = self._run_steps(
                    models.model_input(stepped.reshape(rows // batch, chunk * batch, steps)))
                tail = outs.shape[2:]
                out = outs.reshape(rows // batch, chunk, batch, *tail)
                out = out.transpose(1, 0, 2, *range(3, out.ndim)).reshape(chunk, rows, *tail)
                out = out[:real]
            preds.append(np.argmax(out, axis=-1))
            probs.append(np.max(out, axis=-1))
        return np.concatenate(preds), np.concatenate(probs)


def fresh(cfg: Config, stream: str, count: int) -> tuple[np.ndarray, Framed]:
    """count new sequences of one seed stream ("heldout", "validation"), and their framing."""
    seqs = generate_sequences(stream_rng(cfg.seed, stream), count=count,
                              length=cfg.data.length, n_unique=cfg.data.n_unique)
    return seqs, frame(seqs, cfg.framing)


def accuracy(pred: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """(correct, scored) over the scored targets (y ≥ 0)."""
    scored = y >= 0
    return int(((pred == y) & scored).sum()), int(scored.sum())


def evaluate(model, cfg: Config, *, dataset: Dataset | None = None) -> Heldout:
    """Accuracy on eval.sequences fresh sequences from the held-out seed stream, or on the
    held-out part of a CSV dataset. Sequences are framed and predicted chunk by chunk, with a
    stop check between chunks.

    Raises:
        signals.StopRequested: a stop signal arrived; nothing is scored.
    """
    if dataset is None:
        seqs = generate_sequences(stream_rng(cfg.seed, "heldout"), count=cfg.eval.sequences,
                                  length=cfg.data.length, n_unique=cfg.data.n_unique)
    else:
        seqs = dataset.heldout
    predictor = Predictor(model, cfg, sequences=len(seqs))
    correct = targets = unscored = exact = 0
    position_hits = position_counts = 0
    examples: list[Example] = []
    for start in range(0, len(seqs), predictor.chunk):
        part = seqs[start : start + predictor.chunk]
        framed = frame(part, cfg.framing)
        pred, _ = predictor(framed.x)
        scored = framed.y >= 0
        hits = (pred == framed.y) & scored
        correct, targets = correct + int(hits.sum()), targets + int(scored.sum())
        if cfg.data.target == "sequence":
            unscored += int((~scored).sum())
            exact += int((hits | ~scored).all(axis=-1).sum())
            position_hits = position_hits + hits.sum(axis=(0, 1))
            position_counts = position_counts + scored.sum(axis=(0, 1))
        for i in range(min(cfg.eval.examples - len(examples), len(part))):
            examples.append(Example(sequence=part[i].tolist(), t=framed.t.tolist(),
                                    expected=framed.y[i].tolist(),
                                    predicted=np.where(scored[i], pred[i], -1).tolist()))
    low, high = wilson_interval(correct, targets)
    heldout = Heldout(accuracy=correct / targets, correct=correct, targets=targets,
                      ci95_low=low, ci95_high=high, sequences=len(seqs), examples=examples)
    if cfg.data.target == "sequence":
        rows = len(frame(seqs[:1], cfg.framing).t)
        heldout.unscored = unscored
        heldout.exact_match = exact / (len(seqs) * rows)
        heldout.per_position = [float(h / c) if c else None
                                for h, c in zip(position_hits, position_counts, strict=True)]
    return heldout
