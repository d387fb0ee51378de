"""Using trained runs: predict, stream, your own CSV data and embeddings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest
from helpers import one_line_error
from typer.testing import CliRunner

from echo_cli.analysis.trained import load_run, predict_rows
from echo_cli.cli import app
from echo_cli.store import rundir
from echo_cli.tasks import csv_source as data
from echo_cli.training.loop import build

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def sets(*items: str) -> list[str]:
    return helpers.sets(items)


@pytest.fixture(scope="module")
def lag_run(tmp_path_factory):
    """A small stateful echo-lag model that has learned (held-out ≥ 0.95 in test_train)."""
    out = tmp_path_factory.mktemp("runs") / "lag"
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"), *sets(
        "data.n_unique=20", "data.window=3", "model.units=30", "train.epochs=400",
        "train.learning_rate=0.01", "eval.sequences=50"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A small model trained on whole masked prefixes with a target at every step."""
    out = tmp_path_factory.mktemp("runs") / "stream"
    result = runner.invoke(app, ["train", str(ROOT / "configs/stream.yaml"), *sets(
        "data.n_unique=10", "data.length=10", "model.units=24", "train.epochs=300",
        "train.batch_size=3", "train.learning_rate=0.01", "eval.sequences=50"),
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# -------------------------------------------------------------------------------- predict

@pytest.mark.slow
def test_predict_echoes_your_own_integers(lag_run):
    values = [3, 17, 4, 11, 5, 9, 2, 16, 5, 3, 5, 8, 9]  # 13: not a multiple of the batch of 5
    result = runner.invoke(app, ["predict", str(lag_run), *map(str, values), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["t"] for r in rows] == list(range(13))
    assert [r["input"] for r in rows] == values
    assert rows[0]["predicted"] is None and rows[1]["predicted"] is None  # window of 3
    assert "cold start" in rows[1]["note"]
    scored = rows[2:]
    assert all(r["expected"] == values[r["t"] - 1] for r in scored)
    assert all(0 <= r["probability"] <= 1 for r in scored)
    assert sum(r["match"] for r in scored) >= 10  # the model learned: 11 predictions


@pytest.mark.slow
def test_predict_table(lag_run):
    result = runner.invoke(app, ["predict", str(lag_run), "1", "2", "3", "4", "5", "6"])
    assert result.exit_code == 0, result.output
    assert "expected X(t-1)" in result.output and "cold start" in result.output
    assert "predictions match" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["25", "1", "2", "3"], "25 is outside 0 .. 19"),
        (["-1", "1", "2", "3"], "-1 is outside 0 .. 19"),
        (["one", "1", "2"], "'one' is not an integer"),
        (["1", "2"], "give at least 3 integers"),
    ],
)
@pytest.mark.slow
def test_predict_bad_input(lag_run, args, fragment):
    one_line_error(runner.invoke(app, ["predict", str(lag_run), *args]), fragment)


@pytest.mark.slow
def test_predict_bad_run_directories(tmp_path, lag_run):
    one_line_error(runner.invoke(app, ["predict", str(tmp_path / "nope"), "1", "2", "3"]),
                   "does not exist")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_text((lag_run / "config.yaml").read_text())
    one_line_error(runner.invoke(app, ["predict", str(half), "1", "2", "3"]),
                   "is incomplete: no model.keras")
    (half / "model.keras").write_bytes(b"not a zip file")
    one_line_error(runner.invoke(app, ["predict", str(half), "1", "2", "3"]),
                   "is not a Keras model file")


# -------------------------------------------------------------------------------- stream

def run_stream(run_dir: Path, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "echo_cli", "stream", str(run_dir)],
                          input=text, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_stream_prints_one_line_per_integer_and_matches_predict(stream_run):
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    out = run_stream(stream_run, "".join(f"{v}\n" for v in values))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(values) and lines[0] == "-"
    rows = predict_rows(load_run(stream_run), values)
    assert lines[1:] == [str(r["predicted"]) for r in rows[1:]]
    assert sum(int(line) == values[t - 1] for t, line in enumerate(lines) if t) >= 7


