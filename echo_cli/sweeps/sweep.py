"""A sweep: its grid, its directory (definition, lock, runs, resumption) and its summaries.

    grid = parse_grid(["model.kind=lstm,mlp", "data.lag=1,2"])
    job = Sweep(Path("runs/sweep"), config=Path("configs/lag1.yaml"), grid=grid, seeds=3,
                base_seed=1)                  # 2 x 2 x 3 = 12 runs (together=...: 4 programs)
    records = job.prepare()                   # finished runs are kept; executors.py runs the rest
    job.write_results(records, title="...")   # results.csv and summary.md

Every run has its own run directory under SWEEP/runs/, so a sweep is resumable, each run is
reproducible on its own, and a failure stays in its run. Where a grid point's seeds train as
one program (train.seeds), its directory holds each seed's run (RUN/seeds/seed=<s>/), and
results.csv still has a row per seed. This module imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echo_cli.config.loading import ConfigError, validate
from echo_cli.output import tables
from echo_cli.stats import mean, pooled_accuracy, std
from echo_cli.store import rundir
from echo_cli.store import seeds as seed_runs
from echo_cli.store.files import describe, write_atomic, write_csv, write_json
from echo_cli.store.rundir import Metrics
from echo_cli.sweeps.grid import (  # noqa: F401 - the grid's API, importable from here too
    Point,
    SweepError,
    check_points,
    check_size,
    expand,
    grid_keys,
    parse_grid,
)

SWEEP_FILE = "sweep.json"
LOCK_FILE = "sweep.lock"
# the metrics (rundir.Metrics fields) each row of results.csv carries
RESULT_FIELDS = ["heldout_accuracy", "heldout_correct", "heldout_targets", "ci95_low",
                 "ci95_high", "train_seconds", "updates", "samples_to_target", "parameters",
                 "multiply_adds_per_sample", "chance_accuracy", "task", "heldout_loss",
                 "baseline_loss", "heldout_sequences"]
# where each run's seconds went (metrics.json's phase_seconds), one column each
PHASES = ("import", "build", "compile", "train", "evaluate", "save")


@dataclass
class Record:
    point: Point
    run_dir: Path
    status: str = "not run"  # done | failed | interrupted | not run
    error: str = ""
    metrics: Metrics | None = None


class Sweep:
    """A sweep directory: its definition, its run directories and its result files."""

    def __init__(self, out: Path, *, config: Path, grid: list[tuple[str, list[Any]]],
                 seeds: int, base_seed: int, base_overrides: list[str] | None = None,
                 resolved: dict[str, Any] | None = None,
                 together: Callable[[tuple[tuple[str, Any], ...]], bool] | None = None):
        """together(values): whether a grid point's seeds train as one program (grid.expand);
        None: one run per seed."""
        self.out, self.config = out, config
        self.base_overrides = list(base_overrides or [])
        # The resolved base config (not its path) defines the sweep: editing the YAML between
        # sessions is a different sweep, and another path to the same file is the same one.
        self.definition = {"config": resolved if resolved is not None else str(config),
                           "set": self.base_overrides, "grid": [[k, v] for k, v in grid],
                           "seeds": seeds, "base_seed": base_seed}
        check_size(grid, seeds=seeds, base_seed=base_seed, overrides=self.base_overrides)
        self.points = expand(grid, seeds=seeds, base_seed=base_seed, together=together)
        base = (resolved or {}).get("train", {})
        # a point of one seed says so, where the sweep or its config asks for several
        self.one_seed = (["train.seeds=1"]
                         if seeds > 1 or (isinstance(base, dict) and base.get("seeds", 1) > 1)
                         else [])
        check_points(self.points)
        self.keys = grid_keys(grid)
        self.axes = [key.split("+")[0] for key, _ in grid]  # one key per axis, for plots
        self._lock: int | None = None

    def overrides(self, point: Point) -> list[str]:
        """The sweep's own --set items, then the point's values and seed (or seeds)."""
        return [*self.base_overrides, *point.overrides(),
                *(self.one_seed if point.seeds == 1 else [])]

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
            if saved != self.definition and _as_now(saved) != self.definition:
                raise SweepError(f"--out {self.out} holds a different sweep (another config, "
                                 f"--set, grid or seeds); give a new directory, or repeat that "
                                 f"sweep's own command to resume it")
        elif self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise SweepError(f"--out {self.out} already holds files and is not a sweep; it is "
                             f"left untouched, give a new or empty directory")
        fresh = not spec.is_file()
        made = not self.out.exists()
        try:
            (self.out / "runs").mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.out / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as err:
            self._undo(fresh=fresh, made=made)
            raise SweepError(f"cannot create --out {self.out}: "
                             f"{describe(err, self.out / LOCK_FILE)}") from None
        try:  # the OS releases the lock when its holder dies, however it dies
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._lock, 64).decode(errors="replace").strip() or "?"
            os.close(self._lock)
            self._lock = None
            raise SweepError(f"another sweep is running in {self.out} (pid {holder}); wait for "
                             f"it, or stop it first") from None
        try:
            os.ftruncate(self._lock, 0)
            os.pwrite(self._lock, str(os.getpid()).encode(), 0)
            write_json(spec, self.definition)
        except OSError as err:  # a full disk: leave nothing that would block the retry
            self._undo(fresh=fresh, made=made)
            raise SweepError(f"cannot create --out {self.out}: {describe(err, spec)}") from None
        records = []
        for point in self.points:
            run_dir = self.out / "runs" / point.name
            record = Record(point=point, run_dir=run_dir)
            _wait_for(run_dir)
            metrics = rundir.try_read_metrics(run_dir)
            if point.seeds > 1 and seed_runs.finished(run_dir):
                record.status = "done"
            elif metrics is not None and not metrics.interrupted and metrics.failed_step is None:
                record.status, record.metrics = "done", metrics
            elif run_dir.exists() and not _resumable(run_dir, metrics):
                rundir.move_aside(run_dir)
            records.append(record)
        return records

    def _undo(self, *, fresh: bool, made: bool) -> None:
        """Take back what a failed prepare created (a new sweep only), so that the same
        command works once the cause (a full disk) is gone."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if not fresh:
            return
        with contextlib.suppress(OSError):
            (self.out / LOCK_FILE).unlink(missing_ok=True)
            (self.out / "runs").rmdir()
            if made:
                self.out.rmdir()

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing releases the flock; the file stays, unlocked
            self._lock = None

    def write_results(self, records: list[Record], *, title: str) -> list[dict[str, Any]]:
        """results.csv (one row per run) and summary.md (one row per grid point).

        Returns:
            The summary rows, for the console table.
        """
        table = rows(records, self.keys)
        summary = summarize(table, self.keys)
        write_csv(self.out / "results.csv", table)
        write_atomic(self.out / "summary.md", tables.sweep_markdown(summary, self.keys,
                                                                    title=title))
        return summary

    def plot(self, records: list[Record], *, title: str) -> bool:
        """sweep.png: accuracy against the first axis, a line per value of the second, once a
        run is done. Returns whether it was drawn."""
        from echo_cli.output import plots

        table = rows(records, self.keys)
        points = plot_points(table, self.axes)
        if not points:
            return False
        others = self.axes[2:]
        write_atomic(self.out / "sweep.png", plots.sweep_png(
            points, x_key=self.axes[0], line_key=self.axes[1] if len(self.axes) > 1 else None,
            chance=min(row["chance_accuracy"] for row in table if row["status"] == "done"),
            title=title + (f"\n(pooled over {', '.join(others)})" if others else "")))
        return True


