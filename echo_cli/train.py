"""Training. Everything here returns plain numbers; held-out scoring is evaluate.py's.

    model, result = train(cfg, engine="fast", on_epoch=lambda epoch, row: None)
    result.heldout.accuracy

Two engines make the same weight updates on the same batches in the same order, with the
state reset at every sequence boundary:
- `tutorial`: the tutorial's loop, one `model.fit` per sequence (epoch).
- `fast`: one `model.fit` per block of sequences, `steps_per_execution` set to the batches of
  one sequence and the reset in a callback after each execution; on JAX, compiled chunks.

Training sequences are generated and framed block by block (limits.py sizes the blocks), so
train.epochs costs time, not memory. Between epochs the loop checks for a stop signal
(signals.py) and for a loss that is no longer finite.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from echo_cli import limits, models, signals
from echo_cli.config import Config
from echo_cli.data import (
    Dataset,
    Framed,
    frame,
    generate_sequences,
    rows_per_sequence,
    stream_rng,
)
from echo_cli.errors import EchoError
from echo_cli.evaluate import Heldout, Predictor, accuracy, backend, evaluate, fresh
from echo_cli.keras_internals import JaxEngine
from echo_cli.rundir import Metrics

ENGINES = ("fast", "tutorial")
EpochHook = Callable[[int, dict[str, float]], None]


class _ReachedTarget(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised from the per-epoch hook to stop training once validation reaches its target."""


class DivergedError(EchoError):
    """The training loss stopped being a finite number."""


@dataclass
class RunResult:
    engine: str
    backend: str
    epochs: int
    epochs_completed: int
    updates: int
    samples: int
    train_seconds: float
    history: list[dict[str, float]]
    heldout: Heldout | None
    interrupted: bool = False
    peak_rss_mb: float | None = None
    reached_target: bool = False
    parameters: int = 0
    multiply_adds_per_sample: int = 0
    diverged: str | None = None  # why training stopped early on a non-finite loss

    def metrics(self, cfg: Config) -> Metrics:
        """The record written to metrics.json."""
        h = self.heldout
        out = {
            "name": cfg.name,
            "seed": cfg.seed,
            "data_source": cfg.data.source,
            "engine": self.engine,
            "backend": self.backend,
            "epochs": self.epochs,
            "epochs_completed": self.epochs_completed,
            "interrupted": self.interrupted,
            "model_kind": cfg.model.kind,
            "parameters": self.parameters,
            "multiply_adds_per_sample": self.multiply_adds_per_sample,
            "updates": self.updates,
            "samples": self.samples,
            "train_seconds": round(self.train_seconds, 3),
            "peak_rss_mb": self.peak_rss_mb,
            "chance_accuracy": cfg.chance_accuracy,
            "final_train_loss": self.history[-1]["loss"] if self.history else None,
            "final_train_accuracy": self.history[-1]["accuracy"] if self.history else None,
        }
        held = {
            "heldout_accuracy": None, "heldout_correct": None, "heldout_targets": None,
            "heldout_sequences": None, "ci95_low": None, "ci95_high": None,
        }
        if h is not None:
            held = {
                "heldout_accuracy": h.accuracy,
                "heldout_correct": h.correct,
                "heldout_targets": h.targets,
                "heldout_sequences": h.sequences,
                "ci95_low": h.ci95_low,
                "ci95_high": h.ci95_high,
            }
            if cfg.data.target == "sequence":
                held.update(
                    heldout_unscored_positions=h.unscored,
                    heldout_exact_match=h.exact_match,
                    heldout_per_position=h.per_position,
                )
        out.update(held)
        if cfg.train.target_accuracy is not None:
            checks = [r for r in self.history if "validation_accuracy" in r]
            out.update(
                target_accuracy=cfg.train.target_accuracy,
                validation_sequences=cfg.eval.validation_sequences,
                reached_target=self.reached_target,
                epochs_to_target=self.epochs_completed if self.reached_target else None,
                samples_to_target=self.samples if self.reached_target else None,
                final_validation_accuracy=checks[-1]["validation_accuracy"] if checks else None,
            )
        return Metrics(**out)


# ---------------------------------------------------------------------------------------------
# helpers

