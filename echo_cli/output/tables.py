"""Tables of many runs, from plain dicts: results, sweep summaries, compare and benchmarks,
for the console (rich) and for Markdown files.

    console.print(results_table(rows))
    text = sweep_markdown(summary, ["model.kind"], title="kinds")

The console tables fit the terminal they are printed on (see Fitted): no figure is cut to
"0.99…" on an 80-column terminal. This module imports no TensorFlow, and from echo_cli only
report's cell helpers: callers hand it plain data.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from echo_cli.output.report import plain, printable


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; a | inside a cell becomes / so it can't split the row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(printable(str(c)).replace("|", "/") for c in row) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# fitting a table to the terminal

class Fitted:
    """A table laid out for the width it is printed at, so that no cell is cut to "0.99…".

    Where the table fits, it prints as rich lays it out. Where it fits only with its cells
    wrapped, each column keeps at least the width of its longest word (rich alone would cut
    words short). Narrower still, each row prints as a block: the first `heading` cells as its
    heading (as header=value where `keyed`), then one "column  value" line per non-empty cell.

        console.print(Fitted(table, heading=2, keyed=True))
    """

    def __init__(self, table: Table, *, heading: int = 1, keyed: bool = False):
        self.table, self.heading, self.keyed = table, heading, keyed

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, pad = self.table, self.table.padding[1] + self.table.padding[3]
        ranges = [[Measurement.get(console, options, cell) for cell in [c.header, *c.cells]]
                  for c in table.columns]
        least = [max(r.minimum for r in rs) + pad for rs in ranges]
        most = [max(r.maximum for r in rs) + pad for rs in ranges]
        room = options.max_width - (2 if table.box and table.show_edge else 0) - (
            len(table.columns) - 1 if table.box else 0)  # less the borders
        if sum(most) <= room:
            yield table
        elif sum(least) <= room:  # the same table, its columns no narrower than their words
            narrowed = copy.copy(table)
            narrowed.columns = [dataclasses.replace(c, width=width - pad) for c, width
                                in zip(table.columns, _shrink(most, least, room), strict=True)]
            yield narrowed
        else:  # the labels as wide as they can be beside each value's longest word
            value = max((r.minimum for rs in ranges[self.heading:] for r in rs[1:]), default=0)
            label = max((rs[0].maximum for rs in ranges[self.heading:]), default=0)
            yield from self._blocks(max(1, min(label, options.max_width - 4 - value)))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def _blocks(self, label: int) -> RenderResult:
        columns = self.table.columns
        if self.table.title:
            yield Text(str(self.table.title), style="table.title")
        for row in zip(*[list(column.cells) for column in columns], strict=True):
            head = Text(", ", style="bold").join(
                Text.assemble(f"{column.header}=" if self.keyed else "", _text(cell))
                for column, cell in zip(columns, row[:self.heading], strict=False))
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim", overflow="fold", width=label)
            grid.add_column(overflow="fold")
            for column, cell in zip(columns[self.heading:], row[self.heading:], strict=True):
                if _text(cell).plain.strip():
                    grid.add_row(_text(column.header), cell)
            yield from (Text(""), head, Padding(grid, (0, 0, 0, 2), expand=False))


def _text(cell: RenderableType) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _shrink(widths: list[int], least: list[int], room: int) -> list[int]:
    """widths cut to sum to room, a column at a time from the widest, none below its least
    (as rich narrows a table, but never cutting a word); sum(least) <= room."""
    widths = list(widths)
    for _ in range(sum(widths) - room):
        i = max((i for i in range(len(widths)) if widths[i] > least[i]), key=widths.__getitem__)
        widths[i] -= 1
    return widths


class Breakable(Text):
    """A cell that may wrap after a comma (or each of `after`) as well as at a space, so that
    its column can be narrower than the cell: a run's name lag=1,units=32,seed=1, or a config
    key data.window as a header (after=".")."""

    def __init__(self, text: str, *, after: str = ","):
        super().__init__(text)
        self.after = after

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        marks = re.escape(self.after)  # the words, broken after each mark: lag=1, seed=2
        pieces = re.findall(rf"[^\s{marks}]*[{marks}]|[^\s{marks}]+", self.plain)
        return Measurement(max(map(cell_len, pieces), default=0),
                           super().__rich_measure__(console, options).maximum)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        breaks, start, mark = [], 0, None
        for i, ch in enumerate(self.plain):  # a break after the last mark of a word too wide
            if ch.isspace():
                start, mark = i + 1, None
                continue
            if i - start >= options.max_width and mark is not None:
                breaks.append(mark)
                start, mark = mark, None
            if ch in self.after:
                mark = i + 1
        text = Text("\n").join(self.divide(breaks)) if breaks else self
        yield from Text.__rich_console__(text, console, options)


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


def results_table(rows: list[dict[str, Any]]) -> Fitted:
    table = Table(title="results (from each run's metrics.json)", show_lines=True)
    for name in RESULT_COLUMNS:
        table.add_column(name, justify="left" if name in RESULT_COLUMNS[:4] else "right")
    for row in rows:
        table.add_row(*[plain(row[c]) for c in RESULT_COLUMNS])
    return Fitted(table)


def results_markdown(rows: list[dict[str, Any]], *, sources: list[str]) -> str:
    """results.md: the results table, then the run directories it was read from."""
    return ("<!-- written by `echo-cli results`; every number comes from a run's metrics.json -->\n"
            + markdown_table(RESULT_COLUMNS, [[row[c] for c in RESULT_COLUMNS] for row in rows])
            + "\nRun directories: " + ", ".join(f"`{printable(s)}`" for s in sources) + "\n")


def results_csv_fields(rows: list[dict[str, Any]]) -> list[str]:
    """results.csv holds every row key but the formatted accuracy cell."""
    return [c for c in rows[0] if c != "held-out accuracy (95% CI)"] if rows else []


# ---------------------------------------------------------------------------------------------
# sweeps: one header list for the console table and summary.md

def sweep_columns(keys: list[str]) -> list[str]:
    """The summary's header: the swept keys, then runs done, the accuracy figure (mean ± std
    over seeds; pooled over all held-out targets), chance, the mean held-out loss beside the
    task's baseline, parameters, mean train seconds and mean samples to the target (with how
    many runs reached it)."""
    return [*keys, "runs", "accuracy mean ± std", "pooled (95% CI)", "chance",
            "loss (baseline)", "params", "train s", "samples to target"]


def _num(x: Any, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def sweep_cells(s: dict[str, Any], keys: list[str]) -> list[str]:
    """One summary row (from sweep.summarize) as the cells of sweep_columns(keys)."""
    to_target = ("-" if s["mean_samples_to_target"] is None
                 else f"{s['mean_samples_to_target']:.0f} ({s['reached_target']})")
    return [*[str(s[k]) for k in keys], s["runs"],
            f"{_num(s['mean_accuracy'], '.4f')} ± {_num(s['std_accuracy'], '.4f')}",
            f"{_num(s['accuracy'], '.4f')} ({_num(s['ci95_low'], '.4f')}-"
            f"{_num(s['ci95_high'], '.4f')})",
            _num(s["chance"], ".4g"),
            f"{_num(s.get('mean_loss'), '.4g')} ({_num(s.get('baseline_loss'), '.4g')})",
            _num(s["parameters"], ","),
            _num(s["mean_train_seconds"], ".1f"), to_target]


def sweep_markdown(summary: list[dict[str, Any]], keys: list[str], *, title: str) -> str:
    """summary.md: the sweep's title and its summary table."""
    return (f"# {title}\n\n<!-- written by `echo-cli sweep` from its runs' metrics.json -->\n\n"
            + markdown_table(sweep_columns(keys), [sweep_cells(s, keys) for s in summary]))


