"""Prediction and held-out evaluation, shared by training, `predict` and `stream`.

    heldout = evaluate(model, cfg)                     # fresh sequences of the held-out seed
    predicted, probability = Predictor(model, cfg, sequences=7)(framed.x)
    validator = Validator(model, cfg); validator.check(row)   # a train target, if set

A stateful model is reset at the start of every sequence and fed its batches in order, exactly
as in training. Every task is scored on fresh data from its own seed stream: the loss beside
the task's baseline, and its accuracy figure beside chance. Everything returned is plain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from echo_cli import tasks
from echo_cli.config import limits
from echo_cli.config.loading import Config
from echo_cli.models import factory as models
from echo_cli.models.keras_internals import jax_stateful_steps
from echo_cli.stats import wilson_interval
from echo_cli.tasks.framing import Dataset, Framed, frame, generate_sequences, stream_rng
from echo_cli.training import signals

MEMORY_CHUNK = 250  # memory-task sequences predicted at once

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
    """Held-out figures: the task's accuracy figure (the echo's accuracy, the recalled
    symbols, or the sums within 0.04) with its counts and interval, and the mean loss."""

    accuracy: float
    correct: int
    targets: int
    ci95_low: float
    ci95_high: float
    sequences: int
    loss: float | None = None
    unscored: int = 0
    exact_match: float | None = None
    per_position: list[float | None] | None = None
    examples: list[Any] = field(default_factory=list)  # Example (echo), or dicts (memory)


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
        outputs = self.outputs(x)
        return outputs.argmax(axis=-1), outputs.max(axis=-1)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The softmax outputs, (N, rows, n) or (N, rows, steps, n)."""
        n, rows, steps = x.shape
        batch, chunk = self.cfg.train.batch_size, self.chunk
        results = []
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
            results.append(out)
        return np.concatenate(results)


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
    """Score the model on eval.sequences fresh sequences from the held-out seed stream (or, for
    CSV data, the file's held-out part), chunk by chunk, with a stop check between chunks.

    Raises:
        signals.StopRequested: a stop signal arrived; nothing is scored.
    """
    if cfg.data.task != "echo":
        return evaluate_memory(model, cfg)
    if dataset is None:
        seqs = generate_sequences(stream_rng(cfg.seed, "heldout"), count=cfg.eval.sequences,
                                  length=cfg.data.length, n_unique=cfg.data.n_unique)
    else:
        seqs = dataset.heldout
    predictor = Predictor(model, cfg, sequences=len(seqs))
    correct = targets = unscored = exact = 0
    loss = 0.0
    position_hits = position_counts = 0
    examples: list[Example] = []
    for start in range(0, len(seqs), predictor.chunk):
        part = seqs[start : start + predictor.chunk]
        framed = frame(part, cfg.framing)
        outputs = predictor.outputs(framed.x)
        pred = outputs.argmax(axis=-1)
        scored = framed.y >= 0
        picked = np.take_along_axis(outputs, np.maximum(framed.y, 0)[..., None], axis=-1)[..., 0]
        loss += float(-np.log(np.clip(picked[scored], 1e-7, 1.0)).sum())
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
                      ci95_low=low, ci95_high=high, sequences=len(seqs), loss=loss / targets,
                      examples=examples)
    if cfg.data.target == "sequence":
        rows = len(frame(seqs[:1], cfg.framing).t)
        heldout.unscored = unscored
        heldout.exact_match = exact / (len(seqs) * rows)
        heldout.per_position = [float(h / c) if c else None
                                for h, c in zip(position_hits, position_counts, strict=True)]
    return heldout


# ---------------------------------------------------------------------------------------------
# copy memory and the adding problem: batches of independent sequences

