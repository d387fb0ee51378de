"""The training loops. Each takes blocks of model-ready arrays and knows nothing of the task.

    run = engine_for("fast", backend="jax")
    run(model, cfg, blocks, on_epoch)          # on_epoch(epoch, {"loss", "accuracy"})

An epoch is a group of consecutive batches: for the echo, the batches of one sequence, with a
stateful model's state reset at the start of every group; for copy memory and the adding
problem, one batch of fresh sequences (one update). Three loops make the same updates:
- `tutorial`: the tutorial's loop, one `model.fit` per epoch (echo only).
- `fast` on TensorFlow: one `model.fit` per block, `steps_per_execution` set to the batches
  of an epoch, and the reset and the epoch's figures in a callback.
- `fast` on JAX: compiled chunks of epochs (JaxEngine, below).
Each epoch's accuracy is exact: the running means Keras reports are turned back into
correct / scored, with `scored` the targets an epoch scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from echo_cli.config.schema import Config
from echo_cli.models import factory
from echo_cli.models.keras_internals import rnn_state_variables, stateless_train_step
from echo_cli.tasks.base import Block
from echo_cli.training import signals, warm

EpochHook = Callable[[int, dict[str, float]], None]


Restore = Callable[[Any], None]  # puts a checkpoint's weights and optimizer state in a model


def compile_for(model, cfg: Config, *, steps_per_execution: int = 1,
                restore: Restore | None = None) -> None:
    """Compile with the config's optimizer settings and the task's loss and accuracy; then,
    resuming, restore the checkpoint (compiling makes a fresh optimizer)."""
    warm.compile(model, cfg, lambda: factory.compile_model(
        model, loss=cfg.task.loss, metrics=cfg.task.keras_metrics(cfg),
        learning_rate=cfg.train.learning_rate, clipnorm=cfg.train.clipnorm,
        steps_per_execution=steps_per_execution))
    if restore is not None:
        restore(model)


def exact(mean: float, scored: int) -> float:
    """A float32 running mean back to the exact fraction correct/scored of one epoch."""
    return round(mean * scored) / scored


def tutorial(model, cfg: Config, blocks: Iterator[Block], on_epoch: EpochHook, *,
             group: int, restore: Restore | None = None) -> None:
    """The tutorial's loop: one `fit` per sequence, then reset the state."""
    compile_for(model, cfg, restore=restore)
    epoch = 0
    for block in blocks:
        for i in range(block.groups):
            part = block.epoch(i)
            fit = model.fit(block.x[part], block.y[part], sample_weight=block.w[part],
                            batch_size=block.batch, epochs=1, shuffle=False, verbose=0)
            factory.reset_states(model)
            epoch += 1
            on_epoch(epoch, {"loss": float(fit.history["loss"][0]),
                             "accuracy": exact(fit.history["accuracy"][0], block.scored)})


