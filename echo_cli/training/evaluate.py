"""Prediction and held-out evaluation, shared by training, `predict` and `stream`.

    heldout = evaluate(model, cfg)                     # fresh sequences of the held-out seed
    outputs = Predictor(model, cfg, sequences=7)(x)    # model-ready x: (7, rows, ...)
    validator = Validator(model, cfg); validator.check(row)   # a train target, if set

The task generates and scores its sequences (tasks/<name>.py); this module feeds the model.
A stateful model is reset at the start of every sequence and fed its batches in order, exactly
as in training. Everything returned is plain.
"""

from __future__ import annotations

import math

import numpy as np

from echo_cli.config import limits
from echo_cli.config.schema import Config
from echo_cli.models import factory
from echo_cli.models.keras_internals import jax_stateful_steps
from echo_cli.tasks.base import Heldout
from echo_cli.training import signals, warm

EVAL_CHUNK = limits.EVAL_CHUNK  # held-out sequences predicted side by side, at most


def backend() -> str:
    import keras

    return keras.backend.backend()


class Predictor:
    """The model's outputs for model-ready inputs x: (N, rows, ...), reset per sequence.

    A stateless model predicts every row at once. A stateful model is copied to a batch of
    chunk * batch_size, so that sequences run side by side: slot i of every step continues
    slot i of the step before, exactly as in training. The copy is built once and takes the
    model's current weights at every call. `chunk` is how many sequences to hand it at once.
    """

    def __init__(self, model, cfg: Config, *, sequences: int):
        self.model, self.cfg = model, cfg
        self.chunk = min(sequences, EVAL_CHUNK, limits.eval_chunk(cfg, sequences))
        self.runner = (factory.with_batch(model, cfg.signature, cfg.model, seed=cfg.seed,
                                          batch_size=self.chunk * cfg.train.batch_size)
                       if cfg.model.stateful else None)
        self._jax_steps = (jax_stateful_steps(self.runner)
                           if self.runner is not None and backend() == "jax" else None)

    def _run_steps(self, steps: np.ndarray) -> np.ndarray:
        """Outputs for consecutive batches (steps, chunk*batch, ...) from a zero state."""
        if self._jax_steps is not None:
            return self._jax_steps(steps)
        factory.reset_states(self.runner)
        outs = [self.runner.predict_on_batch(step) for step in steps]
        factory.reset_states(self.runner)
        return np.stack(outs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The outputs, (N, rows, ...): softmax vectors, or numbers."""
        signals.check()
        if self.runner is None:
            out = self.model.predict(x.reshape(-1, *x.shape[2:]),
                                     batch_size=limits.predict_batch(self.cfg), verbose=0)
            return out.reshape(*x.shape[:2], *out.shape[1:])
        self.runner.set_weights(self.model.get_weights())
        return np.concatenate([self._stateful(x[start : start + self.chunk])
                               for start in range(0, len(x), self.chunk)])

    def _stateful(self, part: np.ndarray) -> np.ndarray:
        signals.check()
        batch, chunk = self.cfg.train.batch_size, self.chunk
        real, rows, rest = len(part), part.shape[1], part.shape[2:]
        if real < chunk:  # pad with empty sequences to the runner's fixed batch
            part = np.concatenate([part, np.zeros((chunk - real, rows, *rest), part.dtype)])
        # (chunk, rows) -> steps of (chunk * batch): slot (s, i) is row j*batch+i of s
        stepped = np.swapaxes(part.reshape(chunk, rows // batch, batch, *rest), 0, 1)
        outs = self._run_steps(stepped.reshape(rows // batch, chunk * batch, *rest))
        tail = outs.shape[2:]
        out = outs.reshape(rows // batch, chunk, batch, *tail)
        out = np.swapaxes(out, 0, 1).reshape(chunk, rows, *tail)
        return out[:real]


def predictor(model, cfg: Config, sequences: int) -> Predictor:
    """A Predictor of the model for `sequences` at once; a model a sweep worker keeps for its
    runs (warm.py) keeps its predictors too, compiled once."""
    made_for = (sequences, limits.eval_chunk(cfg, sequences), limits.predict_batch(cfg))
    found = warm.predictor(model, made_for, lambda: Predictor(model, cfg, sequences=sequences))
    found.cfg = cfg
    return found


def predictor_for(model, cfg: Config):
    """sequences -> Predictor: what a task's evaluate asks for, once it knows how many."""
    return lambda sequences: predictor(model, cfg, sequences)


def evaluate(model, cfg: Config, *, dataset=None, predictors=None) -> Heldout:
    """Score the model on eval.sequences fresh sequences from the held-out seed stream (or, for
    CSV data, the file's held-out part), chunk by chunk, with a stop check between chunks.
    predictors: sequences -> Predictor of this model, to share one (and its compiled step)
    between the seeds of train.seeds; default: a new one.

    Raises:
        signals.StopRequested: a stop signal arrived; nothing is scored.
    """
    predictors = predictors or predictor_for(model, cfg)
    return cfg.task.evaluate(cfg, predictors, stream="heldout",
                             count=cfg.eval.sequences, dataset=dataset,
                             examples=cfg.eval.examples)


def evaluate_lengths(model, cfg: Config) -> dict[str, dict]:
    """The model's weights in a model built for each of eval.lengths, scored on fresh held-out
    sequences of that length, without retraining.

    Returns:
        {length: {"steps", "accuracy", "correct", "targets", "ci95_low", "ci95_high", "loss",
        "sequences"}}, the length as the task's horizon key counts it (its T).
    """
    from echo_cli.config.loading import derive

    scores = {}
    for length in cfg.eval.lengths or []:
        at = derive(cfg, cfg.task.at_length(cfg, length), source=f"eval.lengths {length}")
        longer = factory.build_model(at.signature, at.model, seed=at.seed)
        longer.set_weights(model.get_weights())
        held = at.task.evaluate(at, predictor_for(longer, at), stream="heldout",
                                count=at.eval.sequences)
        scores[str(length)] = {"steps": at.steps, "accuracy": held.accuracy,
                               "correct": held.correct, "targets": held.targets,
                               "ci95_low": held.ci95_low, "ci95_high": held.ci95_high,
                               "loss": held.loss, "sequences": held.sequences}
    return scores


class Validator:
    """A run's validation set (its own seed stream) and its stop rule: stop once the accuracy
    figure reaches train.target_accuracy or the loss falls to train.target_loss."""

    def __init__(self, model, cfg: Config, *, predictor: Predictor | None = None):
        """predictor: one to share (the seeds of train.seeds share one); default: built at
        the first check."""
        self.model, self.cfg = model, cfg
        t = cfg.train
        self.active = t.target_accuracy is not None or t.target_loss is not None
        self._predictor = predictor

    def due(self, epoch: int) -> bool:
        return self.active and epoch % self.cfg.train.validate_every == 0

    def check(self, row: dict[str, float]) -> bool:
        """Add the validation figures to an epoch's row; True once a target is reached."""
        cfg, t = self.cfg, self.cfg.train

        def validation(sequences: int):
            if self._predictor is None:  # built once: a stateful copy costs a model build
                self._predictor = predictor(self.model, cfg, sequences)
            return self._predictor

        scores = cfg.task.evaluate(cfg, validation, stream="validation",
                                   count=cfg.eval.validation_sequences)
        row.update(cfg.task.validation_row(scores))
        return ((t.target_accuracy is not None
                 and row.get("validation_accuracy", -math.inf) >= t.target_accuracy)
                or (t.target_loss is not None
                    and row.get("validation_loss", math.inf) <= t.target_loss))
