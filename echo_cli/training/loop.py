"""Training: data, model, loop, stop rules. Everything returns plain numbers.

    model, result = train(cfg, engine="fast", on_epoch=lambda epoch, row: None)
    result.heldout.accuracy

The task makes each epoch's data (tasks/<name>.py): for the echo, one sequence framed into
batches; for the memory tasks, one batch of fresh sequences. The loops (engines.py) never know
which. Data is generated block by block (config/limits.py sizes the blocks), so train.epochs
costs time, not memory. After every epoch the loop checks a stop signal (signals.py), a loss
that is no longer finite, and any validation target.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from echo_cli.config import limits
from echo_cli.config.schema import Config
from echo_cli.errors import EchoError
from echo_cli.models import factory
from echo_cli.store import files
from echo_cli.store.metrics import Metrics
from echo_cli.tasks.base import Block, Heldout
from echo_cli.training import backends, checkpoint, engines, evaluate, signals, warm
from echo_cli.training.engines import EpochHook

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
    target_epoch: int | None = None  # the first epoch whose validation reached the target
    parameters: int = 0
    frozen_parameters: int = 0
    multiply_adds_per_sample: int = 0
    stopped: tuple[str, str] | None = None  # (the step, why) when training could not go on
    build_seconds: float | None = None
    compile_seconds: float | None = None  # the first chunk's time beyond the warm rate
    seconds_per_update: float | None = None  # the warm rate, after the first chunk
    by_length: dict[str, dict] | None = None  # eval.lengths: the held-out figures at each
    seeds_together: int | None = None  # train.seeds > 1: the seeds of its one program

    def metrics(self, cfg: Config) -> Metrics:
        """The record written to metrics.json."""
        last = self.history[-1] if self.history else {}
        out: dict[str, Any] = {
            "name": cfg.name, "seed": cfg.seed, "task": cfg.data.task,
            "data_source": cfg.task.source(cfg), "engine": self.engine,
            "backend": self.backend, "epochs": self.epochs,
            "epochs_completed": self.epochs_completed, "interrupted": self.interrupted,
            "model_kind": cfg.model.kind, "parameters": self.parameters,
            "frozen_parameters": self.frozen_parameters,
            "multiply_adds_per_sample": self.multiply_adds_per_sample, "updates": self.updates,
            "samples": self.samples, "train_seconds": round(self.train_seconds, 3),
            "peak_rss_mb": self.peak_rss_mb, "chance_accuracy": cfg.chance_accuracy,
            "final_train_loss": last.get("loss"), "final_train_accuracy": last.get("accuracy"),
            "baseline_loss": cfg.baseline_loss,
            **_heldout_fields(self.heldout),
        }
        if self.seconds_per_update is not None:
            out["seconds_per_update"] = self.seconds_per_update
        if self.seeds_together is not None:
            out["seeds_together"] = self.seeds_together
        if self.by_length is not None:
            out["heldout_by_length"] = self.by_length
        steps = cfg.steps
        if cfg.kind.receptive_field is not None:
            out["receptive_field"] = cfg.kind.receptive_field(cfg.model, steps)
        out.update(self._target_fields(cfg))
        return Metrics(**out)

    def _target_fields(self, cfg: Config) -> dict[str, Any]:
        stops = {"target_accuracy": cfg.train.target_accuracy,
                 "target_loss": cfg.train.target_loss}
        if all(v is None for v in stops.values()):
            return {}
        checks = [r for r in self.history if any(k.startswith("validation_") for k in r)]
        last = checks[-1] if checks else {}
        out = {**{k: v for k, v in stops.items() if v is not None},
               "validation_sequences": cfg.eval.validation_sequences,
               "reached_target": self.reached_target,
               "epochs_to_target": self.target_epoch,
               "samples_to_target": (self.target_epoch * self.samples // max(
                   self.epochs_completed, 1) if self.target_epoch is not None else None),
               "final_validation_accuracy": last.get("validation_accuracy")}
        if "validation_loss" in last:
            out["final_validation_loss"] = last["validation_loss"]
        return out


def _heldout_fields(h: Heldout | None) -> dict[str, Any]:
    """metrics.json's held-out figures: the task's accuracy figure with its counts and 95%
    interval, the loss, and the fields the task adds."""
    if h is None:
        return {"heldout_loss": None, "heldout_accuracy": None, "heldout_correct": None,
                "heldout_targets": None, "heldout_sequences": None, "ci95_low": None,
                "ci95_high": None}
    return {"heldout_loss": h.loss, "heldout_accuracy": h.accuracy, "heldout_correct": h.correct,
            "heldout_targets": h.targets, "heldout_sequences": h.sequences,
            "ci95_low": h.ci95_low, "ci95_high": h.ci95_high, **h.extra}


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
    seeds = cfg.train.seeds
    if seeds > 1 and engine == "tutorial":
        return (f"--engine tutorial trains one seed at a time; train.seeds: {seeds} trains them "
                f"as one program on the fast engine (leave --engine out), or train each seed "
                f"on its own (--set seed=S)")
    if seeds > 1 and backend != "jax":
        return (f"train.seeds: {seeds} trains the seeds as one compiled JAX program, and the "
                f"backend is {backend}; use --set train.backend=jax (pip install '.[jax]'), or "
                f"train each seed on its own (--set seed=S)")
    if engine == "tutorial" and not cfg.task.tutorial_engine:
        return (f"--engine tutorial is the tutorial's echo loop; data.task: {cfg.data.task} "
                f"trains with the fast engine (leave --engine out)")
    if engine == "tutorial" and backend == "jax" and cfg.model.stateful:
        return ("--engine tutorial cannot run a stateful model on the jax backend: Keras 3 "
                "leaves RNN state untracked, so its JAX fit silently drops the state between "
                "batches; use --set train.backend=tensorflow (the fast engine carries the state "
                "itself on jax)")
    return None


def chunk_size(epochs: int, cfg: Config) -> int:
    """Epochs per compiled chunk (or Keras epoch): divides the epochs and, when validating,
    the validation interval, so that checks fall on chunk boundaries; fewer for long
    sequences (limits.chunk_sequences)."""
    targets = cfg.train.target_accuracy is not None or cfg.train.target_loss is not None
    every = cfg.train.validate_every if targets else 0
    return max(k for k in range(1, limits.chunk_sequences(cfg) + 1)
               if epochs % k == 0 and every % k == 0)


def build(cfg: Config, *, batch_size: int | None = None):
    """The config's model, uncompiled, with its weights drawn from the seed."""
    return factory.build_model(cfg.signature, cfg.model, seed=cfg.seed,
                               batch_size=batch_size or cfg.train.batch_size)


