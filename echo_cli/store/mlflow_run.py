"""MLflow runs that match the training: each epoch's metrics at its real wall time, logged
live; the config as params; the git commit; the model in MLflow's Keras flavour.

    with live(uri, run_dir, params) as run:             # opens the MLflow run: its real start
        on_epoch = run.hook(bar.update)                 # logs each epoch as training goes
        ...                                             # train with on_epoch
        lines = run.finish(model)                       # held-out figures, files, model, end
    line = log_sweep(uri, sweep_dir, name, params, runs)  # a sweep: a parent, a child per run

Nothing here raises for MLflow's sake: a store that cannot be reached, or fails on the way,
costs the run nothing but the line that says what was not logged. MLflow is imported only when
a URI is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from echo_cli.store import provenance, rundir
from echo_cli.store.files import write_atomic
from echo_cli.store.tensorboard import TRAIN, epoch_times, number

EpochHook = Callable[[int, dict[str, float]], None]
ARTIFACTS = [rundir.CONFIG, rundir.METRICS, rundir.HISTORY, rundir.CURVES, rundir.MODEL,
             rundir.VOCABULARY]
EXPERIMENT = "echo-cli"  # or MLFLOW_EXPERIMENT_NAME
PUSH_SECONDS = 2.0  # epochs are sent at most this often (and the first at once)
GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own tag: the UI shows it as the source
GIT_DIRTY = "echo-cli.git_dirty"  # "true" when tracked files differed from the commit


def experiment_name() -> str:
    """The MLflow experiment runs go to: $MLFLOW_EXPERIMENT_NAME, else echo-cli."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or EXPERIMENT


def _quiet_mlflow() -> None:
    """No retries for minutes against a store that is down, and no INFO lines from its
    database migrations in the middle of our tables."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def reason(err: BaseException, limit: int = 240) -> str:
    """The error in one line, cut at a word (with …) when longer than limit."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def git_tags(commit: str | None) -> dict[str, str]:
    """provenance's "sha (uncommitted changes)" as MLflow's commit tag and a dirty marker."""
    if not commit:
        return {}
    sha, _, note = commit.partition(" ")
    dirty = {"": "false", "(uncommitted changes)": "true"}.get(note, "unknown")
    return {GIT_COMMIT: sha, GIT_DIRTY: dirty}


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _status(metrics: rundir.Metrics | None) -> str:
    if metrics is None or metrics.failed_step is not None:
        return "FAILED"
    return "KILLED" if metrics.interrupted else "FINISHED"


