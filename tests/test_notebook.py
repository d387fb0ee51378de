"""The notebook API (echo_cli.notebook) and examples/echo.ipynb, run top to bottom in a kernel."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import TINY_RUN, sets
from typer.testing import CliRunner

import echo_cli.notebook as ec
from echo_cli.cli import app
from echo_cli.config.loading import ConfigError
from echo_cli.store import claim, rundir
from echo_cli.tasks.base import InputError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "echo.ipynb"
# helpers.TINY_RUN as a mapping: a stateful echo-lag run that trains in a second
TINY = {key: yaml.safe_load(value) for key, value in
        (item.split("=", 1) for item in TINY_RUN)}
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny config trained once by the API (default naming under a runs folder) and
    once by `echo-cli train --out`."""
    base = tmp_path_factory.mktemp("notebook")
    api = ec.train(ec.load(ROOT / "configs/lag1.yaml", TINY), runs=base / "runs" / "notebook",
                   progress=False)
    cli = base / "cli"
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"),
                                 *sets([f"{k}={v}" for k, v in TINY.items()]), "--out", str(cli)])
    assert result.exit_code == 0, result.output
    return api, cli


def test_load_takes_a_mapping_or_the_clis_strings():
    as_mapping = ec.load(ROOT / "configs/lag1.yaml", {"train.epochs": 7, "model.stateful": False,
                                                      "train.learning_rate": 1e-3})
    as_strings = ec.load(ROOT / "configs/lag1.yaml", ["train.epochs=7", "model.stateful=false",
                                                      "train.learning_rate=1e-3"])
    assert as_mapping.dump() == as_strings.dump()
    assert (as_mapping.train.epochs, as_mapping.model.stateful) == (7, False)
    assert as_mapping.data.window == 5  # from the file
    with pytest.raises(ConfigError, match=r"data\.windw is not a known key; did you mean "
                                          r"data\.window\?"):
        ec.load(ROOT / "configs/lag1.yaml", {"data.windw": 3})


def test_load_takes_keyword_overrides_and_built_in_names():
    by_keyword = ec.load("lag1", train__epochs=7, model__stateful=False,
                         eval__lengths=None, data__window=4)
    by_mapping = ec.load(ROOT / "configs/lag1.yaml", {"train.epochs": 7, "model.stateful": False,
                                                      "data.window": 4})
    assert by_keyword.dump() == by_mapping.dump()
    # a keyword applies after the mapping
    assert ec.load("lag1", {"train.epochs": 3}, train__epochs=9).train.epochs == 9
    assert ec.config_path("lag1").read_text() == (ROOT / "configs/lag1.yaml").read_text()


def test_errors_name_python_arguments_not_flags(runs, tmp_path):
    with pytest.raises(ConfigError) as caught:
        ec.load("lag1", {"train.epoch": 5})
    message = str(caught.value)
    assert "overrides={'train.epoch': 5}" in message and "--set" not in message
    with pytest.raises(ConfigError) as caught:
        ec.load("lag1", train__epoch=5)
    assert "overrides={'train.epoch': 5}" in str(caught.value)
    api, _ = runs
    with pytest.raises(rundir.RunDirError) as caught:
        ec.train(api.cfg, out=api.path, progress=False)
    assert f"out='{api.path}' already holds files" in str(caught.value)
    assert "--out" not in str(caught.value)
    # the command line keeps its own words
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"), "--set",
                                 "train.epoch=5"])
    assert result.exit_code == 2 and "with --set train.epoch=5" in result.stderr


def test_the_api_names_what_it_exports():
    assert set(ec.__all__) == {"ENGINES", "NotebookError", "Run", "config_path", "load",
                               "open_run", "results", "train"}
    assert all(hasattr(ec, name) for name in ec.__all__)


