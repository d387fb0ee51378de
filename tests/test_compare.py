"""compare: runs side by side, the keys that differ, pooled points and the plot."""

import json
from pathlib import Path

import pytest
from helpers import TINY, sets
from typer.testing import CliRunner

from echo_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.slow
def test_compare_shows_only_the_keys_that_differ_and_plots(tmp_path):
    out = tmp_path / "sw"
    tiny = [item for item in TINY if not item.startswith("model.units")]  # the grid sets it
    result = runner.invoke(app, ["sweep", str(ROOT / "configs/lag1.yaml"), "--grid",
                                 "data.lag=0,1", "--grid", "model.units=2,4", *sets(tiny),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["compare", str(out), "--plot", str(tmp_path / "c.png")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "run" in line and "┃" in line)
    assert "data.lag" in header and "model.units" in header
    assert "data.window" not in header and "train.epochs" not in header
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    missing = runner.invoke(app, ["compare", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "neither a run directory" in missing.stderr
    not_png = runner.invoke(app, ["compare", str(out), "--plot", str(tmp_path / "c.md")])
    assert not_png.exit_code == 2 and "ends in .png" in not_png.stderr
    broken = next((out / "runs").iterdir())
    (broken / "metrics.json").write_text("{not json")
    damaged = runner.invoke(app, ["compare", str(out)], env={"COLUMNS": "200"})
    assert damaged.exit_code == 0, damaged.output  # the damaged run is named, the rest compared
    assert f"skipped {broken} has damaged files (JSONDecodeError)" in damaged.output
    assert sum(line.startswith("│ lag=") for line in damaged.output.splitlines()) == 3


def test_plot_axes_skip_labels_seeds_and_keys_tied_to_another():
    from echo_cli.analysis.compare import plot_axes, plot_points

    runs = [{"config": {"name": f"r{i}", "description": "x" * i, "model.kind": kind,
                        "data.lag": lag, "data.window": lag + 4, "seed": seed},
             "metrics": {"heldout_correct": c, "heldout_targets": 10}}
            for i, (kind, lag, seed, c) in enumerate([("lstm", 1, 1, 9), ("lstm", 1, 2, 7),
                                                       ("mlp", 8, 1, 10), ("mlp", 8, 2, 10),
                                                       ("lstm", 8, 1, 1), ("mlp", 1, 1, 5)])]
    keys = ["name", "description", "data.lag", "data.window", "model.kind", "seed"]
    assert plot_axes(runs, keys) == ["data.lag", "model.kind"]
    points = {(p["data.lag"], p["model.kind"]): p["accuracy"] for p in plot_points(
        runs, ["data.lag", "model.kind"])}
    assert points == {(1, "lstm"): 0.8, (8, "mlp"): 1.0, (8, "lstm"): 0.1, (1, "mlp"): 0.5}


# -------------------------------------------------------------------------------- on fake runs

def test_collect_reads_runs_and_sweeps_and_skips_interrupted_runs(tmp_path):
    from helpers import METRICS, fake_run

    from echo_cli.analysis.compare import collect, differing_keys, plot_axes, plot_points

    a = fake_run(tmp_path / "a", overrides=["data.lag=2", "data.window=6"])
    sweep = tmp_path / "sweep"
    fake_run(sweep / "runs" / "x", {**METRICS, "heldout_correct": 54, "heldout_accuracy": 0.5,
                                    "ci95_low": 0.41, "ci95_high": 0.59}, overrides=["seed=2"])
    fake_run(sweep / "runs" / "y", {**METRICS, "interrupted": True, "heldout_accuracy": None})
    (tmp_path / "half").mkdir()  # claimed, never finished: config.yaml only
    (tmp_path / "half" / "config.yaml").write_text("name: half\n")
    runs, skipped = collect([a, sweep, tmp_path / "half"])
    assert skipped == [f"{sweep / 'runs' / 'y'} was interrupted before it was scored",
                       f"{tmp_path / 'half'} did not finish (no metrics.json); train it again "
                       f"to include it"]
    assert [Path(r["path"]).name for r in runs] == ["a", "x"]
    assert differing_keys(runs) == ["seed", "data.lag", "data.window"]
    assert plot_axes(runs, differing_keys(runs)) == ["data.lag"]
    points = plot_points(runs, ["data.lag"])
    assert [(p["data.lag"], p["accuracy"]) for p in points] == [(2, 0.25), (1, 0.5)]


def test_compare_names_a_damaged_run_in_one_line(tmp_path):
    from helpers import METRICS, fake_run

    run = fake_run(tmp_path / "r", {**METRICS, "heldout_targets": "many"})
    result = runner.invoke(app, ["compare", str(run)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{run} has damaged files (heldout_targets: input should be" in result.stderr


def test_results_rows_and_files_come_from_the_runs(tmp_path):
    from helpers import METRICS, fake_run

    from echo_cli.analysis.compare import result_rows, write_results

    run = fake_run(tmp_path / "r", {**METRICS, "heldout_accuracy": 0.5, "heldout_correct": 54,
                                    "ci95_low": 0.41, "ci95_high": 0.59},
                   overrides=["description=a test", "data.lag=2", "data.window=6"])
    rows, skipped = result_rows([run])
    assert skipped == []
    assert rows[0]["heldout_accuracy"] == 0.5 and rows[0]["key settings"].startswith("lag 2")
    write_results(rows, tmp_path / "out", sources=[str(run)])
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| lag1 | a test | lag 2, window 6" in md and f"`{run}`" in md
    csv_head = (tmp_path / "out" / "results.csv").read_text().splitlines()[0]
    # snake_case, the names of metrics.json (and of the notebook's ec.results)
    assert csv_head == ("name,description,settings,heldout_accuracy,ci95_low,ci95_high,"
                        "chance_accuracy,heldout_targets,epochs_completed,updates,"
                        "samples_to_target,train_seconds,backend,engine")


def test_compare_names_each_malformed_run_and_compares_the_rest(tmp_path):
    from helpers import METRICS, fake_run

    good = fake_run(tmp_path / "good")
    other = fake_run(tmp_path / "other", overrides=["data.lag=2", "data.window=6"])
    bad = fake_run(tmp_path / "bad", {**METRICS, "heldout_accuracy": "0.9"})
    lacking = fake_run(tmp_path / "lacking",
                       {k: v for k, v in METRICS.items() if k != "updates"})
    result = runner.invoke(app, ["compare", str(good), str(bad), str(other), str(lacking)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2
    assert f"{bad} has damaged files (heldout_accuracy: input should be" in skipped[0]
    assert f"{lacking} has damaged files (updates: missing)" in skipped[1]
    assert "good" in result.output and "other" in result.output


def test_results_never_overwrites_without_force(tmp_path, monkeypatch):
    from helpers import fake_run

    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path / "r")
    assert runner.invoke(app, ["results", str(run), "--out", "res"]).exit_code == 0
    before = (tmp_path / "res" / "results.md").read_text()
    again = runner.invoke(app, ["results", str(run), "--out", "res"])
    assert again.exit_code == 2 and "already has results.md and results.csv" in again.stderr
    assert (tmp_path / "res" / "results.md").read_text() == before
    assert runner.invoke(app, ["results", str(run), "--out", "res", "--force"]).exit_code == 0
    into_run = runner.invoke(app, ["results", str(run), "--out", str(run), "--force"])
    assert into_run.exit_code == 2 and "is a run directory" in into_run.stderr


def test_terminal_escapes_in_names_are_shown_not_obeyed(tmp_path):
    from helpers import fake_run

    run = fake_run(tmp_path / "evil\x1b]0;pwned\x07name")
    result = runner.invoke(app, ["compare", str(run), str(fake_run(tmp_path / "plain",
                                                                   overrides=["seed=2"]))],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\\x1b]0;pwned\\x07name" in result.output


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda text: text.replace('"heldout_accuracy": 0.25', '"heldout_accuracy": -5.0'),
         "heldout_accuracy must be between 0 and 1, got -5.0"),
        (lambda text: text.replace('"heldout_accuracy": 0.25', '"heldout_accuracy": 1e308'),
         "heldout_accuracy must be between 0 and 1"),
        (lambda text: text.replace('"heldout_accuracy": 0.25', '"heldout_accuracy": NaN'),
         "heldout_accuracy: input should be a finite number"),
        (lambda text: text.replace('"heldout_correct": 27', '"heldout_correct": 500'),
         "heldout_correct (500) is more than heldout_targets (108)"),
        (lambda text: text.replace('"heldout_correct": 27', '"heldout_correct": ' + "9" * 5000),
         "ValueError"),
        (lambda text: text.replace('"heldout_accuracy": 0.25', '"heldout_accuracy": 0.99'),
         "heldout_accuracy 0.99 is not heldout_correct / heldout_targets = 27/108"),
        (lambda text: text.replace('"ci95_high": 0.34', '"ci95_high": 0.2'),
         "heldout_accuracy 0.25 is outside its interval 0.18-0.2"),
    ],
    ids=["negative", "huge", "nan", "more-than-targets", "5000-digits", "edited-accuracy",
         "edited-interval"],
)
def test_impossible_metrics_are_refused_by_results_and_skipped_by_compare(tmp_path, edit,
                                                                          reason):
    from helpers import fake_run

    run = fake_run(tmp_path / "r")
    (run / "metrics.json").write_text(edit((run / "metrics.json").read_text()))
    result = runner.invoke(app, ["results", str(run), "--out", str(tmp_path / "res")])
    assert result.exit_code == 2 and reason in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    compared = runner.invoke(app, ["compare", str(run)])
    assert compared.exit_code == 2 and reason in compared.stderr


def test_a_config_edited_after_training_is_not_credited_with_its_metrics(tmp_path):
    from helpers import METRICS, fake_run

    from echo_cli.store import rundir

    run = fake_run(tmp_path / "r")
    digest = rundir.digest((run / "config.yaml").read_text())
    (run / "metrics.json").write_text(json.dumps({**METRICS, "config_sha256": digest}))
    assert runner.invoke(app, ["results", str(run), "--out", str(tmp_path / "a")]).exit_code == 0
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("units: 50",
                                                                              "units: 5"))
    result = runner.invoke(app, ["results", str(run), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "config.yaml (changed after training" in result.stderr
