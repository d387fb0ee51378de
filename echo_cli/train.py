"""Training. Everything here returns plain numbers; held-out scoring is evaluate.py's.

    model, result = train(cfg, engine="fast", on_epoch=lambda epoch, logs: None)
    result.heldout.accuracy

Two engines make the same weight updates on the same batches in the same order, with the
state reset at every sequence boundary:
- `tutorial`: the tutorial's loop, one `model.fit` per sequence (epoch).
- `fast`: one `model.fit` over all sequences, `steps_per_execution` set to the batches of one
  sequence, and the reset in a callback after each execution.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from echo_cli import models
from echo_cli.config import Config
from echo_cli.data import (
    Dataset,
    Framed,
    cycle,
    frame,
    generate_sequences,
    rows_per_sequence,
    stream_rng,
)
from echo_cli.evaluate import Heldout, Predictor, accuracy, backend, evaluate, fresh
from echo_cli.keras_internals import JaxEngine
from echo_cli.rundir import Metrics

ENGINES = ("fast", "tutorial")


class _ReachedTarget(Exception):
    """Raised from the per-epoch hook to stop training once validation reaches its target."""
EpochHook = Callable[[int, dict[str, float]], None]

_MAX_SEQUENCES_PER_FIT_EPOCH = 50  # fast engine: Keras epochs group this many sequences


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


def _peak_rss_mb() -> float | None:
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
    the validation interval, so that checks fall on chunk boundaries."""
    every = cfg.train.validate_every if cfg.train.target_accuracy is not None else 0
    return max(k for k in range(1, _MAX_SEQUENCES_PER_FIT_EPOCH + 1)
               if sequences % k == 0 and every % k == 0)


def _tutorial_engine(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """The tutorial's loop: one `fit` per sequence, then reset the state."""
    models.compile_model(model, cfg)
    scored = _scored_per_sequence(framed)
    for epoch in range(framed.x.shape[0]):
        one = Framed(t=framed.t, x=framed.x[epoch : epoch + 1], y=framed.y[epoch : epoch + 1])
        x, y, w = _arrays(one)
        fit = model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size, epochs=1,
                        shuffle=False, verbose=0)
        models.reset_states(model)
        on_epoch(epoch + 1, {"loss": float(fit.history["loss"][0]),
                             "accuracy": _exact_accuracy(fit.history["accuracy"][0], scored)})