def test_train_writes_the_run_directory_echo_cli_train_writes(runs):
    api, cli = runs
    assert api.path.parent.name == "notebook" and api.name.startswith("lag1-")
    assert claim.timestamp()[:8] in api.name  # runs/notebook/lag1-<YYYYmmdd-HHMMSS>
    files = {p.name for p in api.path.iterdir()}
    assert files == {p.name for p in cli.iterdir()}
    assert {rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.METRICS, rundir.CURVES} <= files
    assert rundir.LOCK not in files  # the claim was released
    for name in (rundir.CONFIG, rundir.HISTORY):  # same config, seed and path: same numbers
        assert (api.path / name).read_text() == (cli / name).read_text()
    assert api.metrics["heldout_accuracy"] == rundir.read_metrics(cli).heldout_accuracy


def test_history_heldout_figures_and_model_come_from_the_run_directory(runs):
    api, _ = runs
    expected = pd.read_csv(api.path / rundir.HISTORY)
    pd.testing.assert_frame_equal(api.history, expected)
    assert list(api.history.epoch) == list(range(1, 7))
    saved = json.loads((api.path / rundir.METRICS).read_text())
    assert api.metrics == saved and isinstance(api.metrics, dict)  # subscriptable, plain
    assert api.record.to_dict() == saved and api.record.updates == saved["updates"]
    assert api.heldout == {"accuracy": saved["heldout_accuracy"], "ci95_low": saved["ci95_low"],
                           "ci95_high": saved["ci95_high"], "chance": saved["chance_accuracy"],
                           "correct": saved["heldout_correct"],
                           "targets": saved["heldout_targets"], "sequences": 12}
    assert api.summary().startswith(f"held-out accuracy {saved['heldout_accuracy']:.4f}")
    assert "chance 0.1250" in api.summary() and "chance 0.1250" in repr(api)
    assert api.model.output_shape[-1] == 8  # n_unique
    table = ec.results([api, api.path])
    assert list(table["heldout_accuracy"]) == [saved["heldout_accuracy"]] * 2
    for column in table.columns:  # snake_case, as in metrics.json and results.csv
        assert column == column.lower() and " " not in column and "-" not in column
    for name in ("ci95_low", "ci95_high", "chance_accuracy", "epochs_completed",
                 "train_seconds", "updates"):
        assert list(table[name]) == [saved[name]] * 2


def test_parameters_say_which_count_is_which(runs):
    api, _ = runs
    counts = api.parameters
    # TINY: n_unique 8, so the frozen one-hot table is 9 x 8; LSTM(4) and its Dense are trained
    assert counts == {"trainable": api.metrics["parameters"], "frozen": 9 * 8,
                      "total": api.metrics["parameters"] + 9 * 8}
    assert api.model.count_params() == counts["total"]


def test_curves_is_a_figure_of_the_history(runs):
    from matplotlib.figure import Figure

    api, _ = runs
    fig = api.curves()
    assert isinstance(fig, Figure)
    loss_axes, accuracy_axes = fig.axes
    assert list(loss_axes.lines[0].get_ydata()) == list(api.history.loss)
    assert [ln.get_ydata()[0] for ln in accuracy_axes.lines[1:]] == [0.125]  # chance


def test_predict_gives_the_rows_of_echo_cli_predict(runs):
    api, _ = runs
    values = [3, 1, 4, 1, 5, 6, 2, 6]
    result = runner.invoke(app, ["predict", str(api.path), *map(str, values), "--json"])
    assert result.exit_code == 0, result.output
    cli_rows = json.loads(result.stdout)
    table = api.predict(values)
    assert list(table.columns) == list(ec.PREDICTION_COLUMNS) and len(table) == len(values)
    for got, want in zip(table.to_dict("records"), cli_rows, strict=True):
        assert got["note"] == want.get("note", "")
        for key in ("t", "input", "expected", "predicted", "match"):
            assert got[key] == want[key], (key, got, want)
        if want["probability"] is None:
            assert pd.isna(got["probability"])
        else:
            assert got["probability"] == pytest.approx(want["probability"], rel=1e-6)
    assert table.equals(api.predict(" ".join(map(str, values))))


