"""The record of a run of several seeds (train.seeds > 1): each seed's own run directory under
RUN/seeds/, and RUN/seeds.json, the summary across them, written last.

    summary = summarize(cfg_fields, [(1, metrics_1), (2, metrics_2)], program={...})
    write_summary(path, summary)
    summary = read_summary(path)        # SeedsSummary, validated
    rows = summary_row(summary)         # the figures a table shows for the seeds together

Every figure comes from the seeds' metrics.json: the mean of each across the seeds that were
scored, with the 95% interval of that mean (Student's t), and each seed's own. This module
imports no TensorFlow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from echo_cli.stats import std, t_interval
from echo_cli.store import rundir
from echo_cli.store.files import json_text, write_atomic
from echo_cli.store.metrics import Metrics

# the per-seed figures the summary spreads (mean, interval) and lists seed by seed
SPREAD = ("heldout_accuracy", "heldout_loss", "final_train_loss", "epochs_to_target",
          "samples_to_target")
SHARES = ("heldout_accuracy",)


class Spread(BaseModel):
    """One figure across the seeds that have it: the mean, the sample standard deviation and
    the 95% interval of the mean (null with fewer than two seeds)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    n: int
    mean: float
    std: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None


class SeedRecord(BaseModel):
    """One seed's line in the summary: where its run is, how it ended, and its figures."""

    model_config = ConfigDict(strict=True, extra="ignore")

    seed: int
    run_dir: str  # relative to the run of several seeds: seeds/seed=<s>
    status: str  # done | failed | interrupted
    error: str | None = None
    epochs_completed: int = 0
    reached_target: bool | None = None
    heldout_accuracy: float | None = None
    heldout_correct: int | None = None
    heldout_targets: int | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    heldout_loss: float | None = None
    final_train_loss: float | None = None
    epochs_to_target: int | None = None
    samples_to_target: int | None = None


class SeedsSummary(BaseModel):
    """RUN/seeds.json."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    name: str
    task: str
    model_kind: str
    engine: str
    backend: str
    seeds: list[int]
    epochs: int
    interrupted: bool
    train_seconds: float  # the one program's, for all the seeds at once
    phase_seconds: dict[str, float] | None = None
    chance_accuracy: float | None = None
    baseline_loss: float | None = None
    parameters: int | None = None
    target_accuracy: float | None = None
    target_loss: float | None = None
    runs: list[SeedRecord]
    spread: dict[str, Spread]  # SPREAD's figures across the seeds that have them
    config_sha256: str | None = None

    @property
    def done(self) -> list[SeedRecord]:
        return [r for r in self.runs if r.status == "done"]


def spread(values: list[float], *, share: bool = False) -> Spread | None:
    """The mean and 95% interval of values (None for none); a share's interval is kept in
    [0, 1]."""
    if not values:
        return None
    mean, low, high = t_interval(values)
    if math.isnan(low):
        return Spread(n=len(values), mean=mean)
    if share:
        low, high = max(0.0, low), min(1.0, high)
    return Spread(n=len(values), mean=mean, std=std(values), ci95_low=low, ci95_high=high)


def status(m: Metrics | None) -> str:
    """How a seed's run ended, as a sweep names it."""
    if m is None or m.failed_step is not None:
        return "failed"
    return "interrupted" if m.interrupted else "done"


