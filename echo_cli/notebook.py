"""echo-cli from a notebook: load a config, train it with a progress bar, look at the run.

    import echo_cli.notebook as ec

    cfg = ec.load("configs/lag1.yaml", {"train.epochs": 200})   # or ["train.epochs=200"]
    run = ec.train(cfg)                      # runs/lag1-<time>/, as `echo-cli train` writes it
    run.history                              # pandas DataFrame: epoch, loss, accuracy
    run.heldout                              # held-out accuracy, its 95% interval, chance
    run.curves()                             # a matplotlib Figure, shown inline in Jupyter
    run.predict([3, 1, 4, 1, 5, 9, 2, 6])    # expected X(t-lag) beside the prediction
    run.predict_heldout()                    # the same for a fresh held-out sequence
    run = ec.open_run("runs/lag1-20261129-120000")   # a run trained by the CLI, or here

Training takes the CLI's path (experiment.prepare, claim.create, experiment.Training), so it
writes the same run directory; prediction is analysis/trained.py's, as `echo-cli predict` uses it. A
problem raises the EchoError subclass whose one-line message the CLI would print. Keras,
pandas and matplotlib are imported only when a call needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from echo_cli.config.loading import Config, load_config
from echo_cli.errors import EchoError
from echo_cli.store import claim, rundir

ENGINES = ("fast", "tutorial")
PREDICTION_COLUMNS = ("t", "input", "expected", "predicted", "probability", "match", "note")


class NotebookError(EchoError, ValueError):
    """An argument of this API that cannot be used."""


# ---------------------------------------------------------------------------------------------
# load and train

def load(path: str | Path | None = None,
         overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Config:
    """A validated config: defaults < the YAML file < overrides, as `--set` applies them.

    Args:
        path: a YAML file such as configs/lag1.yaml; None for the defaults.
        overrides: dotted keys and values, {"train.epochs": 200}, or the CLI's
            ["train.epochs=200"] strings.

    Raises:
        ConfigError: an unknown key, a bad value or a missing file, in one line.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    if isinstance(overrides, Mapping):
        overrides = [f"{key}={_yaml_scalar(value)}" for key, value in overrides.items()]
    return load_config(path, overrides=list(overrides or []))


def _yaml_scalar(value: Any) -> str:
    """A Python value as the YAML text `--set` parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def train(cfg: Config | str | Path, *, out: str | Path | None = None,
          runs: str | Path | None = None, engine: str = "fast", progress: bool = True) -> Run:
    """Train one experiment as `echo-cli train` does, into a run directory of its own.

    Args:
        cfg: a config from `load` (or the path of a YAML file).
        out: the run directory, which must be new or empty, like --out. Default: a new
            <runs>/<name>-<YYYYmmdd-HHMMSS>/ (with -2, -3 ... if that exists).
        runs: the folder for those default names, e.g. "runs/notebook"; default runs/.
        engine: "fast" or "tutorial", like --engine.
        progress: a tqdm bar per run (a widget in Jupyter, updated every epoch with the loss
            and accuracy) and a line saying where the run was saved.

    Returns:
        The finished Run.

    Raises:
        ConfigError, LimitError, BackendError, EngineError, RunDirError: before anything is
            created (an existing run directory is never written into).
        RunFailedError: training, or a step after it, failed; what was done is kept.
        KeyboardInterrupt: interrupted (Jupyter's stop button): the run so far is saved and
            marked interrupted.
    """
    from echo_cli.training import experiment

    if engine not in ENGINES:
        raise NotebookError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if not isinstance(cfg, Config):
        cfg = load(cfg)
    cfg, dataset, _ = experiment.prepare(cfg, engine=engine)
    if progress:
        if dataset is not None:
            print(cfg.task.describe_dataset(cfg, dataset))
        for note in cfg.warnings():
            print(f"note: {note}")
    with claim.create(Path(out) if out is not None else None, cfg.name,
                       runs=Path(runs) if runs is not None else None) as taken:
        job = experiment.Training(cfg, taken.path, engine=engine, dataset=dataset)  # Keras
        bar = _Bar(cfg, enabled=progress)
        try:
            job.train(on_epoch=bar.update)
        finally:
            bar.close()
        outcome = job.finish()
    path, result = taken.path, outcome.result
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.failed_step == "train":
        raise experiment.RunFailedError(f"training stopped: {outcome.error}; the run so far "
                                        f"is in {path}")
    if outcome.interrupted:
        raise KeyboardInterrupt(f"interrupted after {result.epochs_completed} of "
                                f"{cfg.train.epochs} epochs; what was done so far is in "
                                f"{path} (open_run reads it)")
    if outcome.failed_step is not None:
        raise experiment.RunFailedError(f"the {outcome.failed_step} step failed "
                                        f"({outcome.error}); what was done before it is kept "
                                        f"in {path}")
    run = open_run(path)
    if progress:
        m = run.metrics
        print(f"{cfg.name}: {m.epochs_completed} epochs, {m.updates} weight updates in "
              f"{m.train_seconds:.1f} s ({m.backend}); saved in {path}")
    return run


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
        self.metrics: rundir.Metrics = record.metrics
        self._loaded = None  # analysis.trained.TrainedRun, once the model is needed

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
        m = self.metrics
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

        m = self.metrics
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
    """Runs side by side, from each metrics.json: what it tests, its held-out accuracy with
    the 95% interval, chance, and what training cost.

    Returns:
        A pandas DataFrame indexed by run name.
    """
    import pandas as pd

    rows = []
    for run in runs:
        run = run if isinstance(run, Run) else open_run(run)
        m = run.metrics
        rows.append({"run": run.name, "what it tests": run.cfg.description,
                     "held-out accuracy": m.heldout_accuracy, "ci95_low": m.ci95_low,
                     "ci95_high": m.ci95_high, "chance": m.chance_accuracy,
                     "epochs": m.epochs_completed, "train seconds": m.train_seconds})
    return pd.DataFrame(rows).set_index("run")
