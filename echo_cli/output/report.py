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


def history_table(history: list[dict[str, float]], *, max_rows: int = 20) -> Group:
    """Per-epoch training loss and accuracy, cut to about max_rows evenly spaced rows."""
    shown = sample_rows(len(history), max_rows)
    head = "training, per epoch (one epoch = one sequence)"
    if len(shown) < len(history):
        head += f": {len(shown)} of {len(history)} epochs shown, all in history.csv"
    validated = any("validation_accuracy" in row for row in history)
    table = Table()
    table.add_column("epoch", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    if validated:
        table.add_column("validation", justify="right")
    for i in shown:
        row = history[i]
        cells = [str(row["epoch"]), f"{row['loss']:.4f}", f"{row['accuracy']:.3f}"]
        if validated:
            cells.append(f"{row['validation_accuracy']:.4f}" if "validation_accuracy" in row
                         else "")
        table.add_row(*cells)
    return Group(Text(head, style="bold"), table)


BASELINES = {"echo": "ln n_unique: a uniform guess", "copy": "10·ln 8/(T+20): blanks, then a "
             "uniform guess of the symbols", "adding": "1/6: always predicting 1"}
ACCURACY_NAMES = {"echo": "held-out accuracy", "copy": "recall accuracy",
                  "adding": "within 0.04 of the sum"}
TARGET_NAMES = {"echo": "targets", "copy": "recalled symbols", "adding": "sums"}


def heldout_line(metrics: dict[str, Any]) -> Text:
    """The task's held-out accuracy figure with its 95% interval beside chance, and the
    held-out loss beside the task's memoryless baseline."""
    task = metrics.get("task", "echo")
    adding = task == "adding"
    acc = metrics["heldout_within"] if adding else metrics["heldout_accuracy"]
    low, high = ((metrics["within_ci95_low"], metrics["within_ci95_high"]) if adding
                 else (metrics["ci95_low"], metrics["ci95_high"]))
    correct = metrics["heldout_within_count"] if adding else metrics["heldout_correct"]
    targets = metrics["heldout_sequences"] if adding else metrics["heldout_targets"]
    chance = metrics["chance_accuracy"]
    where = ("held-out sequences of the file" if metrics.get("data_source") == "csv"
             else "fresh sequences")
    text = Text(f"{ACCURACY_NAMES[task]} ")
    text.append(f"{acc:.4f}", style="bold green" if low > chance else "bold yellow")
    text.append(f"  (95% CI {low:.4f}-{high:.4f}, {correct}/{targets} {TARGET_NAMES[task]} in "
                f"{metrics['heldout_sequences']} {where})   "
                f"{'always predicting 1 gets' if adding else 'chance'} {chance:.4f}")
    if metrics.get("heldout_loss") is not None:
        loss, baseline = metrics["heldout_loss"], metrics["baseline_loss"]
        text.append("\nheld-out loss ")
        text.append(f"{loss:.4g}", style="bold green" if loss < baseline else "bold yellow")
        text.append(f"  (memoryless baseline {baseline:.4g} = {BASELINES[task]}; "
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


def cost_line(m: dict[str, Any]) -> str:
    """Updates, samples and seconds of a run, and the size of its model."""
    field = (f"; receptive field {m['receptive_field']} steps"
             if m.get("receptive_field") is not None else "")
    return (f"{m['updates']} weight updates on {m['samples']} samples in "
            f"{m['train_seconds']:.1f} s ({m['backend']}); {m['model_kind']} with "
            f"{m['parameters']:,} trainable parameters, "
            f"{m['multiply_adds_per_sample']:,} multiply-adds per sample{field}")


def sweep_cost_line(runs: int, *, wall: float, train: float, workers: int) -> str:
    """Where a sweep's time went: training, and the overhead of each run around it (start-up,
    compiling, scoring, saving), as (wall x workers - training) / runs."""
    overhead = max(0.0, wall * workers - train) / runs
    return (f"{runs} run{'s' * (runs != 1)} in {wall:.1f} s on {workers} "
            f"worker{'s' * (workers != 1)}: "
            f"{train / runs:.2f} s of training each, and {overhead:.2f} s of overhead each "
            f"(start-up, scoring and saving: (wall x workers - training) / runs)")


def task_sample(cfg: dict[str, Any], x, y, baseline: float, chance: float, *,
                cap: int | None) -> list[Any]:
    """check-data for a memory task: one seeded sequence, its target, and the baseline."""
    d, t = cfg["data"], cfg["train"]
    steps = len(x)
    lines: list[Any] = []
    if d["task"] == "copy":
        recall, delay = d["recall"], d["delay"]
        lines.append(Text(f"copy memory, T={delay}: {steps} steps = {recall} symbols (1..8), "
                          f"{delay - 1} blanks (0), a marker (9) and {recall} more markers while "
                          f"the symbols are recalled", style="bold"))
        lines.append(Text("input  x: " + _ends(x.tolist(), cap)))
        lines.append(Text("target y: " + _ends(y.tolist(), cap)))
        lines.append(f"the target is blank (0) but for the last {recall} steps, which repeat "
                     f"the first {recall} inputs; the loss is cross-entropy over all {steps} "
                     f"steps")
        lines.append(f"memoryless baseline loss {baseline:.4f} = {recall}·ln 8/{steps} (blanks "
                     f"right, a uniform guess of each recalled symbol); chance per recalled "
                     f"symbol {chance:.4f}")
    else:
        marked = [i for i in range(steps) if x[i, 1] > 0]
        lines.append(Text(f"adding problem, T={steps}: a value from U(0, 1) and a marker at "
                          f"each step; the markers are 1 at one step in each half",
                          style="bold"))
        lines.append(Text("values:  " + _ends([f"{v:.2f}" for v in x[:, 0]], cap)))
        lines.append(Text("markers: " + _ends([int(v) for v in x[:, 1]], cap)))
        lines.append(f"marked steps {marked[0]} and {marked[1]}: target y = "
                     f"{x[marked[0], 0]:.4f} + {x[marked[1], 0]:.4f} = {float(y):.4f}; the loss "
                     f"is the mean squared error")
        lines.append(f"baseline loss {baseline:.4f} = 1/6 (always predicting 1); predicting 1 is "
                     f"within 0.04 of the sum {chance:.4f} of the time")
    lines.append(f"one epoch = one update on a batch of train.batch_size={t['batch_size']} fresh "
                 f"sequences; {t['epochs']} epochs")
    return lines


def _ends(values: Sequence, cap: int | None) -> str:
    """Values joined by spaces; past `cap`, the first and last cap/2 around an ellipsis."""
    if cap is None or len(values) <= cap:
        return " ".join(map(str, values))
    half = max(cap // 2, 1)
    return (" ".join(map(str, values[:half])) + f" … ({len(values) - 2 * half} more) … "
            + " ".join(map(str, values[-half:])))


def memory_examples(examples: list[dict[str, Any]], *, task: str) -> Group:
    """Decoded held-out samples of a memory task: the symbols and what was recalled (copy), or
    the marked values, their sum and the prediction (adding); ✗ marks a miss."""
    parts: list[Any] = [Text(f"held-out examples (✗ marks a wrong {TARGET_NAMES[task][:-1]})",
                             style="bold")]
    for n, ex in enumerate(examples, start=1):
        line = Text(f"sequence {n}: ", style="dim")
        if task == "copy":
            line.append("symbols " + " ".join(map(str, ex["symbols"])) + "  recalled ")
            for want, got in zip(ex["symbols"], ex["recalled"], strict=True):
                line.append(f"{got} " if want == got else f"{got}✗ ",
                            style="" if want == got else "bold red")
        else:
            ok = abs(ex["predicted"] - ex["sum"]) < 0.04
            marked = " + ".join(f"{v:.3f}" for v in ex["marked"])
            line.append(f"{marked} = {ex['sum']:.3f}, predicted ")
            line.append(f"{ex['predicted']:.3f}" + ("" if ok else "✗"),
                        style="" if ok else "bold red")
        parts.append(line)
    return Group(*parts)


def target_line(m: dict[str, Any]) -> Text:
    """Whether validation reached train.target_accuracy (or target_loss), and when."""
    by_loss = m.get("target_accuracy") is None
    name = "loss" if by_loss else "accuracy"
    value = m.get("final_validation_loss" if by_loss else "final_validation_accuracy")
    target = m["target_loss"] if by_loss else m["target_accuracy"]
    if m["reached_target"]:
        return Text(f"validation {name} {value:.4f} reached train.target_{name}={target} after "
                    f"{m['epochs_completed']} epochs = {m['samples']} samples; stopped early")
    last = f"{value:.4f}" if value is not None else "never measured"
    text = Text("note:", style="yellow")
    text.append(f" validation {name} ({last}) never reached train.target_{name}={target}")
    return text


def examples_table(examples: list[dict[str, Any]], *, lag: int, target: str,
                   width: int = 100) -> Group:
    """Decoded held-out sequences in aligned columns, wrapped to `width`; a wrong prediction
    is marked with ✗ (and red). Value targets show every row t; sequence targets show the last
    row's window, position by position."""
    parts: list[Any] = [Text(f"held-out examples (✗ marks a wrong prediction, {MISS} = not scored)",
                             style="bold")]
    names = ("t", "input X(t)", f"target X(t-{lag})", "predicted")
    label = max(map(len, names)) + 1
    for n, ex in enumerate(examples, start=1):
        if target == "value":
            t, inputs = ex["t"], [ex["sequence"][ti] for ti in ex["t"]]
            expected, predicted = ex["expected"], ex["predicted"]
            parts.append(Text(f"sequence {n}", style="dim"))
        else:
            last = len(ex["t"]) - 1
            t_end = ex["t"][last]
            expected, predicted = ex["expected"][last], ex["predicted"][last]
            t = list(range(t_end - len(expected) + 1, t_end + 1))
            inputs = [ex["sequence"][ti] if ti >= 0 else -1 for ti in t]
            parts.append(Text(f"sequence {n}, its last sample (t={t_end})", style="dim"))
        cell = max(len(str(v)) for v in [*t, *inputs, *expected, *predicted]) + 2
        per_line = max(1, (width - label) // cell)
        for start in range(0, len(t), per_line):
            part = slice(start, start + per_line)
            lines = {name: Text(name.rjust(label - 1) + " ", style="dim") for name in names}
            for ti, x, e, p in zip(t[part], inputs[part], expected[part], predicted[part],
                                   strict=True):
                lines["t"].append(str(ti).rjust(cell - 1) + " ", style="dim")
                lines[names[1]].append((MISS if x < 0 else str(x)).rjust(cell - 1) + " ")
                lines[names[2]].append((MISS if e < 0 else str(e)).rjust(cell - 1) + " ")
                if e < 0:
                    lines["predicted"].append(MISS.rjust(cell - 1) + " ", style="dim")
                elif e == p:
                    lines["predicted"].append(str(p).rjust(cell - 1) + " ")
                else:
                    lines["predicted"].append((str(p) + "✗").rjust(cell), style="bold red")
            parts.extend(lines.values())
    return Group(*parts)


def _aligned(values: Sequence[int], width: int) -> str:
    return " ".join((MISS if v < 0 else str(v)).rjust(width) for v in values)


def cut_values(values: Sequence, limit: int | None) -> str:
    """Values joined by spaces; past `limit`, the first ones, an ellipsis and the count."""
    if limit is None or len(values) <= limit:
        return " ".join(str(v) for v in values)
    head = " ".join(str(v) for v in values[:limit])
    return f"{head} … ({len(values) - limit} more, {len(values)} in all)"


def framing_table(
    *, t: Sequence[int], x: Sequence[Sequence[int]], y: Sequence, lag: int, n_unique: int,
    state_from: Sequence[int | None] | None = None, batch_size: int | None = None,
    shown: Sequence[int] | None = None, max_steps: int | None = None,
) -> Table:
    """One row per sample: t, the window as ids, the target (and where its state comes from).

    For sequence targets the target row is printed under the window, position by position.
    t, x, y and state_from hold the printed rows only; shown: their indices among all rows
    (for the batch number), 0, 1, 2, ... by default; max_steps: print only the last steps of a
    longer window, after an ellipsis.
    """
    width = len(str(n_unique - 1))
    table = Table(title="samples (one row each)", show_lines=False)
    table.add_column("t", justify="right")
    if batch_size:
        table.add_column("batch", justify="right")
    sequence_target = bool(y) and isinstance(y[0], (list, tuple))
    if sequence_target:
        table.add_column(f"x: window\ny: X(p-{lag}) under each X(p)", justify="left")
    else:
        table.add_column("x: window", justify="left")
        table.add_column(f"y = X(t-{lag})", justify="right")
    if state_from is not None:
        table.add_column("state from", justify="right")
    def last(values: Sequence[int]) -> str:
        if max_steps is None or len(values) <= max_steps:
            return _aligned(values, width)
        return "… " + _aligned(values[-max_steps:], width)

    for i, ti in enumerate(t):
        cells = [str(ti)]
        if batch_size:
            cells.append(str((shown[i] if shown is not None else i) // batch_size + 1))
        if sequence_target:
            cells.append(f"x {last(x[i])}\ny {last(y[i])}")
        else:
            cells += [last(x[i]), str(y[i])]
        if state_from is not None:
            src = state_from[i]
            cells.append("zeros (reset)" if src is None else f"t={src}")
        table.add_row(*cells)
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


def predict_table(rows: list[dict[str, Any]], *, lag: int) -> Table:
    """t, input, expected X(t-lag), prediction, probability and match, one row per input."""
    table = Table(title=f"predictions of X(t-{lag})")
    for name in ("t", "X(t)", f"expected X(t-{lag})", "predicted", "probability", "match"):
        table.add_column(name, justify="right")
    for r in rows:
        if r["predicted"] is None:  # values may come from a user's file: never markup
            table.add_row(str(r["t"]), plain(r["input"]),
                          MISS if r["expected"] is None else plain(r["expected"]),
                          plain(r["note"], "dim"), "", "")
            continue
        table.add_row(str(r["t"]), plain(r["input"]), plain(r["expected"]),
                      plain(r["predicted"]), f"{r['probability']:.3f}",
                      Text("✓", style="green") if r["match"] else Text("✗", style="bold red"))
    return table


def stream_line(scores: dict[str, Any], *, lag: int) -> Text:
    text = Text(f"streamed {scores['sequences']} fresh held-out sequences one number at a time: "
                f"echo accuracy of X(t-{lag}) ")
    text.append(f"{scores['accuracy']:.4f}", style="bold")
    text.append(f" (95% CI {scores['ci95_low']:.4f}-{scores['ci95_high']:.4f}, "
                f"{scores['correct']}/{scores['targets']} echoes)   chance "
                f"{scores['chance_accuracy']:.4f}")
    return text


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
