"""Runs side by side: gather run directories, find the config keys that differ.

    runs = collect([Path("runs/sweep-lag1-20261129-120000"), Path("runs/lag1-20261129-130000")])
    keys = differing_keys(runs)      # e.g. ["model.kind", "data.lag", "seed"]

This module imports no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from echo_cli.stats import wilson_interval

NEEDED = ("heldout_accuracy", "heldout_correct", "heldout_targets", "ci95_low", "ci95_high",
          "chance_accuracy", "train_seconds", "updates")
NOT_AXES = ("name", "description", "seed")


class CompareError(ValueError):
    """Paths that hold no runs. The message is one line, ready to print."""


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _is_run(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / "config.yaml").is_file()


def collect(paths: list[Path]) -> list[dict[str, Any]]:
    """Every finished run under the paths: a run directory, or a sweep's runs/.

    Returns:
        dicts with "path", "config" (flat dotted keys) and "metrics".

    Raises:
        CompareError: a path that is neither, or holds no finished run.
    """
    runs = []
    for path in paths:
        if _is_run(path):
            found = [path]
        elif (path / "runs").is_dir():
            found = sorted(p for p in (path / "runs").iterdir() if _is_run(p)
                           and ".failed-" not in p.name)
        else:
            raise CompareError(f"{path} is neither a run directory (config.yaml and "
                               f"metrics.json) nor a sweep directory (runs/)")
        if not found:
            raise CompareError(f"{path} holds no finished run")
        for run in found:
            try:
                metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
                cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
                if not isinstance(metrics, dict) or not isinstance(cfg, dict):
                    raise ValueError("not a mapping")
            except (OSError, ValueError, yaml.YAMLError) as err:
                raise CompareError(f"{run} has damaged files ({type(err).__name__}); "
                                   f"re-run it or leave it out") from None
            if metrics.get("heldout_accuracy") is None:
                continue  # interrupted: nothing to compare
            missing = [k for k in NEEDED if k not in metrics]
            if missing:
                raise CompareError(f"{run}/metrics.json lacks {', '.join(missing)}; re-run it "
                                   f"with this version of echo-cli")
            runs.append({"path": str(run), "config": _flatten(cfg), "metrics": metrics})
    if not runs:
        raise CompareError("none of the runs finished with a held-out score")
    return runs


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


def plot_points(runs: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Pool the held-out targets of runs that share the keys' values (seeds, say), with the
    Wilson interval of the pooled counts."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(run["config"].get(k) for k in keys), []).append(run)
    points = []
    for values, group in groups.items():
        correct = sum(r["metrics"]["heldout_correct"] for r in group)
        targets = sum(r["metrics"]["heldout_targets"] for r in group)
        low, high = wilson_interval(correct, targets)
        points.append({**dict(zip(keys, values, strict=True)), "accuracy": correct / targets,
                       "ci95_low": low, "ci95_high": high})
    return points