def summarize(seeds: list[tuple[int, Metrics | None]], *, name: str, program: dict[str, Any],
              errors: dict[int, str] | None = None) -> SeedsSummary:
    """The summary of the seeds' runs from their metrics (None: a seed with none written).

    program: what the seeds share: task, model_kind, engine, backend, epochs, interrupted,
    train_seconds, phase_seconds and config_sha256 (of RUN/config.yaml).
    """
    errors = errors or {}
    runs = []
    for seed, m in seeds:
        record = SeedRecord(seed=seed, run_dir=f"{rundir.SEEDS}/seed={seed}", status=status(m),
                            error=errors.get(seed) or (m.error if m is not None else None))
        if m is not None:
            record = record.model_copy(update={
                k: getattr(m, k) for k in SeedRecord.model_fields
                if k not in ("seed", "run_dir", "status", "error") and hasattr(m, k)})
        runs.append(record)
    scored = [r for r in runs if r.status == "done"]
    spreads = {}
    for key in SPREAD:
        found = spread([getattr(r, key) for r in scored if getattr(r, key) is not None],
                       share=key in SHARES)
        if found is not None:
            spreads[key] = found
    first = next((m for _, m in seeds if m is not None), None)
    shared = ({k: getattr(first, k) for k in ("chance_accuracy", "baseline_loss", "parameters",
                                               "target_accuracy", "target_loss")}
              if first is not None else {})
    return SeedsSummary(name=name, seeds=[s for s, _ in seeds], runs=runs, spread=spreads,
                        **shared, **program)


def write_summary(path: Path, summary: SeedsSummary) -> None:
    """RUN/seeds.json, written whole: the mark of a finished run of several seeds."""
    write_atomic(path / rundir.SEEDS_SUMMARY, json_text(summary.model_dump(exclude_none=True)))


def read_summary(path: Path) -> SeedsSummary:
    """RUN/seeds.json, validated.

    Raises:
        DamagedRunError: not JSON, or not such a record.
    """
    try:
        raw = json.loads((path / rundir.SEEDS_SUMMARY).read_text(encoding="utf-8"))
        return SeedsSummary.model_validate(raw)
    except (OSError, ValueError, RecursionError) as err:  # ValidationError is a ValueError
        reason = (err.errors()[0]["msg"] if isinstance(err, ValidationError)
                  else type(err).__name__)
        raise rundir.DamagedRunError(path, rundir.SEEDS_SUMMARY, reason) from None


def try_read_summary(path: Path) -> SeedsSummary | None:
    """RUN/seeds.json if it is there and sound, else None."""
    try:
        return read_summary(path)
    except rundir.DamagedRunError:
        return None


def finished(path: Path) -> bool:
    """A run of several seeds that ended with every seed scored (a sweep keeps it)."""
    summary = try_read_summary(path)
    return (summary is not None and not summary.interrupted
            and all(r.status == "done" for r in summary.runs))


def summary_row(summary: SeedsSummary) -> dict[str, Any]:
    """The seeds together, as plain figures for a table row: the mean held-out accuracy and
    the 95% interval of that mean, the mean loss, and how many seeds reached a target."""
    acc = summary.spread.get("heldout_accuracy")
    loss = summary.spread.get("heldout_loss")
    samples = summary.spread.get("samples_to_target")
    epochs = summary.spread.get("epochs_to_target")
    reached = [r for r in summary.done if r.reached_target]
    return {"seeds": len(summary.seeds), "scored": acc.n if acc else 0,
            "mean_accuracy": acc.mean if acc else None,
            "ci95_low": acc.ci95_low if acc else None,
            "ci95_high": acc.ci95_high if acc else None,
            "accuracies": [r.heldout_accuracy for r in summary.runs],
            "mean_loss": loss.mean if loss else None,
            "mean_samples_to_target": samples.mean if samples else None,
            "mean_epochs_to_target": epochs.mean if epochs else None,
            "reached_target": (f"{len(reached)}/{len(summary.done)}"
                               if summary.target_accuracy is not None
                               or summary.target_loss is not None else None),
            "train_seconds": summary.train_seconds}


def find_seeds(paths: list[Path]) -> list[Path]:
    """The runs of several seeds among the paths: a path that is one, or those in a sweep's
    runs/ (rundir.find gives their seeds' runs)."""
    found: list[Path] = []
    for path in paths:
        if rundir.is_seeds(path):
            found.append(path)
        elif (path / "runs").is_dir():
            found.extend(p for p in sorted((path / "runs").iterdir())
                         if rundir.FAILED_MARK not in p.name and rundir.is_seeds(p))
    return found
