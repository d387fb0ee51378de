"""echo-cli from a notebook: load a config, train it with a progress bar, look at the run.

    import echo_cli.notebook as ec

    cfg = ec.load("lag1", train__epochs=200)   # a built-in config, or a path; also a dict
    run = ec.train(cfg)                      # runs/lag1-<time>/, as `echo-cli train` writes it
    run.metrics["heldout_accuracy"]          # metrics.json as a plain dict (run.record: typed)
    run.history                              # pandas DataFrame: epoch, loss, accuracy
    run.heldout                              # held-out accuracy, its 95% interval, chance
    run.parameters                           # trainable, and frozen (the one-hot table)
    run.curves()                             # a matplotlib Figure, shown inline in Jupyter
    run.predict([3, 1, 4, 1, 5, 9, 2, 6])    # expected X(t-lag) beside the prediction
    run.predict_heldout()                    # the same for a fresh held-out sequence
    run = ec.open_run("runs/lag1-20261129-120000")   # a run trained by the CLI, or here

Training takes the CLI's path (experiment.prepare, claim.create, experiment.Training), so it
writes the same run directory; prediction is analysis/trained.py's, as `echo-cli predict` uses
it. A problem raises the EchoError subclass whose one-line message the CLI would print, worded
for Python (`overrides={'train.epoch': 5}`, `out=`) rather than for the command line. Keras,
pandas and matplotlib are imported only when a call needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from echo_cli.config.loading import Config, load_config
from echo_cli.errors import EchoError, python_words
from echo_cli.store import claim, rundir

__all__ = ["ENGINES", "NotebookError", "Run", "config_path", "load", "open_run", "results",
           "train"]

ENGINES = ("fast", "tutorial")
PREDICTION_COLUMNS = ("t", "input", "expected", "predicted", "probability", "match", "note")


class NotebookError(EchoError, ValueError):
    """An argument of this API that cannot be used."""


# ---------------------------------------------------------------------------------------------
# load and train

def load(path: str | Path | None = None,
         overrides: Mapping[str, Any] | Sequence[str] | None = None, **keys: Any) -> Config:
    """A validated config: defaults < the YAML file < overrides, as `--set` applies them.

    Args:
        path: a YAML file such as configs/lag1.yaml, or a built-in config's name ("lag1");
            None for the defaults.
        overrides: dotted keys and values, {"train.epochs": 200}, or the CLI's
            ["train.epochs=200"] strings.
        **keys: more overrides as keyword arguments, a double underscore for each dot:
            train__epochs=200 is {"train.epochs": 200}. They apply after `overrides`.

    Raises:
        ConfigError: an unknown key, a bad value or a missing file, in one line.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    if isinstance(overrides, Mapping):
        overrides = [f"{key}={_yaml_scalar(value)}" for key, value in overrides.items()]
    assignments = [*(overrides or []),
                   *(f"{key.replace('__', '.')}={_yaml_scalar(value)}"
                     for key, value in keys.items())]
    with python_words():
        return load_config(path, overrides=assignments)


def config_path(name: str) -> Path:
    """Where a built-in config is installed, e.g. config_path("lag1"): to read or copy it.

    Raises:
        ConfigError: no built-in config has that name (the message lists them).
    """
    from echo_cli.config import builtin

    return Path(builtin.path(name))


