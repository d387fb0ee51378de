"""The run directory on fake runs, with no Keras: names, claiming, atomic files, the record."""

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import METRICS, fake_run

from echo_cli.config.loading import load_config
from echo_cli.store import claim, rundir
from echo_cli.store.files import write_atomic

# -------------------------------------------------------------------------------- create

def test_out_is_claimed_when_new_or_empty_and_released_after(tmp_path):
    with claim.create(tmp_path / "new" / "run", "x") as taken:
        assert taken.path == tmp_path / "new" / "run"
        assert rundir.is_live(taken.path) and f"pid {os.getpid()}" in rundir.owner(taken.path)
        with pytest.raises(rundir.RunDirError, match=r"is being written by another run \(pid"):
            claim.create(taken.path, "x")
    assert not (taken.path / rundir.LOCK).exists() and not rundir.is_live(taken.path)
    (tmp_path / "empty").mkdir()
    with claim.create(tmp_path / "empty", "x") as taken:
        assert taken.path == tmp_path / "empty"


def test_two_claimants_at_the_same_instant_get_one_directory(tmp_path):
    """The --out race: many threads claim one empty directory at once; exactly one wins."""
    out, barrier, outcomes = tmp_path / "x", threading.Barrier(8), []

    def claimant() -> None:
        barrier.wait()
        try:
            outcomes.append(claim.create(out, "x"))
        except rundir.RunDirError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=claimant) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, claim.Claim)]
    assert len(winners) == 1 and len(outcomes) == 8
    assert all("is being written by another run" in o or "already holds files" in o
               for o in outcomes if isinstance(o, str))
    winners[0].release()


def test_a_lock_left_by_a_killed_run_is_not_live(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / rundir.LOCK).write_text('{"pid": 99999999}')  # nobody holds it: the run was killed
    assert not rundir.is_live(run) and rundir.owner(run) is None
    with pytest.raises(rundir.RunDirError, match="already holds files"):
        claim.create(run, "x")


def test_out_that_holds_files_or_is_a_file_is_refused_and_left_alone(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match="already holds files and is left untouched"):
        claim.create(tmp_path / "full", "x")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(rundir.RunDirError, match="is a file"):
        claim.create(tmp_path / "afile", "x")
    with pytest.raises(rundir.RunDirError, match="cannot create the run directory"):
        claim.create(tmp_path / "afile" / "run", "x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(rundir.RunDirError, match="is a broken link"):
        claim.create(tmp_path / "dangling", "x")


@pytest.mark.parametrize("kind", ["file", "broken link"])
def test_a_runs_that_is_not_a_directory_is_named(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    if kind == "file":
        Path("runs").write_text("x")
    else:
        Path("runs").symlink_to(tmp_path / "nowhere")
    with pytest.raises(rundir.RunDirError, match=f"runs.* is a {kind}.*give --out DIR"):
        claim.create(None, "lag1")


def test_an_empty_out_on_a_read_only_filesystem_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(rundir.RunDirError,
                       match="cannot create the run directory .*ro: Read-only file system"):
        claim.create(tmp_path / "ro", "x")


def test_default_directories_in_the_same_second_get_a_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(claim, "timestamp", lambda: "20261129-120000")
    claims = [claim.create(None, "lag1") for _ in range(3)]
    assert [c.path.as_posix() for c in claims] == [
        "runs/lag1-20261129-120000", "runs/lag1-20261129-120000-2", "runs/lag1-20261129-120000-3"]
    for taken in claims:
        taken.release()


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


def test_files_get_the_usual_permissions(tmp_path):
    write_atomic(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_json_never_holds_nan_or_infinity(tmp_path):
    from echo_cli.store.files import json_text

    text = json_text({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {
        "a": None, "b": [1.0, None], "c": {"d": None}}


def test_history_is_streamed_and_flushed_as_training_goes(tmp_path):
    (tmp_path / "r").mkdir()
    history = rundir.RunWriter(tmp_path / "r").history(["epoch", "loss", "accuracy"])
    history.every = 0.0  # flush every row
    history.add({"epoch": 1, "loss": 2.0, "accuracy": 0.5})
    history.add({"epoch": 2, "loss": 1.0, "accuracy": 0.75})
    assert rundir.read_history(tmp_path / "r") == [{"epoch": 1, "loss": 2.0, "accuracy": 0.5},
                                                   {"epoch": 2, "loss": 1.0, "accuracy": 0.75}]
    history.close([{"epoch": 1, "loss": 2.0, "accuracy": 0.5}])
    assert len(rundir.read_history(tmp_path / "r")) == 1


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
    with pytest.raises(rundir.RunDirError, match=r"half did not finish \(no metrics.json\)"):
        rundir.read(tmp_path / "half")
    (tmp_path / "other").mkdir()
    with pytest.raises(rundir.RunDirError, match="other is not a run directory"):
        rundir.read(tmp_path / "other")


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
    from echo_cli.sweeps.sweep import RESULT_FIELDS

    assert set(RESULT_FIELDS) <= set(rundir.Metrics.model_fields)


def test_rundir_imports_no_keras():
    code = ("import sys, echo_cli.store.rundir, echo_cli.store.files\n"
            "assert not [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)
