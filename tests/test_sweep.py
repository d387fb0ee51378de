"""Sweeps: grid expansion, the local and Ray executors, failures, resumption."""

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, sets
from typer.testing import CliRunner

from echo_cli.cli import app
from echo_cli.stats import wilson_interval
from echo_cli.sweeps import executors, sweep
from echo_cli.sweeps import grid as grids

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def read_results(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_grid_expansion_is_the_cartesian_product_times_seeds():
    grid = sweep.parse_grid(["model.kind=lstm,mlp", "data.lag=1,2", "train.learning_rate=1e-3"])
    assert grid == [("model.kind", ["lstm", "mlp"]), ("data.lag", [1, 2]),
                    ("train.learning_rate", [0.001])]
    points = sweep.expand(grid, seeds=2, base_seed=7)
    assert len(points) == 2 * 2 * 1 * 2
    assert points[0].name == "kind=lstm,lag=1,learning_rate=0.001,seed=7"
    assert points[0].overrides() == ['model.kind="lstm"', "data.lag=1",
                                     "train.learning_rate=0.001", "seed=7"]
    assert [p.seed for p in points[:2]] == [7, 8]
    assert len({p.name for p in points}) == len(points)


def test_tied_keys_move_together():
    grid = sweep.parse_grid(["data.lag+data.window=1:5,8:12", "model.kind=lstm,gru"])
    points = sweep.expand(grid, seeds=1, base_seed=1)
    assert [dict(p.values) for p in points] == [
        {"data.lag": 1, "data.window": 5, "model.kind": "lstm"},
        {"data.lag": 1, "data.window": 5, "model.kind": "gru"},
        {"data.lag": 8, "data.window": 12, "model.kind": "lstm"},
        {"data.lag": 8, "data.window": 12, "model.kind": "gru"},
    ]
    assert sweep.grid_keys(grid) == ["data.lag", "data.window", "model.kind"]
    with pytest.raises(sweep.SweepError, match="each value needs 2 parts"):
        sweep.parse_grid(["data.lag+data.window=1:5,2"])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["seed=1,2"], "--grid seed is not allowed: use --seeds N"),
        (["name=a,b"], "--grid name is not allowed"),
        (["data.lag=1,2", "data.lag+data.window=1:5"], "--grid sets data.lag twice"),
    ],
)
def test_grids_that_would_mislabel_runs_are_refused(items, message):
    with pytest.raises(sweep.SweepError, match=message):
        sweep.parse_grid(items)


def test_a_value_listed_twice_would_share_a_run_directory(tmp_path):
    grid = sweep.parse_grid(["data.lag=1,1"])
    with pytest.raises(sweep.SweepError, match="two runs would share the name lag=1,seed=1"):
        sweep.Sweep(tmp_path / "s", config=ROOT / "configs/lag1.yaml", grid=grid, seeds=1,
                    base_seed=1)


def test_a_running_sweep_locks_its_directory(tmp_path):
    def job():
        return sweep.Sweep(tmp_path / "s", config=ROOT / "configs/lag1.yaml",
                           grid=[("data.lag", [0])], seeds=1, base_seed=1)

    first = job()
    first.prepare()
    with pytest.raises(sweep.SweepError, match="another sweep is running"):
        job().prepare()
    first.release()
    job().prepare()


@pytest.mark.parametrize("bad", ["data.lag", "data.lag=", "=1,2"])
def test_bad_grid_items(bad):
    with pytest.raises(sweep.SweepError, match="--grid expects KEY=V1,V2"):
        sweep.parse_grid([bad])


