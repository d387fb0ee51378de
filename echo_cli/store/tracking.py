"""The tools researchers already use: TensorBoard event files in every run, MLflow when asked,
both written while the run trains.

    board = tracking.run_board(run_dir, cfg)            # RUN/tb/, Keras's layout (tensorboard.py)
    board.epoch(epoch, row, wall=time.time())           # each epoch, from the training hook
    note = board.finish(metrics, examples=..., failed=False)   # images, text, HParams; closed
    with tracking.live_mlflow(uri, run_dir, cfg) as mlflow:     # --mlflow URI (mlflow_run.py)
        outcome = experiment.run(..., on_epoch=mlflow.hook(bar.update))
        lines = mlflow.finish(outcome.model)            # one line to print, logged or not
    line = tracking.log_inspect(run_dir, out)           # inspect's pictures into RUN/tb/
    tracking.write_sweep_hparams(sweep_dir, runs, keys) # a sweep's HParams table

TensorBoard files are written with tensorboardX, which never imports TensorFlow (tensorboard.py
says why). MLflow is optional (`pip install 'echo-cli[mlflow]'`): a store that cannot be
reached costs the run nothing but one line that says what was not logged.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echo_cli.errors import EchoError
from echo_cli.store import mlflow_run, rundir, tensorboard
from echo_cli.store.mlflow_run import log_sweep  # noqa: F401 - the sweep command's entry

if TYPE_CHECKING:
    from echo_cli.config.schema import Config

TB = "tb"  # RUN/tb/ and SWEEP/tb/
INSPECT_SUFFIX = ".inspect"  # RUN/tb/'s file of inspect's pictures, replaced by each inspect
HELDOUT_TAGS = tensorboard.HELDOUT_TAGS
MISSING_TENSORBOARD = ("tensorboardX is not installed, so no tb/ event files were written; "
                       "`pip install tensorboardX` adds them to the next runs")


class TrackingError(EchoError, ValueError):
    """A tracking option that cannot work as given (MLflow asked for but not installed)."""


# ---------------------------------------------------------------------------------------------
# TensorBoard


def tensorboard_installed() -> bool:
    """Whether tb/ can be written (tensorboardX, the writer, is installed)."""
    return tensorboard.installed()


class RunTensorBoard:
    """RUN/tb/ for one training run: `epoch` from the per-epoch hook, `finish` once at the end
    (the held-out figures, curves.png, the decoded examples, the HParams), `close` on a crash."""

    def __init__(self, run_dir: Path, cfg: Config):
        self.run_dir, self.cfg = run_dir, cfg
        self.board = (tensorboard.RunBoard(
            run_dir / TB, hparams=rundir.flatten(cfg.dump()),
            accuracy=cfg.task.curve_labels.get("accuracy_label", "accuracy"))
            if tensorboard_installed() else None)

    def epoch(self, epoch: int, row: dict[str, Any], *, wall: float) -> None:
        """One epoch's history.csv row, at its wall time (never raises)."""
        if self.board is not None:
            self.board.epoch(epoch, row, wall=wall)

    def finish(self, metrics: dict[str, Any], *, examples: list[Any],
               failed: bool) -> str | None:
        """Write the end of the run and close the files.

        Returns:
            None, or a note when tensorboardX is not installed (nothing is written then).

        Raises:
            Exception: a write that failed, now or during training.
        """
        if self.board is None:
            return MISSING_TENSORBOARD
        images = {name.removesuffix(".png"): (self.run_dir / name).read_bytes()
                  for name in (rundir.CURVES, rundir.LENGTHS) if (self.run_dir / name).is_file()}
        texts = {"examples": examples_markdown(self.cfg, examples)} if examples else {}
        status = ("failure" if failed else "stopped" if metrics.get("interrupted")
                  else "success")
        self.board.finish(metrics, images=images, texts=texts, status=status)
        return None

    def close(self) -> None:
        """Close the files, keeping what was written (training failed)."""
        if self.board is not None:
            self.board.close()


def run_board(run_dir: Path, cfg: Config) -> RunTensorBoard:
    """RUN/tb/, opened at the first epoch."""
    return RunTensorBoard(run_dir, cfg)