def figures(metrics: rundir.Metrics, config: dict[str, Any]) -> dict[str, float]:
    """metrics.json's measured numbers; what only repeats the config (seed, epochs, a target)
    is a param, never a metric."""
    echoes = {key.rsplit(".", 1)[-1] for key in config}
    return {key: value for key, raw in metrics.to_dict().items()
            if key not in echoes and (value := number(raw)) is not None}


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to uri for a fluent call, then put back as it was."""
    import mlflow

    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


class Mlflow:
    """One connection to an MLflow tracking store, for a run or a sweep's runs."""

    def __init__(self, uri: str, client, experiment_id: str):
        self.uri, self.client, self.experiment_id = uri, client, experiment_id

    @classmethod
    @contextlib.contextmanager
    def connect(cls, uri: str) -> Iterator[Mlflow | str]:
        """The connection, or a one-line reason why there is none (never raises)."""
        try:
            _quiet_mlflow()
            from mlflow.tracking import MlflowClient

            _quiet_mlflow()  # again: importing mlflow sets its own logger's level
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment_name())
            experiment_id = (found.experiment_id if found else
                             client.create_experiment(experiment_name()))
        except Exception as err:  # noqa: BLE001 - the run is saved; say what was not logged
            yield f"MLflow at {uri} could not be reached ({reason(err)})"
            return
        yield cls(uri, client, experiment_id)

    def create_run(self, name: str, *, params: dict[str, Any], tags: dict[str, str],
                   start: float) -> str:
        """A run that started at `start` (seconds), its params and tags set; its id."""
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags,
                                        start_time=_ms(start)).info.run_id
        from mlflow.entities import Param

        items = [Param(k, ("null" if v is None else str(v))[:6000]) for k, v in params.items()]
        for first in range(0, len(items), 100):  # MLflow takes 100 parameters per batch
            self.client.log_batch(run_id, params=items[first:first + 100])
        return run_id

    def log_metrics(self, run_id: str, points: list[tuple[str, float, float, int]]) -> None:
        """(key, value, wall time in seconds, step) points, 1,000 to a batch."""
        from mlflow.entities import Metric

        metrics = [Metric(key, value, _ms(wall), step) for key, value, wall, step in points]
        for first in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[first:first + 1000])

    def log_files(self, run_id: str, run_dir: Path) -> None:
        """The run's own files (config.yaml, metrics.json, model.keras, ...) as artifacts."""
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                self.client.log_artifact(run_id, str(run_dir / name))

    def log_model(self, run_id: str, model, backend: str) -> None:
        """The model in MLflow's Keras flavour (Keras 3, any backend), as `model`: loads
        with mlflow.pyfunc.load_model(f"runs:/{run_id}/model") and can be registered."""
        import mlflow.keras
        from mlflow.models import Model

        from echo_cli.models.keras_internals import without_tensorflow

        requirements = [f"{package}=={version}" for package in
                        ("mlflow", "keras", provenance.BACKEND_PACKAGES.get(backend, backend),
                         "numpy") if (version := provenance.version(package))]
        # Model.log finds the store through MLflow's global; under JAX, Keras's save would
        # import TensorFlow only to ask whether a value is one of its shapes
        # made here, so that it belongs to the run's experiment (Model.log would file it under
        # the fluent API's current one) and runs:/RUN_ID/model finds it
        logged = self.client.create_logged_model(self.experiment_id, name="model",
                                                 source_run_id=run_id)
        with _tracking_uri(self.uri), without_tensorflow():
            Model.log(artifact_path=None, name="model", flavor=mlflow.keras, model=model,
                      run_id=run_id, model_id=logged.model_id, signature=_signature(model),
                      pip_requirements=requirements)  # given: no minutes-long inference
        self.client.finalize_logged_model(logged.model_id, "READY")

    def end(self, run_id: str, status: str = "FINISHED", *, end: float | None = None) -> None:
        """End the run with its status, at `end` (seconds; now by default)."""
        self.client.set_terminated(run_id, status, end_time=_ms(end or time.time()))


