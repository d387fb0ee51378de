"""One experiment, end to end, into its run directory: the path every trainer takes.

    cfg, dataset, why = prepare(load_config("configs/lag1.yaml"), engine="fast")
    with rundir.create(None, cfg.name) as claim:
        outcome = run(cfg, claim.path, engine="fast", dataset=dataset)   # or Run(...) by steps

`prepare` reads any CSV data, resolves the backend, checks the engine and refuses a config
that cannot fit in memory, each before anything is created; every change makes a new validated
config (a config is never changed after validation). `run` trains, then saves, step by step,
history.csv, model.keras, the held-out score, curves.png and, last, metrics.json, the mark of a
finished run. A step that fails is recorded in metrics.json, and everything before it is kept.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echo_cli.config import limits
from echo_cli.config.loading import Config, derive, to_yaml
from echo_cli.errors import EchoError
from echo_cli.output import plots
from echo_cli.store import rundir
from echo_cli.tasks.framing import Dataset, csv_dataset
from echo_cli.training import signals


class EngineError(EchoError, ValueError):
    """An engine that cannot run this config on this backend."""


class RunFailedError(EchoError):
    """A run that failed after its directory was claimed; what it had done is kept."""

    exit_code = 1


def prepare(cfg: Config, *, engine: str) -> tuple[Config, Dataset | None, str]:
    """The config as it will run, its dataset (None for random data), and why its backend.

    For data.source csv the file is read and data.n_unique set from its vocabulary;
    train.backend auto becomes the backend that will run (backends.choose).

    Raises:
        DataError, ConfigError, LimitError, BackendError, EngineError: one line each.
    """
    from echo_cli.training.backends import choose
    from echo_cli.training.loop import engine_problem

    cfg, dataset = prepare_data(cfg)
    limits.check(cfg)
    backend, why = choose(cfg.train.backend, engine=engine)
    problem = engine_problem(engine, backend, cfg)
    if problem:
        raise EngineError(problem)
    if backend == "jax" and engine == "fast":  # refuse a changed Keras before anything exists
        from echo_cli.models.keras_internals import KerasChangedError, missing_internals
        from echo_cli.training.backends import import_keras

        import_keras(backend)
        changed = missing_internals()
        if changed:
            raise KerasChangedError(changed[0])
    if backend != cfg.train.backend:  # the saved config.yaml names the backend that ran
        cfg = derive(cfg, {"train.backend": backend}, source="the resolved backend")
    return cfg, dataset, why


def prepare_data(cfg: Config) -> tuple[Config, Dataset | None]:
    """For data.source csv: read the file, and set n_unique from its vocabulary if it has one.

    Raises:
        DataError: the file or column cannot be used.
        ConfigError: the config is invalid with the file's n_unique.
    """
    if cfg.data.source != "csv":
        return cfg, None
    dataset = csv_dataset(cfg.data)
    if dataset.n_unique != cfg.data.n_unique:
        cfg = derive(cfg, {"data.n_unique": dataset.n_unique},
                     source=f"{cfg.data.path} with its vocabulary")
    return cfg, dataset


def first_sample(cfg: Config) -> tuple:
    """A memory task's first training sequence of the seed, as check-data shows it:
    (x, y, baseline loss, chance). x: ids (copy) or (steps, 2) numbers (adding)."""
    from echo_cli import tasks
    from echo_cli.tasks.framing import stream_rng

    rng, d = stream_rng(cfg.seed, "train"), cfg.data
    if d.task == "copy":
        x, y = tasks.copy_memory(rng, count=1, delay=d.delay, recall=d.recall)
    else:
        x, y = tasks.adding(rng, count=1, length=d.length)
    return x[0], y[0], cfg.baseline_loss, cfg.chance_accuracy


def describe_dataset(cfg: Config, dataset: Dataset) -> str:
    """One line on what a CSV file became: sequences, held-out part, vocabulary."""
    how = (f"{len(dataset.vocabulary)} distinct values mapped to ids 0 .. "
           f"{len(dataset.vocabulary) - 1} (data.n_unique = {dataset.n_unique})"
           if dataset.vocabulary is not None else
           f"integers used as they are (data.n_unique = {dataset.n_unique}, the largest + 1)")
    gaps = ""
    if dataset.gaps:
        lines = ", ".join(map(str, dataset.gaps[:5])) + (", ..." if len(dataset.gaps) > 5 else "")
        gaps = (f"; {len(dataset.gaps)} rows have no value (lines {lines}): sequences are cut "
                f"between them, never across one")
    return (f"data: {dataset.rows} values from {cfg.data.path} column {cfg.data.column!r}: "
            f"{len(dataset.train)} training sequences (cycled, one per epoch) and "
            f"{len(dataset.heldout)} held-out sequences from the last "
            f"{cfg.data.heldout_fraction:.0%} of the file; {how}{gaps}")


@dataclass
class Outcome:
    """What a run did: the model, the result, the metrics written, and a step that failed."""

    model: Any
    result: Any  # train.RunResult
    metrics: rundir.Metrics | None
    failed_step: str | None = None
    error: str | None = None
    saved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. no TensorBoard to write tb/

    @property
    def interrupted(self) -> bool:
        return bool(self.result.interrupted)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Run:
    """One prepared config being run into its claimed directory, in three steps:

        run = Run(cfg, path, engine="fast", dataset=None)  # Keras imported, config.yaml written
        run.train(on_epoch=bar.update)                     # history.csv streamed as it goes
        outcome = run.finish()                             # the rest, step by step

    After training, each step runs even if one before it failed: history, model, held-out
    score, curves, then metrics.json, which records the first failed step and its error. A
    stop signal skips the steps still to come that only add (the score, the curves) and marks
    the run interrupted.
    """

    def __init__(self, cfg: Config, path: Path, *, engine: str = "fast",
                 dataset: Dataset | None = None):
        from echo_cli.training.backends import import_keras

        self.cfg, self.path, self.engine, self.dataset = cfg, path, engine, dataset
        import_keras(cfg.train.backend)
        self.writer = rundir.RunWriter(path)
        self.digest = self.writer.save_config(to_yaml(cfg))
        self.saved = [rundir.CONFIG]
        if dataset is not None and dataset.vocabulary is not None:
            self.writer.save_vocabulary(dataset.vocabulary)
            self.saved.append(rundir.VOCABULARY)
        fields = ["epoch", "loss", "accuracy"]
        if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
            fields += (["validation_accuracy"] if cfg.data.task != "adding" else []) + (
                ["validation_loss"] if cfg.data.task != "echo" else [])
        self.history = self.writer.history(fields)
        self.epoch_times: list[float] = []  # each epoch's wall time, for TensorBoard
        self.model = self.result = None

    def train(self, on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> None:
        """Train, streaming each epoch's row to history.csv.

        Raises:
            RunFailedError: training itself failed; the history so far is kept.
        """
        from echo_cli.training.loop import train

        rows: list[dict[str, float]] = []

        def each_epoch(epoch: int, row: dict[str, float]) -> None:
            if not rows:  # built and compiled: the imports no longer compete with them
                threading.Thread(target=_import_for_saving, name="echo-cli-imports",
                                 daemon=True).start()
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
        from echo_cli.store import provenance, tracking
        from echo_cli.training import backends
        from echo_cli.training.backends import save_model
        from echo_cli.training.evaluate import evaluate

        cfg, model, result, writer = self.cfg, self.model, self.result, self.writer
        task = cfg.data.task
        compiling = result.compile_seconds or 0.0
        phases = {"import": backends.take_import_seconds(), "build": result.build_seconds or 0.0,
                  "compile": compiling, "train": result.train_seconds - compiling,
                  "evaluate": 0.0, "save": 0.0}
        outcome = Outcome(model=model, result=result, metrics=None, saved=self.saved)
        if result.diverged:
            outcome.failed_step, outcome.error = "train", result.diverged

        def score() -> None:
            result.heldout = evaluate(model, cfg, dataset=self.dataset)

        # curves.png is drawn from the history alone, so it is drawn in a thread while the
        # model is saved and scored (compiled code, which releases the GIL), and written in turn
        drawing = _Background(lambda: plots.curves_png(
            result.history, chance=cfg.chance_accuracy, baseline=cfg.baseline_loss,
            title=f"{cfg.name}: {cfg.model.kind}, {_setting(cfg)}", **CURVE_LABELS[task]),
        ) if result.history and signals.requested() is None else None

        def curves() -> None:
            writer.save_file(rundir.CURVES, drawing.result())

        def tensorboard() -> None:
            note = tracking.write_tensorboard(self.path, result.history,
                                              result.metrics(cfg).to_dict(),
                                              times=self.epoch_times)
            if note:
                outcome.notes.append(note)

        steps = [
            ("history", rundir.HISTORY, lambda: self.history.close(result.history), True),
            ("model", rundir.MODEL,
             lambda: writer.save_model(lambda tmp: save_model(model, tmp)), True),
            ("evaluate", None, score, not result.interrupted and not result.diverged),
            ("curves", rundir.CURVES, curves, drawing is not None),
            ("tensorboard", tracking.TB + "/", tensorboard, bool(result.history)),
        ]
        for step, file, action, wanted in steps:
            if not wanted:
                continue
            if step in ("evaluate", "curves") and signals.requested() is not None:
                result.interrupted = True
                continue
            began = time.perf_counter()
            try:
                action()
            except (KeyboardInterrupt, signals.StopRequested):
                result.interrupted = True
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
        result.interrupted = result.interrupted or signals.requested() is not None
        failure = ({"failed_step": outcome.failed_step, "error": outcome.error}
                   if outcome.failed_step is not None else {})  # set, so written
        metrics = rundir.Metrics(**result.metrics(cfg).to_dict(), **failure,
                                 config_sha256=self.digest,
                                 phase_seconds={k: round(v, 3) for k, v in phases.items()},
                                 provenance=provenance.collect(cfg.train.backend))
        try:
            writer.save_metrics(metrics)
            outcome.saved.append(rundir.METRICS)
        except Exception as err:  # noqa: BLE001 - e.g. the disk is full: say so, keep the rest
            if outcome.failed_step is None:
                outcome.failed_step, outcome.error = "metrics", _one_line(err)
        outcome.metrics = metrics
        return outcome


def run(cfg: Config, path: Path, *, engine: str = "fast", dataset: Dataset | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Outcome:
    """Run, train and finish one prepared config in its claimed directory `path`."""
    job = Run(cfg, path, engine=engine, dataset=dataset)
    job.train(on_epoch)
    return job.finish()


CURVE_LABELS = {
    "echo": {},
    "copy": {"epoch_label": "update (one batch of fresh sequences each)",
             "accuracy_label": "recall accuracy"},
    "adding": {"epoch_label": "update (one batch of fresh sequences each)",
               "accuracy_label": "share within 0.04 of the sum",
               "chance_label": "always predicting 1"},
}


def _setting(cfg: Config) -> str:
    """The setting a title names: the lag, or the memory task's T."""
    return {"copy": f"copy memory, T={cfg.data.delay}",
            "adding": f"adding, T={cfg.data.length}"}.get(cfg.data.task, f"lag {cfg.data.lag}")


class _Background:
    """A function run in a daemon thread; result() waits for it and returns its value, or
    raises what it raised."""

    def __init__(self, fn: Callable[[], Any]):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True,
                                        name="echo-cli-background")
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the caller by result()
            self._error = err

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _import_for_saving() -> None:
    """Import what the steps after training need (matplotlib for curves.png, TensorBoard's
    record format for tb/) while training runs: the compiled training steps release the GIL,
    so on a second core these imports take nothing from the wait."""
    with contextlib.suppress(Exception):
        from echo_cli.output import plots
        from echo_cli.store import tracking

        plots.warm_up()
        tracking.tensorboard_installed()


def _debug() -> bool:
    """ECHO_CLI_DEBUG=1 prints the traceback of a late failure, for bug reports."""
    return os.environ.get("ECHO_CLI_DEBUG") == "1"
