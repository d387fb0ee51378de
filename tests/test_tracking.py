"""Tracking for real: TensorBoard's own reader and MLflow's own client read back what a run and a
sweep logged, against history.csv and metrics.json, while a run trains and after; the MLflow
model predicts what `predict` does; a store that cannot be reached costs the run nothing; the
versions that made a run are in metrics.json."""

import csv
import io
import json
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, in_empty_dir, invoke, sets
from PIL import Image

from echo_cli.models.base import model_ids
from echo_cli.output import report
from echo_cli.store import mlflow_run, provenance, rundir, tracking
from echo_cli.tasks import framing

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/lag1.yaml"
mlflow = pytest.importorskip("mlflow", reason="the mlflow extra: pip install -e '.[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import api_pb2  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

# a stateful run that checks validation, so that every kind of tag is written
RUN = [*TINY[:-1], "train.epochs=6", "train.target_accuracy=0.99", "train.validate_every=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real sqlite tracking store for the module (creating its tables takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    in_empty_dir(tmp_path, monkeypatch, columns=110)  # MLflow puts artifacts in ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def history(run: Path) -> list[dict[str, str]]:
    with (run / rundir.HISTORY).open(newline="") as fh:
        return list(csv.DictReader(fh))


# keep every event: the reader's defaults keep a sample (4 images, 10 tensors)
EVERYTHING = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0,
              event_accumulator.TENSORS: 0}


def events(folder: Path) -> EventAccumulator:
    """TensorBoard's own reader of the event files in folder (one TensorBoard run)."""
    reader = EventAccumulator(str(folder), size_guidance=EVERYTHING)
    reader.Reload()
    return reader


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    found = events(folder)
    return {tag: [(e.step, e.value) for e in found.Scalars(tag)]
            for tag in found.Tags()["scalars"]}


def as_logged(rows: list[dict[str, str]], column: str) -> list[tuple[int, float]]:
    """history.csv's column as (epoch, value), for the epochs that have it."""
    return [(int(r["epoch"]), pytest.approx(float(r[column]), rel=1e-6)) for r in rows
            if r.get(column)]


def session(folder: Path, tag: str):
    """The HParams plugin's record `tag` (session_start_info, ...) in folder's run."""
    content = events(folder).PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    parse = {hparams_metadata.SESSION_START_INFO_TAG:
             hparams_metadata.parse_session_start_info_plugin_data,
             hparams_metadata.SESSION_END_INFO_TAG:
             hparams_metadata.parse_session_end_info_plugin_data,
             hparams_metadata.EXPERIMENT_TAG: hparams_metadata.parse_experiment_plugin_data}
    return parse[tag](content[tag])


def png(data: bytes) -> tuple[int, int]:
    """The size of a PNG that decodes."""
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image.size


def logged_run(client, run_dir: Path):
    """The MLflow run of run_dir (ValueError: none, or not yet)."""
    experiment = client.get_experiment_by_name("echo-cli")
    if experiment is None:
        raise ValueError("no echo-cli experiment yet")
    [found] = [r for r in client.search_runs([experiment.experiment_id])
               if r.data.tags.get("echo-cli.run_dir") == str(run_dir.resolve())]
    return found


def ends_in_tensorboard(run: Path, last: int) -> None:
    """A finished run's root tb/ run: curves.png as an image, the decoded examples as Markdown
    text, and the HParams of this one run (every config value, typed) with how it ended."""
    tb = run / tracking.TB
    found = events(tb)
    [curves] = found.Images("curves")
    assert curves.encoded_image_string == (run / rundir.CURVES).read_bytes()
    assert png(curves.encoded_image_string) == (curves.width, curves.height)
    assert curves.step == last
    [text] = found.Tensors("examples/text_summary")
    markdown = text.tensor_proto.string_val[0].decode()
    assert "held-out examples" in markdown and "target X(t-1)" in markdown
    assert [line.split()[1] for line in markdown.splitlines()
            if line.startswith("sequence ")] == ["1", "2", "3"]  # eval.examples, all decoded
    # HParams for this one run: every config value, typed, and how the run ended
    start = session(tb, hparams_metadata.SESSION_START_INFO_TAG)
    flat = rundir.read(run).config
    assert set(start.hparams) == set(flat)
    assert start.hparams["train.epochs"].number_value == 6
    assert start.hparams["model.stateful"].bool_value is True
    assert start.hparams["model.kind"].string_value == "lstm"
    end = session(tb, hparams_metadata.SESSION_END_INFO_TAG)
    assert end.status == api_pb2.STATUS_SUCCESS


def test_a_run_is_logged_to_tensorboard_and_mlflow_as_it_was_saved(store):
    result = invoke("train", CONFIG, *sets(RUN), "--out", "run", "--mlflow", store)
    assert result.exit_code == 0, result.output
    assert f"logged to MLflow at {store}" in " ".join(result.output.split())
    run = Path("run")
    rows, metrics = history(run), json.loads((run / rundir.METRICS).read_text())

    # TensorBoard as Keras lays it out: train/ and validation/ runs with the same epoch_* tags,
    # every epoch's loss and accuracy, the validation checks where they were made
    tb = run / tracking.TB
    train, validation = scalars(tb / "train"), scalars(tb / "validation")
    assert train["epoch_loss"] == as_logged(rows, "loss")
    assert train["epoch_accuracy"] == as_logged(rows, "accuracy")
    checked = as_logged(rows, "validation_accuracy")
    assert checked and validation["epoch_accuracy"] == checked
    assert set(validation) <= set(train)  # one chart per tag, train and validation overlaid
    # the held-out figures once, at the last epoch, in the run that holds the HParams
    root = scalars(tb)
    last = metrics["epochs_completed"]
    assert root["heldout/accuracy"] == [(last, pytest.approx(metrics["heldout_accuracy"]))]
    assert root["heldout/chance"] == [(last, pytest.approx(metrics["chance_accuracy"]))]
    assert root["heldout/loss"] == [(last, pytest.approx(metrics["heldout_loss"], rel=1e-6))]
    assert not [tag for tag in root if tag.startswith(("train/", "validation/"))]
    ends_in_tensorboard(run, last)

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
    # the config is params only: what metrics.json repeats of it is no metric
    assert not {"seed", "epochs", "target_accuracy"} & set(logged.data.metrics)
    validated = client.get_metric_history(logged.info.run_id, "validation_accuracy")
    assert sorted((m.step, m.value) for m in validated) == checked
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "metrics.json", "curves.png", "model.keras"} <= artifacts
    assert len(client.get_run(logged.info.run_id).outputs.model_outputs) == 1  # the model


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
    assert result.output.count("tensorboardX is not installed") == 1
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
    experiment_info = session(Path("sw/tb"), hparams_metadata.EXPERIMENT_TAG)
    assert {h.name for h in experiment_info.hparam_infos} == {"model.units", "seed"}
    [units_info] = [h for h in experiment_info.hparam_infos if h.name == "model.units"]
    assert [v.number_value for v in units_info.domain_discrete.values] == [3, 5]
    assert {(m.name.group, m.name.tag) for m in experiment_info.metric_infos} >= {
        ("", "heldout/accuracy"), ("train", "epoch_loss"), ("train", "epoch_accuracy")}
    units = {}
    for run in Path("sw/runs").iterdir():
        start = session(run / tracking.TB, hparams_metadata.SESSION_START_INFO_TAG)
        units[run.name] = start.hparams["model.units"].number_value
        assert scalars(run / tracking.TB)["heldout/accuracy"]
        assert scalars(run / tracking.TB / "train")["epoch_loss"]
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


