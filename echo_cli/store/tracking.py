"""The tools researchers already use: TensorBoard event files in every run, MLflow when asked.

    tracking.write_tensorboard(run_dir, history, metrics)   # RUN/tb/, read by `tensorboard`
    tracking.write_sweep_hparams(sweep_dir, runs, keys)     # TensorBoard's HParams table
    with tracking.Mlflow.connect("sqlite:///mlflow.db") as mlflow:   # --mlflow URI
        line = mlflow.log_run(run_dir)                      # one line to print, logged or not

Event files are written with TensorBoard's own record format and protocol buffers, without
TensorFlow, so a run on JAX does not import it. Everything here reads what the run directory
already holds (history.csv's rows, metrics.json's record), so it logs exactly what was saved.
MLflow is optional (`pip install 'echo-cli[mlflow]'`): a store that cannot be reached costs the
run nothing but one line that says what was not logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from echo_cli.errors import EchoError
from echo_cli.store import rundir
from echo_cli.store.files import write_atomic

TB = "tb"  # RUN/tb/ and SWEEP/tb/
# history.csv's columns and metrics.json's held-out figures, as TensorBoard tags
EPOCH_TAGS = {"loss": "train/loss", "accuracy": "train/accuracy",
              "validation_accuracy": "validation/accuracy", "validation_loss": "validation/loss"}
HELDOUT_TAGS = {"heldout_accuracy": "heldout/accuracy", "ci95_low": "heldout/accuracy_ci95_low",
                "ci95_high": "heldout/accuracy_ci95_high", "heldout_loss": "heldout/loss",
                "chance_accuracy": "heldout/chance",
                "baseline_loss": "heldout/baseline_loss",
                "heldout_exact_match": "heldout/exact_match"}
MISSING_TENSORBOARD = ("tensorboard is not installed, so no tb/ event files were written; "
                       "`pip install tensorboard` adds them to the next runs")


class TrackingError(EchoError, ValueError):
    """A tracking option that cannot work as given (MLflow asked for but not installed)."""


# ---------------------------------------------------------------------------------------------
# TensorBoard


def tensorboard_installed() -> bool:
    try:
        from tensorboard.compat.proto import event_pb2  # noqa: F401
    except ImportError:
        return False
    return True


def _events_file(folder: Path, events: list, *, name: str | None = None) -> Path:
    """One event file of `events` (Event protos) in folder, written atomically in TensorBoard's
    record format; the name holds "tfevents", as TensorBoard's loader requires."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(exist_ok=True)
    name = name or f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.echo-cli"
    buffer = _Buffer()
    writer = RecordWriter(buffer)
    for event in [Event(wall_time=time.time(), file_version="brain.Event:2"), *events]:
        writer.write(event.SerializeToString())
    write_atomic(folder / name, bytes(buffer.data))
    return folder / name


