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


def heldout_line(metrics: dict[str, Any]) -> Text:
    """Held-out accuracy with its 95% interval, beside chance."""
    acc, chance = metrics["heldout_accuracy"], metrics["chance_accuracy"]
    where = ("held-out sequences of the file" if metrics.get("data_source") == "csv"
             else "fresh sequences")
    style = "bold green" if metrics["ci95_low"] > chance else "bold yellow"
    text = Text("held-out accuracy ")
    text.append(f"{acc:.4f}", style=style)
    text.append(
        f"  (95% CI {metrics['ci95_low']:.4f}-{metrics['ci95_high']:.4f}, "
        f"{metrics['heldout_correct']}/{metrics['heldout_targets']} targets in "
        f"{metrics['heldout_sequences']} {where})   chance {chance:.4f}"
    )
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


def framing_table(
    *, t: Sequence[int], x: Sequence[Sequence[int]], y: Sequence, lag: int, n_unique: int,
    state_from: Sequence[int | None] | None = None, batch_size: int | None = None,
) -> Table:
    """One row per sample: t, the window as ids, the target (and where its state comes from).

    For sequence targets the target row is printed under the window, position by position.
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
    for i, ti in enumerate(t):
        cells = [str(ti)]
        if batch_size:
            cells.append(str(i // batch_size + 1))
        if sequence_target:
            cells.append(f"x {_aligned(x[i], width)}\ny {_aligned(y[i], width)}")
        else:
            cells += [_aligned(x[i], width), str(y[i])]
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


# ---------------------------------------------------------------------------------------------
# run directory files

def write_history(path: Path, history: list[dict[str, float]]) -> None:
    fields = ["epoch", "loss", "accuracy"]
    if any("validation_accuracy" in row for row in history):
        fields.append("validation_accuracy")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def bench_table(record: dict[str, Any]) -> Table:
    """One row per engine and backend: seconds, updates, rate, accuracy, memory, ratio."""
    table = Table(title=f"benchmark: {record['config']} on {record['machine']}")
    for name in ("engine / backend", "train s (median)", "range", "updates", "updates/s",
                 "held-out acc", "peak RSS MB", "speed-up"):
        table.add_column(name, justify="left" if name == "engine / backend" else "right")
    ratios = record["ratios"]
    for m in record["measurements"]:
        label = f"{m['engine']} / {m['backend']}"
        if not m["train_seconds"]:
            table.add_row(label, "failed", m["error"] or "", "", "", "", "", "")
            continue
        speed = ratios.get(label, {}).get("speedup_vs_tutorial")
        table.add_row(
            label,
            f"{m['median_train_seconds']:.2f}",
            f"{min(m['train_seconds']):.2f}-{max(m['train_seconds']):.2f}",
            str(m["updates"]),
            f"{m['updates_per_second']:.0f}",
            f"{m['median_heldout_accuracy']:.4f}",
            f"{m['median_peak_rss_mb']:.0f}",
            "1.0× (reference)" if label == record["reference"] else
            (f"{speed:.1f}×" if speed else ""),
        )
    return table


# ---------------------------------------------------------------------------------------------
# results tables, built only from run directories

RESULT_COLUMNS = ["name", "what it tests", "key settings", "held-out accuracy (95% CI)",
                  "chance", "scored targets", "epochs", "updates", "samples to target",
                  "train seconds"]


def key_settings(cfg: dict[str, Any]) -> str:
    d, m, t = cfg["data"], cfg["model"], cfg["train"]
    parts = [f"lag {d['lag']}"]
    parts.append("full context" if d["context"] == "full" else f"window {d['window']}")
    if d["missing"] != "drop":
        parts.append(f"missing: {d['missing']}")
    if d["target"] == "sequence":
        parts.append("sequence target")
    parts.append(f"{m.get('kind', 'lstm').upper()}({m['units']})")
    parts.append(f"{'stateful' if m['stateful'] else 'stateless'}, batch {t['batch_size']}")
    if t["learning_rate"] != 0.001:
        parts.append(f"lr {t['learning_rate']:g}")
    if t.get("target_accuracy") is not None:
        parts.append(f"stop at {t['target_accuracy']:g} validation")
    return ", ".join(parts)


def result_row(cfg: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One results-table row from a run's config.yaml and metrics.json."""
    acc = metrics.get("heldout_accuracy")
    shown = "interrupted" if acc is None else (
        f"{acc:.4f} ({metrics['ci95_low']:.4f}-{metrics['ci95_high']:.4f})"
    )
    if metrics.get("heldout_exact_match") is not None:
        shown += f"; exact match {metrics['heldout_exact_match']:.4f}"
    return {
        "name": metrics["name"],
        "what it tests": cfg.get("description", ""),
        "key settings": key_settings(cfg),
        "held-out accuracy (95% CI)": shown,
        "chance": f"{metrics['chance_accuracy']:.4g}",
        "scored targets": metrics.get("heldout_targets"),
        "epochs": metrics["epochs_completed"],
        "updates": metrics["updates"],
        "samples to target": _to_target(metrics),
        "train seconds": f"{metrics['train_seconds']:.1f}",
        # unformatted, for the CSV
        "heldout_accuracy": acc,
        "ci95_low": metrics.get("ci95_low"),
        "ci95_high": metrics.get("ci95_high"),
        "backend": metrics.get("backend"),
        "engine": metrics.get("engine"),
    }