# a copy-memory run that validates every other epoch (so validation/ has a loss too) and would
# train for hours: the test stops it once it has seen what it looks for
LIVE = ["model.kind=lstm", "model.units=4", "data.delay=3", "data.recall=2",
        "train.epochs=100000", "train.validate_every=2", "train.target_accuracy=1.0",
        "train.stop_at_target=false", "eval.sequences=8", "eval.validation_sequences=8"]


@pytest.mark.slow
def test_tensorboard_and_mlflow_follow_a_run_while_it_trains(store):
    command = [sys.executable, "-m", "echo_cli", "train", ROOT / "configs/copy_memory.yaml",
               *sets(LIVE), "--out", "live", "--mlflow", store]
    child = subprocess.Popen([str(a) for a in command], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    client, tb = MlflowClient(tracking_uri=store), Path("live") / tracking.TB
    try:
        deadline, seen = time.monotonic() + 300, None
        while seen is None and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.25)
            if not (tb / "validation").is_dir():
                continue
            train, validation = scalars(tb / "train"), scalars(tb / "validation")
            try:
                live = logged_run(client, Path("live"))
            except ValueError:  # not created yet
                continue
            losses = client.get_metric_history(live.info.run_id, "loss")
            if train.get("epoch_loss") and validation.get("epoch_loss") and losses:
                # read from disk and from the store while the run still trains
                seen = (train, validation, live.info.status, child.poll())
        assert seen is not None, "nothing was written while the run trained"
    finally:
        child.send_signal(signal.SIGTERM)  # stops after the current step, keeps the run
        out, err = child.communicate(timeout=300)
    train, validation, status, running = seen
    assert running is None and status == "RUNNING"
    assert child.returncode == 143, out + err

    # what was on disk during training is what the run kept, epoch by epoch
    rows = history(Path("live"))
    assert len(rows) < 100000 and train["epoch_loss"] == as_logged(rows, "loss")[
        :len(train["epoch_loss"])]
    assert validation["epoch_loss"] == as_logged(rows, "validation_loss")[
        :len(validation["epoch_loss"])]
    # and, now it has stopped, every epoch: the steps are history.csv's epochs
    train, validation = scalars(tb / "train"), scalars(tb / "validation")
    assert train["epoch_loss"] == as_logged(rows, "loss")
    assert validation["epoch_loss"] == as_logged(rows, "validation_loss")
    assert validation["epoch_accuracy"] == as_logged(rows, "validation_accuracy")
    end = session(tb, hparams_metadata.SESSION_END_INFO_TAG)
    assert end.status == api_pb2.STATUS_UNKNOWN  # stopped: neither a success nor a failure
    stopped = logged_run(client, Path("live"))
    assert stopped.info.status == "KILLED" and stopped.info.end_time > stopped.info.start_time
    losses = client.get_metric_history(stopped.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in losses) == as_logged(rows, "loss")