def test_predict_heldout_is_predict_of_the_first_held_out_sequence(runs):
    from echo_cli.tasks import framing as data
    from echo_cli.tasks.base import stream_rng

    api, _ = runs
    sequence = data.generate_sequences(stream_rng(1, "heldout"), count=1, length=10,
                                       n_unique=8)[0].tolist()
    table = api.predict_heldout()
    assert list(table.input) == sequence
    assert list(table.expected[1:]) == sequence[:-1]  # X(t-1)
    assert table.equals(api.predict(sequence))


def test_open_run_reads_a_run_the_cli_trained(runs):
    _, cli = runs
    run = ec.open_run(str(cli))
    pd.testing.assert_frame_equal(run.history,
                                  pd.read_csv(cli / rundir.HISTORY))
    assert run.heldout["accuracy"] == rundir.read_metrics(cli).heldout_accuracy
    assert list(run.predict([1, 2, 3]).expected) == [None, 1, 2]


def test_an_existing_run_directory_is_never_written_into(runs, tmp_path):
    api, _ = runs
    before = {p.name: p.read_bytes() for p in api.path.iterdir() if p.is_file()}
    with pytest.raises(rundir.RunDirError, match="already holds files and is left untouched"):
        ec.train(api.cfg, out=api.path, progress=False)
    assert {p.name: p.read_bytes() for p in api.path.iterdir() if p.is_file()} == before


def test_an_interrupted_run_is_kept_and_the_interrupt_raised(tmp_path, monkeypatch):
    def stop_at_epoch_3(self, epoch, row):  # as Jupyter's stop button would, mid-training
        if epoch == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ec._Bar, "update", stop_at_epoch_3)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 3 of 6 epochs"):
        ec.train(ec.load(None, TINY), out=tmp_path / "run", progress=False)
    run = ec.open_run(tmp_path / "run")
    assert run.metrics["interrupted"] and run.heldout is None
    assert list(run.history.epoch) == [1, 2, 3]
    assert "not scored, interrupted after 3 of 6 epochs" in run.summary()


def test_problems_raise_the_one_line_echo_errors(runs, tmp_path):
    api, _ = runs
    cases = [(lambda: ec.open_run(tmp_path), rundir.RunDirError, "is not a run directory"),
             (lambda: api.predict([1, "x", 3]), InputError, "'x' is not an integer"),
             (lambda: api.predict([1, 9]), InputError, "9 is outside 0 .. 7"),
             (lambda: ec.train(api.cfg, engine="slow"), ec.NotebookError, "engine must be"),
             (lambda: api.predict_heldout(-1), ec.NotebookError, "sequence must be")]
    for call, error, fragment in cases:
        with pytest.raises(error) as caught:
            call()
        assert fragment in str(caught.value) and "\n" not in str(caught.value)
        assert isinstance(caught.value, ec.EchoError)


def test_importing_the_api_stays_light():
    code = ("import sys, echo_cli.notebook\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'pandas', 'matplotlib', 'tqdm')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# examples/echo.ipynb

def _kernel(tmp_path: Path, monkeypatch) -> str:
    """A python3 kernelspec that runs this interpreter (the venv's), first on JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "echo-cli tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


@pytest.mark.slow
def test_the_example_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('kernel python', sys.executable)"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("ECHO_NOTEBOOK_EPOCHS", "5")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    nbclient.NotebookClient(nb, kernel_name=_kernel(tmp_path, monkeypatch), timeout=300,
                            resources={"metadata": {"path": str(work)}}).execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert f"kernel python {sys.executable}" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 3  # the curves of each experiment, inline
    found = sorted((work / "runs" / "notebook").iterdir())
    assert [p.name.rsplit("-", 2)[0] for p in found] == ["echo_current", "lag1",
                                                         "lag_no_context"]
    for run in found:
        metrics = json.loads((run / rundir.METRICS).read_text())
        assert metrics["epochs_completed"] == 5 and metrics["backend"] == "tensorflow"
        assert (f"held-out accuracy {metrics['heldout_accuracy']:.4f}  (95% CI "
                f"{metrics['ci95_low']:.4f}-{metrics['ci95_high']:.4f}") in text
    assert "chance 0.0100" in text