def _arrays(framed: Framed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten framed sequences to model arrays: ids, sparse targets, sample weights."""
    x = models.model_input(framed.x.reshape(-1, framed.x.shape[-1]))
    y = framed.y.reshape(-1, *framed.y.shape[2:])
    weights = (y >= 0).astype(np.float32)
    return x, np.maximum(y, 0).astype(np.int32), weights


def _scored_per_sequence(framed: Framed) -> int:
    return int((framed.y[0] >= 0).sum())


def _exact_accuracy(mean: float, scored: int) -> float:
    """A float32 running mean back to the exact fraction correct/scored of one sequence."""
    return round(mean * scored) / scored


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS won't say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def engine_problem(engine: str, backend: str, cfg: Config) -> str | None:
    """Why this engine cannot run this config on this backend, or None."""
    if engine == "tutorial" and backend == "jax" and cfg.model.stateful:
        return ("--engine tutorial cannot run a stateful model on the jax backend: Keras 3 "
                "leaves RNN state untracked, so its JAX fit silently drops the state between "
                "batches; use --set train.backend=tensorflow (the fast engine carries the state "
                "itself on jax)")
    return None


def _chunk_size(sequences: int, cfg: Config) -> int:
    """Sequences per compiled chunk (or Keras epoch): divides the epochs and, when validating,
    the validation interval, so that checks fall on chunk boundaries; fewer for long
    sequences (limits.chunk_sequences)."""
    every = cfg.train.validate_every if cfg.train.target_accuracy is not None else 0
    return max(k for k in range(1, limits.chunk_sequences(cfg) + 1)
               if sequences % k == 0 and every % k == 0)


def _blocks(cfg: Config, dataset: Dataset | None, group: int) -> Iterator[Framed]:
    """The training sequences, one per epoch, generated and framed block by block.

    Each block is a whole number of groups of `group` sequences and holds at most about
    limits.CHUNK_BYTES of data. Drawing the sequences block by block from the training stream
    gives exactly the sequences one draw of them all would.
    """
    epochs, length = cfg.train.epochs, cfg.data.length
    per_block = group * max(1, limits.block_sequences(cfg) // group)
    rng = stream_rng(cfg.seed, "train")
    for start in range(0, epochs, per_block):
        count = min(per_block, epochs - start)
        if dataset is None:
            seqs = generate_sequences(rng, count=count, length=length,
                                      n_unique=cfg.data.n_unique)
        else:  # cycle through the file's sequences, one per epoch
            seqs = dataset.train[np.arange(start, start + count) % len(dataset.train)]
        yield frame(seqs, cfg.framing)


def _tutorial_engine(model, cfg: Config, blocks: Iterator[Framed], on_epoch: EpochHook) -> None:
    """The tutorial's loop: one `fit` per sequence, then reset the state."""
    models.compile_model(model, cfg)
    epoch = 0
    for framed in blocks:
        scored = _scored_per_sequence(framed)
        for i in range(framed.x.shape[0]):
            one = Framed(t=framed.t, x=framed.x[i : i + 1], y=framed.y[i : i + 1])
            x, y, w = _arrays(one)
            fit = model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size, epochs=1,
                            shuffle=False, verbose=0)
            models.reset_states(model)
            epoch += 1
            on_epoch(epoch, {"loss": float(fit.history["loss"][0]),
                             "accuracy": _exact_accuracy(fit.history["accuracy"][0], scored)})


def _fast_engine(model, cfg: Config, blocks: Iterator[Framed], on_epoch: EpochHook) -> None:
    """One `fit` per block of sequences (all of them, for most configs); resets land on
    sequence boundaries.

    `steps_per_execution` equals the batches of one sequence, so Keras returns to Python
    exactly once per sequence: the callback resets the state there and turns Keras's running
    means into that sequence's loss and accuracy. Each Keras epoch groups several sequences
    so the running sums stay small and exact. Batches, their order and the number of updates
    are the tutorial loop's.
    """
    import keras

    batches = rows_per_sequence(cfg.framing) // cfg.train.batch_size
    group = _chunk_size(cfg.train.epochs, cfg)
    models.compile_model(model, cfg, steps_per_execution=batches)

    class PerSequence(keras.callbacks.Callback):
        done = 0
        scored = 1

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.totals = 0, (0.0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            models.reset_states(model)
            self.seen += 1
            loss = float(logs["loss"]) * self.seen
            acc = float(logs["accuracy"]) * self.seen
            seq_loss, seq_acc = loss - self.totals[0], acc - self.totals[1]
            self.totals = (loss, acc)
            PerSequence.done += 1
            on_epoch(PerSequence.done, {"loss": seq_loss,
                                        "accuracy": _exact_accuracy(seq_acc, self.scored)})

    callback = PerSequence()
    for framed in blocks:
        callback.scored = _scored_per_sequence(framed)
        x, y, w = _arrays(framed)
        model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size,
                  epochs=framed.x.shape[0] // group, steps_per_epoch=batches * group,
                  shuffle=False, verbose=0, callbacks=[callback])