def test_mlflow_has_the_epochs_times_the_commit_and_a_model_that_predicts_as_predict_does(
        store, tmp_path, monkeypatch):
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "notes.txt").write_text("one\n")
    git("add", "notes.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    shown = {}  # when the progress bar showed each epoch: the training's own clock
    update = report.TrainProgress.update

    def showing(bar, epoch, logs):
        shown[epoch] = time.time()
        update(bar, epoch, logs)

    monkeypatch.setattr(report.TrainProgress, "update", showing)
    stateless = [item for item in TINY if not item.startswith("train.epochs")]
    began = time.time()
    result = invoke("train", CONFIG, *sets([*stateless, "train.epochs=300"]), "--out", "run",
                    "--mlflow", store)
    ended = time.time()
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=store)
    logged = logged_run(client, Path("run"))

    # each epoch at its wall time, inside the run's real start and end
    losses = sorted(client.get_metric_history(logged.info.run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in losses] == sorted(shown) == list(range(1, 301))
    stamps = [m.timestamp for m in losses]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
    trained = shown[300] - shown[1]
    assert (stamps[-1] - stamps[0]) / 1000 == pytest.approx(trained, rel=0.2)
    assert began * 1000 <= logged.info.start_time <= stamps[0]
    assert stamps[-1] <= logged.info.end_time <= ended * 1000

    # the commit the run was made from
    assert logged.data.tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD")
    assert logged.data.tags["echo-cli.git_dirty"] == "false"

    # the model, loaded as MLflow's users load it, predicts what `echo-cli predict` does
    cfg = rundir.read_config(Path("run"))
    sequence = [int(v) for v in cfg.task.sequences(cfg, "heldout", 1)[0]]
    rows = json.loads(invoke("predict", "run", *map(str, sequence), "--json").stdout)
    d = cfg.data
    plan = framing.Framing(length=len(sequence), lag=d.lag, window=d.window, missing=d.missing,
                           target=d.target)
    batch = model_ids(framing.frame(np.array([sequence]), plan).x[0])  # (rows, window)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model(f"runs:/{logged.info.run_id}/model")
    classes = np.asarray(model.predict(batch)).argmax(axis=-1)
    predicted = [r["predicted"] for r in rows if r["predicted"] is not None]
    assert len(predicted) == len(batch) > 0 and classes.tolist() == predicted


def test_the_git_commit_becomes_mlflows_tag_with_a_dirty_marker():
    sha = "9a8c3d0e" * 5
    assert mlflow_run.git_tags(sha) == {"mlflow.source.git.commit": sha,
                                        "echo-cli.git_dirty": "false"}
    assert mlflow_run.git_tags(f"{sha} (uncommitted changes)")["echo-cli.git_dirty"] == "true"
    assert mlflow_run.git_tags(f"{sha} (changes unknown)")["echo-cli.git_dirty"] == "unknown"
    assert mlflow_run.git_tags(None) == {}


def test_inspect_adds_its_pictures_to_the_runs_tensorboard_images():
    assert invoke("train", CONFIG, *sets(TINY[:-1]), "--out", "run").exit_code == 0
    run, tb = Path("run"), Path("run") / tracking.TB
    last = json.loads((run / rundir.METRICS).read_text())["epochs_completed"]
    for out in ("seen", "again"):  # a second inspect replaces the first's pictures
        result = invoke("inspect", run, "--heldout", "10", "--out", out)
        assert result.exit_code == 0, result.output
        assert f"added to {tb}/" in " ".join(result.output.split())
        assert {p.name for p in Path(out).iterdir()} == {"state.png", "probes.csv", "probes.png"}
        found = events(tb)
        assert set(found.Tags()["images"]) == {"curves", "inspect/state", "inspect/memory_curve"}
        for tag, name in (("inspect/state", "state.png"), ("inspect/memory_curve", "probes.png")):
            [image] = found.Images(tag)
            assert image.encoded_image_string == (Path(out) / name).read_bytes()
            assert png(image.encoded_image_string) == (image.width, image.height)
            assert image.step == last
    assert len(found.Images("curves")) == 1  # training's own images are left as they were