def _resumable(run_dir: Path, metrics: Metrics | None) -> bool:
    """A run killed or interrupted with a checkpoint: the worker resumes it from there."""
    return ((run_dir / rundir.CHECKPOINT).is_file()
            and (metrics is None or (metrics.interrupted and metrics.failed_step is None)))


def _wait_for(run_dir: Path, *, seconds: float = 60.0) -> None:
    """Wait while another process still writes run_dir (a run of a killed sweep stopping).

    Raises:
        SweepError: it is still being written after `seconds`.
    """
    deadline = time.monotonic() + seconds
    while rundir.is_live(run_dir):
        if time.monotonic() > deadline:
            raise SweepError(f"{run_dir} is still being written by {rundir.owner(run_dir)}; "
                             f"stop that process, then resume")
        time.sleep(0.2)


def reject_invalid(job: Sweep, records: list[Record]) -> list:
    """Record points whose config can never run as failed, with the config's one-line error,
    without starting a process for them. Returns the configs of those that can run."""
    from echo_cli.config.loading import load_config

    valid = []
    for record in records:
        if record.status != "not run":
            continue
        try:
            valid.append(load_config(job.config, overrides=job.overrides(record.point)))
        except ConfigError as err:
            record.status, record.error = "failed", str(err).split(": ", 1)[-1]
    return valid


# ---------------------------------------------------------------------------------------------
# result files

