"""Several seeds of one config as one compiled JAX program: `jax.vmap` over each seed's
weights, optimizer state, RNN state and data.

    engine = VmappedEngine(model, sample=(x, y, w), hits=hits, start=[(trainable, frozen), ...])
    engine.submit(xs, ys, ws, active)      # xs: (seeds, sequences, batches, ...), in threads
    losses, hits = engine.collect(active)  # the flags again: seeds that stopped meanwhile
    engine.load(model, 2)                  # seed 2's variables into the model

The step is Keras's own (keras_internals.stateless_train_step), the very function JaxEngine
(engines.py) scans for one seed: one seed's program is JaxEngine's, and `jax.vmap` runs it for
every seed side by side. The RNN state is carried from batch to batch inside each seed's scan
and zeroed at the start of every sequence. A seed whose `active` flag is off keeps its
variables as they were (jnp.where on the carry): it has stopped, at a target or a loss that is
no longer finite, while the others go on. The variables stay on the device between chunks;
`load` puts one seed's into the Keras model (for validation, the held-out score and saving).

The seeds are split into one shard per CPU core, each shard one call of the same compiled
program from its own thread. One call runs on one core: XLA on the CPU does not spread these
small matrix products over cores, and a model this size keeps a core busy, so 8 seeds on one
core take about 7 times one seed (measured on 2 cores, LSTM(50) at batch 5). Each seed's
numbers are the same whichever shard holds it. The threads train the next chunk while the
main thread records the last one (Program in program.py); a seed that stops in the chunk
recorded is put back as it was before the chunk in flight (collect).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from echo_cli.models.keras_internals import rnn_state_variables, stateless_train_step

Values = tuple[list[np.ndarray], list[np.ndarray]]  # a seed's trainable, non-trainable values


class VmappedEngine:
    """The seeds' variables, stacked on a leading seed axis, and the compiled chunk."""

    def __init__(self, model, *, sample: tuple[np.ndarray, np.ndarray, np.ndarray],
                 hits: Callable[[Any, Any, Any], Any], start: list[Values]):
        """model: compiled; it lends its step, never its values. sample: one batch (x, y, w)
        of one seed. hits(y_pred, y, w): a batch's correct predictions. start: each seed's
        initial trainable and non-trainable values, in the model's order."""
        import jax
        import jax.numpy as jnp

        one_batch = stateless_train_step(model, sample=sample, hits=hits)
        zero_states = [jnp.zeros(v.shape, v.dtype) for v in rnn_state_variables(model)]
        optimizer = [np.asarray(v.value) for v in model.optimizer.variables]
        self.seeds = len(start)
        # as in JaxEngine: XLA on the CPU runs a convolution inside a loop (lax.scan) about 7
        # times slower than on its own, so convolutional models take one update per batch
        self.stepwise = any(type(layer).__name__ == "Conv1D" for layer in model.layers)
        # at least two seeds a shard: a vmap over one seed costs nearly what one over two does
        shards = 1 if self.stepwise else max(1, min(self.seeds // 2, cores()))
        self.shards = [list(part) for part in np.array_split(np.arange(self.seeds), shards)]
        self.carries = [tuple(
            [jnp.asarray(np.stack(values)) for values in zip(*group, strict=True)]
            for group in (*zip(*[start[i] for i in shard], strict=True),
                          [optimizer] * len(shard)))
            for shard in self.shards]
        self._pool = ThreadPoolExecutor(shards) if shards > 1 else None
        self._compiled: dict[int, Any] = {}  # the compiled chunk by shard size
        self._pending: list[Future] | None = None

        def one_sequence(carry, data):
            (*carry, _), (losses, hits) = jax.lax.scan(one_batch, (*carry, zero_states), data)
            return tuple(carry), (jnp.mean(losses), jnp.sum(hits))

        def one_seed(carry, xs, ys, ws):
            return jax.lax.scan(one_sequence, carry, (xs, ys, ws))

        @jax.jit
        def run(carry, xs, ys, ws, active):
            new, out = jax.vmap(one_seed)(carry, xs, ys, ws)
            return _keep(new, carry, active), out

        self._run = run
        self._one_batch = jax.jit(jax.vmap(one_batch))
        self._keep = jax.jit(_keep)
        self._zero_states = [jnp.zeros((self.seeds, *z.shape), z.dtype) for z in zero_states]

    def submit(self, xs: np.ndarray, ys: np.ndarray, ws: np.ndarray, active) -> None:
        """Start training every seed on its own chunk of sequences, each (seeds, sequences,
        batches, batch, ...); a seed whose `active` is False keeps its variables. collect()
        waits for it; meanwhile `load` reads the variables as they were before this chunk."""
        flags = np.asarray(active, dtype=bool)
        if self.stepwise:
            carry, (losses, hits) = self._by_batch(self.carries[0], xs, ys, ws, flags)
            self._pending = [_done((carry, losses, hits))]
            return

        args = [(self.carries[k], xs[rows], ys[rows], ws[rows], flags[rows])
                for k, rows in enumerate(self.shards)]
        for a in args:  # Keras traces its step on this thread, once per shard size
            if len(a[-1]) not in self._compiled:
                self._compiled[len(a[-1])] = self._run.lower(*a).compile()

        def shard(k: int):
            carry, (losses, hits) = self._compiled[len(args[k][-1])](*args[k])
            return carry, np.asarray(losses), np.asarray(hits)

        if self._pool is None:
            self._pending = [_done(shard(0))]
        else:
            self._pending = [self._pool.submit(shard, k) for k in range(len(self.shards))]

    def collect(self, active) -> tuple[np.ndarray, np.ndarray]:
        """Wait for the chunk that submit() started. A seed no longer `active` (it stopped
        while the chunk trained) keeps the variables it had before the chunk.

        Returns:
            (mean loss, correct predictions) per seed and sequence: (seeds, sequences).
        """
        done, self._pending = [f.result() for f in self._pending], None
        flags = np.asarray(active, dtype=bool)
        carries = [carry for carry, _, _ in done]
        if not flags.all():
            carries = [self._keep(new, old, flags[rows]) for new, old, rows
                       in zip(carries, self.carries, self.shards, strict=True)]
        self.carries = carries
        return (np.concatenate([losses for _, losses, _ in done]),
                np.concatenate([hits for _, _, hits in done]))

    def drop(self) -> None:
        """Wait for a chunk in flight, if any, and forget it: the variables stay as they were
        before it."""
        pending, self._pending = self._pending, None
        for f in pending or []:
            with contextlib.suppress(Exception):
                f.result()

    def _by_batch(self, carry, xs, ys, ws, active):
        """run_chunk as a Python loop of compiled updates of every seed at once."""
        start, outs = carry, []
        for i in range(xs.shape[1]):
            states = self._zero_states
            for j in range(xs.shape[2]):
                (*carry, states), out = self._one_batch(
                    (*carry, states), (xs[:, i, j], ys[:, i, j], ws[:, i, j]))
                outs.append(out)
        losses = np.stack([np.asarray(o[0]) for o in outs], axis=1)
        hits = np.stack([np.asarray(o[1]) for o in outs], axis=1)
        shape = (self.seeds, xs.shape[1], xs.shape[2])
        kept = self._keep(tuple(carry), start, active)
        return kept, (losses.reshape(shape).mean(axis=2), hits.reshape(shape).sum(axis=2))

    def values(self, seed: int) -> tuple[list[np.ndarray], ...]:
        """Seed number `seed` (0-based)'s trainable, non-trainable and optimizer values."""
        k = next(k for k, shard in enumerate(self.shards) if seed in shard)
        at = self.shards[k].index(seed)
        return tuple([np.asarray(v[at]) for v in group] for group in self.carries[k])

    def load(self, model, seed: int) -> None:
        """Put seed number `seed` (0-based)'s variables, optimizer state included, into the
        model."""
        groups = (model.trainable_variables, model.non_trainable_variables,
                  model.optimizer.variables)
        for variables, values in zip(groups, self.values(seed), strict=True):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)


def _done(value) -> Future:
    """A future that holds its value already."""
    future = Future()
    future.set_result(value)
    return future


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def _keep(new, old, active):
    """new where a seed is active, old where it has stopped."""
    import jax
    import jax.numpy as jnp

    def pick(n, o):
        return jnp.where(active.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)

    return jax.tree_util.tree_map(pick, new, old)