@pytest.mark.slow
def test_a_2x2x2_sweep_runs_records_failures_and_resumes(tmp_path):
    out = tmp_path / "sw"
    # mlp cannot be stateful: those runs fail with the config's one-line error; lstm runs go on
    args = ["sweep", str(ROOT / "configs/lag1.yaml"), "--grid", "model.kind=lstm,mlp",
            "--grid", "data.lag=0,1", "--seeds", "2", "--workers", "2", *sets(TINY[:-1]),
            "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # a sweep in which a run failed says so
    assert "4 of 8 runs failed" in " ".join(result.output.split())
    rows = read_results(out)
    assert len(rows) == 8
    lstm = [r for r in rows if r["model.kind"] == "lstm"]
    mlp = [r for r in rows if r["model.kind"] == "mlp"]
    assert all(r["status"] == "done" for r in lstm)
    for r in lstm:  # the accuracy is the run's own count, and its interval is of that count
        correct, targets = int(r["heldout_correct"]), int(r["heldout_targets"])
        assert targets == 10 * 9 and float(r["heldout_accuracy"]) == correct / targets
        assert (float(r["ci95_low"]), float(r["ci95_high"])) == wilson_interval(correct, targets)
    assert all(r["status"] == "failed" for r in mlp)
    assert all("model.stateful: true needs a model.kind that carries its state" in r["error"]
               for r in mlp)
    for r in lstm:
        metrics = json.loads(Path(r["run_dir"], "metrics.json").read_text())
        assert metrics["seed"] == int(r["seed"]) and metrics["data_source"] == "random"
        assert float(r["heldout_accuracy"]) == metrics["heldout_accuracy"]
    summary = (out / "summary.md").read_text()
    assert "| lstm | 0 | 2/2 |" in summary and "| mlp | 1 | 0/2 |" in summary
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"

    # resume: finished runs are kept as they are, failed ones run again
    stamps = {r["run_dir"]: Path(r["run_dir"], "metrics.json").stat().st_mtime_ns for r in lstm}
    again = runner.invoke(app, args)
    assert again.exit_code == 1, again.output
    assert "4 already done" in " ".join(again.output.split())
    for run_dir, stamp in stamps.items():
        assert Path(run_dir, "metrics.json").stat().st_mtime_ns == stamp
    assert [r["status"] for r in read_results(out)] == [r["status"] for r in rows]


@pytest.mark.slow
def test_interrupted_runs_are_moved_aside_and_run_again(tmp_path):
    job = sweep.Sweep(tmp_path / "sw", config=ROOT / "configs/lag1.yaml",
                      grid=[("data.lag", [0])], seeds=1, base_seed=1, base_overrides=TINY)
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(job.definition))
    half = tmp_path / "sw" / "runs" / "lag=0,seed=1"
    half.mkdir(parents=True)
    (half / "metrics.json").write_text(json.dumps({"interrupted": True}))
    records = job.prepare()
    assert [r.status for r in records] == ["not run"]
    assert not half.exists() and (half.parent / "lag=0,seed=1.failed-1/metrics.json").exists()
    assert executors.run_local(job, records, workers=1, on_update=lambda rs: None)
    assert records[0].status == "done"


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_records_the_rest_as_not_run(tmp_path):
    job = sweep.Sweep(tmp_path / "sw", config=ROOT / "configs/lag1.yaml",
                      grid=[("data.lag", [0, 1, 2])], seeds=1, base_seed=1,
                      base_overrides=TINY)
    records = job.prepare()

    def interrupt_after_first(current):
        if any(r.status == "done" for r in current):
            raise KeyboardInterrupt

    assert not executors.run_local(job, records, workers=1, on_update=interrupt_after_first)
    statuses = [r.status for r in records]
    # the second run may have started (and even finished) before the interrupt reached it;
    # the third, still queued on the single worker, never starts
    assert statuses[0] == "done" and statuses[2] == "not run"
    assert set(statuses) <= {"done", "not run"}
    assert (records[0].run_dir / "metrics.json").exists()
    rows = sweep.rows(records, job.keys)
    assert [r["status"] for r in rows] == statuses


