"""The loop of several seeds in one compiled program (train.seeds): each seed's data, initial
weights, validation and stop, recorded as loop._Progress records a run of one seed.

    program = Program(cfg, members, on_epoch)      # members: one Member per seed (seeds.py)
    program.train(dataset)                          # every seed, chunk by chunk (vmapped.py)
    program.load(2); program.result(2)              # seed 2's variables and RunResult

A seed stops on its own, at a validation target (train.stop_at_target) or at a loss that is no
longer finite: its variables are kept as they were while the others train on. A stop signal
ends every seed at the end of the chunk, once each seed's epochs of it are recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from echo_cli.config import limits
from echo_cli.config.schema import Config
from echo_cli.models import factory
from echo_cli.store import files
from echo_cli.training import backends, engines, evaluate, experiment, signals
from echo_cli.training.loop import (
    DivergedError,
    RunResult,
    TrainingStopped,
    build,
    chunk_size,
    peak_rss_mb,
)

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass
class Member:
    """One seed of the program: its config, its run directory's steps, and what the loop
    recorded for it."""

    cfg: Config
    job: experiment.Training
    validator: evaluate.Validator | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    target_epoch: int | None = None
    active: bool = True
    stopped: TrainingStopped | None = None  # a loss no longer finite, a full disk

    def record(self, row: dict[str, float]) -> None:
        """Stream one epoch's row to the seed's history.csv and TensorBoard.

        Raises:
            TrainingStopped: history.csv could not be written (the rows before it are kept).
        """
        job = self.job
        try:
            job.history.add(row)
        except OSError as err:
            raise TrainingStopped(files.describe(err, job.history.path),
                                  step="history") from None
        self.history.append(row)
        job.epoch_times.append(time.time())
        job.board.epoch(row["epoch"], row, wall=job.epoch_times[-1])


@dataclass
class Program:
    """The seeds training together, and what they share: the model that lends its step and
    takes each seed's variables in turn, the compiled engine, and the clock."""

    cfg: Config
    members: list[Member]
    on_epoch: EpochHook
    model: Any = None
    engine: Any = None
    interrupted: bool = False
    build_seconds: float = 0.0
    seconds: float = 0.0
    first_chunk: float | None = None
    start: float = 0.0
    epochs_run: int = 0  # epochs the program has trained (a stopped seed's are fewer)
    initial: list = field(default_factory=list)  # each seed's initial (trainable, frozen)
    shared: Any = None  # _Shared: the predictors every seed uses in turn
    stop: BaseException | None = None  # a stop that arrived while a chunk was recorded

    def train(self, dataset) -> None:
        """Build, compile and train every seed; a stop signal ends all at a chunk's end."""
        cfg = self.cfg
        backends.import_keras(cfg.train.backend)
        group = chunk_size(cfg.train.epochs, cfg)
        per_block = group * max(1, limits.block_sequences(cfg) // group)
        streams = [m.cfg.task.blocks(m.cfg, dataset, group=group, per_block=per_block)
                   for m in self.members]
        built = time.perf_counter()
        self.model, self.initial = self._build()
        self.build_seconds = time.perf_counter() - built
        engines.compile_for(self.model, cfg)
        self.shared = _Shared(self.model, cfg)
        for m in self.members:
            m.validator = evaluate.Validator(self.model, m.cfg,
                                             predictor=self.shared.validation())
        self.start = time.perf_counter()
        try:
            signals.check()
            for blocks in zip(*streams, strict=True):
                if self._block(blocks, group):
                    break
        except (KeyboardInterrupt, signals.StopRequested):
            self.interrupted = True
        self.seconds = time.perf_counter() - self.start

    def _build(self):
        """One model, and each seed's initial weights drawn into it in turn: exactly the
        weights a run of its own builds (factory.draw_weights)."""
        model = build(self.members[0].cfg)
        start = []
        for m in self.members:
            factory.draw_weights(model, m.cfg.model, seed=m.cfg.seed)
            start.append(([np.asarray(v.value) for v in model.trainable_variables],
                          [np.asarray(v.value) for v in model.non_trainable_variables]))
        return model, start

    def _block(self, blocks, group: int) -> bool:
        """Train one block of every seed, chunk by chunk; True once no seed is left."""
        from echo_cli.training.vmapped import VmappedEngine

        first = blocks[0]
        if self.engine is None:
            self.engine = VmappedEngine(
                self.model, sample=(first.x[: first.batch], first.y[: first.batch],
                                    first.w[: first.batch]),
                hits=self.cfg.task.keras_hits(self.cfg), start=self.initial)
        xs, ys, ws = (np.stack([b.per_step(getattr(b, k)) for b in blocks]) for k in "xyw")
        done, recorded = self.epochs_run, None
        try:
            # the next chunk trains (in the engine's threads) while the last one is recorded
            for begin in range(0, first.groups, group):
                if recorded is not None and signals.requested() is not None:
                    # a stop: record the last chunk and raise it, with none left in flight
                    return self._record(*recorded, first.scored)
                part = slice(begin, begin + group)
                active = [m.active for m in self.members]
                self.engine.submit(xs[:, part], ys[:, part], ws[:, part], active)
                if recorded is not None and self._record(*recorded, first.scored):
                    return True
                losses, hits = self.engine.collect([m.active for m in self.members])
                if self.first_chunk is None:
                    self.first_chunk = time.perf_counter()
                recorded, done = (done, losses, hits, active), done + group
            return recorded is not None and self._record(*recorded, first.scored)
        finally:
            self.engine.drop()  # a chunk still in flight after a stop is not kept

    def _record(self, done: int, losses, hits, active: list[bool], scored: int) -> bool:
        """Record one trained chunk; True once no seed is left. Every seed's epochs of it are
        recorded even if a stop arrives meanwhile (validation checks for one); it is raised
        after."""
        stop = self._report(done, losses, hits, scored, active)
        if stop is not None:
            raise stop
        if not any(m.active for m in self.members):
            return True
        signals.check()
        return False

    def _report(self, done: int, losses, hits, scored: int,
                active: list[bool]) -> BaseException | None:
        """Record each epoch of the chunk for every seed that trained it, then the mean row
        for the progress bar. Returns a stop that arrived meanwhile."""
        self.stop = None
        for e in range(losses.shape[1]):
            epoch = done + e + 1
            rows = [self._epoch(i, epoch, float(losses[i, e]), float(hits[i, e]), scored)
                    for i, m in enumerate(self.members) if active[i] and m.active]
            shown = [r for r in rows if r is not None]
            if shown:
                self.on_epoch(epoch, {k: sum(r[k] for r in shown) / len(shown)
                                      for k in ("loss", "accuracy")})
        self.epochs_run = done + losses.shape[1]
        return self.stop

    def _epoch(self, i: int, epoch: int, loss: float, hits: float,
               scored: int) -> dict[str, float] | None:
        """Seed number i's epoch, as loop._Progress records a run's: a loss that is no
        longer finite stops the seed, validation may reach its target; None once stopped."""
        m = self.members[i]
        if not math.isfinite(loss):
            m.active, m.stopped = False, DivergedError(
                f"the training loss became {loss} at epoch {epoch}; lower "
                f"train.learning_rate (now {m.cfg.train.learning_rate:g})")
            return None
        row = {"epoch": epoch, "loss": loss, "accuracy": round(hits) / scored}
        reached = False
        if m.validator.due(epoch) and self.stop is None:
            self.engine.load(self.model, i)
            try:
                reached = m.validator.check(row)
            except (KeyboardInterrupt, signals.StopRequested) as err:
                self.stop = err
        try:
            m.record(row)
        except TrainingStopped as err:
            m.active, m.stopped = False, err
            return None
        if reached and m.target_epoch is None:
            m.target_epoch = epoch
        if reached and m.cfg.train.stop_at_target:
            m.active = False
        return row

    def load(self, i: int) -> None:
        """Seed number i's variables into the model: as trained, or as drawn when no chunk
        ran."""
        if self.engine is not None:
            self.engine.load(self.model, i)
            return
        trainable, frozen = self.initial[i]
        for variable, value in zip([*self.model.trainable_variables,
                                    *self.model.non_trainable_variables], [*trainable, *frozen],
                                   strict=True):
            variable.assign(value)

    def result(self, i: int) -> RunResult:
        """Seed number i's RunResult, its model in self.model: its own history, target and
        stop; the program's build, compile and train seconds."""
        m, cfg = self.members[i], self.cfg
        batches, samples = cfg.task.epoch_shape(cfg)
        done, group = len(m.history), chunk_size(cfg.train.epochs, cfg)
        warm = compile_seconds = None
        if self.first_chunk is not None and self.epochs_run > group:
            warm = (self.start + self.seconds - self.first_chunk) / (
                (self.epochs_run - group) * batches)
            compile_seconds = max(0.0, self.first_chunk - self.start - group * batches * warm)
        stopped = m.stopped
        return RunResult(
            engine="fast", backend=evaluate.backend(), epochs=cfg.train.epochs,
            epochs_completed=done, updates=done * batches, samples=done * samples,
            train_seconds=self.seconds, history=m.history, heldout=None,
            interrupted=self.interrupted and stopped is None, peak_rss_mb=peak_rss_mb(),
            reached_target=m.target_epoch is not None, target_epoch=m.target_epoch,
            stopped=(stopped.step, str(stopped)) if stopped is not None else None,
            build_seconds=self.build_seconds, compile_seconds=compile_seconds,
            seconds_per_update=warm, seeds_together=len(self.members),
            **factory.size(self.model))


class _Shared:
    """One Predictor per number of sequences for all the seeds: the model takes each seed's
    variables in turn, so the compiled prediction step is built once, not once per seed."""

    def __init__(self, model, cfg: Config):
        self.model, self.cfg = model, cfg
        self.made: dict[int, evaluate.Predictor] = {}

    def __call__(self, sequences: int) -> evaluate.Predictor:
        if sequences not in self.made:
            self.made[sequences] = evaluate.Predictor(self.model, self.cfg, sequences=sequences)
        return self.made[sequences]

    def validation(self) -> evaluate.Predictor | None:
        t = self.cfg.train
        if t.target_accuracy is None and t.target_loss is None:
            return None
        return self(self.cfg.eval.validation_sequences)
