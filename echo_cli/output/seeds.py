"""Tables of several seeds, from plain dicts: a run of train.seeds (each seed, then the mean
with its 95% interval) and `echo-cli bench seeds`.

    console.print(seeds_table(summary.model_dump(), figure="held-out accuracy"))
    console.print(seeds_line(summary_row(summary), figure="held-out accuracy"))
    console.print(bench_seeds_table(record))

This module imports no TensorFlow, and from echo_cli only the output helpers: callers hand it
plain data.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from echo_cli.output.fitted import Fitted
from echo_cli.output.report import plain


def _num(x: Any, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def interval(low: float | None, high: float | None, fmt: str = ".4f") -> str:
    """"0.9971-0.9985", or "-" where there is none (a single seed)."""
    return "-" if low is None or high is None else f"{low:{fmt}}-{high:{fmt}}"


def _to_target(run: dict[str, Any]) -> str:
    if run.get("samples_to_target") is None:
        return "not reached"
    return f"{run['samples_to_target']} ({run['epochs_to_target']} epochs)"


def seeds_table(summary: dict[str, Any], *, figure: str = "held-out accuracy") -> Fitted:
    """One row per seed (its figure with its own 95% interval, loss, epochs, samples to the
    target where one was set, and how it ended), then the mean across the scored seeds with
    the 95% interval of that mean."""
    targeted = summary.get("target_accuracy") is not None or summary.get(
        "target_loss") is not None
    table = Table(title=f"{len(summary['seeds'])} seeds of {summary['name']}, trained together "
                        f"in one program")
    columns = ["seed", f"{figure} (95% CI)", "held-out loss", "epochs",
               *(["samples to target"] if targeted else []), "status"]
    for name in columns:
        table.add_column(name, justify="right")
    for run in summary["runs"]:
        acc = run.get("heldout_accuracy")
        table.add_row(
            str(run["seed"]),
            "-" if acc is None else f"{acc:.4f} ({interval(run['ci95_low'], run['ci95_high'])})",
            _num(run.get("heldout_loss"), ".4g"), str(run.get("epochs_completed", 0)),
            *([_to_target(run)] if targeted else []), plain(run["status"]))
    spread = summary.get("spread", {})
    acc, loss = spread.get("heldout_accuracy"), spread.get("heldout_loss")
    samples = spread.get("samples_to_target")
    mean_acc = "-" if acc is None else (
        f"{acc['mean']:.4f} ({interval(acc.get('ci95_low'), acc.get('ci95_high'))})")
    table.add_row("mean", mean_acc, "-" if loss is None else f"{loss['mean']:.4g}", "",
                  *(["-" if samples is None else f"{samples['mean']:.0f}"] if targeted else []),
                  f"{acc['n'] if acc else 0} scored", style="bold")
    return Fitted(table)


def seeds_line(row: dict[str, Any], *, figure: str = "held-out accuracy") -> str:
    """The seeds together in one line: the mean figure and the 95% interval of that mean,
    each seed's figure, and the program's training seconds."""
    if row["mean_accuracy"] is None:
        return (f"{row['seeds']} seeds: none was scored; trained together in "
                f"{row['train_seconds']:.1f} s")
    each = ", ".join("-" if a is None else f"{a:.4f}" for a in row["accuracies"])
    return (f"{row['seeds']} seeds: {figure} mean {row['mean_accuracy']:.4f} (95% interval of "
            f"the mean {interval(row['ci95_low'], row['ci95_high'])}, {row['scored']} scored; "
            f"each: {each}); trained together in {row['train_seconds']:.1f} s")


def bench_seeds_table(record: dict[str, Any]) -> Fitted:
    """`bench seeds`: per N, the wall seconds and seeds per second of one program against N
    separate runs, and the ratio."""
    table = Table(title=f"{record['config']}, {record['epochs']} epochs: N seeds as one program "
                        f"against N separate runs, on {record['machine']}")
    for name in ("seeds", "one program s", "seeds/s", "separate runs s", "seeds/s ",
                 "program vs separate", "vs one seed"):
        table.add_column(name, justify="right")
    for r in record["rows"]:
        if r.get("error"):
            table.add_row(str(r["seeds"]), "failed", plain(r["error"]), "", "", "", "")
            continue
        table.add_row(
            str(r["seeds"]), _num(r.get("vmapped_seconds"), ".1f"),
            _num(r.get("vmapped_seeds_per_second"), ".3f"),
            _num(r.get("separate_seconds"), ".1f"),
            _num(r.get("separate_seeds_per_second"), ".3f"),
            "-" if r.get("speedup") is None else f"{r['speedup']:.2f}× faster",
            "-" if r.get("vs_one_seed") is None else f"{r['vs_one_seed']:.2f}× the time")
    return Fitted(table)


def result_row(cfg: dict[str, Any], row: dict[str, Any], metrics: dict[str, Any], *,
               task_settings: list[str], figure: str, path: str) -> dict[str, Any]:
    """The results table's row for the seeds of one run together (store.seeds.summary_row),
    after their own rows: the mean figure with the 95% interval of that mean. metrics: one
    seed's metrics.json, for what the seeds share (chance, epochs)."""
    from echo_cli.output.tables import model_settings

    mean, n = row["mean_accuracy"], row["scored"]
    named = f"{figure}: " if figure and figure != "held-out accuracy" else ""
    shown = "none scored" if mean is None else (
        f"{named}mean {mean:.4f} (95% interval of the mean "
        f"{interval(row['ci95_low'], row['ci95_high'])}, {n} seeds)")
    settings = ", ".join([*task_settings, *model_settings(cfg)])
    to_target = ("" if row["reached_target"] is None else
                 f"mean {row['mean_samples_to_target']:.0f} ({row['reached_target']} reached)"
                 if row["mean_samples_to_target"] is not None
                 else f"not reached ({row['reached_target']})")
    return {
        "name": f"{metrics['name']} (mean of {row['seeds']} seeds)",
        "what it tests": cfg.get("description", ""), "key settings": settings,
        "held-out accuracy (95% CI)": shown, "chance": f"{metrics['chance_accuracy']:.4g}",
        "scored targets": "", "epochs": metrics["epochs"], "updates": "",
        "samples to target": to_target,
        "train seconds": f"{row['train_seconds']:.1f} (together)",
        "description": cfg.get("description", ""), "settings": settings,
        "heldout_accuracy": mean, "ci95_low": row["ci95_low"], "ci95_high": row["ci95_high"],
        "chance_accuracy": metrics["chance_accuracy"], "heldout_targets": None,
        "epochs_completed": None, "samples_to_target": row["mean_samples_to_target"],
        "train_seconds": row["train_seconds"], "backend": metrics.get("backend"),
        "engine": metrics.get("engine"), "run_dir": path, "seeds": row["seeds"],
    }


def summaries_table(rows: list[dict[str, Any]]) -> Fitted:
    """`compare`: each run of several seeds together, after the table of its seeds' runs."""
    table = Table(title="runs of several seeds: the mean of each, with the 95% interval of "
                        "the mean")
    for name in ("run", "seeds", "held-out mean (95% interval)", "each seed", "loss mean",
                 "samples to target", "train s"):
        table.add_column(name, justify="left" if name == "run" else "right")
    for row in rows:
        table.add_row(
            plain(row["run"]), f"{row['scored']}/{row['seeds']}",
            "-" if row["mean_accuracy"] is None else
            f"{row['mean_accuracy']:.4f} ({interval(row['ci95_low'], row['ci95_high'])})",
            ", ".join("-" if a is None else f"{a:.4f}" for a in row["accuracies"]),
            _num(row["mean_loss"], ".4g"),
            "-" if row["reached_target"] is None else
            f"{_num(row['mean_samples_to_target'], '.0f')} ({row['reached_target']})",
            f"{row['train_seconds']:.1f}")
    return Fitted(table)
