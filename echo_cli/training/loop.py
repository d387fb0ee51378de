"""Training: data, model, loop, stop rules. Everything returns plain numbers.

    model, result = train(cfg, engine="fast", on_epoch=lambda epoch, row: None)
    result.heldout.accuracy

The task (tasks.py) makes each epoch's data: for the echo, one sequence framed into batches;
for copy memory and the adding problem, one batch of fresh sequences. The loops (engines.py)
never know which. Data is generated block by block (limits.py sizes the blocks), so
train.epochs costs time, not memory. After every epoch the loop checks a stop signal
(signals.py), a loss that is no longer finite, and any validation target.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from echo_cli import tasks
from echo_cli.config import limits
from echo_cli.config.loading import Config
from echo_cli.errors import EchoError
from echo_cli.models import factory as models
from echo_cli.store.rundir import Metrics
from echo_cli.tasks.framing import (
    Dataset,
    Framed,
    frame,
    generate_sequences,
    rows_per_sequence,
    stream_rng,
)
from echo_cli.training import backends, engines, evaluate, signals
from echo_cli.training.engines import Block, EpochHook
from echo_cli.training.evaluate import Heldout, backend

ENGINES = ("fast", "tutorial")


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
    build_seconds: float | None = None
    compile_seconds: float | None = None  # the first chunk's time beyond the warm rate
    seconds_per_update: float | None = None  # the warm rate, after the first chunk

    def metrics(self, cfg: Config) -> Metrics:
        """The record written to metrics.json."""
        h = self.heldout
        out = {
            "name": cfg.name,
            "seed": cfg.seed,
            "task": cfg.data.task,
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
        out.update(baseline_loss=cfg.baseline_loss, heldout_loss=h.loss if h else None)
        adding = cfg.data.task == "adding"
        held = {"heldout_accuracy": None, "heldout_correct": None, "heldout_targets": None,
                "heldout_sequences": None, "ci95_low": None, "ci95_high": None}
        if adding:  # no accuracy: the share of sums within the tolerance, with its interval
            held = {"heldout_sequences": h.sequences if h else None,
                    "tolerance": tasks.TOLERANCE,
                    "heldout_within": h.accuracy if h else None,
                    "heldout_within_count": h.correct if h else None,
                    "within_ci95_low": h.ci95_low if h else None,
                    "within_ci95_high": h.ci95_high if h else None}
        elif h is not None:
            held = {"heldout_accuracy": h.accuracy, "heldout_correct": h.correct,
                    "heldout_targets": h.targets, "heldout_sequences": h.sequences,
                    "ci95_low": h.ci95_low, "ci95_high": h.ci95_high}
            if cfg.per_step_output and cfg.data.task == "echo":
                held.update(heldout_unscored_positions=h.unscored,
                            heldout_exact_match=h.exact_match,
                            heldout_per_position=h.per_position)
        out.update(held)
        if self.seconds_per_update is not None:
            out["seconds_per_update"] = self.seconds_per_update
        field = models.receptive_field(cfg)
        if field is not None:
            out["receptive_field"] = field
        checks = [r for r in self.history if any(k.startswith("validation_") for k in r)]
        last = checks[-1] if checks else {}
        stops = {"target_accuracy": cfg.train.target_accuracy,
                 "target_loss": cfg.train.target_loss}
        if any(v is not None for v in stops.values()):
            out.update(
                **{k: v for k, v in stops.items() if v is not None},
                validation_sequences=cfg.eval.validation_sequences,
                reached_target=self.reached_target,
                epochs_to_target=self.epochs_completed if self.reached_target else None,
                samples_to_target=self.samples if self.reached_target else None,
                final_validation_accuracy=last.get("validation_accuracy"),
            )
            if "validation_loss" in last:
                out["final_validation_loss"] = last["validation_loss"]
        return Metrics(**out)


# ---------------------------------------------------------------------------------------------
# helpers

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
    if engine == "tutorial" and cfg.data.task != "echo":
        return (f"--engine tutorial is the tutorial's echo loop; data.task: {cfg.data.task} "
                f"trains with the fast engine (leave --engine out)")
    if engine == "tutorial" and backend == "jax" and cfg.model.stateful:
        return ("--engine tutorial cannot run a stateful model on the jax backend: Keras 3 "
                "leaves RNN state untracked, so its JAX fit silently drops the state between "
                "batches; use --set train.backend=tensorflow (the fast engine carries the state "
                "itself on jax)")
    return None


def epoch_shape(cfg: Config) -> tuple[int, int]:
    """(batches per epoch, samples per epoch): an echo sequence's rows in batches, or one
    batch of fresh sequences for the memory tasks."""
    if cfg.data.task == "echo":
        rows = rows_per_sequence(cfg.framing)
        return rows // cfg.train.batch_size, rows
    return 1, cfg.train.batch_size


def _chunk_size(epochs: int, cfg: Config) -> int:
    """Epochs per compiled chunk (or Keras epoch): divides the epochs and, when validating,
    the validation interval, so that checks fall on chunk boundaries; fewer for long
    sequences (limits.chunk_sequences)."""
    targets = cfg.train.target_accuracy is not None or cfg.train.target_loss is not None
    every = cfg.train.validate_every if targets else 0
    return max(k for k in range(1, limits.chunk_sequences(cfg) + 1)
               if epochs % k == 0 and every % k == 0)


def _echo_arrays(framed: Framed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten framed sequences to model arrays: ids, sparse targets, sample weights."""
    x = models.model_input(framed.x.reshape(-1, framed.x.shape[-1]))
    y = framed.y.reshape(-1, *framed.y.shape[2:])
    weights = (y >= 0).astype(np.float32)
    return x, np.maximum(y, 0).astype(np.int32), weights


