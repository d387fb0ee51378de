"""Many runs side by side: grid expansion, executors, resumption and summaries.

    grid = parse_grid(["model.kind=lstm,mlp", "data.lag=1,2"])
    points = expand(grid, seeds=3, base_seed=1)        # 2 x 2 x 3 = 12 runs
    records = run_sweep(Path("configs/lag1.yaml"), points, Path("runs/sweep"), workers=2)

Every run is a child `echo-cli train` process with its own run directory under
SWEEP/runs/, so a sweep is resumable, each run is reproducible on its own, and a failure stays
in its run. This module imports no TensorFlow.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echo_cli.config import ConfigError, parse_yaml
from echo_cli.stats import wilson_interval

SWEEP_FILE = "sweep.json"
LOCK_FILE = "sweep.lock"
RESULT_FIELDS = ["heldout_accuracy", "heldout_correct", "heldout_targets", "ci95_low",
                 "ci95_high", "train_seconds", "updates", "samples_to_target", "parameters",
                 "multiply_adds_per_sample", "chance_accuracy"]

# One thread per worker process: several runs share the cores without oversubscribing them.
SINGLE_THREAD_ENV = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


class SweepError(ValueError):
    """A sweep that cannot start. The message is one line, ready to print."""


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the swept values and a seed."""

    values: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def name(self) -> str:
        parts = [f"{key.split('.')[-1]}={value}" for key, value in self.values]
        return re.sub(r"[^A-Za-z0-9_.=,-]", "_", ",".join([*parts, f"seed={self.seed}"]))

    def overrides(self) -> list[str]:
        """`--set` items; JSON is valid YAML, so every value reads back as it was swept."""
        return [*(f"{k}={json.dumps(v)}" for k, v in self.values), f"seed={self.seed}"]


@dataclass
class Record:
    point: Point
    run_dir: Path
    status: str = "not run"  # done | failed | interrupted | not run
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def parse_grid(items: list[str]) -> list[tuple[str, list[Any]]]:
    """`KEY=V1,V2,...` strings to (key, values), each value parsed as a YAML scalar.

    Keys joined by `+` move together, their values joined by `:`, e.g.
    `data.lag+data.window=1:5,2:6` tries (lag 1, window 5) and (lag 2, window 6).

    Raises:
        SweepError: no `=`, an empty key or value list, a key given twice, or tied values
            that do not match their keys.
    """
    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not key or not values:
            raise SweepError(f"--grid expects KEY=V1,V2,..., e.g. data.lag=1,2,4, got {item!r}")
        tied = [k.strip() for k in key.split("+")]
        for k in tied:
            if k in ("seed", "name"):
                raise SweepError(f"--grid {k} is not allowed: use --seeds N for seeds; each "
                                 f"run is named after its values")
            if k in grid_keys(grid):
                raise SweepError(f"--grid sets {k} twice; list all its values in one --grid")
        key = "+".join(tied)
        if len(tied) > 1:
            parts = [v.split(":") for v in values]
            if any(len(p) != len(tied) for p in parts):
                raise SweepError(f"--grid {key} ties {len(tied)} keys, so each value needs "
                                 f"{len(tied)} parts joined by ':', e.g. 1:5, got {text!r}")
            grid.append((key, [[parse_yaml(x) for x in p] for p in parts]))
        else:
            grid.append((key, [parse_yaml(v) for v in values]))
    return grid


def check_points(points: list[Point]) -> None:
    """Every run needs a directory of its own.

    Raises:
        SweepError: two points with the same name (a value listed twice, say).
    """
    seen: dict[str, Point] = {}
    for point in points:
        if point.name in seen:
            raise SweepError(f"two runs would share the name {point.name}: a value is listed "
                             f"twice (or two values differ only in characters that names drop)")
        seen[point.name] = point


def grid_keys(grid: list[tuple[str, list[Any]]]) -> list[str]:
    """Every config key the grid sets, tied keys split."""
    return [k for key, _ in grid for k in key.split("+")]