def task_batch(cfg: Config, rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    """count fresh samples of a memory task, model-ready: (x, y, w)."""
    d = cfg.data
    if d.task == "copy":
        x, y = tasks.copy_memory(rng, count=count, delay=d.delay, recall=d.recall)
        return models.model_input(x), y.astype(np.int32), np.ones(y.shape, np.float32)
    x, y = tasks.adding(rng, count=count, length=d.length)
    return x, y[:, None], np.ones((count, 1), np.float32)


def memory_scores(model, cfg: Config, rng: np.random.Generator, count: int, *,
                  examples: int = 0) -> dict[str, Any]:
    """Score `count` fresh sequences of a memory task, chunk by chunk.

    Returns:
        loss (mean cross-entropy over every step, or mean squared error), correct and targets
        (recalled symbols, or sums within the tolerance), and `examples` decoded samples.
    """
    sums = {"loss_sum": 0.0, "loss_count": 0, "correct": 0, "targets": 0}
    shown: list[dict[str, Any]] = []
    for start in range(0, count, MEMORY_CHUNK):
        signals.check()
        x, y, _ = task_batch(cfg, rng, min(MEMORY_CHUNK, count - start))
        out = np.asarray(model.predict(x, batch_size=MEMORY_CHUNK, verbose=0))
        if cfg.data.task == "copy":
            part = tasks.copy_scores(out, y, recall=cfg.data.recall)
            recall = cfg.data.recall
            shown += [{"symbols": y[i, -recall:].tolist(),
                       "recalled": out[i, -recall:].argmax(-1).tolist()}
                      for i in range(min(examples - len(shown), len(y)))]
        else:
            part = tasks.adding_scores(out, y[:, 0])
            shown += [{"marked": x[i, x[i, :, 1] > 0, 0].tolist(), "sum": float(y[i, 0]),
                       "predicted": float(out[i, 0])}
                      for i in range(min(examples - len(shown), len(y)))]
        sums = {k: sums[k] + part[k] for k in sums}
    return {"loss": sums["loss_sum"] / sums["loss_count"], "correct": sums["correct"],
            "targets": sums["targets"], "examples": shown}


def evaluate_memory(model, cfg: Config) -> Heldout:
    """Held-out loss and accuracy figure of a memory task on eval.sequences fresh sequences."""
    scores = memory_scores(model, cfg, stream_rng(cfg.seed, "heldout"), cfg.eval.sequences,
                           examples=cfg.eval.examples)
    low, high = wilson_interval(scores["correct"], scores["targets"])
    return Heldout(accuracy=scores["correct"] / scores["targets"], correct=scores["correct"],
                   targets=scores["targets"], ci95_low=low, ci95_high=high,
                   sequences=cfg.eval.sequences, loss=scores["loss"],
                   examples=scores["examples"])


class Validator:
    """A run's fixed validation set (its own seed stream) and its stop rule: stop once the
    accuracy figure reaches train.target_accuracy or the loss falls to train.target_loss."""

    def __init__(self, model, cfg: Config):
        self.model, self.cfg = model, cfg
        t = cfg.train
        self.active = t.target_accuracy is not None or t.target_loss is not None
        if self.active and cfg.data.task == "echo":
            _, self.framed = fresh(cfg, "validation", cfg.eval.validation_sequences)
            self.predictor = Predictor(model, cfg, sequences=cfg.eval.validation_sequences)

    def due(self, epoch: int) -> bool:
        return self.active and epoch % self.cfg.train.validate_every == 0

    def check(self, row: dict[str, float]) -> bool:
        """Add the validation figures to an epoch's row; True once a target is reached."""
        t = self.cfg.train
        if self.cfg.data.task == "echo":
            correct, total = accuracy(self.predictor(self.framed.x)[0], self.framed.y)
            row["validation_accuracy"] = correct / total
        else:
            scores = memory_scores(self.model, self.cfg,
                                   stream_rng(self.cfg.seed, "validation"),
                                   self.cfg.eval.validation_sequences)
            row["validation_loss"] = scores["loss"]
            if self.cfg.data.task == "copy":
                row["validation_accuracy"] = scores["correct"] / scores["targets"]
        return ((t.target_accuracy is not None
                 and row.get("validation_accuracy", -math.inf) >= t.target_accuracy)
                or (t.target_loss is not None
                    and row.get("validation_loss", math.inf) <= t.target_loss))