COMPILED_VS_OP_BY_OP = """
import sys
from pathlib import Path
import numpy as np
from echo_cli.analysis.stream import Streamer
from echo_cli.analysis.trained import load_run
run = load_run(Path(sys.argv[1]))
values = np.random.default_rng(4).integers(0, run.cfg.data.n_unique, size=int(sys.argv[2]))
compiled, op_by_op = Streamer(run), Streamer(run, compiled=False)
echoes = [(compiled.push(int(v)), op_by_op.push(int(v))) for v in values]
assert all((a is None) == (b is None) for a, b in echoes)
pairs = [(a, b) for a, b in echoes if a is not None]
assert [a[0] for a, _ in pairs] == [b[0] for _, b in pairs], "the echoes differ"
assert max(abs(a[1] - b[1]) for a, b in pairs) < 1e-5
rows = values[: 7 * 40].reshape(7, 40)
batch = Streamer(run, batch_size=7)
together = [batch.step(rows[:, t]) for t in range(40)]
for i in range(7):  # seven streams side by side each echo what it would alone
    alone = Streamer(run)
    for t in range(40):
        echo = alone.push(int(rows[i, t]))
        assert (echo is None) == (together[t] is None)
        assert echo is None or echo[0] == together[t][0][i], (i, t)
print(run.cfg.train.backend, len(pairs), "echoes identical")
"""