def _fast_engine_jax(model, cfg: Config, blocks: Iterator[Framed], on_epoch: EpochHook) -> None:
    """Under JAX, each chunk of sequences is one compiled program (keras_internals.JaxEngine).

    Two things make it a custom loop rather than `fit`:
    - Speed: Python runs once per chunk instead of once per batch, which is where the time went.
    - Correctness: Keras 3 leaves a stateful RNN's state variables untracked, so its JAX `fit`
      silently drops the state between batches. The engine carries it from batch to batch and
      zeroes it at the start of every sequence, as the tutorial's loop does.
    Each sequence's mean loss and exact accuracy come out of the program.
    """
    batch = cfg.train.batch_size
    batches = rows_per_sequence(cfg.framing) // batch
    chunk = _chunk_size(cfg.train.epochs, cfg)
    models.compile_model(model, cfg)
    engine, done = None, 0
    for framed in blocks:
        sequences, scored = framed.x.shape[0], _scored_per_sequence(framed)
        x, y, w = _arrays(framed)
        if engine is None:
            engine = JaxEngine(model, sample=(x[:batch], y[:batch], w[:batch]))

        def per_step(a: np.ndarray, n: int = sequences) -> np.ndarray:
            return a.reshape(n, batches, batch, *a.shape[1:])  # (sequences, batches, batch, ..)

        xs, ys, ws = per_step(x), per_step(y), per_step(w)
        for start in range(0, sequences, chunk):
            part = slice(start, start + chunk)
            losses, hits = engine.run_chunk(xs[part], ys[part], ws[part])
            # The model now holds the whole chunk's weights, so its epochs are all recorded
            # even if a stop arrives while they are reported; the stop is raised after that.
            stop: BaseException | None = None
            for i in range(chunk):
                try:
                    on_epoch(done + i + 1, {"loss": float(losses[i]),
                                            "accuracy": round(float(hits[i])) / scored})
                except (KeyboardInterrupt, signals.StopRequested) as err:
                    stop = stop or err
            done += chunk
            if stop is not None:
                raise stop


# ---------------------------------------------------------------------------------------------
# the run

def train(cfg: Config, *, engine: str = "fast", on_epoch: EpochHook | None = None,
          evaluate_heldout: bool = True, dataset: Dataset | None = None):
    """Seed, generate, build, fit and (unless told not to) evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, row) after every sequence; row holds the epoch, loss,
            accuracy and, on a validation epoch, validation_accuracy.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.
        dataset: for data.source csv, the sequences read from the file (cycled, one per
            epoch) and its held-out part; None for fresh random sequences.

    Returns:
        (model, RunResult). After Ctrl-C or a stop signal the result has interrupted=True, the
        history so far and no held-out score; after a loss that is not finite, `diverged`
        says when, and the history holds the epochs before it.
    """
    keras = models.import_keras(cfg.train.backend)

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    problem = engine_problem(engine, keras.backend.backend(), cfg)
    if problem:
        raise ValueError(problem)
    on_epoch = on_epoch or (lambda epoch, row: None)

    # seed: the initializers are seeded in build_model and the data has its own streams; the
    # global seed covers anything else (it imports TensorFlow, so only on that backend)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(cfg.seed)

    # data: one sequence per epoch, fresh from the training stream or cycled from the file,
    # generated block by block as training reaches it
    plan = cfg.framing
    blocks = _blocks(cfg, dataset, _chunk_size(cfg.train.epochs, cfg))

    # build
    model = models.build_model(cfg)

    # fit
    if engine == "tutorial":
        run = _tutorial_engine
    else:
        run = _fast_engine_jax if keras.backend.backend() == "jax" else _fast_engine
    history: list[dict] = []

    target = cfg.train.target_accuracy
    if target is not None:  # a fixed validation set, apart from training and held-out data
        _, validation = fresh(cfg, "validation", cfg.eval.validation_sequences)
        validate = Predictor(model, cfg, sequences=cfg.eval.validation_sequences)

    def record(epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs["loss"]):
            raise DivergedError(f"the training loss became {logs['loss']} at epoch {epoch}; "
                                f"lower train.learning_rate (now {cfg.train.learning_rate:g})")
        row = {"epoch": epoch, **logs}
        history.append(row)
        reached = False
        if target is not None and epoch % cfg.train.validate_every == 0:
            correct, total = accuracy(validate(validation.x)[0], validation.y)
            row["validation_accuracy"] = correct / total
            reached = correct / total >= target
        on_epoch(epoch, row)
        if reached:
            raise _ReachedTarget
        signals.check()

    interrupted = reached = False
    diverged = None
    start = time.perf_counter()
    try:
        run(model, cfg, blocks, record)
    except (KeyboardInterrupt, signals.StopRequested):
        interrupted = True
    except _ReachedTarget:
        reached = True
    except DivergedError as err:
        diverged = str(err)
    seconds = time.perf_counter() - start
    models.reset_states(model)
    done = len(history)
    batches = rows_per_sequence(plan) // cfg.train.batch_size

    # evaluate
    heldout = None
    if evaluate_heldout and not interrupted and diverged is None:
        try:
            heldout = evaluate(model, cfg, dataset=dataset)
        except (KeyboardInterrupt, signals.StopRequested):  # the trained model is kept
            interrupted = True
    result = RunResult(
        engine=engine, backend=backend(), epochs=cfg.train.epochs, epochs_completed=done,
        updates=done * batches, samples=done * rows_per_sequence(plan), train_seconds=seconds,
        history=history, heldout=heldout, interrupted=interrupted, peak_rss_mb=peak_rss_mb(),
        reached_target=reached, diverged=diverged, **models.size(model),
    )
    return model, result