def _signature(model):
    """The model's input and output as MLflow tensor specs (a -1 batch where it is free)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None

    def spec(tensor, shape):  # MLflow wants -1 first; a stateful model runs its own batch
        return Schema([TensorSpec(np.dtype(str(tensor.dtype)),
                                  (-1, *(-1 if n is None else n for n in shape[1:])))])

    return ModelSignature(inputs=spec(model.inputs[0], model.input_shape),
                          outputs=spec(model.outputs[0], model.output_shape))


class LiveRun:
    """The MLflow run of a training run, following it: `hook` logs each epoch's row at the time
    it came, in batches every PUSH_SECONDS; `finish` logs the rest and ends it."""

    def __init__(self, uri: str, run_dir: Path, params: dict[str, Any]):
        self.uri, self.run_dir, self.params = uri, run_dir, params
        self.mlflow: Mlflow | None = None
        self.run_id: str | None = None
        self.problem: str | None = None  # why it is not (or no longer) logging
        self.pending: list[tuple[str, float, float, int]] = []
        self.pushed, self.epochs = 0.0, 0
        self.finished = False

    def start(self, mlflow: Mlflow | str) -> None:
        """Create the MLflow run now, with the params and the git tags; or keep the reason
        there is no connection, for `finish` to say."""
        if isinstance(mlflow, str):
            self.problem = mlflow
            return
        try:
            self.mlflow = mlflow
            self.run_id = mlflow.create_run(self.run_dir.name, params=self.params, start=(
                time.time()), tags={"echo-cli.run_dir": str(self.run_dir.resolve()),
                                    **git_tags(provenance.git_commit())})
        except Exception as err:  # noqa: BLE001 - the run goes on; finish says so
            self.problem = f"MLflow at {self.uri} refused the run ({reason(err)})"

    def hook(self, then: EpochHook | None = None) -> EpochHook:
        """The per-epoch hook: call `then` (a progress bar, say), then log the row at the
        time the epoch came."""

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            wall = time.time()  # the epoch's time, before `then` and before a batch is sent
            try:
                if then is not None:
                    then(epoch, row)
            finally:
                self.epoch(epoch, row, wall=wall)

        return on_epoch

    def epoch(self, epoch: int, row: dict[str, Any], *, wall: float) -> None:
        """Keep one epoch's row at its wall time; send what is kept every PUSH_SECONDS."""
        if self.run_id is None or self.problem is not None:
            return
        self.epochs = epoch
        self.pending += [(key, value, wall, epoch) for key, raw in row.items()
                         if key != "epoch" and (value := number(raw)) is not None]
        if time.time() - self.pushed >= PUSH_SECONDS:
            self._push()

    def _push(self) -> None:
        try:
            self.mlflow.log_metrics(self.run_id, self.pending)
        except Exception as err:  # noqa: BLE001 - training goes on; finish says so
            self.problem = (f"MLflow at {self.uri} stopped taking metrics at epoch "
                            f"{self.epochs} ({reason(err)})")
        self.pending, self.pushed = [], time.time()

    def finish(self, model=None) -> list[str]:
        """Log what the run saved (held-out figures, files, the model) and end the MLflow run
        with its real end time and status. Returns the line to print."""
        self.finished = True
        where = f"the run is saved in {self.run_dir}/"
        if self.run_id is None:
            return [f"not logged to MLflow: {self.problem}; {where}"]
        if self.problem is None:
            self._push()
        if self.problem is not None:
            self.end("FAILED")
            return [f"not logged to MLflow in full: {self.problem}; run {self.run_id}, {where}"]
        metrics = rundir.try_read_metrics(self.run_dir)
        try:
            if metrics is not None:
                self.mlflow.log_metrics(self.run_id, [
                    (key, value, time.time(), metrics.epochs_completed)
                    for key, value in figures(metrics, self.params).items()])
            self.mlflow.log_files(self.run_id, self.run_dir)
            logged = model is not None and (self.run_dir / rundir.MODEL).is_file()
            if logged:
                self.mlflow.log_model(self.run_id, model, metrics.backend if metrics else "")
        except Exception as err:  # noqa: BLE001 - the run is saved; say what was not logged
            self.end("FAILED")
            return [f"not logged to MLflow in full: MLflow at {self.uri} failed ({reason(err)}); "
                    f"run {self.run_id}, {where}"]
        self.end(_status(metrics))
        return [f"logged to MLflow at {self.uri}: experiment {experiment_name()}, run "
                f"{self.run_id}, {self.epochs} epochs live"
                + (f"; the model: runs:/{self.run_id}/model" if logged else "")]

    def end(self, status: str) -> None:
        """End the MLflow run now with `status` (once; a failure to is not raised)."""
        self.finished = True
        if self.run_id is not None:
            with contextlib.suppress(Exception):
                self.mlflow.end(self.run_id, status)


class NotFollowing:
    """What `live` gives when no MLflow URI was given: the hook as it was, and no line."""

    def hook(self, then: EpochHook | None = None) -> EpochHook:
        return then or (lambda epoch, row: None)

    def finish(self, model=None) -> list[str]:
        return []