def _to_target(metrics: dict[str, Any]) -> str:
    if metrics.get("target_accuracy") is None:
        return ""
    if metrics.get("samples_to_target") is None:
        return f"not reached ({metrics['target_accuracy']:g})"
    return f"{metrics['samples_to_target']} (to {metrics['target_accuracy']:g})"


def results_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="results (from each run's metrics.json)", show_lines=True)
    for name in RESULT_COLUMNS:
        table.add_column(name, justify="left" if name in RESULT_COLUMNS[:4] else "right")
    for row in rows:
        table.add_row(*[Text(str(row[c])) for c in RESULT_COLUMNS])
    return table


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; a | inside a cell becomes / so it can't split the row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def results_markdown(rows: list[dict[str, Any]]) -> str:
    return markdown_table(RESULT_COLUMNS, [[row[c] for c in RESULT_COLUMNS] for row in rows])


def write_results(rows: list[dict[str, Any]], out_dir: Path, *, sources: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(
        "<!-- written by `echo-cli results`; every number comes from a run's metrics.json -->\n"
        + results_markdown(rows)
        + "\nRun directories: " + ", ".join(f"`{s}`" for s in sources) + "\n",
        encoding="utf-8",
    )
    fields = [c for c in rows[0] if c != "held-out accuracy (95% CI)"] if rows else []
    with (out_dir / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def predict_table(rows: list[dict[str, Any]], *, lag: int) -> Table:
    """t, input, expected X(t-lag), prediction, probability and match, one row per input."""
    table = Table(title=f"predictions of X(t-{lag})")
    for name in ("t", "X(t)", f"expected X(t-{lag})", "predicted", "probability", "match"):
        table.add_column(name, justify="right")
    for r in rows:
        if r["predicted"] is None:  # values may come from a user's file: never markup
            table.add_row(str(r["t"]), Text(str(r["input"])),
                          MISS if r["expected"] is None else Text(str(r["expected"])),
                          Text(r["note"], style="dim"), "", "")
            continue
        table.add_row(str(r["t"]), Text(str(r["input"])), Text(str(r["expected"])),
                      Text(str(r["predicted"])), f"{r['probability']:.3f}",
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


def vocab_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"one-hot vs embedding: {record['config']}, {record['epochs']} epochs, "
                        f"{record['backend']}, on {record['machine']}")
    for name in ("n_unique", "encoding", "train s", "peak RSS MB (train+eval)",
                 "peak RSS MB (process)", "held-out acc", "chance"):
        table.add_column(name, justify="right")
    for r in record["rows"]:
        if "error" in r:
            table.add_row(str(r["n_unique"]), r["encoding"], "failed", r["error"], "", "", "")
            continue
        table.add_row(str(r["n_unique"]), r["encoding"], f"{r['train_seconds']:.1f}",
                      f"{r['peak_rss_mb']:.0f}", f"{r['process_peak_rss_mb']:.0f}",
                      f"{r['heldout_accuracy']:.4f}", f"{r['chance_accuracy']:.4g}")
    return table


# ---------------------------------------------------------------------------------------------
# plots (matplotlib, imported only when a plot is drawn)

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, float]], path: Path, *, chance: float,
                title: str) -> None:
    """curves.png: training loss and accuracy per epoch, with chance drawn as a line."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["loss"] for r in history], linewidth=0.8)
    ax_loss.set(xlabel="epoch (one sequence each)", ylabel="training loss", title="loss")
    ax_acc.plot(epochs, [r["accuracy"] for r in history], linewidth=0.8, label="training")
    checks = [r for r in history if "validation_accuracy" in r]
    if checks:
        ax_acc.plot([r["epoch"] for r in checks], [r["validation_accuracy"] for r in checks],
                    "o-", markersize=3, label="validation")
    ax_acc.axhline(chance, color="grey", linestyle="--", label=f"chance ({chance:.3g})")
    ax_acc.set(xlabel="epoch (one sequence each)", ylabel="accuracy", ylim=(-0.02, 1.02),
               title="accuracy")
    ax_acc.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(points: list[dict[str, Any]], path: Path, *, x_key: str, line_key: str | None,
               chance: float, title: str) -> None:
    """Held-out accuracy against x_key, one line per value of line_key, intervals as error bars.

    points: dicts with x_key (and line_key), accuracy, ci95_low, ci95_high.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups: dict[Any, list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault(p.get(line_key) if line_key else None, []).append(p)
    xs = list(dict.fromkeys(p[x_key] for p in points))  # grid order for names
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
        xs.sort()
    for label, group in groups.items():
        group = sorted(group, key=lambda p: xs.index(p[x_key]))
        at = [xs.index(p[x_key]) for p in group]
        acc = [p["accuracy"] for p in group]
        err = [[a - p["ci95_low"] for a, p in zip(acc, group, strict=True)],
               [p["ci95_high"] - a for a, p in zip(acc, group, strict=True)]]
        ax.errorbar(at, acc, yerr=err, marker="o", capsize=3,
                    label=f"{line_key}={label}" if line_key else None)
    ax.axhline(chance, color="grey", linestyle="--", label=f"chance ({chance:.3g})")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set(xlabel=x_key, ylabel="held-out accuracy (95% CI)", ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)



def sweep_summary_table(summary: list[dict[str, Any]], keys: list[str], *, title: str) -> Table:
    from echo_cli.sweep import summary_cells

    table = Table(title=title)
    for name in [*keys, "runs", "accuracy mean ± std", "pooled (95% CI)", "chance", "params",
                 "train s", "samples to target"]:
        table.add_column(name, justify="right")
    for s in summary:
        table.add_row(*summary_cells(s, keys))
    return table


def compare_table(runs: list[dict[str, Any]], keys: list[str]) -> Table:
    """Runs side by side: the config keys that differ, then the metrics."""
    table = Table(title=f"{len(runs)} runs: the config keys that differ, then the metrics")
    table.add_column("run", justify="left")
    for key in keys:
        table.add_column(key, justify="right")
    for name in ("held-out (95% CI)", "chance", "params", "mult-adds", "train s", "updates",
                 "samples to target"):
        table.add_column(name, justify="right")
    for run in runs:
        c, m = run["config"], run["metrics"]
        table.add_row(
            Text(Path(run["path"]).name),
            *[Text(str(c.get(k))) for k in keys],
            f"{m['heldout_accuracy']:.4f} ({m['ci95_low']:.4f}-{m['ci95_high']:.4f})",
            f"{m['chance_accuracy']:.4g}",
            f"{m['parameters']:,}" if "parameters" in m else "-",
            f"{m['multiply_adds_per_sample']:,}" if "multiply_adds_per_sample" in m else "-",
            f"{m['train_seconds']:.1f}",
            str(m["updates"]),
            _to_target(m) or "-",
        )
    return table
