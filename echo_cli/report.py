"""Rich tables, live progress and run-directory files, all from plain numbers.

    console = Console()
    console.print(history_table(result_history, max_rows=20))

This module imports no TensorFlow.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

MISS = "-"  # a step before the sequence starts, or an unscored target


def _ids(values: Sequence[int]) -> str:
    return " ".join(MISS if v < 0 else str(v) for v in values)


def sample_rows(n: int, max_rows: int) -> list[int]:
    """About max_rows evenly spaced indices into n rows, always including the first and last."""
    if n <= max_rows:
        return list(range(n))
    step = (n - 1) / (max_rows - 1)
    return sorted({round(i * step) for i in range(max_rows)} | {n - 1})


def history_table(history: list[dict[str, float]], *, max_rows: int = 20) -> Table:
    """Per-epoch training loss and accuracy, cut to about max_rows evenly spaced rows."""
    shown = sample_rows(len(history), max_rows)
    title = "training, per epoch (one epoch = one sequence)"
    if len(shown) < len(history):
        title += f": {len(shown)} of {len(history)} epochs shown, all in history.csv"
    table = Table(title=title)
    table.add_column("epoch", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    for i in shown:
        row = history[i]
        table.add_row(str(row["epoch"]), f"{row['loss']:.4f}", f"{row['accuracy']:.3f}")
    return table


def heldout_line(metrics: dict[str, Any]) -> Text:
    """Held-out accuracy with its 95% interval, beside chance."""
    acc, chance = metrics["heldout_accuracy"], metrics["chance_accuracy"]
    style = "bold green" if metrics["ci95_low"] > chance else "bold yellow"
    text = Text("held-out accuracy ")
    text.append(f"{acc:.4f}", style=style)
    text.append(
        f"  (95% CI {metrics['ci95_low']:.4f}-{metrics['ci95_high']:.4f}, "
        f"{metrics['heldout_correct']}/{metrics['heldout_targets']} targets in "
        f"{metrics['heldout_sequences']} fresh sequences)   chance {chance:.4f}"
    )
    if metrics.get("heldout_exact_match") is not None:
        text.append(
            f"\nexact match (every scored position of a sample right) "
            f"{metrics['heldout_exact_match']:.4f}; "
            f"{metrics['heldout_unscored_positions']} positions unscored (target not in the window)"
        )
    return text


def _cell(expected: int, predicted: int) -> Text:
    if expected < 0:
        return Text(MISS, style="dim")
    if expected == predicted:
        return Text(str(predicted))
    return Text(f"{predicted}✗", style="bold red")


def examples_table(examples: list[dict[str, Any]], *, lag: int, target: str) -> Group:
    """Decoded held-out sequences, one aligned column per timestep; ✗ marks a mismatch.

    Value targets show every row t; sequence targets show the last row's window, position by
    position.
    """
    parts: list[Any] = [Text(f"held-out examples (✗ marks a wrong prediction, {MISS} = not scored)",
                             style="bold")]
    for n, ex in enumerate(examples, start=1):
        if target == "value":
            t, inputs = ex["t"], [ex["sequence"][ti] for ti in ex["t"]]
            expected, predicted = ex["expected"], ex["predicted"]
            head = f"sequence {n}"
        else:
            last = len(ex["t"]) - 1
            t_end = ex["t"][last]
            expected, predicted = ex["expected"][last], ex["predicted"][last]
            t = list(range(t_end - len(expected) + 1, t_end + 1))
            inputs = [ex["sequence"][ti] if ti >= 0 else -1 for ti in t]
            head = f"sequence {n}, last sample (t={t_end})"
        table = Table(box=None, padding=(0, 1), show_header=False, title=head,
                      title_justify="left")
        table.add_column(justify="left", style="dim")
        for _ in t:
            table.add_column(justify="right")
        table.add_row("t", *[str(v) for v in t])
        table.add_row("X(t)", *[MISS if v < 0 else str(v) for v in inputs])
        table.add_row(f"expected X(t-{lag})", *[MISS if v < 0 else str(v) for v in expected])
        table.add_row("predicted", *[_cell(e, p) for e, p in zip(expected, predicted, strict=True)])
        parts.append(table)
    return Group(*parts)


def framing_table(
    *, t: Sequence[int], x: Sequence[Sequence[int]], y: Sequence, lag: int,
    state_from: Sequence[int | None] | None = None, batch_size: int | None = None,
) -> Table:
    """One row per sample: t, the window as ids, the target (and where its state comes from)."""
    table = Table(title="samples (one row each)")
    table.add_column("t", justify="right")
    if batch_size:
        table.add_column("batch", justify="right")
    table.add_column("x: window", justify="left")
    sequence_target = bool(y) and isinstance(y[0], (list, tuple))
    table.add_column(f"y: X(p-{lag}) per position" if sequence_target else f"y = X(t-{lag})",
                     justify="left" if sequence_target else "right")
    if state_from is not None:
        table.add_column("state from", justify="right")
    for i, ti in enumerate(t):
        cells = [str(ti)]
        if batch_size:
            cells.append(str(i // batch_size + 1))
        cells.append(_ids(x[i]))
        cells.append(_ids(y[i]) if sequence_target else str(y[i]))
        if state_from is not None:
            src = state_from[i]
            cells.append("zeros (reset)" if src is None else f"t={src}")
        table.add_row(*cells)
    return table


def config_yaml_table(text: str) -> Table:
    table = Table(title="resolved config", show_header=False)
    table.add_column("yaml")
    table.add_row(text.rstrip())
    return table


class TrainProgress:
    """A live bar with the latest loss and accuracy. Use as a context manager."""

    def __init__(self, console: Console, total: int, *, label: str = "training"):
        self.progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=total, loss="-", acc="-")

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, epoch: int, logs: dict[str, float]) -> None:
        self.progress.update(self.task, completed=epoch, loss=f"{logs['loss']:.4f}",
                             acc=f"{logs['accuracy']:.3f}")


# ---------------------------------------------------------------------------------------------
# run directory files

def write_history(path: Path, history: list[dict[str, float]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["epoch", "loss", "accuracy"])
        writer.writeheader()
        for row in history:
            writer.writerow({k: row[k] for k in ("epoch", "loss", "accuracy")})


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