class _Buffer:
    """The file-like object RecordWriter writes to: bytes kept for one atomic write."""

    def __init__(self):
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _scalars(values: dict[str, float], step: int, wall: float):
    """One event holding several scalars of one step (one record, not one per tag)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Event(wall_time=wall, step=step, summary=Summary(value=[
        Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items()]))


def write_tensorboard(run_dir: Path, history: list[dict[str, Any]], metrics: dict[str, Any],
                      *, times: list[float] | None = None) -> str | None:
    """RUN/tb/: per-epoch training loss and accuracy, validation figures where they were
    checked, and the held-out figures at the last epoch. times: each epoch's wall time.

    Returns:
        None, or a note when TensorBoard is not installed (nothing is written then).
    """
    if not tensorboard_installed():
        return MISSING_TENSORBOARD
    now = time.time()
    events = []
    for i, row in enumerate(history):
        wall = times[i] if times and i < len(times) else now
        step = int(row.get("epoch", i + 1))
        events.append(_scalars({tag: row[key] for key, tag in EPOCH_TAGS.items()
                                if _number(row.get(key)) is not None}, step, wall))
    last = int(history[-1].get("epoch", len(history))) if history else 0
    events.append(_scalars({tag: metrics[key] for key, tag in HELDOUT_TAGS.items()
                            if _number(metrics.get(key)) is not None}, last, now))
    for old in (run_dir / TB).glob("events.out.tfevents.*.echo-cli"):  # a rewrite replaces it
        old.unlink()
    _events_file(run_dir / TB, events)
    return None


def _number(value: Any) -> float | None:
    """A finite number from a history cell or a metrics field ('' and None are no number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


HPARAMS_FILE = "events.out.tfevents.0.hparams"  # one per run, rewritten when a sweep resumes


def _hparam_value(value: Any) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


def write_sweep_hparams(sweep_dir: Path, runs: list[tuple[dict[str, Any], Path]],
                        keys: list[str]) -> None:
    """TensorBoard's HParams for a sweep: SWEEP/tb/ declares the swept keys and the metrics,
    and each finished run's tb/ records its values, so `tensorboard --logdir SWEEP` puts the
    runs in one table. runs: (swept values with the seed, run directory) of each done run."""
    if not tensorboard_installed() or not runs:
        return
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import summary_v2 as hp

    names = [*keys, "seed"]
    domains = {}
    for name in names:
        values = sorted({_hparam_value(v[name]) for v, _ in runs if name in v}, key=str)
        kinds = {type(v) for v in values}
        if len(kinds) > 1:  # mixed types: TensorBoard's Discrete domain needs one
            values = sorted({str(v) for v in values})
        domains[name] = hp.HParam(name, hp.Discrete(values))
    metrics = [hp.Metric(tag, display_name=tag) for tag in
               ("heldout/accuracy", "heldout/loss", "train/loss",
                "train/accuracy")]
    config = hp.hparams_config_pb(hparams=list(domains.values()), metrics=metrics)
    _events_file(sweep_dir / TB, [Event(wall_time=time.time(), summary=config)],
                 name=HPARAMS_FILE)
    for values, run_dir in runs:
        chosen = {domains[k]: (str(_hparam_value(v)) if domains[k].domain.dtype is str
                               else _hparam_value(v)) for k, v in values.items() if k in domains}
        session = hp.hparams_pb(chosen, trial_id=run_dir.name)
        _events_file(run_dir / TB, [Event(wall_time=time.time(), summary=session)],
                     name=HPARAMS_FILE)


# ---------------------------------------------------------------------------------------------
# MLflow

MLFLOW_MISSING = ("--mlflow needs MLflow, which is not installed: pip install 'echo-cli[mlflow]' "
                  "(from a clone: .venv/bin/pip install -e '.[mlflow]')")
ARTIFACTS = [rundir.CONFIG, rundir.METRICS, rundir.HISTORY, rundir.CURVES, rundir.MODEL,
             rundir.VOCABULARY]
EXPERIMENT = "echo-cli"  # or MLFLOW_EXPERIMENT_NAME


def _experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or EXPERIMENT


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
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def _quiet_mlflow() -> None:
    """No retries for minutes against a store that is down, and no INFO lines from its
    database migrations in the middle of our tables."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _reason(err: BaseException, limit: int = 240) -> str:
    """The error in one line, cut at a word (with …) when longer than limit."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
            found = client.get_experiment_by_name(_experiment_name())
            experiment_id = (found.experiment_id if found else
                             client.create_experiment(_experiment_name()))
        except Exception as err:  # noqa: BLE001 - the run is saved; say what was not logged
            yield f"MLflow at {uri} could not be reached ({_reason(err)})"
            return
        yield cls(uri, client, experiment_id)

    def start_parent(self, name: str, params: dict[str, Any]) -> str:
        """A sweep's parent run; its id."""
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"echo-cli.kind": "sweep"})
        self._params(run.info.run_id, params)
        return run.info.run_id

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    def log_run(self, run_dir: Path, *, parent: str | None = None) -> str:
        """Log one saved run: the flattened config as parameters, history.csv per epoch, the
        held-out figures and the run's files as artifacts. Returns the MLflow run id."""
        from mlflow.entities import Metric

        record = rundir.read(run_dir)
        metrics = record.metrics.to_dict()
        tags = {"echo-cli.run_dir": str(run_dir.resolve())}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=run_dir.name, tags=tags)
        run_id = run.info.run_id
        self._params(run_id, record.config)
        now = int(time.time() * 1000)
        points = []
        for i, row in enumerate(rundir.read_history(run_dir)):
            step = int(float(row.get("epoch") or i + 1))
            points += [Metric(key, value, now, step) for key in EPOCH_TAGS
                       if (value := _number(row.get(key))) is not None]
        last = metrics.get("epochs_completed", 0)
        points += [Metric(key, value, now, last) for key, raw in metrics.items()
                   if not isinstance(raw, bool) and (value := _number(raw)) is not None]
        for start in range(0, len(points), 1000):  # MLflow takes 1,000 metrics per batch
            self.client.log_batch(run_id, metrics=points[start:start + 1000])
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                self.client.log_artifact(run_id, str(run_dir / name))
        failed = metrics.get("failed_step") is not None
        self.end(run_id, "KILLED" if metrics.get("interrupted") else
                 "FAILED" if failed else "FINISHED")
        return run_id

    def _params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, ("null" if v is None else str(v))[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes 100 parameters per batch
            self.client.log_batch(run_id, params=items[start:start + 100])


def log_run(uri: str, run_dir: Path) -> str:
    """Log one run to MLflow; the line to print, whether it was logged or not."""
    with Mlflow.connect(uri) as mlflow:
        if isinstance(mlflow, str):
            return f"not logged to MLflow: {mlflow}; the run is saved in {run_dir}/"
        try:
            run_id = mlflow.log_run(run_dir)
        except Exception as err:  # noqa: BLE001 - the run is saved; say what was not logged
            return (f"not logged to MLflow at {uri}: {_reason(err)}; the run is saved in "
                    f"{run_dir}/")
        return f"logged to MLflow at {uri}: experiment {_experiment_name()}, run {run_id}"


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
                state["parent"] = mlflow.start_parent(name, params)
            for run_dir in todo:
                mlflow.log_run(run_dir, parent=state["parent"])
                state["logged"].append(run_dir.name)
                done += 1
            mlflow.end(state["parent"])
        except Exception as err:  # noqa: BLE001 - what was logged is kept in mlflow.json
            return (f"MLflow at {uri}: {done} of {len(todo)} runs logged, then "
                    f"{_reason(err)}; run the sweep again with --out {sweep_dir} to log the rest")
        finally:
            write_atomic(state_file, json.dumps(state, indent=2) + "\n")
        return (f"logged to MLflow at {uri}: experiment {_experiment_name()}, parent run "
                f"{state['parent']} with {len(state['logged'])} runs ({done} new)")
