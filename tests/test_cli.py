"""The commands as a user runs them: output, files written, and one-line errors."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import helpers
import pytest
from helpers import in_empty_dir, invoke, one_line_error

from echo_cli.config.loading import load_config
from echo_cli.output import report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    in_empty_dir(tmp_path, monkeypatch, columns=110)


def assert_one_line_error(result, *fragments: str) -> None:
    """One line, exit 2, and nothing created: a stray runs/ would be visible here."""
    one_line_error(result, *fragments)
    assert not Path("runs").exists()


# -------------------------------------------------------------------------------- check-data

def test_check_data_defaults_show_the_tutorial_framing():
    result = invoke("check-data")
    assert result.exit_code == 0, result.output
    assert "20 samples per sequence" in result.output
    assert "4 batches of 5" in result.output
    assert "dropped t=4: trimmed so samples fill whole batches of 5" in result.output
    assert "state from" in result.output and "zeros (reset)" in result.output


def test_check_data_shows_the_beginners_mistake():
    result = invoke("check-data", ROOT / "configs/lag_no_context.yaml")
    assert result.exit_code == 0, result.output
    assert "24 samples per sequence" in result.output
    row7 = next(line for line in result.output.splitlines() if line.startswith("│  7 │"))
    assert row7.split("│")[-2].strip() == "t=1"  # row t=7 receives the state of row t=1
    assert "beginner's mistake" in result.output


def test_check_data_reports_config_errors():
    assert_one_line_error(invoke("check-data", "--set", "data.window=0"), "data.window must be ≥ 1")


def test_help_answers_without_tensorflow():
    code = (
        "import sys\nfrom echo_cli.cli import app\n"
        "for cmd in ([], ['train'], ['check-data']):\n"
        "    try:\n        app([*cmd, '--help'])\n    except SystemExit:\n        pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--set" in out.stdout and "--engine" in out.stdout and "--out" in out.stdout


def test_bad_flag_is_one_line_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "echo_cli", "train", "--epoch", "3", "x.yaml"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("error: No such option: --epoch")
    assert lines[0].endswith("(see `echo-cli train --help`)")


def test_bad_engine_is_one_line_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "echo_cli", "train", "x.yaml", "--engine", "slow"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "'slow' is not one of" in out.stderr


# -------------------------------------------------------------------------------- train

def test_train_writes_a_run_directory_that_repeats(tiny_overrides):
    sets = helpers.sets(tiny_overrides)
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets, "--out", "run1")
    assert result.exit_code == 0, result.output
    run = Path("run1")
    assert {p.name for p in run.iterdir()} == {"config.yaml", "config.sha256", "command.txt",
                                               "history.csv", "model.keras", "metrics.json",
                                               "curves.png", "tb"}
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("name", "seed", "engine", "epochs", "updates", "train_seconds",
                "heldout_accuracy", "heldout_targets", "ci95_low", "ci95_high", "chance_accuracy"):
        assert key in metrics
    assert metrics["engine"] == "fast" and metrics["epochs"] == 6 and not metrics["interrupted"]
    assert metrics["updates"] == 6 * 3  # t = 1..9: 9 rows, 3 batches of 3
    assert metrics["heldout_targets"] == 12 * 9
    assert metrics["chance_accuracy"] == 0.125
    with (run / "history.csv").open() as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5, 6]
    assert "held-out accuracy" in result.output and "chance 0.1250" in result.output
    assert "training, per epoch (one epoch = one sequence)" in result.output
    assert "target X(t-1)" in result.output and "predicted" in result.output

    again = invoke("train", run / "config.yaml", "--out", "run2")
    assert again.exit_code == 0, again.output
    repeat = json.loads(Path("run2/metrics.json").read_text())
    for key in ("heldout_accuracy", "heldout_correct", "updates", "final_train_loss"):
        assert repeat[key] == metrics[key]
    assert load_config(run / "config.yaml") == load_config(Path("run2/config.yaml"))


def test_train_default_run_directory_is_named_and_never_shared(tiny_overrides, monkeypatch):
    from echo_cli.store import claim

    monkeypatch.setattr(claim, "timestamp", lambda: "20261129-120000")
    sets = helpers.sets(tiny_overrides)
    first = invoke("train", ROOT / "configs/lag1.yaml", *sets)
    second = invoke("train", ROOT / "configs/lag1.yaml", *sets)  # the same second
    assert first.exit_code == 0 and second.exit_code == 0
    assert sorted(p.name for p in Path("runs").iterdir()) == [
        "lag1-20261129-120000", "lag1-20261129-120000-2"]


def test_out_inside_a_file_is_one_line():
    Path("afile").write_text("x")
    result = invoke("train", ROOT / "configs/lag1.yaml", "--out", "afile/run")
    assert result.exit_code == 2 and "cannot create the run directory afile/run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and Path("afile").read_text() == "x"


def test_bare_command_shows_help():
    out = subprocess.run([sys.executable, "-m", "echo_cli"], capture_output=True, text=True)
    assert out.returncode == 0 and "Commands" in out.stdout and "train" in out.stdout
    assert "error" not in out.stderr


def test_tutorial_engine_from_the_cli(tiny_overrides):
    sets = helpers.sets(tiny_overrides)
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets, "--engine", "tutorial",
                    "--out", "r")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("r/metrics.json").read_text())["engine"] == "tutorial"


def test_ctrl_c_keeps_what_was_done(tiny_overrides, monkeypatch):
    def interrupt(self, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(report.TrainProgress, "update", interrupt)
    sets = helpers.sets(tiny_overrides)
    result = invoke("train", ROOT / "configs/lag1.yaml", *sets, "--out", "cut")
    assert result.exit_code == 130, result.output
    metrics = json.loads(Path("cut/metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_completed"] == 2
    assert metrics["heldout_accuracy"] is None
    assert len(Path("cut/history.csv").read_text().strip().splitlines()) == 1 + 2
    assert Path("cut/model.keras").exists() and Path("cut/config.yaml").exists()
    assert "interrupted by Ctrl-C after 2 of 6 epochs" in " ".join(result.output.split())


# -------------------------------------------------------------------------------- bad input

def write(name: str, text: str) -> Path:
    Path(name).write_text(text)
    return Path(name)


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (lambda: ["nope.yaml"], ["nope.yaml does not exist"]),
        (lambda: [Path(".")], ["is a directory"]),
        (lambda: [write("bad.yaml", "data: [1, 2\n")], ["bad.yaml is not valid YAML at line"]),
        (lambda: [write("list.yaml", "- 1\n- 2\n")], ["must hold a YAML mapping", "got a list"]),
        (lambda: [write("u.yaml", "data:\n  windw: 3\n")], ["did you mean data.window?"]),
        (lambda: [write("t.yaml", "train:\n  epochs: lots\n")],
         ["train.epochs must be an integer, got 'lots'"]),
        (lambda: [write("w.yaml", "data:\n  window: 0\n")], ["data.window must be ≥ 1, got 0"]),
        (lambda: [write("l.yaml", "data:\n  lag: -2\n")], ["data.lag must be ≥ 0, got -2"]),
        (lambda: [write("L.yaml", "data:\n  window: 26\n")],
         ["data.window must be ≤ data.length (25), got 26"]),
        (lambda: [write("b.yaml", "train:\n  batch_size: 22\n")],
         ["train.batch_size must be ≤ 21", "1, 3, 7, 21"]),
        (lambda: [ROOT / "configs/lag1.yaml", "--set", "train.epoch=5"],
         ["did you mean train.epochs?"]),
        (lambda: [ROOT / "configs/lag1.yaml", "--set", "model.units=many"],
         ["model.units must be an integer, got 'many'"]),
        (lambda: [ROOT / "configs/lag1.yaml", "--set", "model.units"], ["--set expects KEY=VALUE"]),
    ],
    ids=["missing", "directory", "yaml", "list", "unknown", "type", "window0", "neglag",
         "window>length", "batch", "set-unknown", "set-bad-value", "set-no-equals"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(make_args, fragments):
    assert_one_line_error(invoke("train", *make_args()), *fragments)


def test_out_pointing_at_a_non_empty_directory_is_left_untouched():
    keep = Path("keep")
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    result = invoke("train", ROOT / "configs/lag1.yaml", "--out", "keep")
    assert_one_line_error(result, "--out keep already holds files")
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    assert (keep / "notes.txt").read_text() == "mine"


# -------------------------------------------------------------------------------- results, bench

def test_results_tabulates_run_directories(tiny_overrides):
    sets = helpers.sets(tiny_overrides)
    for name, lag in (("a", 1), ("b", 0)):
        result = invoke("train", ROOT / "configs/lag1.yaml", *sets, "--set", f"name={name}",
                        "--set", f"data.lag={lag}", "--set", f"description=lag {lag} test",
                        "--out", name)
        assert result.exit_code == 0, result.output
    result = invoke("results", "a", "b", "--out", "res")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(Path("res/results.csv").open()))
    assert [r["name"] for r in rows] == ["a", "b"]
    for row, run in zip(rows, ("a", "b"), strict=True):
        metrics = json.loads(Path(run, "metrics.json").read_text())
        assert float(row["heldout_accuracy"]) == metrics["heldout_accuracy"]
        assert int(row["updates"]) == metrics["updates"]
    md = Path("res/results.md").read_text()
    assert "| a | lag 1 test | lag 1, window 2" in md and "| b | lag 0 test | lag 0" in md


def test_results_rejects_a_directory_that_is_not_a_run():
    Path("empty").mkdir()
    assert_one_line_error(invoke("results", "empty"), "empty is not a run directory")


def test_results_rejects_damaged_run_files():
    Path("bad").mkdir()
    Path("bad/config.yaml").write_text("name: bad\n")
    Path("bad/metrics.json").write_text("[1, 2]")
    assert_one_line_error(invoke("results", "bad"), "bad/metrics.json is not a run's metrics")
    Path("bad/config.yaml").write_text("- not a mapping\n")
    assert_one_line_error(invoke("results", "bad"), "must hold a YAML mapping")


@pytest.mark.slow
def test_bench_measures_both_engines_a_whole_train_and_a_stream_in_one_run():
    result = invoke("bench", ROOT / "configs/lag1.yaml", "--epochs", "3", "--backends",
                    "tensorflow", "--stream", "40", "--out", "b/results.json")
    assert result.exit_code == 0, result.output
    record = json.loads(Path("b/results.json").read_text())
    labels = [f"{m['engine']} / {m['backend']}" for m in record["measurements"]]
    # the tests run on TensorFlow (conftest), so here the default is the fast engine on it
    assert labels == ["tutorial / tensorflow", "fast / tensorflow"]
    assert [m["default"] for m in record["measurements"]] == [False, True]
    assert record["default"] == "fast / tensorflow"
    tutorial, fast = record["measurements"]
    assert tutorial["updates"] == fast["updates"] == 3 * 4
    assert fast["median_heldout_accuracy"] == tutorial["median_heldout_accuracy"]
    ratio = record["ratios"]["fast / tensorflow"]["speedup_vs_tutorial"]
    assert tutorial["train_seconds"] == [tutorial["median_train_seconds"]]
    assert fast["process_peak_rss_mb"][0] >= fast["peak_rss_mb"][0] - 0.1  # rounded to 0.1 MB
    assert f"{ratio:.1f}× faster at equal updates" in " ".join(result.output.split())
    # a whole train, phase by phase: the phases and the start-up add up to its wall time
    wall = record["wall"]
    assert list(wall["phases"]) == ["start-up", "import", "build", "compile", "train",
                                    "evaluate", "save"]
    assert sum(wall["phases"].values()) == pytest.approx(wall["seconds"], rel=1e-6)
    assert wall["seconds"] == fast["wall_seconds"][0]
    stream = record["stream"]
    assert stream["numbers"] == 40 and stream["backend"] == "tensorflow"
    assert stream["numbers_per_second"] == 40 / stream["seconds"]
    assert "numbers/s" in result.output

    again = invoke("bench", ROOT / "configs/lag1.yaml", "--out", "b/results.json")
    assert_one_line_error(again, "--out b/results.json already exists and is left untouched",
                          "give --force")
    assert json.loads(Path("b/results.json").read_text()) == record


@pytest.mark.slow
def test_bench_scaling_times_each_kind_at_each_length():
    result = invoke("bench", "scaling", "--kinds", "lstm,tcn", "--backends", "tensorflow",
                    "--lengths", "22,40", "--updates", "51", "--out", "b/scaling.json")
    assert result.exit_code == 0, result.output
    record = json.loads(Path("b/scaling.json").read_text())
    assert [(r["kind"], r["length"]) for r in record["rows"]] == [
        ("lstm", 22), ("lstm", 40), ("tcn", 22), ("tcn", 40)]
    for row in record["rows"]:
        assert "error" not in row, row
        assert row["backend"] == "tensorflow" and row["updates"] == 51
        assert 0 < row["seconds_per_update"] < row["train_seconds"]
        assert row["process_peak_rss_mb"] > 0
    assert set(record["growth"]) == {"lstm / tensorflow", "tcn / tensorflow"}
    assert Path("b/scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_rejects_an_unknown_backend():
    assert_one_line_error(invoke("bench", ROOT / "configs/lag1.yaml", "--backends", "torch"),
                          "--backends takes names from")
