"""The modern memory table: which kinds select and which only copy, which recall at lengths
they were not trained on, and how much of i.i.d. input their state holds beside the bound N.

    table = modern_table([Path("runs/modern-copy"), Path("runs/modern-induction")])
    table.copying      # one row per kind: each task setting's accuracy at the budget
    table.lengths      # one row per kind trained with eval.lengths: accuracy at each length
    write_modern(table, Path("results"), sources=[...])   # modern.md and modern.csv

Every figure comes from a run's metrics.json, or from `echo-cli capacity RUN`'s
RUN/capacity/capacity.json; runs with the same setting and kind but other seeds are pooled
(the mean, and the lowest and highest seed). Nothing here names a task: a run's setting is
its task's headline ("selective copying, L=64"), so any task can join the table.
This module imports no TensorFlow.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echo_cli import models
from echo_cli.analysis.compare import CompareError
from echo_cli.output import modern as render
from echo_cli.store import rundir
from echo_cli.store.files import write_atomic, write_csv

CAPACITY_JSON = Path("capacity") / "capacity.json"  # where `echo-cli capacity RUN` writes it


@dataclass
class ModernTable:
    """The measured rows, pooled over seeds; `runs` keeps one dict per run for modern.csv."""

    settings: list[str] = field(default_factory=list)  # the copying columns, in order seen
    copying: list[dict[str, Any]] = field(default_factory=list)
    lengths: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def run_row(run: Path) -> dict[str, Any] | None:
    """One finished run as a flat row of modern.csv; None for a run without a held-out score.

    Raises:
        DamagedRunError, ConfigError: a run whose files cannot be read.
    """
    record = rundir.read(run)
    m, cfg = record.metrics, record.cfg
    if not m.scored:
        return None
    per_update = m.updates / max(m.epochs_completed, 1)
    capacity = _capacity(run)
    row = {"setting": cfg.task.headline(cfg), "kind": cfg.model.kind, "units": cfg.model.units,
           "seed": cfg.seed, "parameters": m.parameters, "accuracy": m.heldout_accuracy,
           "ci95_low": m.ci95_low, "ci95_high": m.ci95_high, "chance": m.chance_accuracy,
           "updates": m.updates, "target_accuracy": m.target_accuracy,
           "updates_to_target": (round(m.epochs_to_target * per_update)
                                 if m.epochs_to_target is not None else None),
           "train_seconds": m.train_seconds,
           "capacity": capacity.get("total"), "capacity_bound": capacity.get("bound"),
           "run_dir": str(run)}
    for length, figures in sorted((m.heldout_by_length or {}).items(), key=lambda i: int(i[0])):
        row[f"accuracy_at_{length}"] = figures.get("accuracy")
    return row


def _capacity(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / CAPACITY_JSON).read_text())
    except (OSError, ValueError):
        return {}


def modern_table(paths: list[Path]) -> ModernTable:
    """Every finished run under the paths (runs or sweeps), pooled into the table's rows.

    Raises:
        CompareError: a path holds no finished run, or a run's files cannot be read.
    """
    try:
        found = rundir.find(paths)
    except rundir.RunDirError as err:
        raise CompareError(str(err)) from None
    table = ModernTable()
    for run in found:
        try:
            row = run_row(run)
        except rundir.DamagedRunError as err:
            raise CompareError(f"{run} has damaged files ({err.reason}); re-run it or leave "
                               f"it out") from None
        if row is not None:
            table.runs.append(row)
    if not table.runs:
        raise CompareError("none of the runs finished with a held-out score")
    kinds = list(models.names())
    table.runs.sort(key=lambda r: (kinds.index(r["kind"]), r["units"], r["setting"], r["seed"]))
    _pool(table)
    return table


def _pool(table: ModernTable) -> None:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table.runs:
        lengths = tuple(k for k in row if k.startswith("accuracy_at_"))
        groups.setdefault((bool(lengths), row["kind"], row["units"], row["setting"]),
                          []).append(row)
    by_kind: dict[tuple, dict[str, Any]] = {}
    for (with_lengths, kind, units, setting), rows in groups.items():
        pooled = pooled_row(rows)
        if with_lengths:
            table.lengths.append(pooled)
            continue
        if setting not in table.settings:
            table.settings.append(setting)
        line = by_kind.setdefault((kind, units), {"kind": kind, "units": units,
                                                  "parameters": pooled["parameters"],
                                                  "settings": {}})
        line["settings"][setting] = pooled
    table.copying = list(by_kind.values())


def pooled_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The seeds of one kind and setting: mean figures, the lowest and highest accuracy, the
    median updates to the target over the seeds that reached it, and how many did."""
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return statistics.fmean(values) if values else None

    reached = [r["updates_to_target"] for r in rows if r["updates_to_target"] is not None]
    accuracies = [r["accuracy"] for r in rows]
    out = {key: rows[0][key] for key in ("setting", "kind", "units", "parameters", "chance",
                                         "updates", "target_accuracy")}
    out.update(seeds=len(rows), accuracy=mean("accuracy"), lowest=min(accuracies),
               highest=max(accuracies), ci95_low=rows[0]["ci95_low"],
               ci95_high=rows[0]["ci95_high"], reached=len(reached),
               updates_to_target=statistics.median(reached) if reached else None,
               train_seconds=mean("train_seconds"), capacity=mean("capacity"),
               capacity_bound=rows[0]["capacity_bound"])
    for key in rows[0]:
        if key.startswith("accuracy_at_"):
            out[key] = mean(key)
    return out


def write_modern(table: ModernTable, out_dir: Path, *, sources: list[str]) -> None:
    """modern.md (the measured tables, then the published rows set apart) and modern.csv (one
    row per run) in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "modern.md", render.modern_markdown(table, sources=sources))
    write_csv(out_dir / "modern.csv", table.runs)