def _yaml_scalar(value: Any) -> str:
    """A Python value as the YAML text `--set` parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return "null" if value is None else str(value)


def train(cfg: Config | str | Path, *, out: str | Path | None = None,
          runs: str | Path | None = None, engine: str = "fast", progress: bool = True,
          mlflow: str | None = None) -> Run:
    """Train one experiment as `echo-cli train` does, into a run directory of its own.

    Args:
        cfg: a config from `load` (or a YAML file's path, or a built-in config's name).
        out: the run directory, which must be new or empty, like --out. Default: a new
            <runs>/<name>-<YYYYmmdd-HHMMSS>/ (with -2, -3 ... if that exists).
        runs: the folder for those default names, e.g. "runs/notebook"; default runs/.
        engine: "fast" or "tutorial", like --engine.
        progress: a tqdm bar per run (a widget in Jupyter, updated every epoch with the loss
            and accuracy) and a line saying where the run was saved.
        mlflow: an MLflow tracking URI, e.g. "sqlite:///mlflow.db", to log the run to live,
            as `--mlflow` does (needs pip install 'echo-cli[mlflow]'). Default: none, even
            where MLFLOW_TRACKING_URI is set.

    Returns:
        The finished Run.

    Raises:
        ConfigError, LimitError, BackendError, EngineError, RunDirError, TrackingError:
            before anything is created (an existing run directory is never written into).
        RunFailedError: training, or a step after it, failed; what was done is kept.
        KeyboardInterrupt: interrupted (Jupyter's stop button): the run so far is saved and
            marked interrupted.
    """
    from echo_cli.store import tracking
    from echo_cli.training import experiment

    if engine not in ENGINES:
        raise NotebookError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    with python_words():
        if not isinstance(cfg, Config):
            cfg = load(cfg)
        cfg, dataset, _ = experiment.prepare(cfg, engine=engine)
        if cfg.train.seeds > 1:
            raise NotebookError(f"train() trains one seed, and train.seeds is {cfg.train.seeds}; "
                                f"run `echo-cli train CONFIG --seeds {cfg.train.seeds}` and "
                                f"open each seed with open_run('RUN/seeds/seed=S')")
        uri = tracking.mlflow_uri(mlflow) if mlflow is not None else None
        if progress:
            if dataset is not None:
                print(cfg.task.describe_dataset(cfg, dataset))
            for note in cfg.warnings():
                print(f"note: {note}")
        with claim.create(Path(out) if out is not None else None, cfg.name,
                          runs=Path(runs) if runs is not None else None) as taken:
            job = experiment.Training(  # imports Keras
                cfg, taken.path, engine=engine, dataset=dataset,
                command=experiment.command_lines(None, [], command="echo_cli.notebook.train() "
                                                 "(the config is config.yaml)"))
            bar = _Bar(cfg, enabled=progress)
            with tracking.live_mlflow(uri, taken.path, cfg) as following:
                try:
                    job.train(on_epoch=following.hook(bar.update))
                finally:
                    bar.close()
                outcome = job.finish()
                outcome.notes += following.finish(outcome.model)
        path = taken.path
        for note in outcome.notes:
            print(f"note: {note}")
        _raise_unless_done(outcome, cfg, path)
    run = open_run(path)
    if progress:
        m = run.record
        print(f"{cfg.name}: {m.epochs_completed} epochs, {m.updates} weight updates in "
              f"{m.train_seconds:.1f} s ({m.backend}); saved in {path}")
    return run


def _raise_unless_done(outcome, cfg: Config, path: Path) -> None:
    """RunFailedError for a run that failed, KeyboardInterrupt for one that was stopped."""
    from echo_cli.training import experiment

    code, message = experiment.verdict(outcome, path)
    if message is not None:
        raise experiment.RunFailedError(message)
    if code:
        raise KeyboardInterrupt(f"interrupted after {outcome.result.epochs_completed} of "
                                f"{cfg.train.epochs} epochs; what was done so far is in "
                                f"{path} (open_run reads it)")


class _Bar:
    """One tqdm.auto bar for a run: a widget in Jupyter, text elsewhere."""

    def __init__(self, cfg: Config, *, enabled: bool):
        self.bar = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise NotebookError("the progress bar needs tqdm: pip install 'echo-cli[notebook]',"
                                " or pass progress=False") from None
        unit = cfg.task.epoch_unit
        # smoothing 0: the average rate, since the fast engine reports epochs in bursts
        self.bar = tqdm(total=cfg.train.epochs, desc=cfg.name, unit=unit, leave=True,
                        smoothing=0)

    def update(self, epoch: int, row: dict[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix(loss=f"{row['loss']:.4f}", accuracy=f"{row['accuracy']:.3f}",
                             refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------
# a run directory

def open_run(path: str | Path) -> Run:
    """A finished run directory, trained by `echo-cli train` or by `train` here.

    Raises:
        RunDirError: not a run directory (no config.yaml and metrics.json).
        ConfigError, DamagedRunError: a file that cannot be read, or a config.yaml edited
            after training.
    """
    return Run(rundir.read(Path(path)))


class Run:
    """A run directory, read through rundir.py: its config, its metrics.json record, its
    history and curves, its model, and predictions through analysis/trained.py."""

    def __init__(self, record: rundir.RunRecord):
        self.path: Path = record.path
        self.cfg: Config = record.cfg
        self.record: rundir.Metrics = record.metrics  # metrics.json, typed and validated
        self._loaded = None  # analysis.trained.TrainedRun, once the model is needed

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json as a plain dict: run.metrics["heldout_accuracy"]. The fields it does
        not hold are left out; `run.record` is the same record, typed (record.updates)."""
        return self.record.to_dict()

    @property
    def parameters(self) -> dict[str, int]:
        """The weights, by what training does to them: "trainable" (what `echo-cli train`
        reports), "frozen" (kept fixed: the one-hot table of a one-hot input, and an echo
        state network's reservoir) and "total", which is what Keras's
        `run.model.count_params()` counts."""
        m = self.record
        frozen = m.frozen_parameters or 0
        return {"trainable": m.parameters, "frozen": frozen, "total": m.parameters + frozen}

    @property
    def name(self) -> str:
        """The run directory's name, e.g. lag1-20261129-120000."""
        return self.path.name

    @property
    def history(self):
        """history.csv as a pandas DataFrame: epoch, loss, accuracy (and validation columns
        when a target was set), one row per epoch."""
        import pandas as pd

        return pd.DataFrame(rundir.read_history(self.path))

    @property
    def heldout(self) -> dict[str, Any] | None:
        """The held-out figures of metrics.json: accuracy on fresh sequences, its 95% Wilson
        interval, the counts behind it, and chance. None for a run that was not scored
        (interrupted before the held-out step)."""
        m = self.record
        if m.heldout_accuracy is None:
            return None
        return {"accuracy": m.heldout_accuracy, "ci95_low": m.ci95_low,
                "ci95_high": m.ci95_high, "chance": m.chance_accuracy,
                "correct": m.heldout_correct, "targets": m.heldout_targets,
                "sequences": m.heldout_sequences}

    def summary(self) -> str:
        """The held-out line `echo-cli train` prints: accuracy, interval and counts beside
        chance, and the held-out loss beside the memoryless baseline."""
        from echo_cli.output import report

        m = self.record
        if not m.scored:
            return (f"{self.name}: not scored, interrupted after {m.epochs_completed} of "
                    f"{m.epochs} epochs")
        task = self.cfg.task
        return report.heldout_line(m.model_dump(), figure=task.figure, counted=task.counted,
                                   chance_words=task.chance_words,
                                   baseline_words=task.baseline_words(self.cfg)).plain

    def __repr__(self) -> str:
        return f"<Run {self.path}: {self.summary().splitlines()[0]}>"

    @property
    def model(self):
        """The trained Keras model, loaded from model.keras as `echo-cli predict` loads it."""
        return self._infer_run().model

    def curves(self):
        """Training loss per epoch beside the memoryless baseline, and accuracy beside chance,
        as curves.png draws them.

        Returns:
            A matplotlib Figure (Jupyter shows it inline; fig.savefig writes it).
        """
        import matplotlib.pyplot as plt

        from echo_cli.output import plots

        # made through pyplot so that Jupyter's inline backend shows it, and closed so that
        # it is shown once, as the cell's value
        fig = plt.figure(figsize=plots.CURVES_SIZE)
        plt.close(fig)
        cfg = self.cfg
        return plots.curves_figure(
            rundir.read_history(self.path), chance=cfg.chance_accuracy,
            baseline=cfg.baseline_loss, title=f"{self.name}: {cfg.description or cfg.name}",
            figure=fig, **cfg.task.curve_labels)

    # -----------------------------------------------------------------------------------------
    # predict

    def predict(self, values: Sequence[int | str] | str):
        """Expected X(t-lag) beside the model's prediction for your own integers, framed as in
        training: the rows `echo-cli predict RUN VALUES... --json` prints.

        Args:
            values: integers, e.g. [3, 1, 4, 1, 5, 9, 2, 6], or a string "3 1 4 1 5 9 2 6".

        Returns:
            A pandas DataFrame, one row per t: t, input, expected, predicted, probability,
            match (None where no prediction is made) and note (why not).

        Raises:
            RunError: a value that is not an integer of the run's range, or too few values.
        """
        if isinstance(values, str):
            values = values.split()
        run = self._infer_run()
        return self._rows(run.encode([str(v) for v in values]))

    def predict_heldout(self, sequence: int = 0):
        """`predict` for a fresh held-out sequence: one the model never trained on, from the
        held-out seed stream that the held-out score uses (the file's held-out part for CSV
        data). sequence: which one, 0 for the first."""
        import numpy as np

        cfg = self.cfg
        if not isinstance(sequence, (int, np.integer)) or sequence < 0:
            raise NotebookError(f"sequence must be an integer ≥ 0, got {sequence!r}")
        dataset, _, _ = cfg.task.prepare(cfg)
        if dataset is not None:
            seqs = dataset.heldout
            if sequence >= len(seqs):
                raise NotebookError(f"the file's held-out part has {len(seqs)} sequences; "
                                    f"sequence must be below {len(seqs)}, got {sequence}")
        else:
            seqs = cfg.task.sequences(cfg, "heldout", int(sequence) + 1)
        return self._rows([int(v) for v in seqs[sequence]])

    def _rows(self, ids: list[int]):
        import pandas as pd

        from echo_cli.analysis import trained as infer

        rows = infer.predict_rows(self._infer_run(), ids)
        frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object)
                              for c in PREDICTION_COLUMNS})
        frame["t"] = frame["t"].astype(int)
        frame["probability"] = frame["probability"].astype(float)
        frame["note"] = frame["note"].fillna("")
        return frame

    def _infer_run(self):
        from echo_cli.analysis import trained as infer

        if self._loaded is None:
            self._loaded = infer.load_run(self.path)
        return self._loaded


# ---------------------------------------------------------------------------------------------
# runs side by side

def results(runs: Iterable[Run | str | Path]):
    """Runs side by side, as results.csv has them (snake_case, metrics.json's names): what it
    tests, its held-out accuracy with the 95% interval, chance, and what training cost.

    Returns:
        A pandas DataFrame indexed by run directory name.
    """
    import pandas as pd

    from echo_cli.output import tables

    rows = []
    for run in runs:
        run = run if isinstance(run, Run) else open_run(run)
        cfg = run.cfg
        row = tables.result_row(cfg.dump(), run.metrics, task_settings=cfg.task.settings(cfg),
                                figure=cfg.task.figure)
        rows.append({"run": run.name, **{k: row[k] for k in tables.RESULT_FIELDS}})
    return pd.DataFrame(rows).set_index("run")