@contextlib.contextmanager
def live(uri: str | None, run_dir: Path,
         params: dict[str, Any]) -> Iterator[LiveRun | NotFollowing]:
    """An MLflow run that follows the training of run_dir, opened now (its real start); an
    exception out of the block ends it FAILED (KILLED for Ctrl-C), and re-raises."""
    if uri is None:
        yield NotFollowing()
        return
    run = LiveRun(uri, run_dir, params)
    with Mlflow.connect(uri) as mlflow:
        run.start(mlflow)
        try:
            yield run
        except BaseException as err:
            run.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            raise
        if not run.finished:
            run.finish()


# ---------------------------------------------------------------------------------------------
# a finished run, logged afterwards: a sweep's child runs

def log_saved_run(mlflow: Mlflow, run_dir: Path, *, parent: str | None = None) -> str:
    """Log one saved run: the config as params, history.csv per epoch at the wall times its
    tb/ recorded, the held-out figures and the run's files. Returns the MLflow run id."""
    record = rundir.read(run_dir)
    metrics, config = record.metrics, record.config
    ended = (run_dir / rundir.METRICS).stat().st_mtime
    began = (run_dir / rundir.CONFIG).stat().st_mtime  # written when the run started
    tags = {"echo-cli.run_dir": str(run_dir.resolve()),
            **git_tags((metrics.provenance or {}).get("git_commit"))}
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    run_id = mlflow.create_run(run_dir.name, params=config, tags=tags, start=began)
    walls = epoch_times(run_dir / "tb" / TRAIN)
    points = []
    for i, row in enumerate(rundir.read_history(run_dir)):
        step = int(row.get("epoch") or i + 1)
        points += [(key, value, walls.get(step, ended), step) for key, raw in row.items()
                   if key != "epoch" and (value := number(raw)) is not None]
    points += [(key, value, ended, metrics.epochs_completed)
               for key, value in figures(metrics, config).items()]
    mlflow.log_metrics(run_id, points)
    mlflow.log_files(run_id, run_dir)
    mlflow.end(run_id, _status(metrics), end=ended)
    return run_id


SWEEP_MLFLOW = "mlflow.json"  # SWEEP/mlflow.json: the parent run and the runs logged under it


def log_sweep(uri: str, sweep_dir: Path, name: str, params: dict[str, Any],
              runs: list[Path]) -> str:
    """Log a sweep as a parent MLflow run with a child per finished run. A resumed sweep
    reuses its parent and logs only the runs not logged before. The line to print."""
    state_file = sweep_dir / SWEEP_MLFLOW
    try:
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        state = {}
    if state.get("uri") != uri:
        state = {"uri": uri, "parent": None, "logged": []}
    with Mlflow.connect(uri) as mlflow:
        if isinstance(mlflow, str):
            return f"not logged to MLflow: {mlflow}; the sweep is saved in {sweep_dir}/"
        todo = [r for r in runs if r.name not in state["logged"]]
        done = 0
        try:
            if state["parent"] is None:
                state["parent"] = mlflow.create_run(name, params=params, start=time.time(),
                                                    tags={"echo-cli.kind": "sweep"})
            for run_dir in todo:
                log_saved_run(mlflow, run_dir, parent=state["parent"])
                state["logged"].append(run_dir.name)
                done += 1
            mlflow.end(state["parent"])
        except Exception as err:  # noqa: BLE001 - what was logged is kept in mlflow.json
            return (f"MLflow at {uri}: {done} of {len(todo)} runs logged, then "
                    f"{reason(err)}; run the sweep again with --out {sweep_dir} to log the rest")
        finally:
            write_atomic(state_file, json.dumps(state, indent=2) + "\n")
        return (f"logged to MLflow at {uri}: experiment {experiment_name()}, parent run "
                f"{state['parent']} with {len(state['logged'])} runs ({done} new)")