def expand(grid: list[tuple[str, list[Any]]], *, seeds: int, base_seed: int) -> list[Point]:
    """The cartesian product of the grid, times `seeds` seeds from base_seed up."""
    points = []
    for combo in itertools.product(*[values for _, values in grid]):
        values: list[tuple[str, Any]] = []
        for (key, _), value in zip(grid, combo, strict=True):
            keys = key.split("+")
            values.extend(zip(keys, value if len(keys) > 1 else [value], strict=True))
        for s in range(seeds):
            points.append(Point(values=tuple(values), seed=base_seed + s))
    return points


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else ""


def run_point(config: str, overrides: list[str], run_dir: str, *,
              extra_env: dict[str, str] | None = None,
              started: Callable[[subprocess.Popen], None] = lambda proc: None) -> dict[str, Any]:
    """Train one point in a child process. Returns {"status", "error", "metrics"}.

    Plain data in and out, so that a Ray worker can run it as well as a local thread.
    """
    cmd = [sys.executable, "-m", "echo_cli", "train", config, "--out", run_dir]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, **(extra_env or {}), "COLUMNS": "100"}
    # A session of its own: Ctrl-C reaches the sweep, which forwards exactly one SIGINT.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    started(proc)
    try:
        _, stderr = proc.communicate()
    except KeyboardInterrupt:  # a Ray task being cancelled: let the run keep what it did
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate()
    metrics = _read_metrics(Path(run_dir)) or {}
    if proc.returncode == 0:
        return {"status": "done", "error": "", "metrics": metrics}
    if proc.returncode in (130, -signal.SIGINT):
        return {"status": "interrupted", "error": "interrupted", "metrics": metrics}
    return {"status": "failed", "error": _last_line(stderr) or f"exit code {proc.returncode}",
            "metrics": metrics}