def test_an_out_directory_that_holds_something_else_is_left_untouched(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["sweep", str(ROOT / "configs/lag1.yaml"), "--grid",
                                 "data.lag=0", "--out", str(other)])
    assert result.exit_code == 2 and "already holds files and is not a sweep" in result.stderr
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    result = runner.invoke(app, ["sweep", str(ROOT / "configs/lag1.yaml"), "--grid",
                                 "data.lagg=0,1"])
    assert result.exit_code == 2 and "data.lagg is not a known key" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
@pytest.mark.slow
def test_ray_executor_runs_a_sweep_on_a_local_instance(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        result = runner.invoke(app, ["sweep", str(ROOT / "configs/lag1.yaml"), "--grid",
                                     "data.lag=0,1", "--seeds", "2", "--executor", "ray",
                                     *sets(TINY), "--out", str(out)])
        assert result.exit_code == 0, result.output
        rows = read_results(out)
        assert len(rows) == 4 and all(r["status"] == "done" for r in rows)
    finally:
        ray.shutdown()


# -------------------------------------------------------------------------------- hostile input

@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("data.lag=[1", "--grid data.lag: '[1' is not a valid YAML value"),
        ("data.lag=!!python/object/apply:os.system [ls]", "is not a valid YAML value"),
        ("data=1,2", "--grid data is a section, not a key; give a key inside it, such as"),
        ("data.lagg=1,2", "--grid data.lagg is not a known key; did you mean data.lag?"),
    ],
)
def test_bad_grid_values_are_one_line(item, message):
    with pytest.raises(sweep.SweepError) as err:
        sweep.parse_grid([item])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_long_value_gets_a_short_directory_name_and_keeps_its_value(tmp_path):
    long = "x" * 300
    grid = sweep.parse_grid([f"description={long}"])
    (point,) = sweep.expand(grid, seeds=1, base_seed=1)
    assert len(point.name) <= grids.MAX_NAME and point.name.startswith("description=xxxx")
    assert point.overrides()[0] == f'description="{long}"'
    (tmp_path / point.name).mkdir()  # the filesystem takes it


def test_a_sweep_lock_dies_with_its_holder(tmp_path):
    """kill -9 of a sweep leaves sweep.lock behind, unlocked: the next sweep resumes."""
    code = (f"from pathlib import Path\nfrom echo_cli.sweeps import sweep\n"
            f"job = sweep.Sweep(Path({str(tmp_path / 's')!r}), config=Path('x.yaml'), "
            f"grid=[('data.lag', [0])], seeds=1, base_seed=1)\n"
            f"job.prepare()\nprint('locked', flush=True)\nimport time; time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"

    def job():
        return sweep.Sweep(tmp_path / "s", config=Path("x.yaml"), grid=[("data.lag", [0])],
                           seeds=1, base_seed=1)

    with pytest.raises(sweep.SweepError, match=f"another sweep is running .*pid {holder.pid}"):
        job().prepare()
    holder.kill()
    holder.wait()
    assert (tmp_path / "s" / sweep.LOCK_FILE).exists()
    job().prepare()  # no manual step


def start_sweep(out: Path, *, lags: str, workers: int,
                epochs: int) -> tuple[list[str], subprocess.Popen]:
    """A sweep of tiny stateless runs over data.lag, in a process of its own."""
    args = [sys.executable, "-m", "echo_cli", "sweep", str(ROOT / "configs/lag1.yaml"),
            "--grid", f"data.lag={lags}", "--workers", str(workers), *sets(TINY[:4]),
            *sets(["train.batch_size=3", "eval.sequences=10", "model.stateful=false",
                   f"train.epochs={epochs}", "train.backend=tensorflow"]), "--out", str(out)]
    return args, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)


