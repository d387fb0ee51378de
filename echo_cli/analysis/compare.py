"""Runs side by side: gather run directories, find the config keys that differ, tabulate.

    runs = collect([Path("runs/sweep-lag1-20261129-120000"), Path("runs/lag1-20261129-130000")])
    keys = differing_keys(runs)      # e.g. ["model.kind", "data.lag", "seed"]
    rows = result_rows(records)      # the rows of `echo-cli results`
    together = seeds_rows(paths)     # each run of several seeds: the mean and its interval

This module imports no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from echo_cli import models, tasks
from echo_cli.config.loading import ConfigError
from echo_cli.errors import EchoError
from echo_cli.output import tables
from echo_cli.stats import pooled_accuracy
from echo_cli.store import rundir
from echo_cli.store import seeds as seed_runs
from echo_cli.store.files import write_atomic, write_csv

NOT_AXES = ("name", "description", "seed")


class CompareError(EchoError, ValueError):
    """Paths that hold no runs to compare."""


def collect(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every finished run under the paths: a run directory, or a sweep's runs/.

    A run whose files cannot be read is left out and named, so one damaged run does not hide
    the others.

    Returns:
        (runs, skipped): runs are dicts with "path", "config" (flat dotted keys) and "metrics"
        (the fields its metrics.json set); skipped holds one line per run left out.

    Raises:
        CompareError: no run left to compare (a path that is neither a run nor a sweep is
            named in skipped, as an unfinished one is).
    """
    runs, skipped = [], []
    for path in paths:
        if rundir.is_unfinished(path):
            skipped.append(rundir.unfinished_line(path))
            continue
        try:
            found = rundir.find([path])
        except rundir.RunDirError as err:  # named and left out, as an unfinished run is
            skipped.append(str(err))
            continue
        for run in found:
            try:
                record = rundir.read(run)
            except rundir.DamagedRunError as err:
                skipped.append(f"{run} has damaged files ({err.reason}); re-run it or leave it "
                               f"out")
                continue
            except ConfigError as err:
                skipped.append(f"{run} has a config.yaml that does not load ({err})")
                continue
            if not record.metrics.scored:
                skipped.append(f"{run} was interrupted before it was scored")
                continue
            runs.append({"path": str(run), "config": record.config,
                         "metrics": record.metrics.to_dict()})
    if not runs:
        raise CompareError(skipped[0] if len(skipped) == 1 else
                           "none of the runs finished with a held-out score"
                           + (f" ({len(skipped)} could not be read)" if skipped else ""))
    return runs, skipped


def differing_keys(runs: list[dict[str, Any]]) -> list[str]:
    """Config keys whose values are not all the same, in the schema's order."""
    keys = list(runs[0]["config"])
    return [k for k in keys if len({json.dumps(r["config"].get(k)) for r in runs}) > 1]


