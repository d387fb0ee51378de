"""Tracking for real: TensorBoard's own reader and MLflow's own client read back what a run and a
sweep logged, against history.csv and metrics.json; a store that cannot be reached costs the
run nothing; the versions that made a run are in metrics.json."""

import csv
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from helpers import TINY, sets
from typer.testing import CliRunner

from echo_cli.cli import app
from echo_cli.store import provenance, rundir, tracking

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/lag1.yaml"
runner = CliRunner()
mlflow = pytest.importorskip("mlflow", reason="the mlflow extra: pip install -e '.[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

# a stateful run that checks validation, so that every kind of tag is written
RUN = [*TINY[:-1], "train.epochs=6", "train.target_accuracy=0.99", "train.validate_every=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real sqlite tracking store for the module (creating its tables takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a sqlite store's artifacts in ./mlruns
    monkeypatch.setenv("COLUMNS", "110")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def history(run: Path) -> list[dict[str, str]]:
    with (run / rundir.HISTORY).open(newline="") as fh:
        return list(csv.DictReader(fh))


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_a_run_is_logged_to_tensorboard_and_mlflow_as_it_was_saved(store):
    result = invoke("train", CONFIG, *sets(RUN), "--out", "run", "--mlflow", store)
    assert result.exit_code == 0, result.output
    assert f"logged to MLflow at {store}" in " ".join(result.output.split())
    run = Path("run")
    rows, metrics = history(run), json.loads((run / rundir.METRICS).read_text())

    # TensorBoard: every epoch's loss and accuracy, the validation checks, the held-out figures
    tb = scalars(run / tracking.TB)
    assert tb["train/loss"] == [(int(r["epoch"]), pytest.approx(float(r["loss"]), rel=1e-6))
                                for r in rows]
    assert tb["train/accuracy"] == [(int(r["epoch"]), pytest.approx(float(r["accuracy"])))
                                    for r in rows]
    checked = [r for r in rows if r.get("validation_accuracy")]
    assert checked and tb["validation/accuracy"] == [
        (int(r["epoch"]), pytest.approx(float(r["validation_accuracy"]))) for r in checked]
    last = metrics["epochs_completed"]
    assert tb["heldout/accuracy"] == [(last, pytest.approx(metrics["heldout_accuracy"]))]
    assert tb["heldout/chance"] == [(last, pytest.approx(metrics["chance_accuracy"]))]
    assert tb["heldout/loss"] == [(last, pytest.approx(metrics["heldout_loss"], rel=1e-6))]

    # MLflow, read back with its own client from the store
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("echo-cli")
    [logged] = [r for r in client.search_runs([experiment.experiment_id])
                if r.data.tags["echo-cli.run_dir"] == str(run.resolve())]
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    flat = rundir.read(run).config
    assert logged.data.params == {k: "null" if v is None else str(v) for k, v in flat.items()}
    assert logged.data.params["train.epochs"] == "6"
    losses = client.get_metric_history(logged.info.run_id, "loss")
    assert [(m.step, m.value) for m in sorted(losses, key=lambda m: m.step)] == [
        (int(r["epoch"]), pytest.approx(float(r["loss"]))) for r in rows]
    assert logged.data.metrics["heldout_accuracy"] == pytest.approx(metrics["heldout_accuracy"])
    assert logged.data.metrics["ci95_low"] == pytest.approx(metrics["ci95_low"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "metrics.json", "curves.png", "model.keras"} <= artifacts


def test_a_store_that_cannot_be_reached_costs_the_run_nothing_but_one_line():
    result = invoke("train", CONFIG, *sets(TINY), "--out", "run", "--mlflow",
                    "http://127.0.0.1:9")  # the discard port: nothing listens there
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "MLflow" in line]
    assert len(said) == 1 and said[0].startswith("not logged to MLflow"), result.output
    assert rundir.is_run(Path("run")) and (Path("run") / tracking.TB).is_dir()


def test_mlflow_asked_for_but_not_installed_is_refused_before_anything_is_made(monkeypatch):
    monkeypatch.setattr(tracking, "mlflow_installed", lambda: False)
    result = invoke("train", CONFIG, *sets(TINY), "--out", "run", "--mlflow", "sqlite:///x.db")
    assert result.exit_code == 2 and "pip install 'echo-cli[mlflow]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not Path("run").exists()
    result = invoke("train", CONFIG, *sets(TINY), "--mlflow", " ")
    assert result.exit_code == 2 and "--mlflow needs a tracking URI" in result.stderr


@pytest.mark.parametrize("uri", ["notascheme://x", "file:///tmp/mlruns", "mlruns", "sqlite:"])
def test_a_uri_no_store_answers_to_is_refused_before_anything_runs(uri, monkeypatch):
    result = invoke("train", CONFIG, *sets(TINY), "--out", "run", "--mlflow", uri)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"--mlflow {uri} is not an MLflow tracking store" in result.stderr
    assert "sqlite:///mlflow.db" in result.stderr and not Path("run").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the same from the environment
    result = invoke("sweep", CONFIG, "--grid", "model.units=3,5", "--out", "sw")
    assert result.exit_code == 2 and "MLFLOW_TRACKING_URI" in result.stderr
    assert "fix it or unset it" in result.stderr and not Path("sw").exists()


def test_without_tensorboard_a_run_says_so_once_and_is_saved(monkeypatch):
    monkeypatch.setattr(tracking, "tensorboard_installed", lambda: False)
    result = invoke("train", CONFIG, *sets(TINY), "--out", "run")
    assert result.exit_code == 0, result.output
    assert result.output.count("tensorboard is not installed") == 1
    assert rundir.is_run(Path("run")) and not (Path("run") / tracking.TB).exists()
    assert "tb/" not in result.output.splitlines()[-1]


def test_a_sweep_is_a_parent_run_with_a_child_per_run_and_an_hparams_table(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # the environment, as MLflow's users set it
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sweeps")
    command = ["sweep", CONFIG, "--grid", "model.units=3,5", *sets(TINY[:3] + TINY[4:]),
               "--workers", "1",
               "--out", "sw"]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    assert "parent run" in result.output and "with 2 runs (2 new)" in result.output

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("sweeps")
    found = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in found if r.data.tags.get("echo-cli.kind") == "sweep"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(found) == 3  # the parent and its two children: the workers log nothing themselves
    assert sorted(r.data.params["model.units"] for r in children) == ["3", "5"]
    assert parent.data.params["sweep.grid"] == "model.units=3,5"
    for child in children:
        metrics = json.loads((Path(child.data.tags["echo-cli.run_dir"]) / rundir.METRICS)
                             .read_text())
        assert child.data.metrics["heldout_accuracy"] == pytest.approx(
            metrics["heldout_accuracy"])

    # TensorBoard's HParams: the sweep declares its keys, each run records its values
    sweep_events = EventAccumulator("sw/tb")
    sweep_events.Reload()
    content = sweep_events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    experiment_info = hparams_metadata.parse_experiment_plugin_data(
        next(iter(content.values())))
    assert {h.name for h in experiment_info.hparam_infos} == {"model.units", "seed"}
    units = {}
    for run in Path("sw/runs").iterdir():
        events = EventAccumulator(str(run / tracking.TB))
        events.Reload()
        start = hparams_metadata.parse_session_start_info_plugin_data(
            next(iter(events.PluginTagToContent(hparams_metadata.PLUGIN_NAME).values())))
        units[run.name] = start.hparams["model.units"].number_value
        assert scalars(run / tracking.TB)["heldout/accuracy"]
    assert sorted(units.values()) == [3, 5]

    again = invoke(*command)  # resumed: nothing new is trained or logged twice
    assert again.exit_code == 0, again.output
    assert "with 2 runs (0 new)" in again.output
    assert len(client.search_runs([experiment.experiment_id])) == len(found)


def test_metrics_json_records_the_versions_that_made_the_run(tmp_path):
    result = invoke("train", CONFIG, *sets(TINY), "--out", "run")
    assert result.exit_code == 0, result.output
    made = json.loads(Path("run/metrics.json").read_text())["provenance"]
    assert made == {"echo_cli": metadata.version("echo-cli"), "python": made["python"],
                    "keras": metadata.version("keras"),
                    "backend": f"tensorflow {metadata.version('tensorflow')}",
                    "numpy": metadata.version("numpy"), "git_commit": None}  # not a git tree
    shown = invoke("results", "run")
    assert f"Keras {metadata.version('keras')}" in " ".join(shown.output.split())


def test_the_git_commit_is_that_of_the_working_directory_and_says_when_it_has_changed(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "notes.txt").write_text("one\n")
    git("add", "notes.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert provenance.git_commit(tmp_path) == head
    (tmp_path / "notes.txt").write_text("two\n")
    assert provenance.git_commit(tmp_path) == f"{head} (uncommitted changes)"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    git("init", "-q", "--bare", "elsewhere")  # a git directory, but no work tree
    assert provenance.git_commit(outside) is None