def examples_markdown(cfg: Config, examples: list[Any]) -> str:
    """The decoded held-out examples as `train` prints them, in a Markdown code block."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None, force_terminal=False).print(
        cfg.task.examples_view(cfg, examples, width=100))
    lines = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    return (f"**{cfg.name}**: {cfg.model.kind}, {len(examples)} decoded held-out sequences "
            f"(as `echo-cli train` prints them)\n\n```\n{lines}\n```\n")


def log_inspect(run_dir: Path, out: Path) -> str:
    """inspect's pictures (OUT/state.png, OUT/probes.png) as TensorBoard images of the run
    itself, RUN/tb/, at its last epoch, replacing those of an earlier inspect: beside the run's
    curves in `tensorboard --logdir runs`, wherever --out put the files. Never raises.

    Returns:
        The line to print: where the images went, or why they did not.
    """
    if not tensorboard_installed():
        return MISSING_TENSORBOARD.replace("tb/ event files were", "TensorBoard images were")
    metrics = rundir.try_read_metrics(run_dir)
    tags = {"inspect/state": "state.png", "inspect/memory_curve": "probes.png"}
    try:
        tensorboard.write_images(run_dir / TB, {
            tag: (out / name).read_bytes() for tag, name in tags.items()
            if (out / name).is_file()}, step=metrics.epochs_completed if metrics else 0,
            suffix=INSPECT_SUFFIX)
    except OSError as err:
        return (f"note: the pictures were not added to {run_dir / TB}/ for TensorBoard "
                f"({err.strerror or err})")
    return f"TensorBoard: {', '.join(tags)} added to {run_dir / TB}/"


# the metrics of a sweep's HParams table: (run under each run's tb/, tag)
SWEEP_METRICS = [("", "heldout/accuracy"), ("", "heldout/loss"), ("train", "epoch_loss"),
                 ("train", "epoch_accuracy"), ("validation", "epoch_accuracy")]


def write_sweep_hparams(sweep_dir: Path, runs: list[tuple[dict[str, Any], Path]],
                        keys: list[str]) -> None:
    """TensorBoard's HParams for a sweep: SWEEP/tb/ declares the swept keys and the metrics,
    and each finished run's tb/ records its values (its session, replacing the run's own), so
    `tensorboard --logdir SWEEP` puts the runs in one table. runs: (swept values with the
    seed, run directory) of each done run."""
    if not tensorboard_installed() or not runs:
        return
    domains = {}
    for name in [*keys, "seed"]:
        values = sorted({tensorboard.hparam_value(v[name]) for v, _ in runs if name in v},
                        key=str)
        if len({type(v) for v in values}) > 1:  # mixed types: a Discrete domain needs one
            values = sorted({str(v) for v in values})
        domains[name] = values
    tensorboard.write_experiment(sweep_dir / TB, domains, SWEEP_METRICS)
    for values, run_dir in runs:
        chosen = {k: (str(tensorboard.hparam_value(v))
                      if isinstance(next(iter(domains[k]), None), str) else v)
                  for k, v in values.items() if k in domains}
        config = run_dir / rundir.CONFIG
        tensorboard.write_session(run_dir / TB, chosen, status="success", name=run_dir.name,
                                  start=config.stat().st_mtime if config.exists() else time.time())


# ---------------------------------------------------------------------------------------------
# MLflow

MLFLOW_MISSING = ("--mlflow needs MLflow, which is not installed: pip install 'echo-cli[mlflow]' "
                  "(from a clone: .venv/bin/pip install -e '.[mlflow]')")


@contextlib.contextmanager
def live_mlflow(uri: str | None, run_dir: Path,
                cfg: Config) -> Iterator[mlflow_run.LiveRun | mlflow_run.NotFollowing]:
    """The MLflow run that follows the training of run_dir, live; with uri None, nothing.

    The one entry for every front end (`train --mlflow`, the notebook's `mlflow=`):

        with live_mlflow(uri, run_dir, cfg) as mlflow:
            outcome = experiment.run(cfg, run_dir, on_epoch=mlflow.hook(progress))
            notes = mlflow.finish(outcome.model)    # [] when uri is None

    The run starts when the block does, each epoch is logged at its wall time as training
    goes, and finish logs the held-out figures, the run's files and the model (MLflow's Keras
    flavour) and ends the run with its real end time. An exception out of the block ends it
    FAILED (KILLED for Ctrl-C).
    """
    with mlflow_run.live(uri, run_dir, rundir.flatten(cfg.dump())) as following:
        yield following


def mlflow_uri(option: str | None) -> str | None:
    """The tracking URI to log to: --mlflow, else MLFLOW_TRACKING_URI, else None.

    Raises:
        TrackingError: --mlflow was given, and MLflow is not installed.
    """
    if option is not None:
        if not option.strip():
            raise TrackingError("--mlflow needs a tracking URI, e.g. --mlflow sqlite:///mlflow.db "
                                "or --mlflow http://127.0.0.1:5000")
        _check_store(option, "--mlflow")
        if not mlflow_installed():
            raise TrackingError(MLFLOW_MISSING)
        return option
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        _check_store(env, "MLFLOW_TRACKING_URI")
    return env or None


# The stores MLflow 3 logs runs to: a database (through SQLAlchemy) or a tracking server.
STORES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def _check_store(uri: str, where: str) -> None:
    """Refuse, before anything runs, a URI that no MLflow store answers to (a typo, or a
    folder: MLflow 3 no longer logs to plain files).

    Raises:
        TrackingError: one line naming the URI and what would work.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme in STORES and (scheme == "databricks" or "://" in uri):
        return
    fix = "fix it or unset it" if where == "MLFLOW_TRACKING_URI" else "give one of these"
    raise TrackingError(f"{where} {uri} is not an MLflow tracking store echo-cli can log to; "
                        f"{fix}: sqlite:///mlflow.db (a file here), http://127.0.0.1:5000 (a "
                        f"server, `mlflow server`), or a database such as postgresql://host/db")


def mlflow_installed() -> bool:
    """Whether MLflow can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None
