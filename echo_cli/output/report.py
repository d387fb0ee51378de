"""Rich tables, live progress and Markdown tables, all from plain numbers and dicts.

    console = Console()
    console.print(history_table(result_history, max_rows=20))

This module imports no TensorFlow and nothing from echo_cli: callers hand it plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

MISS = "-"  # a step before the sequence starts, or an unscored target


def printable(text: str) -> str:
    """text with control characters (a terminal escape, say) shown as \\x1b and the like, so
    a value from a user's file or directory name is printed, never obeyed."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in text)


def one_line(text: str) -> str:
    """text as a single printable line: newlines and other control characters escaped."""
    return printable(text).replace("\n", "\\n").replace("\t", " ")


def plain(value: Any, style: str = "") -> Text:
    """A table cell from any value: printable, and never read as Rich markup."""
    return Text(printable(str(value)), style=style)


def sample_rows(n: int, max_rows: int) -> list[int]:
    """About max_rows evenly spaced indices into n rows, always including the first and last."""
    if n <= max_rows:
        return list(range(n))
    step = (n - 1) / (max_rows - 1)
    return sorted({round(i * step) for i in range(max_rows)} | {n - 1})


def history_table(history: list[dict[str, float]], *, max_rows: int = 20,
                  epoch_words: str = "one epoch = one sequence") -> Group:
    """Per-epoch training loss and accuracy, cut to about max_rows evenly spaced rows, with the
    validation figure where it was checked."""
    shown = sample_rows(len(history), max_rows)
    head = f"training, per epoch ({epoch_words})"
    if len(shown) < len(history):
        head += f": {len(shown)} of {len(history)} epochs shown, all in history.csv"
    checked = next((k for k in ("validation_accuracy", "validation_loss")
                    if any(k in row for row in history)), None)
    table = Table()
    table.add_column("epoch", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    if checked:
        table.add_column(checked.replace("_", " "), justify="right")
    for i in shown:
        row = history[i]
        cells = [str(row["epoch"]), f"{row['loss']:.4f}", f"{row['accuracy']:.3f}"]
        if checked:
            cells.append(f"{row[checked]:.4f}" if checked in row else "")
        table.add_row(*cells)
    return Group(Text(head, style="bold"), table)


def heldout_line(metrics: dict[str, Any], *, figure: str = "held-out accuracy",
                 counted: str = "targets", chance_words: str = "chance",
                 baseline_words: str = "") -> Text:
    """The task's held-out accuracy figure with its 95% interval beside chance, and the
    held-out loss beside the task's memoryless baseline (the task names each)."""
    acc, low, high = metrics["heldout_accuracy"], metrics["ci95_low"], metrics["ci95_high"]
    chance = metrics["chance_accuracy"]
    where = ("held-out sequences of the file" if metrics.get("data_source") == "csv"
             else "fresh sequences")
    text = Text(f"{figure} ")
    text.append(f"{acc:.4f}", style="bold green" if low > chance else "bold yellow")
    text.append(f"  (95% CI {low:.4f}-{high:.4f}, {metrics['heldout_correct']}/"
                f"{metrics['heldout_targets']} {counted} in {metrics['heldout_sequences']} "
                f"{where})   {chance_words} {chance:.4f}")
    if metrics.get("heldout_loss") is not None:
        loss, baseline = metrics["heldout_loss"], metrics["baseline_loss"]
        text.append("\nheld-out loss ")
        text.append(f"{loss:.4g}", style="bold green" if loss < baseline else "bold yellow")
        text.append(f"  (memoryless baseline {baseline:.4g} = {baseline_words}; "
                    f"{loss / baseline:.3g}× the baseline)")
    if metrics.get("heldout_exact_match") is not None:
        per_position = " ".join(MISS if a is None else f"{a:.3f}"
                                for a in metrics["heldout_per_position"])
        text.append(
            f"\naccuracy is per scored position; by position in the window: {per_position}"
            f"\nexact match (every scored position of a sample right) "
            f"{metrics['heldout_exact_match']:.4f}; "
            f"{metrics['heldout_unscored_positions']} positions unscored (their target is "
            f"before the window or the sequence)"
        )
    return text


def lengths_table(by_length: dict[str, dict[str, Any]], *, figure: str, trained: int) -> Table:
    """The held-out figure at each of eval.lengths, beside the length trained at."""
    table = Table(title=f"{figure} at other lengths, without retraining (trained at "
                        f"{trained})")
    for name in ("length", "steps", figure, "95% CI", "right", "loss"):
        table.add_column(name, justify="right")
    for length, r in sorted(by_length.items(), key=lambda item: int(item[0])):
        table.add_row(length, str(r["steps"]), f"{r['accuracy']:.4f}",
                      f"{r['ci95_low']:.4f}-{r['ci95_high']:.4f}",
                      f"{r['correct']}/{r['targets']}",
                      "-" if r["loss"] is None else f"{r['loss']:.4g}")
    return table


def capacity_lines(mc: dict[str, Any], *, kind: str) -> Group:
    """Memory capacity beside its bound, and where r²(k) falls off."""
    r2 = mc["r2"]
    half = next((k for k, v in enumerate(r2, start=1) if v < 0.5), None)
    text = Text("memory capacity ")
    text.append(f"{mc['total']:.2f}", style="bold")
    text.append(f" of the bound N = {mc['bound']} ({mc['total'] / mc['bound']:.0%}): Σ r²(k) "
                f"for k = 1 .. {mc['k_max']}, i.i.d. input from U(-{mc['scale']:g}, "
                f"{mc['scale']:g}), readouts fitted on {mc['fitted']} steps and scored on "
                f"{mc['scored']} others")
    shown = ", ".join(f"r²({k}) {r2[k - 1]:.3f}" for k in (1, 2, 5, 10, 20, 50)
                      if k <= len(r2))
    fall = (f"r²(k) falls below 0.5 at k = {half}" if half is not None
            else "r²(k) stays at 0.5 or more for every k")
    return Group(text, Text(f"{shown}; {fall} ({kind}; N counts the state units read out)"))


def cost_line(m: dict[str, Any]) -> str:
    """Updates, samples and seconds of a run, and the size of its model."""
    field = (f"; receptive field {m['receptive_field']} steps"
             if m.get("receptive_field") is not None else "")
    frozen = (f" (and {m['frozen_parameters']:,} frozen, which training never changes: a "
              f"one-hot table, a fixed reservoir)" if m.get("frozen_parameters") else "")
    return (f"{m['updates']} weight updates on {m['samples']} samples in "
            f"{m['train_seconds']:.1f} s ({m['backend']}); {m['model_kind']} with "
            f"{m['parameters']:,} trainable parameters{frozen}, "
            f"{m['multiply_adds_per_sample']:,} multiply-adds per sample{field}")


def sweep_cost_line(runs: int, *, wall: float, train: float, workers: int) -> str:
    """Where a sweep's time went: training, and the overhead of each run around it (start-up,
    compiling, scoring, saving), as (wall x workers - training) / runs."""
    overhead = max(0.0, wall * workers - train) / runs
    return (f"{runs} run{'s' * (runs != 1)} in {wall:.1f} s on {workers} "
            f"worker{'s' * (workers != 1)}: "
            f"{train / runs:.2f} s of training each, and {overhead:.2f} s of overhead each "
            f"(start-up, scoring and saving: (wall x workers - training) / runs)")


def ends(values: Sequence, cap: int | None) -> str:
    """Values joined by spaces; past `cap`, the first and last cap/2 around an ellipsis."""
    if cap is None or len(values) <= cap:
        return " ".join(map(str, values))
    half = max(cap // 2, 1)
    return (" ".join(map(str, values[:half])) + f" … ({len(values) - 2 * half} more) … "
            + " ".join(map(str, values[-half:])))


def cut_values(values: Sequence, limit: int | None) -> str:
    """Values joined by spaces; past `limit`, the first ones, an ellipsis and the count."""
    if limit is None or len(values) <= limit:
        return " ".join(str(v) for v in values)
    head = " ".join(str(v) for v in values[:limit])
    return f"{head} … ({len(values) - limit} more, {len(values)} in all)"


def target_line(m: dict[str, Any]) -> Text:
    """Whether validation reached train.target_accuracy (or target_loss), and when."""
    by_loss = m.get("target_accuracy") is None
    name = "loss" if by_loss else "accuracy"
    value = m.get("final_validation_loss" if by_loss else "final_validation_accuracy")
    target = m["target_loss"] if by_loss else m["target_accuracy"]
    if m["reached_target"]:
        at = m.get("epochs_to_target") or m["epochs_completed"]
        samples = m.get("samples_to_target") or m["samples"]
        if at >= m["epochs_completed"]:
            return Text(f"validation {name} {value:.4f} reached train.target_{name}={target} "
                        f"after {at} epochs = {samples} samples; stopped early")
        return Text(f"validation {name} reached train.target_{name}={target} after {at} epochs "
                    f"= {samples} samples, and training went on to "
                    f"{m['epochs_completed']} (train.stop_at_target: false; last {value:.4f})")
    last = f"{value:.4f}" if value is not None else "never measured"
    text = Text("note:", style="yellow")
    text.append(f" validation {name} ({last}) never reached train.target_{name}={target}")
    return text


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


class SweepProgress:
    """A live bar of a sweep's runs: done, running and failed. Use as a context manager."""

    def __init__(self, console: Console, total: int):
        self.progress = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[state]}"), TimeRemainingColumn(),
                                 console=console)
        self.task = self.progress.add_task("runs", total=total, state="")

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, statuses: list[str]) -> None:
        """statuses: every run's status (done, failed, running, not run)."""
        done, failed, running = (statuses.count(k) for k in ("done", "failed", "running"))
        self.progress.update(self.task, completed=done + failed,
                             state=f"running {running}, failed {failed}")


def probe_summary(curve: list[dict[str, Any]], *, metric: str, fades: int | None,
                  sequences: int) -> Group:
    """The memory curve in a few lines: the probe's score at each k beside chance."""
    table = Table(title=f"reading X(t-k) from the state at t: a linear probe fitted on "
                        f"{sequences} fresh sequences, scored on {sequences} others")
    table.add_column("k", justify="right")
    table.add_column(f"probe {metric}", justify="right")
    table.add_column("chance", justify="right")
    for p in curve:
        table.add_row(str(p["k"]), f"{p['accuracy']:.3f}", f"{p['chance']:.3f}")
    if metric != "accuracy":
        note = "R² of the value k steps back (0: no memory, 1: read exactly)"
    elif fades is None:
        note = "the probe stays at twice chance or more for every k shown"
    else:
        note = f"the probe first falls below twice chance at k={fades}"
    return Group(table, Text(note))