@pytest.mark.slow
def test_the_compiled_stream_step_echoes_what_the_op_by_op_one_did(stream_run):
    """The same 2,000 echoes, compiled (tf.function here) and op by op."""
    done = subprocess.run([sys.executable, "-c", COMPILED_VS_OP_BY_OP, str(stream_run), "2000"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tensorflow", "1999", "echoes", "identical"]


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib").util.find_spec("jax"), reason="no JAX")
def test_the_jitted_stream_step_on_jax_matches_predict_and_the_op_by_op_step(tmp_path):
    run_dir = tmp_path / "jax-stream"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    trained = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", str(ROOT / "configs/stream.yaml"),
         *sets("data.n_unique=10", "data.length=10", "model.units=12", "train.epochs=60",
               "train.batch_size=3", "eval.sequences=10", "train.backend=jax"),
         "--out", str(run_dir)], capture_output=True, text=True, timeout=300, env=env)
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run([sys.executable, "-c", COMPILED_VS_OP_BY_OP, str(run_dir), "500"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["jax", "499", "echoes", "identical"]
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    piped = run_stream(run_dir, "".join(f"{v}\n" for v in values))
    assert piped.returncode == 0, piped.stderr
    predicted = subprocess.run(
        [sys.executable, "-m", "echo_cli", "predict", str(run_dir), *map(str, values),
         "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert piped.stdout.splitlines()[1:] == [str(r["predicted"]) for r in rows[1:]]


@pytest.mark.slow
def test_stream_skips_bad_lines_and_goes_on(stream_run):
    out = run_stream(stream_run, "3\n\nseven\n42\n4\n")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2  # only 3 and 4 are integers in range
    assert "blank line" in out.stderr and "'seven' is not an integer" in out.stderr
    assert "42 is outside 0 .. 9" in out.stderr


@pytest.mark.slow
def test_stream_scores_held_out_sequences_one_number_at_a_time(stream_run):
    result = runner.invoke(app, ["stream", str(stream_run), "--heldout", "50"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "streamed 50 fresh held-out sequences" in text
    accuracy = float(text.split("echo accuracy of X(t-1) ")[1].split()[0])
    assert accuracy >= 0.8


@pytest.mark.slow
def test_stream_refuses_a_model_that_cannot_stream(lag_run):
    one_line_error(runner.invoke(app, ["stream", str(lag_run)]), "can't stream")


# -------------------------------------------------------------------------------- CSV data

def write_csv(path: Path, column: str, values) -> Path:
    path.write_text("n," + column + "\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    return path


def test_csv_integers_in_range_are_used_as_they_are(tmp_path):
    path = write_csv(tmp_path / "ints.csv", "x", list(range(100)) * 2)
    ds = data.read_csv_dataset(str(path), "x", length=10, heldout_fraction=0.2, n_unique=100)
    assert ds.vocabulary is None and ds.n_unique == 100
    dice = data.read_csv_dataset(str(ROOT / "configs/data/dice.csv"), "roll", length=25,
                                 heldout_fraction=0.2, n_unique=100)
    assert dice.vocabulary is None and dice.n_unique == 7  # rolls 1..6: chance 1/7, not 1/100
    assert ds.train.shape == (16, 10) and ds.heldout.shape == (4, 10)
    assert ds.train[0].tolist() == list(range(10))
    assert ds.heldout[0].tolist() == list(range(60, 70))  # rows 160.. of the file


def test_csv_held_out_rows_never_train(tmp_path):
    path = write_csv(tmp_path / "s.csv", "word", [f"w{i}" for i in range(103)])
    ds = data.read_csv_dataset(str(path), "word", length=10, heldout_fraction=0.25,
                               n_unique=100)
    assert ds.n_unique == 103 and len(ds.vocabulary) == 103
    assert set(ds.train.ravel()).isdisjoint(set(ds.heldout.ravel()))
    assert [ds.vocabulary[i] for i in ds.train[0]] == [f"w{i}" for i in range(10)]


def test_csv_run_predicts_in_the_files_own_values(tmp_path):
    out = tmp_path / "csv"
    dice = f"data.path={ROOT}/configs/data/dice.csv"
    result = runner.invoke(app, ["train", str(ROOT / "configs/csv_colours.yaml"),
                                 *sets("train.epochs=200", dice), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 distinct values mapped to ids" in result.output
    assert json.loads((out / "vocabulary.json").read_text()) == [
        "blue", "green", "purple", "red", "yellow"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heldout_sequences"] == 16 and metrics["chance_accuracy"] == 0.2
    colours = ["red", "blue", "blue", "green", "green", "yellow", "purple"]
    result = runner.invoke(app, ["predict", str(out), *colours, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["expected"] for r in rows[5:]] == ["green", "yellow"]
    assert [r["predicted"] for r in rows[5:]] == ["green", "yellow"]  # it learned the echo
    one_line_error(runner.invoke(app, ["predict", str(out), "red", "pink", "blue", "red",
                                       "red"]), "'pink' is not in this run's vocabulary")


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: [f"data.path={d}/missing.csv", "data.column=x"], "does not exist"),
        (lambda d: [f"data.path={write_csv(d / 'a.csv', 'x', range(100))}", "data.column=y"],
         "'y' is not in"),
        (lambda d: [f"data.path={write_csv(d / 'b.csv', 'x', range(30))}", "data.column=x"],
         "too few for one training and one held-out sequence"),
        (lambda d: [f"data.path={write_csv(d / 'c.csv', 'x', [''] * 60)}", "data.column=x"],
         "is empty"),
        (lambda d: ["data.column=x"], "data.source: csv needs data.path"),
    ],
    ids=["missing-file", "missing-column", "too-few-rows", "empty-column", "no-path"],
)
def test_csv_errors(tmp_path, setup, fragment):
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"),
                                 *sets("data.source=csv", *setup(tmp_path)),
                                 "--out", str(tmp_path / "run")])
    one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_values_that_look_like_markup_are_printed_as_they_are(tmp_path):
    path = write_csv(tmp_path / "m.csv", "tok", ["[/]", "[bold]", "a"] * 40)
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"), *sets(
        "data.source=csv", f"data.path={path}", "data.column=tok", "data.length=10",
        "data.window=2", "train.epochs=3", "train.batch_size=3", "model.units=4"),
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", str(out), "[/]", "a", "[bold]", "a"])
    assert result.exit_code == 0, result.output
    assert "[/]" in result.output and "[bold]" in result.output


def test_check_data_reads_csv_configs():
    result = runner.invoke(app, ["check-data", str(ROOT / "configs/csv_colours.yaml"),
                                 *sets(f"data.path={ROOT}/configs/data/dice.csv")])
    assert result.exit_code == 0, result.output
    assert "values: blue purple green" in result.output


# -------------------------------------------------------------------------------- embeddings

def test_embedding_model_takes_ids_and_masks_with_zero():
    from echo_cli.config.loading import load_config

    cfg = load_config(overrides=["model.encoding=embedding", "model.embedding_dim=8",
                                 "data.missing=mask", "train.batch_size=6"])
    model = build(cfg)
    assert model.get_layer("embedding").get_weights()[0].shape == (101, 8)
    assert "one_hot" not in {layer.name for layer in model.layers}
    out = model.predict(np.zeros((6, 5), dtype="int32"), verbose=0)
    assert out.shape == (6, 100)


@pytest.mark.slow
def test_ten_thousand_integers_train_under_two_gigabytes(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", "configs/lag1.yaml", *sets(
            "data.n_unique=10000", "model.encoding=embedding", "train.epochs=20",
            "eval.sequences=50"), "--out", str(tmp_path / "big")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "big/metrics.json").read_text())
    assert metrics["chance_accuracy"] == 0.0001
    assert metrics["peak_rss_mb"] < 2000


# -------------------------------------------------------------------------------- hostile input

def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def rewrite_config(run: Path, **changes: str) -> None:
    """Edit config.yaml as a user might, after training, bypassing the recorded digest."""
    text = (run / "config.yaml").read_text()
    for key, value in changes.items():
        text = "\n".join(f"  {key}: {value}" if line.startswith(f"  {key}:") else line
                         for line in text.splitlines()) + "\n"
    (run / "config.yaml").write_text(text)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("config_sha256")  # as an older run, so the structural checks speak
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / rundir.CONFIG_DIGEST).unlink()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"n_unique": "50"},
         "data.n_unique makes 50 outputs in config.yaml, but the model predicts 20"),
        ({"units": "7"}, "model.units is 7 in config.yaml, but the model has 30"),
        ({"window": "4"}, "data.window makes 4 input steps in config.yaml, but the model takes 3"),
        ({"kind": "gru"}, "model.kind is gru in config.yaml, but the model is lstm"),
        ({"target": "sequence"}, "data.target asks for an output per step in config.yaml, but the "
                                 "model has one output per sample"),
        ({"stateful": "false"}, "model.stateful is false in config.yaml, but the model is"),
    ],
)
def test_a_run_directory_that_disagrees_with_itself_is_refused(lag_run, tmp_path, changes,
                                                               fragment):
    run = copy_run(lag_run, tmp_path / "r")
    rewrite_config(run, **changes)
    result = runner.invoke(app, ["predict", str(run), "1", "2", "3", "4"])
    one_line_error(result, "config.yaml and model.keras disagree: " + fragment)


