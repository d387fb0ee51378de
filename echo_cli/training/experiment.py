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

import os
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
from echo_cli.store import provenance, rundir, tracking
from echo_cli.training import backends, signals, startup

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
             tracking.TB + "/", rundir.VOCABULARY]
    return f"{path}/ ({', '.join(f for f in order if f in outcome.saved)})"


def verdict(outcome: Outcome, path: Path) -> tuple[int, str | None]:
    """The exit code of a run and its one-line message: 0; a signal's code (130, 143, 129);
    2 when training stopped on a loss that is no longer a number; 1 when a later step failed."""
    where = saved(outcome, path)
    if outcome.failed_step == "train":
        return 2, f"training stopped: {outcome.error}; the run so far is in {where}"
    if outcome.interrupted:
        return signals.exit_code(), None
    if outcome.failed_step is not None:
        return 1, (f"the {outcome.failed_step} step failed ({outcome.error}); what was done "
                   f"before it is kept in {where}")
    return 0, None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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

    def __init__(self, cfg: Config, path: Path, *, engine: str = "fast", dataset=None):
        self.cfg, self.path, self.engine, self.dataset = cfg, path, engine, dataset
        backends.import_keras(cfg.train.backend)
        self.writer = rundir.RunWriter(path)
        self.digest = self.writer.save_config(to_yaml(cfg))
        self.saved = [rundir.CONFIG]
        vocabulary = getattr(dataset, "vocabulary", None)
        if vocabulary is not None:
            self.writer.save_vocabulary(vocabulary)
            self.saved.append(rundir.VOCABULARY)
        fields = ["epoch", "loss", "accuracy"]
        if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
            fields += cfg.task.validation_columns(cfg)
        self.history = self.writer.history(fields)
        self.epoch_times: list[float] = []  # each epoch's wall time, for TensorBoard
        self.model = self.result = None

    def train(self, on_epoch: EpochHook | None = None) -> None:
        """Train, streaming each epoch's row to history.csv.

        Raises:
            RunFailedError: training itself failed; the history so far is kept.
        """
        from echo_cli.training.loop import train

        rows: list[dict[str, float]] = []

        def each_epoch(epoch: int, row: dict[str, float]) -> None:
            if not rows:  # built and compiled: the imports no longer compete with them
                startup.warm_up_in_background()
            rows.append(row)
            self.epoch_times.append(time.time())
            self.history.add(row)
            if on_epoch is not None:
                on_epoch(epoch, row)

        try:
            self.model, self.result = train(self.cfg, engine=self.engine, on_epoch=each_epoch,
                                            evaluate_heldout=False, dataset=self.dataset)
        except Exception as err:  # noqa: BLE001 - keep the history, say it in one line
            self.history.close(rows)
            if _debug():
                traceback.print_exc()
            raise RunFailedError(f"training failed at epoch {len(rows) + 1} "
                                 f"({_one_line(err)}); the history so far is in "
                                 f"{self.path / rundir.HISTORY}") from None

    def finish(self) -> Outcome:
        """Save and score what training left, each step on its own, metrics.json last."""
        result = self.result
        outcome = Outcome(model=self.model, result=result, metrics=None, saved=self.saved)
        if result.diverged:
            outcome.failed_step, outcome.error = "train", result.diverged
        phases = self._phases()
        for step, file, action, wanted in self._steps(outcome):
            if wanted:
                self._step(outcome, phases, step, file, action)
        result.interrupted = result.interrupted or signals.requested() is not None
        outcome.metrics = self._save_metrics(outcome, phases)
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
        from echo_cli.training.evaluate import evaluate

        cfg, model, result, writer = self.cfg, self.model, self.result, self.writer
        # curves.png is drawn from the history alone, so it is drawn in a thread while the
        # model is saved and scored (compiled code, which releases the GIL), written in turn
        drawing = (_background(lambda: plots.curves_png(
            result.history, chance=cfg.chance_accuracy, baseline=cfg.baseline_loss,
            title=f"{cfg.name}: {cfg.model.kind}, {cfg.task.headline(cfg)}",
            **cfg.task.curve_labels)) if result.history and signals.requested() is None
            else None)

        def score() -> None:
            result.heldout = evaluate(model, cfg, dataset=self.dataset)

        def tensorboard() -> None:
            note = tracking.write_tensorboard(self.path, result.history,
                                              result.metrics(cfg).to_dict(),
                                              times=self.epoch_times)
            if note:
                outcome.notes.append(note)

        return [
            ("history", rundir.HISTORY, lambda: self.history.close(result.history), True),
            ("model", rundir.MODEL,
             lambda: writer.save_model(lambda tmp: backends.save_model(model, tmp)), True),
            ("evaluate", None, score, not result.interrupted and not result.diverged),
            ("curves", rundir.CURVES,
             lambda: writer.save_file(rundir.CURVES, drawing.result()), drawing is not None),
            ("tensorboard", tracking.TB + "/", tensorboard, bool(result.history)),
        ]

    def _step(self, outcome: Outcome, phases: dict[str, float], step: str, file: str | None,
              action: Callable[[], Any]) -> None:
        """Run one step; a stop skips the steps that only add, a failure is recorded."""
        if step in ("evaluate", "curves") and signals.requested() is not None:
            self.result.interrupted = True
            return
        began = time.perf_counter()
        try:
            action()
        except (KeyboardInterrupt, signals.StopRequested):
            self.result.interrupted = True
        except Exception as err:  # noqa: BLE001 - a late failure is recorded, not raised
            if outcome.failed_step is None:
                outcome.failed_step, outcome.error = step, _one_line(err)
            if _debug():
                traceback.print_exc()
        else:
            if file and (self.path / file).exists():
                outcome.saved.append(file)
        finally:
            phases["evaluate" if step == "evaluate" else "save"] += time.perf_counter() - began

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
            outcome.saved.append(rundir.METRICS)
        except Exception as err:  # noqa: BLE001 - e.g. the disk is full: say so, keep the rest
            if outcome.failed_step is None:
                outcome.failed_step, outcome.error = "metrics", _one_line(err)
        return metrics


def run(cfg: Config, path: Path, *, engine: str = "fast", dataset=None,
        on_epoch: EpochHook | None = None) -> Outcome:
    """Train and finish one prepared config in its claimed directory `path`."""
    job = Training(cfg, path, engine=engine, dataset=dataset)
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