def each_run(records: list[Record]) -> list[Record]:
    """One record per seed's run: a point whose seeds trained as one program counts as each
    seed's run (RUN/seeds/seed=<s>/), with the status its metrics.json gives it."""
    out = []
    for r in records:
        if r.point.seeds == 1:
            out.append(r)
            continue
        for point in r.point.each_seed():
            where = rundir.seed_dir(r.run_dir, point.seed)
            metrics = rundir.try_read_metrics(where)
            status = seed_runs.status(metrics) if metrics is not None else r.status
            status = "not run" if status == "interrupted" else status
            out.append(Record(point=point, run_dir=where, status=status,
                              error=_seed_error(metrics, r.error) if status == "failed" else "",
                              metrics=metrics if status == "done" else None))
    return out


def _as_now(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved definition with its config read by today's schema, so that a key added to
    echo-cli since (at its default) is no difference; as saved where it no longer reads."""
    config = saved.get("config")
    if not isinstance(config, dict):
        return saved
    try:
        cfg = validate(json.loads(json.dumps(config)), source=SWEEP_FILE)
    except ConfigError:
        return saved
    return {**saved, "config": json.loads(json.dumps(cfg.dump()))}


def _seed_error(metrics, point_error: str) -> str:
    """A failed seed's own error, as its metrics.json records it; else the point's."""
    return (metrics.error if metrics is not None and metrics.error else None) or point_error


def rows(records: list[Record], keys: list[str]) -> list[dict[str, Any]]:
    """One row per run (per seed, where a point's seeds trained together): swept values,
    seed, status, error and the metrics that matter."""
    out = []
    for r in each_run(records):
        row = {"name": r.point.name, **dict(r.point.values), "seed": r.point.seed,
               "status": r.status, "error": r.error}
        done = r.status == "done" and r.metrics is not None
        row.update({k: getattr(r.metrics, k) if done else None for k in RESULT_FIELDS})
        phases = (r.metrics.phase_seconds or {}) if done else {}
        row.update({f"{phase}_seconds": phases.get(phase) for phase in PHASES})
        row["run_dir"] = str(r.run_dir)
        out.append(row)
    return out


def train_seconds(record: Record) -> float:
    """A finished run's training seconds: of its one program, where its seeds trained
    together."""
    if record.point.seeds > 1:
        summary = seed_runs.try_read_summary(record.run_dir)
        return summary.train_seconds if summary is not None else 0.0
    return record.metrics.train_seconds if record.metrics is not None else 0.0


def figure(row: dict[str, Any]) -> tuple[float | None, int, int]:
    """A done run's accuracy figure (the task's: recalled symbols, sums within 0.04, ...) and
    its counts."""
    return row["heldout_accuracy"], row["heldout_correct"], row["heldout_targets"]


def summarize(table: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds for each grid point, plus the pooled accuracy
    of all its held-out targets with a Wilson interval."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    summary = []
    for values, group in groups.items():
        done = [r for r in group if r["status"] == "done"]
        figures = [figure(r) for r in done]
        accs = [f[0] for f in figures]
        pooled, low, high = pooled_accuracy([(f[1], f[2]) for f in figures])
        losses = [r["heldout_loss"] for r in done if r["heldout_loss"] is not None]
        to_target = [r["samples_to_target"] for r in done if r["samples_to_target"] is not None]
        summary.append({
            **dict(zip(keys, values, strict=True)),
            "runs": f"{len(done)}/{len(group)}",
            "mean_accuracy": mean(accs),
            "std_accuracy": std(accs),
            "accuracy": pooled,
            "ci95_low": low,
            "ci95_high": high,
            "mean_train_seconds": mean([r["train_seconds"] for r in done]),
            "mean_samples_to_target": mean(to_target) if to_target else None,
            "reached_target": f"{len(to_target)}/{len(done)}" if done else "0/0",
            "parameters": done[0]["parameters"] if done else None,
            "chance": done[0]["chance_accuracy"] if done else None,
            "mean_loss": mean(losses) if losses else None,
            "baseline_loss": done[0]["baseline_loss"] if done else None,
        })
    return summary


def plot_points(table: list[dict[str, Any]], axes: list[str]) -> list[dict[str, Any]]:
    """Pooled accuracy figure per value of the first two axes (any other axes pooled too)."""
    from echo_cli.analysis.compare import pool_points

    done = [row for row in table if row["status"] == "done"]
    return pool_points([(row, *figure(row)[1:]) for row in done], axes[:2]) if done else []


