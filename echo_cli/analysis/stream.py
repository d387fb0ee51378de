"""A trained run fed one number at a time, its state carried: `echo-cli stream`.

    streamer = Streamer(run); streamer.push(3)     # None (no echo yet), then (id, probability)
    stream_accuracy(run, sequences=100)            # held-out sequences, never seen whole

The task says whether its model can stream and how (tasks.base.Task.stream_plan): the same
layers and weights, one timestep at a time, with the state carried explicitly through a
stateless forward pass, which works the same on every backend (Keras's own JAX predict would
drop a stateful layer's state). The step, echo included, is one compiled function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from echo_cli.analysis.trained import RunError, TrainedRun
from echo_cli.config.loading import derive
from echo_cli.models import factory
from echo_cli.models.base import model_ids
from echo_cli.models.keras_internals import rnn_state_variables, stateless_forward
from echo_cli.stats import wilson_interval
from echo_cli.store import rundir


class Streamer:
    """Feeds one number per sequence at a time through a one-step copy of the model.

    The copy has the same weights, one timestep and a fixed batch (1 for a live stream; many
    sequences side by side for scoring, each on its own state). The step is one compiled
    function (jax.jit, or tf.function on TensorFlow), so a pipe streams thousands of numbers a
    second; compiled=False runs it op by op, as a check.
    """

    def __init__(self, run: TrainedRun, *, batch_size: int = 1, compiled: bool = True):
        problem = run.cfg.task.stream_problem(run.cfg)
        if problem:
            raise RunError(problem)
        self.plan = run.cfg.task.stream_plan(run.cfg)
        self.lag = self.plan.lag
        cfg = derive(run.cfg, self.plan.updates, source=f"{run.path / rundir.CONFIG}")
        self.run, self.batch_size = run, batch_size
        self.model = factory.build_model(cfg.signature, cfg.model, seed=cfg.seed,
                                         batch_size=batch_size)
        self.model.set_weights(run.model.get_weights())
        forward = stateless_forward(self.model)
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]

        def one_step(states, x):
            import keras

            y, states, _ = forward(trainable, non_trainable, states, x, False)
            probs = y[:, -1]
            return (keras.ops.argmax(probs, axis=-1), keras.ops.max(probs, axis=-1)), states

        # the weights are constants of the compiled step: only the state and X(t) go in
        self._step = compile_function(one_step) if compiled else one_step
        self.reset()

    def reset(self) -> None:
        """Start new sequences: zero state, nothing seen."""
        import keras

        self.states = [keras.ops.zeros(v.shape, v.dtype)
                       for v in rnn_state_variables(self.model)]
        self.seen = 0

    def step(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Feed X(t) of every sequence, (batch,) ids. Returns (echoed ids, their
        probabilities), or None while no echo exists yet."""
        x = model_ids(np.asarray(values).reshape(self.batch_size, 1))
        out, self.states = self._step(self.states, x)
        self.seen += 1
        if self.seen <= self.lag:
            return None
        return np.asarray(out[0]), np.asarray(out[1])

    def push(self, value: int) -> tuple[int, float] | None:
        """One number of a live stream (batch 1)."""
        out = self.step(np.array([value]))
        return None if out is None else (int(out[0][0]), float(out[1][0]))


def compile_function(fn):
    """fn as one compiled program on the running backend: jax.jit or tf.function."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def stream_accuracy(run: TrainedRun, *, sequences: int, dataset=None) -> dict[str, Any]:
    """Stream held-out sequences one number at a time (fresh ones of the held-out seed, or a
    file's held-out part); score every echo.

    The sequences run side by side, each on its own state, and are never seen whole.
    """
    cfg = run.cfg
    seqs = (dataset.heldout[:sequences] if dataset is not None
            else cfg.task.sequences(cfg, "heldout", sequences))
    streamer = Streamer(run, batch_size=len(seqs))
    correct = total = 0
    for t in range(seqs.shape[1]):
        out = streamer.step(seqs[:, t])
        if out is not None:
            correct += int((out[0] == seqs[:, t - streamer.lag]).sum())
            total += len(seqs)
    low, high = wilson_interval(correct, total)
    return {"sequences": len(seqs), "targets": total, "correct": correct,
            "accuracy": correct / total, "ci95_low": low, "ci95_high": high,
            "chance_accuracy": cfg.chance_accuracy}
