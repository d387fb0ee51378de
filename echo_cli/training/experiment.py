"""One experiment, end to end, into its run directory: the path every trainer takes.

    cfg, dataset, why = prepare(load_config("configs/lag1.yaml"), engine="fast")
    with claim.create(None, cfg.name) as taken:
        outcome = run(cfg, taken.path, engine="fast", dataset=dataset)   # or Training(...)
    code, message = verdict(outcome)                                     # exit code, one line

`prepare` reads any file the task names, resolves the backend, checks the engine and refuses
a config that cannot fit in memory, each before anything is created; every change makes a new
validated config. `run` trains, then saves, step by step, history.csv, model.keras, the
held-out score, curves.png and, last, metrics.json, the mark of a finished run. A step that
fails is recorded in metrics.json, and everything before it is kept. `verdict` turns an
outcome into the exit code every front end uses (the CLI, a sweep's worker, the notebook).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echo_cli.config import limits
from echo_cli.config.loading import derive, to_yaml
from echo_cli.config.schema import Config
from echo_cli.errors import EchoError
from echo_cli.output import plots
from echo_cli.store import claim, files, provenance, rundir, tracking
from echo_cli.training import backends, checkpoint, signals

EpochHook = Callable[[int, dict[str, float]], None]


class EngineError(EchoError, ValueError):
    """An engine that cannot run this config on this backend."""


class RunFailedError(EchoError):
    """A run that failed after its directory was claimed; what it had done is kept."""

    exit_code = 1


def prepare(cfg: Config, *, engine: str) -> tuple[Config, Any, str]:
    """The config as it will run, its dataset (None for generated data), and why its backend.

    A file the task reads may change the config (data.n_unique from a CSV's vocabulary);
    train.backend auto becomes the backend that will run (backends.choose).

    Raises:
        DataError, ConfigError, LimitError, BackendError, EngineError: one line each.
    """
    from echo_cli.training.loop import engine_problem

    cfg, dataset = prepare_data(cfg)
    limits.check(cfg)
    for length in cfg.eval.lengths or []:  # the longest held-out sequences must fit too
        limits.check(derive(cfg, cfg.task.at_length(cfg, length),
                            source=f"eval.lengths {length}"))
    backend, why = backends.choose(cfg.train.backend, engine=engine)
    problem = engine_problem(engine, backend, cfg)
    if problem:
        raise EngineError(problem)
    if backend == "jax" and engine == "fast":  # refuse a changed Keras before anything exists
        from echo_cli.models.keras_internals import KerasChangedError, missing_internals

        backends.import_keras(backend)
        changed = missing_internals()
        if changed:
            raise KerasChangedError(changed[0])
    if backend != cfg.train.backend:  # the saved config.yaml names the backend that ran
        cfg = derive(cfg, {"train.backend": backend}, source="the resolved backend")
    return cfg, dataset, why


def prepare_data(cfg: Config) -> tuple[Config, Any]:
    """Read any file the task names, and the config as it runs with it.

    Raises:
        DataError: the file or column cannot be used.
        ConfigError: the config is invalid with what the file changes.
    """
    dataset, updates, source = cfg.task.prepare(cfg)
    if updates:
        cfg = derive(cfg, updates, source=source)
    return cfg, dataset


@dataclass
class Outcome:
    """What a run did: the model, the result, the metrics written, and a step that failed."""

    model: Any
    result: Any  # loop.RunResult
    metrics: rundir.Metrics | None
    failed_step: str | None = None
    error: str | None = None
    saved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. no TensorBoard to write tb/

    @property
    def interrupted(self) -> bool:
        return bool(self.result.interrupted)


def saved(outcome: Outcome, path: Path) -> str:
    """"runs/x/ (config.yaml, history.csv, ...)": what a run directory holds, in a set order."""
    order = [rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.METRICS, rundir.CURVES,
             rundir.LENGTHS, tracking.TB + "/", rundir.VOCABULARY]
    return f"{path}/ ({', '.join(f for f in order if f in outcome.saved)})"


def verdict(outcome: Outcome, path: Path) -> tuple[int, str | None]:
    """The exit code of a run and its one-line message: 0; a signal's code (130, 143, 129);
    1 when training could not go on (a loss no longer a number, a full disk) or a later step
    failed: the run is kept, recorded as failed in metrics.json."""
    where = saved(outcome, path)
    if outcome.failed_step in ("train", "history"):
        return 1, f"training stopped: {outcome.error}; the run so far is in {where}"
    if outcome.interrupted:
        return signals.exit_code(), None
    if outcome.failed_step is not None:
        return 1, (f"the {outcome.failed_step} step failed ({outcome.error}); what was done "
                   f"before it is kept in {where}")
    return 0, None


def _one_line(err: BaseException, file: Path | None = None) -> str:
    if isinstance(err, OSError) and file is not None:
        return files.describe(err, file)
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def _starting(path: Path, file: str):
    """A write at the start of a run; an OSError (a full disk) ends it in one line, exit 1."""
    try:
        yield
    except OSError as err:
        raise RunFailedError(f"cannot start the run in {path}: "
                             f"{files.describe(err, path / file)}") from None


class Training:
    """One prepared config being trained into its claimed directory, in three steps:

        job = Training(cfg, path, engine="fast", dataset=None)  # Keras imported, config.yaml
        job.train(on_epoch=bar.update)                          # history.csv streamed
        outcome = job.finish()                                  # the rest, step by step

    After training, each step runs even if one before it failed: history, model, held-out
    score, curves, then metrics.json, which records the first failed step and its error. A
    stop signal skips the steps still to come that only add (the score, the curves) and marks
    the run interrupted.
    """

    def __init__(self, cfg: Config, path: Path, *, engine: str = "fast", dataset=None,
                 resume: checkpoint.Saved | None = None, command: list[str] | None = None):
        """resume: a checkpoint of this run (checkpoint.load checked it against the config):
        the history up to it is kept, and training goes on from there. command: how the run
        was made, for command.txt (command_lines; default: this process's command line)."""
        self.cfg, self.path, self.engine, self.dataset = cfg, path, engine, dataset
        self.resume = resume
        backends.import_keras(cfg.train.backend)
        self.writer = rundir.RunWriter(path)
        with _starting(path, rundir.CONFIG):
            self.digest = self.writer.save_config(to_yaml(cfg))
        lines = command or command_lines(None, [])
        if resume is not None:  # the first lines stand; say how it went on
            lines = [f"resumed at epoch {resume.epoch}: " + lines[0].removeprefix("command: ")]
        with _starting(path, rundir.COMMAND):
            self.writer.append_command(lines)
        self.keeper = checkpoint.Keeper(path, cfg, engine=engine, digest=self.digest)
        self.saved = [rundir.CONFIG]
        vocabulary = getattr(dataset, "vocabulary", None)
        if vocabulary is not None:
            with _starting(path, rundir.VOCABULARY):
                self.writer.save_vocabulary(vocabulary)
            self.saved.append(rundir.VOCABULARY)
        fields = ["epoch", "loss", "accuracy"]
        if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
            fields += cfg.task.validation_columns(cfg)
        with _starting(path, rundir.HISTORY):
            self.history = self.writer.history(fields, rows=resume.history if resume else [])
        self.epoch_times: list[float] = []  # each epoch's wall time, for TensorBoard
        self.predictors = None  # sequences -> Predictor, shared by the seeds of train.seeds
        self.board = tracking.run_board(path, cfg)  # RUN/tb/, written as training goes
        self.model = self.result = None

    def train(self, on_epoch: EpochHook | None = None) -> None:
        """Train, streaming each epoch's row to history.csv.

        Raises:
            RunFailedError: training itself failed; the history so far is kept.
        """
        from echo_cli.training.loop import TrainingStopped, train

        rows: list[dict[str, float]] = list(self.resume.history) if self.resume else []

        def each_epoch(epoch: int, row: dict[str, float]) -> None:
            try:
                self.history.add(row)
            except OSError as err:  # the rows before it are whole, and kept
                raise TrainingStopped(files.describe(err, self.history.path),
                                      step="history") from None
            rows.append(row)
            self.epoch_times.append(time.time())
            self.board.epoch(epoch, row, wall=self.epoch_times[-1])
            if on_epoch is not None:
                on_epoch(epoch, row)

        try:
            self.model, self.result = train(self.cfg, engine=self.engine, on_epoch=each_epoch,
                                            evaluate_heldout=False, dataset=self.dataset,
                                            keeper=self.keeper, resume=self.resume)
        except Exception as err:  # noqa: BLE001 - keep the history, say it in one line
            with contextlib.suppress(OSError):  # else the streamed rows stand, whole
                self.history.close(rows)
            self.board.close()
            if _debug():
                traceback.print_exc()
            raise RunFailedError(f"training failed at epoch {len(rows) + 1} "
                                 f"({_one_line(err)}); the history so far is in "
                                 f"{self.path / rundir.HISTORY}") from None

    def finish(self) -> Outcome:
        """Save and score what training left, each step on its own, metrics.json last."""
        result = self.result
        outcome = Outcome(model=self.model, result=result, metrics=None, saved=self.saved)
        if result.stopped:
            outcome.failed_step, outcome.error = result.stopped
        phases = self._phases()
        for step, file, action, wanted in self._steps(outcome):
            if wanted:
                self._step(outcome, phases, step, file, action)
        result.interrupted = result.interrupted or signals.requested() is not None
        outcome.metrics = self._save_metrics(outcome, phases)
        if (rundir.METRICS in outcome.saved and outcome.failed_step is None
                and not result.interrupted):
            with contextlib.suppress(OSError):  # done: model.keras holds the result
                self.keeper.remove()
        return outcome

    # ------------------------------------------------------------------ the steps of finish
    def _phases(self) -> dict[str, float]:
        result = self.result
        compiling = result.compile_seconds or 0.0
        return {"import": backends.take_import_seconds(), "build": result.build_seconds or 0.0,
                "compile": compiling, "train": result.train_seconds - compiling,
                "evaluate": 0.0, "save": 0.0}

    def _steps(self, outcome: Outcome) -> list[tuple[str, str | None, Callable[[], Any], bool]]:
        """(name, the file it writes, what it does, whether it runs), in order."""
        from echo_cli.training.evaluate import evaluate, evaluate_lengths

        cfg, model, result, writer = self.cfg, self.model, self.result, self.writer
        # curves.png is drawn from the history alone, so it is drawn in a thread while the
        # model is saved and scored (compiled code, which releases the GIL), written in turn
        drawing = (_background(lambda: plots.curves_png(
            result.history, chance=cfg.chance_accuracy, baseline=cfg.baseline_loss,
            title=f"{cfg.name}: {cfg.model.kind}, {cfg.task.headline(cfg)}",
            **cfg.task.curve_labels)) if result.history and signals.requested() is None
            else None)

        def score() -> None:
            result.heldout = evaluate(model, cfg, dataset=self.dataset,
                                      predictors=self.predictors)

        def lengths() -> None:
            result.by_length = evaluate_lengths(model, cfg)
            writer.save_file(rundir.LENGTHS, plots.lengths_png(
                {int(k): v for k, v in result.by_length.items()}, chance=cfg.chance_accuracy,
                trained=cfg.task.horizon(cfg), title=f"{cfg.name}: {cfg.model.kind}, "
                                                     f"{cfg.task.figure} by length"))

        def tensorboard() -> None:
            note = self.board.finish(result.metrics(cfg).to_dict(),
                                     examples=result.heldout.examples if result.heldout else [],
                                     failed=outcome.failed_step is not None)
            if note:
                outcome.notes.append(note)

        return [
            ("history", rundir.HISTORY, lambda: self.history.close(result.history), True),
            ("model", rundir.MODEL,
             lambda: writer.save_model(lambda tmp: backends.save_model(model, tmp)), True),
            ("evaluate", None, score, not result.interrupted and not result.stopped),
            ("lengths", rundir.LENGTHS, lengths,
             bool(cfg.eval.lengths) and not result.interrupted and not result.stopped),
            ("curves", rundir.CURVES,
             lambda: writer.save_file(rundir.CURVES, drawing.result()), drawing is not None),
            ("tensorboard", tracking.TB + "/", tensorboard, bool(result.history)),
        ]

    def _step(self, outcome: Outcome, phases: dict[str, float], step: str, file: str | None,
              action: Callable[[], Any]) -> None:
        """Run one step; a stop skips the steps that only add, a failure is recorded."""
        if step in ("evaluate", "lengths", "curves") and signals.requested() is not None:
            self.result.interrupted = True
            return
        began = time.perf_counter()
        try:
            action()
        except (KeyboardInterrupt, signals.StopRequested):
            self.result.interrupted = True
        except Exception as err:  # noqa: BLE001 - a late failure is recorded, not raised
            if outcome.failed_step is None:
                outcome.failed_step, outcome.error = step, _one_line(
                    err, self.path / (file or rundir.METRICS))
            if _debug():
                traceback.print_exc()
        finally:
            # every file is whole, or not there (a failed history rewrite leaves the streamed
            # file, whole rows only)
            if file and (self.path / file).exists() and file not in outcome.saved:
                outcome.saved.append(file)
            phase = "evaluate" if step in ("evaluate", "lengths") else "save"
            phases[phase] += time.perf_counter() - began

    def _save_metrics(self, outcome: Outcome, phases: dict[str, float]) -> rundir.Metrics:
        cfg, result = self.cfg, self.result
        failure = ({"failed_step": outcome.failed_step, "error": outcome.error}
                   if outcome.failed_step is not None else {})  # set, so written
        metrics = rundir.Metrics(**result.metrics(cfg).to_dict(), **failure,
                                 config_sha256=self.digest,
                                 phase_seconds={k: round(v, 3) for k, v in phases.items()},
                                 provenance=provenance.collect(cfg.train.backend))
        try:
            self.writer.save_metrics(metrics)
        except OSError as err:
            if not (files.disk_full(err) and claim.free_reserve(self.path)):
                self._record_failure(outcome, "metrics", err)
                return metrics
            try:  # the claim's reserve is free now: room for the record of what failed
                self.writer.save_metrics(metrics)
            except OSError as again:
                self._record_failure(outcome, "metrics", again)
                return metrics
        outcome.saved.append(rundir.METRICS)
        return metrics

    def _record_failure(self, outcome: Outcome, step: str, err: OSError) -> None:
        if outcome.failed_step is None:
            outcome.failed_step = step
            outcome.error = _one_line(err, self.path / rundir.METRICS)


def command_lines(config: Path | str | None, overrides: list[str], *,
                  command: str | None = None) -> list[str]:
    """command.txt's lines: the command (this process's command line unless given), the
    config, the overrides and the working directory."""
    return [f"command: {command or shlex.join(['echo-cli', *sys.argv[1:]])}",
            f"config: {config if config is not None else '(defaults)'}",
            f"overrides: {' '.join(overrides) or '(none)'}",
            f"cwd: {Path.cwd()}"]


def run(cfg: Config, path: Path, *, engine: str = "fast", dataset=None,
        on_epoch: EpochHook | None = None, resume: checkpoint.Saved | None = None,
        command: list[str] | None = None) -> Outcome:
    """Train and finish one prepared config in its claimed directory `path` (from `resume`,
    a checkpoint of it, when given); `command` as Training takes it."""
    job = Training(cfg, path, engine=engine, dataset=dataset, resume=resume, command=command)
    job.train(on_epoch)
    return job.finish()


_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="echo-cli-background")


def _background(fn: Callable[[], Any]) -> Future:
    """fn running beside the caller; .result() waits for it and returns its value, or raises
    what it raised."""
    return _POOL.submit(fn)


def _debug() -> bool:
    """ECHO_CLI_DEBUG=1 prints the traceback of a late failure, for bug reports."""
    return os.environ.get("ECHO_CLI_DEBUG") == "1"