def wait_for_training(run: Path, proc: subprocess.Popen) -> None:
    """Until the run has written a few epochs of history."""
    deadline = time.monotonic() + 120
    while not (run / "history.csv").exists() or \
            len((run / "history.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_sweep_leaves_no_orphans_and_resumes(tmp_path):
    out = tmp_path / "sw"
    args, proc = start_sweep(out, lags="0,1", workers=2, epochs=2000)
    first = out / "runs" / "lag=0,seed=1"
    wait_for_training(first, proc)
    child = json.loads((first / ".echo-cli.lock").read_text())["pid"]
    proc.kill()  # kill -9: no handler runs in the sweep
    proc.wait()
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, f"run {child} outlived its sweep"
        time.sleep(0.1)
    stopped = json.loads((first / "metrics.json").read_text())
    assert stopped["interrupted"] is True  # it saw its sweep die and kept what it had
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in read_results(out)] == ["done", "done"]
    assert (out / "runs" / "lag=0,seed=1.failed-1" / "metrics.json").exists()


@pytest.mark.slow
def test_sigterm_of_a_sweep_stops_its_runs_and_writes_the_results(tmp_path):
    out = tmp_path / "sw"
    _, proc = start_sweep(out, lags="0,1,2", workers=1, epochs=100_000)
    first = out / "runs" / "lag=0,seed=1"
    wait_for_training(first, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert [r["status"] for r in read_results(out)] == ["not run", "not run", "not run"]
    assert json.loads((first / "metrics.json").read_text())["interrupted"] is True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["model.units=2,,3"], "--grid model.units has an empty value in '2,,3'"),
        (["data.lag+data.lag=1:1"], "--grid sets data.lag twice"),
        (["train.epochs=" + "9" * 5000], "digits is too long"),
    ],
)
def test_odd_grids_are_refused_not_read_silently(items, message):
    with pytest.raises(sweep.SweepError) as err:
        sweep.parse_grid(items)
    assert message in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "model.units=2,3", "--set", "model.units=4"],
         "--set model.units and --grid model.units both set it"),
        (["--grid", "model.units=1,2,3,4,5,6,7,8,9,10", "--grid", "data.lag=0,1,2,3,4,5,6,7,8,9",
          "--grid", "train.epochs=1,2,3,4,5,6,7,8,9,10", "--seeds", "20"],
         "make 20,000 runs; a sweep holds at most 10,000"),
        (["--grid", "model.units=2", "--set", "seed=4294967295", "--seeds", "2"],
         "reaches past 2**32 - 1"),
        (["--grid", "model.units=2", "--address", "ray://x:1"], "--address is for --executor ray"),
    ],
)
def test_sweeps_that_cannot_run_as_asked_are_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["sweep", str(ROOT / "configs/lag1.yaml"), *args, "--out",
                                 str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_too_many_seeds_is_a_usage_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "echo_cli", "sweep",
                          str(ROOT / "configs/lag1.yaml"), "--grid", "model.units=2", "--seeds",
                          "4294967296", "--out", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "--seeds" in out.stderr and "10000" in out.stderr and not (tmp_path / "s").exists()


def test_a_sweep_saved_before_a_key_was_added_still_resumes(tmp_path):
    """sweep.json keeps the resolved config. A key that echo-cli added since (train.seeds, at
    its default) is no difference, so the same command resumes; a changed value still is."""
    from echo_cli.config.loading import load_config

    cfg = load_config(ROOT / "configs/lag1.yaml")

    def job(config) -> sweep.Sweep:
        return sweep.Sweep(tmp_path / "sw", config=ROOT / "configs/lag1.yaml",
                           grid=[("data.lag", [0])], seeds=1, base_seed=1,
                           base_overrides=TINY, resolved=config.dump())

    older = json.loads(json.dumps(job(cfg).definition))
    del older["config"]["train"]["seeds"]  # as an echo-cli without train.seeds wrote it
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(older))
    assert [r.status for r in job(cfg).prepare()] == ["not run"]
    changed = load_config(ROOT / "configs/lag1.yaml", overrides=["train.learning_rate=0.01"])
    with pytest.raises(sweep.SweepError, match="holds a different sweep"):
        job(changed).prepare()
