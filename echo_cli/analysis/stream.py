"""A trained run fed one number at a time, its state carried: `echo-cli stream`.

    streamer = Streamer(run); streamer.push(3)     # None (no echo yet), then (id, probability)
    streamer.feed([3, 1, 4])                       # what push would answer for each, at once
    answer_lines(streamer, ["3", "x", "4"])        # stdin lines to answer lines and notes
    stream_accuracy(run, sequences=100)            # held-out sequences, never seen whole

The task says whether its model can stream and how (tasks.base.Task.stream_plan): the same
layers and weights, one timestep at a time, with the state carried explicitly through a
stateless forward pass, which works the same on every backend (Keras's own JAX predict would
drop a stateful layer's state). The step, echo included, is one compiled function; a live
stream's chunk of numbers runs through one compiled loop over those steps, so that a pipe costs
one call per chunk, not per number, and gets exactly the answers of one number at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from echo_cli.analysis.trained import RunError, TrainedRun
from echo_cli.config.loading import derive
from echo_cli.errors import EchoError
from echo_cli.models import factory
from echo_cli.models.base import model_ids
from echo_cli.models.keras_internals import rnn_state_variables, stateless_forward
from echo_cli.output.report import printable
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
        weights = ([v.value for v in self.model.trainable_variables],
                   [v.value for v in self.model.non_trainable_variables])

        def one_step(weights, states, x):
            import keras

            y, states, _ = forward(*weights, states, x, False)
            probs = y[:, -1]
            return (keras.ops.argmax(probs, axis=-1), keras.ops.max(probs, axis=-1)), states

        # the weights are constants of the compiled step: only the state and X(t) go in. The
        # loop takes them as arguments, so its compiled program (in JAX's persistent cache)
        # serves every run of the same shapes.
        step = functools.partial(one_step, weights)
        self._step = compile_function(step) if compiled else step
        self._loop = functools.partial(compile_loop(one_step), weights) if compiled else None
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

    def feed(self, values) -> tuple[np.ndarray, np.ndarray]:
        """Many numbers of a live stream (batch 1) at once: what push would answer for each,
        from one compiled loop over the steps that carries the state.

        Args:
            values: (steps,) ids, in the order they arrived.

        Returns:
            (echoed ids, their probabilities) for the last steps that have an echo: all of
            them once lag numbers have been seen, as push would answer them one by one.
        """
        values = np.asarray(values).reshape(-1)
        if self.batch_size != 1:
            raise ValueError(f"feed takes one live stream (batch_size 1), not {self.batch_size}")
        if self._loop is None:  # op by op, as a check
            echoes = [self.push(int(v)) for v in values]
            kept = [e for e in echoes if e is not None]
            return (np.array([e[0] for e in kept], dtype=np.int64),
                    np.array([e[1] for e in kept], dtype=np.float32))
        outs = []
        for start in range(0, len(values), LOOP_STEPS):
            piece = values[start:start + LOOP_STEPS]
            xs = np.zeros((LOOP_STEPS, 1, 1), dtype=np.int32)  # one shape: one compile
            xs[:len(piece), 0, 0] = model_ids(piece)
            out, self.states = self._loop(self.states, xs, np.int32(len(piece)))
            outs.append((out, len(piece)))
        ids = np.concatenate([np.asarray(o[0])[:n, 0] for o, n in outs] or [np.zeros(0)])
        probs = np.concatenate([np.asarray(o[1])[:n, 0] for o, n in outs] or [np.zeros(0)])
        silent = max(0, min(len(values), self.lag - self.seen))  # steps with no echo yet
        self.seen += len(values)
        return ids[silent:].astype(np.int64), probs[silent:].astype(np.float32)


LOOP_STEPS = 1024  # the compiled loop's buffer: a chunk runs in pieces of at most this many


def answer_lines(streamer: Streamer, lines: list[str]) -> Iterator[tuple[str, bool]]:
    """What stream says for some lines of stdin, in order, as (text, is_note) pieces.

    Each run of good lines becomes one text of answers, one line per number (the echo, or -
    while none exists yet), from one compiled loop; a bad line (blank, not an integer, out of
    range) becomes a note for stderr in its place, and the stream goes on. Fed one line at a
    time or all at once, the lines get the same answers.
    """
    run = streamer.run
    tokens = [line.strip() for line in lines]
    try:  # the common case: every line good, checked in one call
        ids = run.encode(tokens) if all(tokens) else None
    except EchoError:
        ids = None
    if ids is not None:
        if ids:
            yield _answers(streamer, ids), False
        return
    good: list[int] = []
    for token in tokens:
        note = BLANK if not token else None
        if token:
            try:
                good += run.encode([token])
            except EchoError as err:
                note = f"skipped: {err}"
        if note is not None:
            if good:
                yield _answers(streamer, good), False
                good = []
            yield note, True
    if good:
        yield _answers(streamer, good), False


BLANK = "skipped a blank line; give one integer per line"


def _answers(streamer: Streamer, ids: list[int]) -> str:
    """The answer lines for ids fed in order, each ending in a newline."""
    echoed, _ = streamer.feed(np.array(ids))
    shown, where = np.unique(echoed, return_inverse=True)  # each value decoded once
    texts = np.array([printable(str(streamer.run.decode(int(i)))) for i in shown], dtype=object)
    return "-\n" * (len(ids) - len(echoed)) + "".join(f"{t}\n" for t in texts[where].tolist())


def compile_function(fn):
    """fn as one compiled program on the running backend: jax.jit or tf.function."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def compile_loop(one_step):
    """one_step(weights, states, x) -> ((ids, probs), states) run over the first n steps of
    xs (LOOP_STEPS, batch, 1) as one compiled loop that carries the state:
    loop(weights, states, xs, n) -> ((ids, probs), states), where ids and probs hold each
    step's answers in their first n rows, (≥ n, batch). One shape for every n, so it compiles
    once (a jax.lax.fori_loop under jax.jit, or a tf.while_loop in a tf.function)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def loop(weights, states, xs, n):
            def body(i, carry):
                states, ids, probs = carry
                (a, p), states = one_step(weights, states, xs[i])
                return states, ids.at[i].set(a.astype(ids.dtype)), probs.at[i].set(p)

            batch = xs.shape[1]
            ids = jnp.zeros((xs.shape[0], batch), jnp.int32)
            probs = jnp.zeros((xs.shape[0], batch), jnp.float32)
            states, ids, probs = jax.lax.fori_loop(0, n, body, (states, ids, probs))
            return (ids, probs), states

        return jax.jit(loop)
    import tensorflow as tf

    def tf_loop(weights, states, xs, n):
        def body(i, states, ids, probs):
            (a, p), states = one_step(weights, states, xs[i])
            return (i + 1, states, ids.write(i, tf.cast(a, tf.int32)),
                    probs.write(i, tf.cast(p, tf.float32)))

        _, states, ids, probs = tf.while_loop(
            lambda i, *_: i < n, body,
            (tf.constant(0), states, tf.TensorArray(tf.int32, size=n),
             tf.TensorArray(tf.float32, size=n)))
        return (ids.stack(), probs.stack()), states

    return tf.function(tf_loop, reduce_retracing=True)


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