def sweep_summary_table(summary: list[dict[str, Any]], keys: list[str], *,
                        title: str) -> Fitted:
    table = Table(title=title)
    for name in sweep_columns(keys):
        table.add_column(Breakable(name, after=".+") if name in keys else name, justify="right")
    for s in summary:
        table.add_row(*[plain(cell) for cell in sweep_cells(s, keys)])
    return Fitted(table, heading=len(keys), keyed=True)


def compare_table(runs: list[dict[str, Any]], keys: list[str]) -> Fitted:
    """Runs side by side: the config keys that differ, then the metrics."""
    table = Table(title=f"{len(runs)} runs: the config keys that differ, then the metrics")
    table.add_column("run", justify="left")
    for key in keys:
        table.add_column(Breakable(key, after=".+"), justify="right")
    for name in ("held-out (95% CI)", "chance", "params", "mult-adds", "train s", "updates",
                 "samples to target"):
        table.add_column(name, justify="right")
    for run in runs:
        c, m = run["config"], run["metrics"]
        table.add_row(
            Breakable(printable(Path(run["path"]).name)),
            *[plain(c.get(k)) for k in keys],
            f"{m['heldout_accuracy']:.4f} ({m['ci95_low']:.4f}-{m['ci95_high']:.4f})",
            f"{m['chance_accuracy']:.4g}",
            f"{m['parameters']:,}" if "parameters" in m else "-",
            f"{m['multiply_adds_per_sample']:,}" if "multiply_adds_per_sample" in m else "-",
            f"{m['train_seconds']:.1f}",
            str(m["updates"]),
            _to_target(m) or "-",
        )
    return Fitted(table)


