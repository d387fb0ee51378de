"""The training loops. Each takes blocks of model-ready arrays and knows nothing of the task.

    run = engine_for("fast", backend="jax")
    run(model, cfg, blocks, on_epoch)          # on_epoch(epoch, {"loss", "accuracy"})

An epoch is a group of consecutive batches: for the echo, the batches of one sequence, with a
stateful model's state reset at the start of every group; for copy memory and the adding
problem, one batch of fresh sequences (one update). Three loops make the same updates:
- `tutorial`: the tutorial's loop, one `model.fit` per epoch (echo only).
- `fast` on TensorFlow: one `model.fit` per block, `steps_per_execution` set to the batches
  of an epoch, and the reset and the epoch's figures in a callback.
- `fast` on JAX: compiled chunks of epochs (keras_internals.JaxEngine).
Each epoch's accuracy is exact: the running means Keras reports are turned back into
correct / scored, with `scored` the targets an epoch scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from echo_cli.config.loading import Config
from echo_cli.models import factory as models
from echo_cli.models.keras_internals import JaxEngine
from echo_cli.training import signals

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Block:
    """Training data for `groups` epochs, in order: each epoch `batches` batches of `batch`.

    x, y, w: (groups * batches * batch, ...) model inputs, targets and loss weights.
    scored: the targets one epoch's accuracy counts.
    """

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    groups: int
    batches: int
    batch: int
    scored: int

    def per_step(self, a: np.ndarray) -> np.ndarray:
        """(groups, batches, batch, ...): what the compiled JAX loop scans."""
        return a.reshape(self.groups, self.batches, self.batch, *a.shape[1:])

    def epoch(self, i: int) -> slice:
        size = self.batches * self.batch
        return slice(i * size, (i + 1) * size)


def exact(mean: float, scored: int) -> float:
    """A float32 running mean back to the exact fraction correct/scored of one epoch."""
    return round(mean * scored) / scored


def tutorial(model, cfg: Config, blocks: Iterator[Block], on_epoch: EpochHook, *,
             group: int) -> None:
    """The tutorial's loop: one `fit` per sequence, then reset the state."""
    models.compile_model(model, cfg)
    epoch = 0
    for block in blocks:
        for i in range(block.groups):
            part = block.epoch(i)
            fit = model.fit(block.x[part], block.y[part], sample_weight=block.w[part],
                            batch_size=block.batch, epochs=1, shuffle=False, verbose=0)
            models.reset_states(model)
            epoch += 1
            on_epoch(epoch, {"loss": float(fit.history["loss"][0]),
                             "accuracy": exact(fit.history["accuracy"][0], block.scored)})


def fast_tensorflow(model, cfg: Config, blocks: Iterator[Block], on_epoch: EpochHook, *,
                    group: int) -> None:
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
    models.compile_model(model, cfg, steps_per_execution=first.batches)
    done = [0]

    class PerEpoch(keras.callbacks.Callback):
        scored = 1

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.totals = 0, (0.0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            models.reset_states(model)
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
             group: int) -> None:
    """Under JAX, each chunk of `group` epochs is one compiled program (JaxEngine).

    Two things make it a custom loop rather than `fit`:
    - Speed: Python runs once per chunk instead of once per batch, where the time went.
    - Correctness: Keras 3 leaves a stateful RNN's state variables untracked, so its JAX `fit`
      silently drops the state between batches. The engine carries it from batch to batch and
      zeroes it at the start of every epoch, as the tutorial's loop does.
    Each epoch's mean loss and exact accuracy come out of the program.
    """
    models.compile_model(model, cfg)
    engine, done = None, 0
    for block in blocks:
        if engine is None:
            engine = JaxEngine(model, sample=(block.x[: block.batch], block.y[: block.batch],
                                              block.w[: block.batch]),
                               hits=models.hits_function(cfg))
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
