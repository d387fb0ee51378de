"""The run directory on fake runs, with no Keras: names, claiming, atomic files, the record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import METRICS, fake_run

from echo_cli import rundir
from echo_cli.config import load_config
from echo_cli.files import write_atomic

# -------------------------------------------------------------------------------- create

def test_out_is_used_when_new_or_empty(tmp_path):
    assert rundir.create(tmp_path / "new" / "run", "x") == tmp_path / "new" / "run"
    (tmp_path / "empty").mkdir()
    assert rundir.create(tmp_path / "empty", "x") == tmp_path / "empty"


def test_out_that_holds_files_or_is_a_file_is_refused_and_left_alone(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match="already holds files and is left untouched"):
        rundir.create(tmp_path / "full", "x")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(rundir.RunDirError, match="is a file"):
        rundir.create(tmp_path / "afile", "x")
    with pytest.raises(rundir.RunDirError, match="cannot create the run directory"):
        rundir.create(tmp_path / "afile" / "run", "x")


def test_default_directories_in_the_same_second_get_a_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rundir, "timestamp", lambda: "20261129-120000")
    first, second, third = (rundir.create(None, "lag1") for _ in range(3))
    assert [p.as_posix() for p in (first, second, third)] == [
        "runs/lag1-20261129-120000", "runs/lag1-20261129-120000-2", "runs/lag1-20261129-120000-3"]


# -------------------------------------------------------------------------------- save

def test_metrics_round_trip_keeps_exactly_the_keys_that_were_set(tmp_path):
    run = fake_run(tmp_path / "r")
    written = json.loads((run / rundir.METRICS).read_text())
    assert list(written) == list(METRICS)  # same keys, same order, no optional groups
    record = rundir.read(run)
    assert record.metrics.to_dict() == METRICS
    assert record.config["data.lag"] == 1 and record.config["model.kind"] == "lstm"
    assert record.cfg == load_config()


def test_optional_groups_are_written_when_set(tmp_path):
    metrics = {**METRICS, "target_accuracy": 0.9, "validation_sequences": 100,
               "reached_target": False, "epochs_to_target": None, "samples_to_target": None,
               "final_validation_accuracy": 0.5}
    run = fake_run(tmp_path / "r", metrics)
    written = json.loads((run / rundir.METRICS).read_text())
    assert written["samples_to_target"] is None and written["reached_target"] is False
    assert "heldout_exact_match" not in written


def test_history_is_written_with_every_column_and_read_back(tmp_path):
    rows = [{"epoch": 1, "loss": 2.0, "accuracy": 0.5},
            {"epoch": 2, "loss": 1.5, "accuracy": 0.75, "validation_accuracy": 0.6}]
    (tmp_path / "r").mkdir()
    rundir.RunWriter(tmp_path / "r").save_history(rows)
    text = (tmp_path / "r" / rundir.HISTORY).read_text()
    assert text.splitlines()[0] == "epoch,loss,accuracy,validation_accuracy"
    assert rundir.read_history(tmp_path / "r") == rows
    rundir.RunWriter(tmp_path / "r").save_history([])
    assert (tmp_path / "r" / rundir.HISTORY).read_text().strip() == "epoch,loss,accuracy"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.md"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_the_model_is_saved_through_a_temporary_file(tmp_path):
    seen = []

    def save(path: Path) -> None:
        seen.append(path)
        path.write_bytes(b"model bytes")

    (tmp_path / "r").mkdir()
    rundir.RunWriter(tmp_path / "r").save_model(save)
    assert seen[0].name != rundir.MODEL and seen[0].suffix == ".keras"
    assert [p.name for p in (tmp_path / "r").iterdir()] == [rundir.MODEL]

    def fail(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        rundir.RunWriter(tmp_path / "r").save_model(fail)
    assert (tmp_path / "r" / rundir.MODEL).read_bytes() == b"model bytes"
    assert [p.name for p in (tmp_path / "r").iterdir()] == [rundir.MODEL]


# -------------------------------------------------------------------------------- read

@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "not a mapping"),
        (json.dumps({**METRICS, "heldout_accuracy": "0.9"}), "heldout_accuracy: input should"),
        (json.dumps({k: v for k, v in METRICS.items() if k != "updates"}), "updates: missing"),
        (json.dumps({**METRICS, "heldout_correct": None}), "a scored run needs heldout_correct"),
    ],
    ids=["json", "list", "string-accuracy", "missing-key", "incomplete-score"],
)
def test_damaged_metrics_name_the_file_and_the_problem(tmp_path, text, reason):
    run = fake_run(tmp_path / "r")
    (run / rundir.METRICS).write_text(text)
    with pytest.raises(rundir.DamagedRunError) as err:
        rundir.read(run)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{run / rundir.METRICS} is not a run's metrics.json (")
    assert rundir.try_read_metrics(run) is None


def test_an_interrupted_run_reads_without_a_score(tmp_path):
    metrics = {**METRICS, "interrupted": True, "heldout_accuracy": None, "heldout_correct": None}
    record = rundir.read(fake_run(tmp_path / "r", metrics))
    assert record.metrics.interrupted and not record.metrics.scored


def test_read_needs_both_files(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / rundir.CONFIG).write_text("name: half\n")
    with pytest.raises(rundir.RunDirError, match="is not a finished run directory"):
        rundir.read(tmp_path / "half")


def test_find_takes_runs_and_the_finished_runs_of_a_sweep(tmp_path):
    single = fake_run(tmp_path / "single")
    sweep = tmp_path / "sweep"
    b, a = fake_run(sweep / "runs" / "lag=1,seed=1"), fake_run(sweep / "runs" / "lag=0,seed=1")
    fake_run(sweep / "runs" / "lag=2,seed=1.failed-1")  # moved aside: not a result
    (sweep / "runs" / "lag=3,seed=1").mkdir()  # unfinished: no metrics.json
    assert rundir.find([single, sweep]) == [single, a, b]
    with pytest.raises(rundir.RunDirError, match="neither a run directory"):
        rundir.find([tmp_path / "nothing"])
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(rundir.RunDirError, match="holds no finished run"):
        rundir.find([tmp_path / "empty"])


def test_every_sweep_result_field_is_a_metrics_field():
    from echo_cli.sweep import RESULT_FIELDS

    assert set(RESULT_FIELDS) <= set(rundir.Metrics.model_fields)


def test_rundir_imports_no_keras():
    code = ("import sys, echo_cli.rundir, echo_cli.files\n"
            "assert not [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)