def fast_tensorflow(model, cfg: Config, blocks: Iterator[Block], on_epoch: EpochHook, *,
                    group: int, restore: Restore | None = None) -> None:
    """One `fit` per block (all epochs, for most configs); resets land on epoch boundaries.

    `steps_per_execution` equals the batches of one epoch, so Keras returns to Python exactly
    once per epoch: the callback resets the state there and turns Keras's running means into
    that epoch's loss and accuracy. Each Keras epoch groups `group` of ours, so the running
    sums stay small and exact.
    """
    import keras

    first = next(blocks, None)
    if first is None:
        return
    compile_for(model, cfg, steps_per_execution=first.batches, restore=restore)
    done = [0]

    class PerEpoch(keras.callbacks.Callback):
        scored = 1

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.totals = 0, (0.0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            factory.reset_states(model)
            self.seen += 1
            loss = float(logs["loss"]) * self.seen
            acc = float(logs["accuracy"]) * self.seen
            epoch_loss, epoch_acc = loss - self.totals[0], acc - self.totals[1]
            self.totals = (loss, acc)
            done[0] += 1
            on_epoch(done[0], {"loss": epoch_loss, "accuracy": exact(epoch_acc, self.scored)})

    callback = PerEpoch()
    for block in _chain(first, blocks):
        callback.scored = block.scored
        model.fit(block.x, block.y, sample_weight=block.w, batch_size=block.batch,
                  epochs=block.groups // group, steps_per_epoch=block.batches * group,
                  shuffle=False, verbose=0, callbacks=[callback])


def fast_jax(model, cfg: Config, blocks: Iterator[Block], on_epoch: EpochHook, *,
             group: int, restore: Restore | None = None) -> None:
    """Under JAX, each chunk of `group` epochs is one compiled program (JaxEngine).

    Two things make it a custom loop rather than `fit`:
    - Speed: Python runs once per chunk instead of once per batch, where the time went.
    - Correctness: Keras 3 leaves a stateful RNN's state variables untracked, so its JAX `fit`
      silently drops the state between batches. The engine carries it from batch to batch and
      zeroes it at the start of every epoch, as the tutorial's loop does.
    Each epoch's mean loss and exact accuracy come out of the program.
    """
    compile_for(model, cfg, restore=restore)
    engine, done = None, 0
    for block in blocks:
        if engine is None:  # a model kept for a sweep worker's runs keeps its engine
            sample = (block.x[: block.batch], block.y[: block.batch], block.w[: block.batch])
            engine = warm.engine(model, lambda sample=sample: JaxEngine(
                model, sample=sample, hits=cfg.task.keras_hits(cfg)))
        xs, ys, ws = block.per_step(block.x), block.per_step(block.y), block.per_step(block.w)
        for start in range(0, block.groups, group):
            part = slice(start, start + group)
            losses, hits = engine.run_chunk(xs[part], ys[part], ws[part])
            # The model now holds the whole chunk's weights, so its epochs are all recorded
            # even if a stop arrives while they are reported; the stop is raised after that.
            stop: BaseException | None = None
            for i in range(group):
                try:
                    on_epoch(done + i + 1, {"loss": float(losses[i]),
                                            "accuracy": round(float(hits[i])) / block.scored})
                except (KeyboardInterrupt, signals.StopRequested) as err:
                    stop = stop or err
            done += group
            if stop is not None:
                raise stop


def _chain(first: Block, rest: Iterator[Block]) -> Iterator[Block]:
    yield first
    yield from rest


def engine_for(engine: str, backend: str):
    """The loop for an engine name on a backend."""
    if engine == "tutorial":
        return tutorial
    return fast_jax if backend == "jax" else fast_tensorflow


class JaxEngine:
    """Keras's own training step (keras_internals.stateless_train_step), run by `jax.lax.scan`
    over the batches of a sequence and again over the sequences of a chunk, as one compiled
    program.

    The RNN state is carried from batch to batch and zeroed at the start of every sequence.
    The model's variables hold the weights between chunks, so callers (validation, Ctrl-C)
    see them.
    """

    def __init__(self, model, *, sample: tuple[np.ndarray, np.ndarray, np.ndarray],
                 hits: Callable[[Any, Any, Any], Any]):
        """model: compiled. sample: one batch (x, y, w), to build the loss and metrics.
        hits(y_pred, y, w): the batch's correct predictions, as the task counts them."""
        import jax
        import jax.numpy as jnp

        one_batch = stateless_train_step(model, sample=sample, hits=hits)
        zero_states = [jnp.zeros(v.shape, v.dtype) for v in rnn_state_variables(model)]

        def one_sequence(carry, data):
            (*carry, _), (losses, hits) = jax.lax.scan(one_batch, (*carry, zero_states), data)
            return tuple(carry), (jnp.mean(losses), jnp.sum(hits))

        @jax.jit
        def run(carry, xs, ys, ws):
            return jax.lax.scan(one_sequence, carry, (xs, ys, ws))

        self.model = model
        self._run = run
        self._one_batch = jax.jit(one_batch)
        self._zero_states = zero_states
        # XLA on the CPU runs a convolution inside a loop (lax.scan) about 7 times slower than
        # on its own, so convolutional models take one compiled update per batch instead.
        self.stepwise = any(type(layer).__name__ == "Conv1D" for layer in model.layers)
        self._groups = (model.trainable_variables, model.non_trainable_variables,
                        model.optimizer.variables)

    def run_chunk(self, xs: np.ndarray, ys: np.ndarray,
                  ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Train on a chunk of sequences, each (sequences, batches, batch, ...).

        Returns:
            (mean loss, correct predictions) per sequence, as numpy arrays.
        """
        # Read the variables afresh: Keras's own predict may have replaced their buffers.
        carry = tuple([v.value for v in group] for group in self._groups)
        if self.stepwise:
            carry, (losses, hits) = self._by_batch(carry, xs, ys, ws)
        else:
            carry, (losses, hits) = self._run(carry, xs, ys, ws)
        for group, values in zip(self._groups, carry, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        return np.asarray(losses), np.asarray(hits)

    def _by_batch(self, carry, xs, ys, ws):
        """run_chunk as a Python loop of compiled updates, state carried the same way. The
        results stay on the device until the chunk ends, so updates are dispatched ahead."""
        outs = []
        for i in range(len(xs)):
            states = self._zero_states
            for j in range(xs.shape[1]):
                (*carry, states), out = self._one_batch((*carry, states),
                                                        (xs[i, j], ys[i, j], ws[i, j]))
                outs.append(out)
        losses = np.asarray([o[0] for o in outs], np.float32).reshape(len(xs), -1)
        hits = np.asarray([o[1] for o in outs], np.float32).reshape(len(xs), -1)
        return tuple(carry), (losses.mean(axis=1), hits.sum(axis=1))