def _fast_engine(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """One `fit` over every sequence; resets land on sequence boundaries.

    `steps_per_execution` equals the batches of one sequence, so Keras returns to Python
    exactly once per sequence: the callback resets the state there and turns Keras's running
    means into that sequence's loss and accuracy. Each Keras epoch groups several sequences
    so the running sums stay small and exact. Batches, their order and the number of updates
    are the tutorial loop's.
    """
    import keras

    sequences = framed.x.shape[0]
    batches = rows_per_sequence(cfg.framing) // cfg.train.batch_size
    scored = _scored_per_sequence(framed)
    group = _chunk_size(sequences, cfg)
    models.compile_model(model, cfg, steps_per_execution=batches)

    class PerSequence(keras.callbacks.Callback):
        done = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.totals = 0, (0.0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            models.reset_states(model)
            self.seen += 1
            loss = float(logs["loss"]) * self.seen
            acc = float(logs["accuracy"]) * self.seen
            seq_loss, seq_acc = loss - self.totals[0], acc - self.totals[1]
            self.totals = (loss, acc)
            self.done += 1
            on_epoch(self.done, {"loss": seq_loss, "accuracy": _exact_accuracy(seq_acc, scored)})

    x, y, w = _arrays(framed)
    model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size, epochs=sequences // group,
              steps_per_epoch=batches * group, shuffle=False, verbose=0,
              callbacks=[PerSequence()])


def _fast_engine_jax(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """Under JAX, each chunk of sequences is one compiled program (keras_internals.JaxEngine).

    Two things make it a custom loop rather than `fit`:
    - Speed: Python runs once per chunk instead of once per batch, which is where the time went.
    - Correctness: Keras 3 leaves a stateful RNN's state variables untracked, so its JAX `fit`
      silently drops the state between batches. The engine carries it from batch to batch and
      zeroes it at the start of every sequence, as the tutorial's loop does.
    Each sequence's mean loss and exact accuracy come out of the program.
    """
    sequences, batch = framed.x.shape[0], cfg.train.batch_size
    batches = rows_per_sequence(cfg.framing) // batch
    scored = _scored_per_sequence(framed)
    x, y, w = _arrays(framed)

    def per_step(a: np.ndarray) -> np.ndarray:  # (sequences, batches, batch, ...)
        return a.reshape(sequences, batches, batch, *a.shape[1:])

    xs, ys, ws = per_step(x), per_step(y), per_step(w)
    models.compile_model(model, cfg)
    engine = JaxEngine(model, sample=(x[:batch], y[:batch], w[:batch]))
    chunk = _chunk_size(sequences, cfg)
    for start in range(0, sequences, chunk):
        part = slice(start, start + chunk)
        losses, hits = engine.run_chunk(xs[part], ys[part], ws[part])
        # The model now holds the whole chunk's weights, so its epochs are all recorded even
        # if Ctrl-C arrives while they are reported; the interrupt is raised after that.
        interrupted = False
        for i in range(chunk):
            try:
                on_epoch(start + i + 1, {"loss": float(losses[i]),
                                         "accuracy": round(float(hits[i])) / scored})
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt


# ---------------------------------------------------------------------------------------------
# the run

def train(cfg: Config, *, engine: str = "fast", on_epoch: EpochHook | None = None,
          evaluate_heldout: bool = True, dataset: Dataset | None = None):
    """Seed, generate, build, fit and evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, {"loss", "accuracy"}) after every sequence.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.
        dataset: for data.source csv, the sequences read from the file (cycled, one per
            epoch) and its held-out part; None for fresh random sequences.

    Returns:
        (model, RunResult). After Ctrl-C the result has interrupted=True, the history so far
        and no held-out score.
    """
    keras = models.import_keras(cfg.train.backend)

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    problem = engine_problem(engine, keras.backend.backend(), cfg)
    if problem:
        raise ValueError(problem)
    on_epoch = on_epoch or (lambda epoch, logs: None)

    # seed: the initializers are seeded in build_model and the data has its own streams; the
    # global seed covers anything else (it imports TensorFlow, so only on that backend)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(cfg.seed)

    # data: one sequence per epoch, fresh from the training stream or cycled from the file
    plan = cfg.framing
    if dataset is None:
        seqs = generate_sequences(stream_rng(cfg.seed, "train"), count=cfg.train.epochs,
                                  length=cfg.data.length, n_unique=cfg.data.n_unique)
    else:
        seqs = cycle(dataset.train, cfg.train.epochs)
    framed = frame(seqs, plan)

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
        history.append({"epoch": epoch, **logs})
        if target is not None and epoch % cfg.train.validate_every == 0:
            correct, total = accuracy(validate(validation.x)[0], validation.y)
            history[-1]["validation_accuracy"] = correct / total
            if correct / total >= target:
                raise _ReachedTarget
        on_epoch(epoch, logs)

    interrupted = reached = False
    start = time.perf_counter()
    try:
        run(model, cfg, framed, record)
    except KeyboardInterrupt:
        interrupted = True
    except _ReachedTarget:
        reached = True
        on_epoch(len(history), history[-1])
    seconds = time.perf_counter() - start
    models.reset_states(model)
    done = len(history)
    batches = rows_per_sequence(plan) // cfg.train.batch_size

    # evaluate
    heldout = None
    if evaluate_heldout and not interrupted:
        try:
            heldout = evaluate(model, cfg, dataset=dataset)
        except KeyboardInterrupt:  # the trained model is kept; only the score is missing
            interrupted = True
    result = RunResult(
        engine=engine, backend=backend(), epochs=cfg.train.epochs, epochs_completed=done,
        updates=done * batches, samples=done * rows_per_sequence(plan), train_seconds=seconds,
        history=history, heldout=heldout, interrupted=interrupted, peak_rss_mb=_peak_rss_mb(),
        reached_target=reached, **models.size(model),
    )
    return model, result