# ---------------------------------------------------------------------------------------------
# benchmarks

def bench_table(record: dict[str, Any]) -> Fitted:
    """One row per engine and backend: seconds (first and cached runs under JAX), updates,
    rate, accuracy, memory, ratio."""
    table = Table(title=f"benchmark: {record['config']} on {record['machine']}")
    for name in ("engine / backend", "train s", "first run s", "updates/s", "held-out acc",
                 "peak RSS MB", "speed-up"):
        table.add_column(name, justify="left" if name == "engine / backend" else "right")
    ratios = record["ratios"]
    for m in record["measurements"]:
        label = f"{m['engine']} / {m['backend']}"
        shown = label + (" (default)" if m.get("default") else "")
        if not m["train_seconds"]:
            table.add_row(shown, "failed", plain(m["error"] or ""), "", "", "", "")
            continue
        ratio = ratios.get(label, {})
        speed, first = ratio.get("speedup_vs_tutorial"), ratio.get("first_run_speedup_vs_tutorial")
        seconds = f"{m['median_train_seconds']:.2f}"
        if len(m["train_seconds"]) > 1:
            seconds += f" ({min(m['train_seconds']):.2f}-{max(m['train_seconds']):.2f})"
        table.add_row(
            shown, seconds,
            f"{m['median_first_train_seconds']:.2f}" if m.get("first_train_seconds") else "-",
            f"{m['updates_per_second']:.0f}",
            f"{m['median_heldout_accuracy']:.4f}",
            f"{m['median_process_peak_rss_mb']:.0f}",
            "1.0× (reference)" if label == record["reference"] else
            (f"{speed:.1f}×" + (f" ({first:.1f}× first)" if first else "") if speed else ""),
        )
    return Fitted(table)


def wall_table(wall: dict[str, Any], *, config: Path | str, backend: str) -> Table:
    """Where a user's seconds go in one whole `echo-cli train`, phase by phase."""
    # the figure first, so that wrapping the title never parts it from its unit; the table
    # is narrow, so it is given room for the whole title
    title = (f"{wall['seconds']:.1f} s for a whole `echo-cli train {config}` ({backend}, "
             f"compile cache full)")
    table = Table(title=title, min_width=min(len(title), 76))
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for phase, seconds in wall["phases"].items():
        table.add_row(phase, f"{seconds:.2f}", f"{seconds / wall['seconds']:.0%}")
    return table