def plot_axes(runs: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The differing keys worth plotting: not name, description or seed, and not a key that
    only moves with an earlier one (data.window tied to data.lag, say)."""
    axes: list[str] = []
    partitions: list[set] = []
    for key in keys:
        if key in NOT_AXES:
            continue
        groups: dict[str, list[int]] = {}
        for i, run in enumerate(runs):
            groups.setdefault(json.dumps(run["config"].get(key)), []).append(i)
        partition = {tuple(v) for v in groups.values()}
        if partition not in partitions:
            axes.append(key)
            partitions.append(partition)
    return axes


def pool_points(items: list[tuple[dict[str, Any], int, int]],
                keys: list[str]) -> list[dict[str, Any]]:
    """Pool the held-out targets of items that share the keys' values (seeds, say).

    Args:
        items: (flat config, correct, targets) per run.
        keys: the config keys that define a point.

    Returns:
        one dict per point: the keys' values, accuracy, ci95_low and ci95_high.
    """
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for config, correct, targets in items:
        groups.setdefault(tuple(config.get(k) for k in keys), []).append((correct, targets))
    points = []
    for values, counts in groups.items():
        acc, low, high = pooled_accuracy(counts)
        points.append({**dict(zip(keys, values, strict=True)), "accuracy": acc,
                       "ci95_low": low, "ci95_high": high})
    return points


def plot_points(runs: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """pool_points for collected runs."""
    return pool_points([(r["config"], r["metrics"]["heldout_correct"],
                         r["metrics"]["heldout_targets"]) for r in runs], keys)


# ---------------------------------------------------------------------------------------------
# `echo-cli results`: one row per run, in the order given

def result_rows(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """The results table's rows, read from each run's config.yaml and metrics.json, and one
    line for each run left out (unfinished, or damaged). A run of several seeds gives a row
    per seed, then one for the seeds together.

    Raises:
        CompareError: no finished run among the paths.
    """
    rows, skipped = [], []
    for path in paths:
        if rundir.is_seeds(path):
            more, left = result_rows(rundir.seed_runs(path)) if rundir.seed_runs(path) else (
                [], [f"{path} holds no finished seed"])
            more = [{**r, "name": f"{r['name']} ({Path(r['run_dir']).name})"} for r in more]
            rows += [*more, *_together_row(path, more)]
            skipped += left
            continue
        try:
            record = rundir.read(path)
        except rundir.RunDirError as err:
            skipped.append(str(err))
            continue
        except ConfigError as err:
            skipped.append(f"{path} has a config.yaml that does not load ({err})")
            continue
        cfg = record.cfg
        rows.append({**tables.result_row(cfg.dump(), record.metrics.to_dict(),
                                         task_settings=cfg.task.settings(cfg),
                                         figure=cfg.task.figure), "run_dir": str(path)})
    if not rows:
        raise CompareError(skipped[0] if len(skipped) == 1 else
                           f"none of the {len(paths)} runs could be tabulated; the first: "
                           f"{skipped[0]}")
    return rows, skipped


def _together_row(path: Path, seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results row of a run of several seeds together, after its seeds' rows."""
    from echo_cli.output import seeds as seeds_output

    summary = seed_runs.try_read_summary(path)
    if summary is None or not seeds:
        return []
    record = rundir.read(Path(seeds[0]["run_dir"]))
    cfg = record.cfg
    return [seeds_output.result_row(cfg.dump(), seed_runs.summary_row(summary),
                                    record.metrics.to_dict(),
                                    task_settings=cfg.task.settings(cfg),
                                    figure=cfg.task.figure, path=str(path))]


def seeds_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """Each run of several seeds among the paths (or in a sweep's runs/), together: the mean
    figure and the 95% interval of that mean, each seed's, the mean loss, samples to target."""
    out = []
    for path in seed_runs.find_seeds(paths):
        summary = seed_runs.try_read_summary(path)
        if summary is not None:
            out.append({"run": str(path), **seed_runs.summary_row(summary)})
    return out


def write_results(rows: list[dict[str, Any]], out_dir: Path, *, sources: list[str]) -> None:
    """results.md and results.csv in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "results.md", tables.results_markdown(rows, sources=sources))
    write_csv(out_dir / "results.csv", rows, tables.RESULT_FIELDS)


# ---------------------------------------------------------------------------------------------
# `echo-cli memory-table`: memory across time, beside the published table

def memory_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per finished run under the paths (runs or sweeps), for memory.md: the task and
    its T (how far back it reaches), the kind and its size, the held-out loss beside the task's
    baseline, the task's accuracy figure beside chance, and the cost.

    Raises:
        CompareError: a path holds no finished run, or a run's files cannot be read.
    """
    rows = []
    try:
        found = rundir.find(paths)
    except rundir.RunDirError as err:
        raise CompareError(str(err)) from None
    for run in found:
        record = rundir.read(run)
        m, cfg = record.metrics, record.cfg
        if not m.scored:
            continue
        rows.append({
            "task": cfg.task.title, "T": cfg.task.horizon(cfg), "kind": cfg.model.kind,
            "units": cfg.model.units, "parameters": m.parameters,
            "heldout_loss": m.heldout_loss, "baseline_loss": m.baseline_loss,
            "figure": cfg.task.figure, "accuracy": m.heldout_accuracy, "ci95_low": m.ci95_low,
            "ci95_high": m.ci95_high, "chance": m.chance_accuracy, "updates": m.updates,
            "samples": m.samples, "train_seconds": m.train_seconds,
            "reached_target": m.reached_target, "receptive_field": m.receptive_field,
            "run_dir": str(run), "data_task": cfg.data.task})
    if not rows:
        raise CompareError("none of the runs finished with a held-out score")
    rows += _memory_together(paths, rows)
    names = list(tasks.names())
    order = {name: i for i, name in enumerate([*names[1:], names[0]])}  # the tutorial's last
    kinds = list(models.names())
    rows.sort(key=lambda r: (order[r["data_task"]], r["T"], kinds.index(r["kind"]),
                             r.get("group", r["run_dir"]), "seeds" in r))
    return rows


def _memory_together(paths: list[Path], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """memory.md's row for each run of several seeds together, from its seeds' rows: the mean
    loss and figure, the figure's 95% interval of the mean; the seeds' rows learn their run."""
    out = []
    for path in seed_runs.find_seeds(paths):
        summary = seed_runs.try_read_summary(path)
        mine = [r for r in rows if Path(r["run_dir"]).parent.parent == path]
        if summary is None or not mine:
            continue
        for r in mine:
            r["group"] = str(path)
        together = seed_runs.summary_row(summary)
        out.append({**mine[0], "seeds": together["seeds"], "group": str(path),
                    "heldout_loss": together["mean_loss"],
                    "accuracy": together["mean_accuracy"],
                    "ci95_low": together["ci95_low"], "ci95_high": together["ci95_high"],
                    "updates": round(sum(r["updates"] for r in mine) / len(mine)),
                    "samples": round(sum(r["samples"] for r in mine) / len(mine)),
                    "train_seconds": together["train_seconds"], "run_dir": str(path)})
    return out


def write_memory(rows: list[dict[str, Any]], out_dir: Path, *, sources: list[str]) -> None:
    """memory.md and memory.csv in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "memory.md", tables.memory_markdown(rows, sources=sources))
    write_csv(out_dir / "memory.csv", rows)