class _ReachedTarget(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised from the per-epoch hook once validation reaches its target."""


class TrainingStopped(EchoError):
    """Training cannot go on; `step` names the run's step it is recorded against, and what
    was trained so far is kept."""

    exit_code = 1

    def __init__(self, message: str, *, step: str = "train"):
        super().__init__(message)
        self.step = step


class DivergedError(TrainingStopped):
    """The training loss stopped being a finite number."""


@dataclass
class _Progress:
    """What the per-epoch hook records as the loop runs."""

    cfg: Config
    group: int
    on_epoch: EpochHook
    validator: evaluate.Validator
    history: list[dict[str, float]] = field(default_factory=list)
    first_chunk: float | None = None  # when the first chunk (and its compiling) was done
    target_epoch: int | None = None  # the first epoch that reached the target
    keeper: checkpoint.Keeper | None = None  # saves checkpoints at chunk boundaries
    offset: int = 0  # epochs done before this session (a resumed run)
    earlier_seconds: float = 0.0  # their training seconds
    start: float = field(default_factory=time.perf_counter)

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        """Record epoch `epoch` of this session (epoch + offset of the run)."""
        if epoch == self.group:
            self.first_chunk = time.perf_counter()
        epoch += self.offset
        if not math.isfinite(logs["loss"]):
            raise DivergedError(f"the training loss became {logs['loss']} at epoch {epoch}; "
                                f"lower train.learning_rate (now "
                                f"{self.cfg.train.learning_rate:g})")
        row = {"epoch": epoch, **logs}
        self.history.append(row)
        reached = self.validator.due(epoch) and self.validator.check(row)
        if reached and self.target_epoch is None:
            self.target_epoch = epoch
        self.on_epoch(epoch, row)
        if self.keeper is not None and epoch % self.group == 0 and self.keeper.due(epoch):
            self.save_checkpoint()
        if reached and self.cfg.train.stop_at_target:
            raise _ReachedTarget
        signals.check()

    def save_checkpoint(self) -> None:
        """Save where training stands; only at a chunk boundary, where a resumed run can pick
        up the same groups of epochs.

        Raises:
            TrainingStopped: the checkpoint could not be written (a full disk, say).
        """
        done = len(self.history)
        if (self.keeper is None or self.keeper.every == 0 or done % self.group
                or done == self.keeper.last_epoch):
            return
        try:
            self.keeper.save(self.validator.model, epoch=done, history=self.history,
                             target_epoch=self.target_epoch,
                             train_seconds=self.earlier_seconds + time.perf_counter()
                             - self.start)
        except OSError as err:
            raise TrainingStopped(files.describe(err, self.keeper.file),
                                  step="checkpoint") from None


# ---------------------------------------------------------------------------------------------
# the run

def train(cfg: Config, *, engine: str = "fast", on_epoch: EpochHook | None = None,
          evaluate_heldout: bool = True, dataset=None, keeper: checkpoint.Keeper | None = None,
          resume: checkpoint.Saved | None = None):
    """Seed, generate, build, fit and (unless told not to) evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, row) after every epoch; row holds the epoch, loss,
            accuracy and, on a validation epoch, the task's validation figures.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.
        dataset: the sequences of a file the config names (its held-out part too); None for
            fresh sequences from the seed.
        keeper: saves checkpoints as training goes (training/checkpoint.py); None: none.
        resume: a checkpoint to continue from: its weights and optimizer state, its history,
            and the epochs after it.

    Returns:
        (model, RunResult). After Ctrl-C or a stop signal the result has interrupted=True, the
        history so far and no held-out score; when training could not go on (a loss that is
        not finite, a full disk), `stopped` says why, and the history holds the epochs
        before it.
    """
    keras = backends.import_keras(cfg.train.backend)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    problem = engine_problem(engine, keras.backend.backend(), cfg)
    if problem:
        raise ValueError(problem)
    if cfg.train.seeds > 1:
        raise ValueError(f"train() trains one seed; train.seeds: {cfg.train.seeds} trains "
                         f"through training/seeds.py (seeds.run)")

    # seed: the initializers are seeded in build and the data has its own streams; the
    # global seed covers anything else (it imports TensorFlow, so only on that backend)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(cfg.seed)

    # data: generated block by block as training reaches it
    group = chunk_size(cfg.train.epochs, cfg)
    per_block = group * max(1, limits.block_sequences(cfg) // group)
    blocks = cfg.task.blocks(cfg, dataset, group=group, per_block=per_block)
    done = resume.epoch if resume is not None else 0
    if done:
        blocks = _after(blocks, done)

    # build
    built = time.perf_counter()
    model, _ = warm.model(cfg, build)  # a sweep worker's earlier model of these shapes
    build_seconds = time.perf_counter() - built

    # fit, validating every train.validate_every epochs when a target is set
    progress = _Progress(cfg, group, on_epoch or (lambda epoch, row: None),
                         evaluate.Validator(model, cfg), keeper=keeper, offset=done)
    if resume is not None:
        progress.history = list(resume.history)
        progress.target_epoch, progress.earlier_seconds = (resume.target_epoch,
                                                           resume.train_seconds)
        if keeper is not None:
            keeper.last_epoch = done
    start = progress.start = time.perf_counter()
    stopped = _fit(engines.engine_for(engine, keras.backend.backend()), model, cfg, blocks,
                   progress, group, restore=resume.restore if resume is not None else None)
    seconds = time.perf_counter() - start
    factory.reset_states(model)

    # evaluate
    heldout = None
    if evaluate_heldout and stopped in ("done", "reached"):
        heldout = _evaluate(model, cfg, dataset)
        if heldout is _INTERRUPTED:
            heldout, stopped = None, "interrupted"
    return model, _result(cfg, engine, model, progress, heldout, stopped=stopped,
                          seconds=seconds, start=start, build_seconds=build_seconds)


_INTERRUPTED: Any = object()


def _fit(run, model, cfg: Config, blocks, progress: _Progress, group: int, restore=None):
    """Run the loop; how it ended: "done", "reached" (a target), "interrupted", or the
    TrainingStopped that stopped it (a loss no longer finite, a full disk). An interrupted
    run saves a checkpoint where it stopped, if that is a chunk boundary and it keeps them."""
    try:
        signals.check()  # a stop that came while Keras was importing: no epoch at all
        run(model, cfg, blocks, progress, group=group, restore=restore)
    except (KeyboardInterrupt, signals.StopRequested):
        with contextlib.suppress(TrainingStopped):  # the last checkpoint stands
            progress.save_checkpoint()
        return "interrupted"
    except _ReachedTarget:
        return "reached"
    except TrainingStopped as err:
        return err
    return "done"


def _after(blocks: Iterator[Block], done: int) -> Iterator[Block]:
    """The blocks without their first `done` epochs: where a resumed run goes on."""
    for block in blocks:
        if done >= block.groups:
            done -= block.groups
            continue
        yield block.after(done) if done else block
        done = 0


def _evaluate(model, cfg: Config, dataset) -> Heldout:
    try:
        return evaluate.evaluate(model, cfg, dataset=dataset)
    except (KeyboardInterrupt, signals.StopRequested):  # the trained model is kept
        return _INTERRUPTED


def _result(cfg: Config, engine: str, model, progress: _Progress, heldout: Heldout | None, *,
            stopped, seconds: float, start: float, build_seconds: float) -> RunResult:
    done, group = len(progress.history), progress.group
    session = done - progress.offset  # the epochs of this process (fewer when resumed)
    batches, samples = cfg.task.epoch_shape(cfg)
    # the warm rate, from the chunks after the first; the first chunk's surplus is compiling
    warm = compile_seconds = None
    if progress.first_chunk is not None and session > group:
        warm = (start + seconds - progress.first_chunk) / ((session - group) * batches)
        compile_seconds = max(0.0, progress.first_chunk - start - group * batches * warm)
    seconds += progress.earlier_seconds
    return RunResult(
        engine=engine, backend=evaluate.backend(), epochs=cfg.train.epochs,
        epochs_completed=done, updates=done * batches, samples=done * samples,
        train_seconds=seconds, history=progress.history, heldout=heldout,
        interrupted=stopped == "interrupted", peak_rss_mb=peak_rss_mb(),
        reached_target=progress.target_epoch is not None, target_epoch=progress.target_epoch,
        stopped=(stopped.step, str(stopped)) if isinstance(stopped, TrainingStopped) else None,
        build_seconds=build_seconds, compile_seconds=compile_seconds,
        seconds_per_update=warm, **factory.size(model))