@pytest.mark.slow
def test_an_edited_config_is_caught_even_where_the_model_cannot_tell(lag_run, tmp_path):
    run = copy_run(lag_run, tmp_path / "r")
    text = (run / "config.yaml").read_text().replace("  lag: 1\n", "  lag: 2\n")
    (run / "config.yaml").write_text(text)
    one_line_error(runner.invoke(app, ["predict", str(run), "1", "2", "3", "4"]),
                   "config.yaml was changed after training")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"a": 1}', "not a list of values"),
        ("7", "not a list of values"),
        (b"\xff\xfe\x00binary", "UnicodeDecodeError"),
        ('["red", ["nested"]]', "holds something other than numbers and strings"),
        ('["red", "red"]', "holds a value twice"),
        ('["a", "b", "c"]', "holds 3 values but data.n_unique is 20"),
    ],
)
def test_a_damaged_vocabulary_is_refused(lag_run, tmp_path, content, fragment):
    run = copy_run(lag_run, tmp_path / "r")
    target = run / "vocabulary.json"
    target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    one_line_error(runner.invoke(app, ["predict", str(run), "1", "2", "3"]), fragment)


@pytest.mark.slow
@pytest.mark.parametrize("token", ["٣", "1_0", "3.0", "0x3", ""])
def test_predict_takes_plain_integers_only(lag_run, token):
    one_line_error(runner.invoke(app, ["predict", str(lag_run), "1", token, "2", "3"]),
                   "is not an integer")