def scaling_table(record: dict[str, Any]) -> Fitted:
    """One row per kind and backend; seconds per update and peak RSS at each length."""
    lengths = sorted({r["length"] for r in record["rows"]})
    table = Table(title=f"seconds per update (peak RSS MB) on {record['task']}, "
                        f"on {record['machine']}")
    table.add_column("kind / backend")
    for n in lengths:
        table.add_column(f"T+20={n}", justify="right")
    table.add_column("growth", justify="right")
    keys = sorted({(r["kind"], r["backend"]) for r in record["rows"]})
    for kind, backend in keys:
        cells = []
        for n in lengths:
            row = next((r for r in record["rows"] if (r["kind"], r["backend"], r["length"])
                        == (kind, backend, n)), None)
            if row is None:
                cells.append("")
            elif row.get("error") or not row.get("seconds_per_update"):
                cells.append("failed")
            else:
                cells.append(f"{row['seconds_per_update']:.4f} "
                             f"({row['process_peak_rss_mb']:.0f})")
        slope = record["growth"].get(f"{kind} / {backend}")
        table.add_row(f"{kind} / {backend}", *cells,
                      f"∝ T^{slope:.2f}" if slope is not None else "")
    return Fitted(table)


def vocab_table(record: dict[str, Any]) -> Fitted:
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
    return Fitted(table, heading=2, keyed=True)


# ---------------------------------------------------------------------------------------------
# memory across time, beside Bai, Kolter & Koltun (2018), Table 1

BAI_2018 = [  # task, T, parameters, LSTM, GRU, RNN, TCN (held-out loss, as published)
    ("copy memory, loss", 1000, "~16k", "0.0204", "0.0197", "0.0202", "3.5e-5"),
    ("adding problem, loss", 600, "~70k", "0.164", "5.3e-5", "0.177", "5.8e-5"),
]
MEMORY_COLUMNS = ["task", "T", "kind", "params", "held-out loss", "baseline", "loss/baseline",
                  "accuracy figure (95% CI)", "chance", "updates", "samples", "train s"]


def memory_cells(r: dict[str, Any]) -> list[str]:
    """One run as the cells of MEMORY_COLUMNS."""
    return [r["task"], str(r["T"]), r["kind"], f"{r['parameters']:,}",
            f"{r['heldout_loss']:.4g}", f"{r['baseline_loss']:.4g}",
            f"{r['heldout_loss'] / r['baseline_loss']:.3g}",
            f"{r['figure']} {r['accuracy']:.4f} ({r['ci95_low']:.4f}-{r['ci95_high']:.4f})",
            f"{r['chance']:.4g}", str(r["updates"]), str(r["samples"]),
            f"{r['train_seconds']:.1f}"]


def memory_markdown(rows: list[dict[str, Any]], *, sources: list[str]) -> str:
    """memory.md: the measured runs, then Bai et al.'s published rows, set apart."""
    bai = markdown_table(["task (published)", "T", "parameters", "LSTM", "GRU", "RNN", "TCN"],
                         [list(map(str, row)) for row in BAI_2018])
    return ("<!-- written by `echo-cli memory-table`; every number in the first table comes "
            "from a run's metrics.json -->\n"
            "# Memory across time\n\n"
            "Held-out loss on fresh sequences beside the task's memoryless baseline (copy "
            "memory: 10·ln 8/(T+20); adding: 1/6; the echo: ln 100), and the task's accuracy "
            "figure beside chance (recalled symbols: 1/8; sums within 0.04 of the target: "
            "0.0784 for always predicting 1; the echo: 1/100).\n\n"
            + markdown_table(MEMORY_COLUMNS, [memory_cells(r) for r in rows])
            + "\n## Published, for comparison (not measured here)\n\n"
              "Bai, Kolter & Koltun (2018), \"An Empirical Evaluation of Generic Convolutional "
              "and Recurrent Networks for Sequence Modeling\", Table 1: held-out loss at a "
              "larger T, with the parameter counts given.\n\n" + bai
            + "\nRun directories: " + ", ".join(f"`{printable(s)}`" for s in sources) + "\n")


def memory_table(rows: list[dict[str, Any]]) -> Fitted:
    table = Table(title="memory across time (held-out loss beside the memoryless baseline)")
    for name in MEMORY_COLUMNS:
        table.add_column(name, justify="left" if name in ("task", "kind") else "right")
    for r in rows:
        table.add_row(*[plain(c) for c in memory_cells(r)])
    return Fitted(table, heading=3, keyed=True)