def _blocks(cfg: Config, dataset: Dataset | None, group: int) -> Iterator[Block]:
    """The training data, epoch after epoch, generated block by block.

    Each block is a whole number of groups of `group` epochs and holds at most about
    limits.CHUNK_BYTES. Drawing the data block by block from the training stream gives exactly
    what one draw of it all would.
    """
    epochs, batch = cfg.train.epochs, cfg.train.batch_size
    batches, _ = epoch_shape(cfg)
    per_block = group * max(1, limits.block_sequences(cfg) // group)
    rng = stream_rng(cfg.seed, "train")
    for start in range(0, epochs, per_block):
        count = min(per_block, epochs - start)
        if cfg.data.task != "echo":
            x, y, w = evaluate.task_batch(cfg, rng, count * batch)
            scored = batch * (cfg.data.recall if cfg.data.task == "copy" else 1)
            yield Block(x, y, w, groups=count, batches=1, batch=batch, scored=scored)
            continue
        if dataset is None:
            seqs = generate_sequences(rng, count=count, length=cfg.data.length,
                                      n_unique=cfg.data.n_unique)
        else:  # cycle through the file's sequences, one per epoch
            seqs = dataset.train[np.arange(start, start + count) % len(dataset.train)]
        framed = frame(seqs, cfg.framing)
        x, y, w = _echo_arrays(framed)
        yield Block(x, y, w, groups=count, batches=batches, batch=batch,
                    scored=int((framed.y[0] >= 0).sum()))


class _ReachedTarget(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised from the per-epoch hook once validation reaches its target."""


class DivergedError(EchoError):
    """The training loss stopped being a finite number."""


# ---------------------------------------------------------------------------------------------
# the run

def train(cfg: Config, *, engine: str = "fast", on_epoch: EpochHook | None = None,
          evaluate_heldout: bool = True, dataset: Dataset | None = None):
    """Seed, generate, build, fit and (unless told not to) evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, row) after every epoch; row holds the epoch, loss,
            accuracy and, on a validation epoch, validation_accuracy or validation_loss.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.
        dataset: for data.source csv, the sequences read from the file (cycled, one per
            epoch) and its held-out part; None for fresh random sequences.

    Returns:
        (model, RunResult). After Ctrl-C or a stop signal the result has interrupted=True, the
        history so far and no held-out score; after a loss that is not finite, `diverged`
        says when, and the history holds the epochs before it.
    """
    keras = backends.import_keras(cfg.train.backend)

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

    # data: generated block by block as training reaches it
    group = _chunk_size(cfg.train.epochs, cfg)
    blocks = _blocks(cfg, dataset, group)

    # build
    built = time.perf_counter()
    model = models.build_model(cfg)
    build_seconds = time.perf_counter() - built

    # fit, validating every train.validate_every epochs when a target is set
    run = engines.engine_for(engine, keras.backend.backend())
    history: list[dict] = []
    validator = evaluate.Validator(model, cfg)

    def record(epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs["loss"]):
            raise DivergedError(f"the training loss became {logs['loss']} at epoch {epoch}; "
                                f"lower train.learning_rate (now {cfg.train.learning_rate:g})")
        row = {"epoch": epoch, **logs}
        history.append(row)
        if epoch == group:  # the first chunk (and its compiling) is done
            marks["first_chunk"] = time.perf_counter()
        reached = validator.due(epoch) and validator.check(row)
        on_epoch(epoch, row)
        if reached:
            raise _ReachedTarget
        signals.check()

    interrupted = reached = False
    diverged = None
    marks: dict[str, float] = {}
    start = time.perf_counter()
    try:
        signals.check()  # a stop that came while Keras was importing: no epoch at all
        run(model, cfg, blocks, record, group=group)
    except (KeyboardInterrupt, signals.StopRequested):
        interrupted = True
    except _ReachedTarget:
        reached = True
    except DivergedError as err:
        diverged = str(err)
    seconds = time.perf_counter() - start
    models.reset_states(model)
    done = len(history)
    batches, samples = epoch_shape(cfg)
    # the warm rate, from the chunks after the first; the first chunk's surplus is compiling
    warm = compile_seconds = None
    if "first_chunk" in marks and done > group:
        warm = (start + seconds - marks["first_chunk"]) / ((done - group) * batches)
        compile_seconds = max(0.0, marks["first_chunk"] - start - group * batches * warm)

    # evaluate
    heldout = None
    if evaluate_heldout and not interrupted and diverged is None:
        try:
            heldout = evaluate.evaluate(model, cfg, dataset=dataset)
        except (KeyboardInterrupt, signals.StopRequested):  # the trained model is kept
            interrupted = True
    result = RunResult(
        engine=engine, backend=backend(), epochs=cfg.train.epochs, epochs_completed=done,
        updates=done * batches, samples=done * samples, train_seconds=seconds,
        history=history, heldout=heldout, interrupted=interrupted, peak_rss_mb=peak_rss_mb(),
        reached_target=reached, diverged=diverged, build_seconds=build_seconds,
        compile_seconds=compile_seconds, seconds_per_update=warm, **models.size(model),
    )
    return model, result