class Sweep:
    """A sweep directory: its definition, its run directories and its result files."""

    def __init__(self, out: Path, *, config: Path, grid: list[tuple[str, list[Any]]],
                 seeds: int, base_seed: int, base_overrides: list[str] | None = None,
                 resolved: dict[str, Any] | None = None):
        self.out, self.config = out, config
        self.base_overrides = list(base_overrides or [])
        # The resolved base config (not its path) defines the sweep: editing the YAML between
        # sessions is a different sweep, and another path to the same file is the same one.
        self.definition = {"config": resolved if resolved is not None else str(config),
                           "set": self.base_overrides, "grid": [[k, v] for k, v in grid],
                           "seeds": seeds, "base_seed": base_seed}
        self.points = expand(grid, seeds=seeds, base_seed=base_seed)
        check_points(self.points)
        self.keys = grid_keys(grid)
        self.axes = [key.split("+")[0] for key, _ in grid]  # one key per axis, for plots

    def overrides(self, point: Point) -> list[str]:
        """The sweep's own --set items, then the point's values and seed."""
        return [*self.base_overrides, *point.overrides()]

    def prepare(self) -> list[Record]:
        """Create or reopen the directory. Finished runs are kept and skipped; the directory
        of a failed or interrupted run is moved aside (never overwritten) to run again.

        Raises:
            SweepError: OUT holds something else, or a different sweep.
        """
        spec = self.out / SWEEP_FILE
        if spec.is_file():
            try:
                saved = json.loads(spec.read_text())
            except (OSError, json.JSONDecodeError):
                raise SweepError(f"{spec} is damaged; give a new --out directory") from None
            if saved != self.definition:
                raise SweepError(f"--out {self.out} holds a different sweep (another config, "
                                 f"--set, grid or seeds); give a new directory, or repeat that "
                                 f"sweep's own command to resume it")
        elif self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise SweepError(f"--out {self.out} already holds files and is not a sweep; it is "
                             f"left untouched, give a new or empty directory")
        try:
            (self.out / "runs").mkdir(parents=True, exist_ok=True)
            lock = os.open(self.out / LOCK_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise SweepError(f"another sweep is running in {self.out} (if none is, remove "
                             f"{self.out / LOCK_FILE})") from None
        except OSError as err:
            raise SweepError(f"cannot create --out {self.out}: {err.strerror}") from None
        os.write(lock, str(os.getpid()).encode())
        os.close(lock)
        spec.write_text(json.dumps(self.definition, indent=2) + "\n")
        records = []
        for point in self.points:
            run_dir = self.out / "runs" / point.name
            record = Record(point=point, run_dir=run_dir)
            metrics = _read_metrics(run_dir)
            if metrics is not None and not metrics.get("interrupted"):
                record.status, record.metrics = "done", metrics
            elif run_dir.exists():
                k = 1
                while run_dir.with_name(f"{run_dir.name}.failed-{k}").exists():
                    k += 1
                run_dir.rename(run_dir.with_name(f"{run_dir.name}.failed-{k}"))
            records.append(record)
        return records

    def release(self) -> None:
        (self.out / LOCK_FILE).unlink(missing_ok=True)


def _read_metrics(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_local(job: Sweep, records: list[Record], *, workers: int,
              on_update: Callable[[list[Record]], None]) -> bool:
    """Run the records that are not done on `workers` worker processes, one thread each.

    Returns:
        True if every run finished; False after Ctrl-C, when running children were told to
        stop (they keep what they did) and the rest stay "not run".
    """
    todo = [r for r in records if r.status == "not run"]
    procs: dict[int, subprocess.Popen] = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def work(record: Record) -> dict[str, Any]:
        def started(proc: subprocess.Popen) -> None:
            with lock:
                procs[id(record)] = proc
                if stopping.is_set():  # started just as Ctrl-C came: stop it too
                    proc.send_signal(signal.SIGINT)

        if stopping.is_set():
            return {"status": "not run", "error": "", "metrics": {}}
        record.status = "running"
        return run_point(str(job.config), job.overrides(record.point), str(record.run_dir),
                         extra_env=SINGLE_THREAD_ENV, started=started)

    pool = ThreadPoolExecutor(max_workers=workers)
    futures: dict[Future, Record] = {pool.submit(work, r): r for r in todo}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                _apply(futures[future], future.result())
            on_update(records)
        return True
    except KeyboardInterrupt:
        stopping.set()
        for future in futures:
            future.cancel()
        with lock:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
        for future, record in futures.items():
            if future.cancelled():
                record.status = "not run"
            else:
                _apply(record, future.result())
        return False
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_ray(job: Sweep, records: list[Record], *, address: str | None, workers: int,
            on_update: Callable[[list[Record]], None]) -> bool:
    """Run each pending record as a Ray task, on a cluster (address) or a local instance.

    On a cluster every node needs echo-cli installed and the config and --out directory on a
    shared filesystem, since each task writes its own run directory there.
    """
    try:
        import ray
    except ImportError:
        raise SweepError("--executor ray needs Ray; install it with `pip install '.[ray]'` or "
                         "`make setup EXTRAS=dev,jax,ray`") from None
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        except Exception as err:  # Ray raises many types for an unreachable cluster
            raise SweepError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                             f"{str(err).strip().splitlines()[0][:160]}") from None
    remote = ray.remote(num_cpus=1)(run_point)
    todo = [r for r in records if r.status == "not run"]
    refs = {}
    for record in todo:
        record.status = "running"
        refs[remote.remote(str(job.config.resolve()), job.overrides(record.point),
                           str(record.run_dir.resolve()), extra_env=SINGLE_THREAD_ENV)] = record
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                _apply(refs[ref], _ray_outcome(ray, ref))
            on_update(records)
        return True
    except KeyboardInterrupt:
        running = [ref for ref, record in refs.items() if record.status == "running"]
        for ref in running:
            ray.cancel(ref)  # not forced: the task forwards SIGINT to its run, which keeps it
        for ref in running:
            _apply(refs[ref], _ray_outcome(ray, ref))
        return False


def _ray_outcome(ray, ref) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except Exception as err:  # a cancelled or crashed task
        cancelled = type(err).__name__ == "TaskCancelledError"
        return {"status": "not run" if cancelled else "failed",
                "error": "" if cancelled else str(err).strip().splitlines()[0][:200],
                "metrics": {}}


def _apply(record: Record, outcome: dict[str, Any]) -> None:
    record.status, record.error, record.metrics = (outcome["status"], outcome["error"],
                                                   outcome["metrics"])
    if record.status == "interrupted":
        record.status = "not run"


def reject_invalid(job: Sweep, records: list[Record]) -> None:
    """Record points whose config can never run as failed, with the config's one-line error,
    without starting a process for them."""
    from echo_cli.config import load_config

    for record in records:
        if record.status != "not run":
            continue
        try:
            load_config(job.config, overrides=job.overrides(record.point))
        except ConfigError as err:
            record.status, record.error = "failed", str(err).split(": ", 1)[-1]


# ---------------------------------------------------------------------------------------------
# result files

def rows(records: list[Record], keys: list[str]) -> list[dict[str, Any]]:
    """One row per run: swept values, seed, status, error and the metrics that matter."""
    out = []
    for r in records:
        row = {"name": r.point.name, **dict(r.point.values), "seed": r.point.seed,
               "status": r.status, "error": r.error}
        row.update({k: r.metrics.get(k) if r.status == "done" else None for k in RESULT_FIELDS})
        row["run_dir"] = str(r.run_dir)
        out.append(row)
    return out


def summarize(table: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds for each grid point, plus the pooled accuracy
    of all its held-out targets with a Wilson interval."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    summary = []
    for values, group in groups.items():
        done = [r for r in group if r["status"] == "done"]
        accs = [r["heldout_accuracy"] for r in done]
        correct = sum(r["heldout_correct"] for r in done)
        targets = sum(r["heldout_targets"] for r in done)
        low, high = wilson_interval(correct, targets) if targets else (math.nan, math.nan)
        to_target = [r["samples_to_target"] for r in done if r["samples_to_target"] is not None]
        summary.append({
            **dict(zip(keys, values, strict=True)),
            "runs": f"{len(done)}/{len(group)}",
            "mean_accuracy": _mean(accs),
            "std_accuracy": _std(accs),
            "accuracy": correct / targets if targets else math.nan,
            "ci95_low": low,
            "ci95_high": high,
            "mean_train_seconds": _mean([r["train_seconds"] for r in done]),
            "mean_samples_to_target": _mean(to_target) if to_target else None,
            "reached_target": f"{len(to_target)}/{len(done)}" if done else "0/0",
            "parameters": done[0]["parameters"] if done else None,
            "chance": done[0]["chance_accuracy"] if done else None,
        })
    return summary


def plot_points(table: list[dict[str, Any]], axes: list[str]) -> list[dict[str, Any]]:
    """Pooled accuracy per value of the first two axes (any other axes pooled too)."""
    from echo_cli.compare import plot_points as pool

    done = [{"config": row, "metrics": row} for row in table if row["status"] == "done"]
    return pool(done, axes[:2]) if done else []


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _std(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0 if xs else math.nan
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def write_csv(path: Path, table: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]) if table else ["name"])
        writer.writeheader()
        writer.writerows(table)


def summary_markdown(summary: list[dict[str, Any]], keys: list[str], *, title: str) -> str:
    cols = [*keys, "runs", "accuracy mean ± std", "pooled accuracy (95% CI)", "chance",
            "parameters", "train s (mean)", "samples to target (mean, reached)"]
    from echo_cli.report import markdown_table

    return (f"# {title}\n\n<!-- written by `echo-cli sweep` from its runs' metrics.json -->\n\n"
            + markdown_table(cols, [summary_cells(s, keys) for s in summary]))


def summary_cells(s: dict[str, Any], keys: list[str]) -> list[str]:
    def num(x: Any, fmt: str) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    to_target = ("-" if s["mean_samples_to_target"] is None
                 else f"{s['mean_samples_to_target']:.0f} ({s['reached_target']})")
    return [*[str(s[k]) for k in keys], s["runs"],
            f"{num(s['mean_accuracy'], '.4f')} ± {num(s['std_accuracy'], '.4f')}",
            f"{num(s['accuracy'], '.4f')} ({num(s['ci95_low'], '.4f')}-"
            f"{num(s['ci95_high'], '.4f')})",
            num(s["chance"], ".4g"), num(s["parameters"], ","),
            num(s["mean_train_seconds"], ".1f"), to_target]