@pytest.mark.slow
def test_stream_with_stdin_closed_is_one_line(stream_run):
    out = subprocess.run([sys.executable, "-m", "echo_cli", "stream", str(stream_run)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                         preexec_fn=lambda: os.close(0))
    assert out.returncode == 2 and "stdin is closed" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_stream_heldout_that_cannot_fit_is_refused(stream_run):
    one_line_error(runner.invoke(app, ["stream", str(stream_run), "--heldout", "1000000000"]),
                   "--heldout 1000000000 needs about")


def test_csv_gaps_split_sequences_and_are_named(tmp_path):
    values = [i % 7 for i in range(60)]
    for gap in (13, 14, 40):
        values[gap] = "NA" if gap != 14 else ""
    path = write_csv(tmp_path / "g.csv", "x", values)
    ds = data.read_csv_dataset(str(path), "x", length=5, heldout_fraction=0.2, n_unique=100)
    assert ds.gaps == [15, 16, 42]  # file lines (the header is line 1)
    assert ds.vocabulary is None and ds.n_unique == 7  # integers, though pandas saw floats
    # rows 0-12 give 2 sequences, 15-39 give 5, 41-47 one; rows 48-59 are held out
    assert ds.train.tolist()[:2] == [[0, 1, 2, 3, 4], [5, 6, 0, 1, 2]]
    assert len(ds.train) == 8 and len(ds.heldout) == 2
    assert ds.train.tolist()[2] == [v % 7 for v in range(15, 20)]  # never across the gap


@pytest.mark.slow
def test_a_model_file_that_is_not_a_keras_archive_says_so(lag_run, tmp_path):
    run = copy_run(lag_run, tmp_path / "r")
    (run / "model.keras").write_bytes(b"not a zip file at all")
    one_line_error(runner.invoke(app, ["predict", str(run), "1", "2", "3"]),
                   "model.keras is not a Keras model file (a .keras file is a zip archive)")


@pytest.mark.slow
def test_predict_refuses_an_integer_too_long_to_be_an_id(lag_run):
    one_line_error(runner.invoke(app, ["predict", str(lag_run), "1", "9" * 5000, "2", "3"]),
                   "integer too large (max 19")


def test_a_blank_line_in_a_one_column_csv_is_a_gap_with_the_files_line_numbers(tmp_path):
    """pandas would skip the blank line and run the sequences straight across it."""
    lines = ["x"] + [str(i % 5) for i in range(30)]
    lines[10] = ""  # file line 11 is blank
    lines[20] = "NA"  # file line 21: its number must not shift after the blank line
    path = tmp_path / "one.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = data.read_csv_dataset(str(path), "x", length=3, heldout_fraction=0.2, n_unique=100)
    assert ds.gaps == [11, 21]
    assert ds.rows == 30
    file_values = [int(v) for v in lines[1:10]]  # lines 2-10, before the blank line
    assert ds.train.tolist()[:3] == [file_values[0:3], file_values[3:6], file_values[6:9]]
    assert ds.train.tolist()[3] == [int(v) for v in lines[11:14]]  # resumes after the gap


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["True", "False"] * 40, "holds True on line 2: a boolean would come back as another "
                                 "value"),
        ([str(i % 7) for i in range(78)] + ["inf", "1"], "holds inf on line 80: a value must "
                                                         "be finite"),
        (["0.5", "0.25", "0.10"] * 30, "holds 0.10 on line 4, which reads back as 0.1"),
        (["1", "12345678901234567890"] * 40, "integer too large"),
    ],
    ids=["booleans", "inf", "inexact-float", "huge-integer"],
)
def test_csv_values_that_cannot_come_back_as_they_are_are_refused(tmp_path, values, fragment):
    path = tmp_path / "v.csv"
    path.write_text("x\n" + "\n".join(values) + "\n")
    with pytest.raises(data.DataError) as err:
        data.read_csv_dataset(str(path), "x", length=5, heldout_fraction=0.2, n_unique=100)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    result = runner.invoke(app, ["train", str(ROOT / "configs/csv_colours.yaml"), *sets(
        f"data.path={path}", "data.column=x"), "--out", str(tmp_path / "never")])
    one_line_error(result, fragment)
    assert not (tmp_path / "never").exists()


def test_exact_floats_round_trip_through_the_vocabulary(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x\n" + "\n".join(["0.5", "0.25", "1.5"] * 30) + "\n")
    ds = data.read_csv_dataset(str(path), "x", length=5, heldout_fraction=0.2, n_unique=100)
    assert ds.vocabulary == [0.25, 0.5, 1.5]
    assert json.loads(json.dumps(ds.vocabulary)) == ds.vocabulary
