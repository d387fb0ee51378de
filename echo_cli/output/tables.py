"""Tables of many runs, from plain dicts: results, sweep summaries, compare and benchmarks,
for the console (rich) and for Markdown files.

    console.print(results_table(rows))
    text = sweep_markdown(summary, ["model.kind"], title="kinds")

The console tables fit the terminal they are printed on (fitted.py): no figure is cut to
"0.99…" on an 80-column terminal. This module imports no TensorFlow, and from echo_cli only
the output helpers: callers hand it plain data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from echo_cli.output.fitted import Breakable, Fitted
from echo_cli.output.report import plain, printable


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; a | inside a cell becomes / so it can't split the row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(printable(str(c)).replace("|", "/") for c in row) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# results tables, built only from run directories

RESULT_COLUMNS = ["name", "what it tests", "key settings", "held-out accuracy (95% CI)",
                  "chance", "scored targets", "epochs", "updates", "samples to target",
                  "train seconds"]


def model_settings(cfg: dict[str, Any]) -> list[str]:
    """The model and training part of the results table's "key settings" column."""
    m, t = cfg["model"], cfg["train"]
    parts = [f"{m.get('kind', 'lstm').upper()}({m['units']})",
             f"{'stateful' if m['stateful'] else 'stateless'}, batch {t['batch_size']}"]
    if t["learning_rate"] != 0.001:
        parts.append(f"lr {t['learning_rate']:g}")
    if t.get("target_accuracy") is not None:
        parts.append(f"stop at {t['target_accuracy']:g} validation")
    if t.get("target_loss") is not None:
        parts.append(f"stop at {t['target_loss']:g} validation loss")
    return parts


def result_row(cfg: dict[str, Any], metrics: dict[str, Any], *,
               task_settings: list[str], figure: str = "") -> dict[str, Any]:
    """One results-table row from a run's config.yaml and metrics.json; the task's part of the
    key settings and the name of its accuracy figure come from the task."""
    acc = metrics.get("heldout_accuracy")
    named = f"{figure}: " if figure and figure != "held-out accuracy" else ""
    shown = "interrupted" if acc is None else (
        f"{named}{acc:.4f} ({metrics['ci95_low']:.4f}-{metrics['ci95_high']:.4f})")
    if metrics.get("heldout_exact_match") is not None:
        shown += f"; exact match {metrics['heldout_exact_match']:.4f}"
    return {
        "name": metrics["name"],
        "what it tests": cfg.get("description", ""),
        "key settings": ", ".join([*task_settings, *model_settings(cfg)]),
        "held-out accuracy (95% CI)": shown,
        "chance": f"{metrics['chance_accuracy']:.4g}",
        "scored targets": metrics.get("heldout_targets"),
        "epochs": metrics["epochs_completed"],
        "updates": metrics["updates"],
        "samples to target": _to_target(metrics),
        "train seconds": f"{metrics['train_seconds']:.1f}",
        # unformatted, for results.csv and the notebook: metrics.json's own names
        "description": cfg.get("description", ""),
        "settings": ", ".join([*task_settings, *model_settings(cfg)]),
        "heldout_accuracy": acc,
        "ci95_low": metrics.get("ci95_low"),
        "ci95_high": metrics.get("ci95_high"),
        "chance_accuracy": metrics["chance_accuracy"],
        "heldout_targets": metrics.get("heldout_targets"),
        "epochs_completed": metrics["epochs_completed"],
        "samples_to_target": metrics.get("samples_to_target"),
        "train_seconds": metrics["train_seconds"],
        "backend": metrics.get("backend"),
        "engine": metrics.get("engine"),
    }


def _to_target(metrics: dict[str, Any]) -> str:
    target = next((f"{metrics[k]:g}{unit}" for k, unit in (("target_accuracy", ""),
                                                           ("target_loss", " loss"))
                   if metrics.get(k) is not None), None)
    if target is None:
        return ""
    if metrics.get("samples_to_target") is None:
        return f"not reached ({target})"
    return f"{metrics['samples_to_target']} (to {target})"


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


# results.csv's columns, unformatted and named as in metrics.json (snake_case)
RESULT_FIELDS = ["name", "description", "settings", "heldout_accuracy", "ci95_low", "ci95_high",
                 "chance_accuracy", "heldout_targets", "epochs_completed", "updates",
                 "samples_to_target", "train_seconds", "backend", "engine"]


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


def stream_table(stream: dict[str, Any]) -> Table:
    """A pipe through `echo-cli stream`, calm and with one core kept busy by a busy loop;
    steady is the rate after the start-up (a pipe of one number), - where the difference is
    within the start-up's own noise."""
    table = Table(title=f"`echo-cli stream`: {stream['numbers']:,} piped integers on "
                        f"{stream['backend']}")
    table.add_column("machine", no_wrap=True)
    for name in ("numbers/s", "seconds", "start-up s", "steady /s", "load avg"):
        table.add_column(name, justify="right", no_wrap=True)
    for figures, how in ((stream, "calm"), (stream.get("busy"), "one core busy")):
        if figures:
            table.add_row(how, f"{figures['numbers_per_second']:,.0f}",
                          f"{figures['seconds']:.2f}", f"{figures['startup_seconds']:.2f}",
                          _num(figures["steady_numbers_per_second"], ",.0f"),
                          f"{figures['load_average']:.1f}")
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


def tricks_table(record: dict[str, Any]) -> Fitted:
    """What each start-up trick saves a whole train, and whether it earns its place."""
    table = Table(title=f"a whole `echo-cli train {record['config']}` takes "
                        f"{record['median_seconds_all_on']:.2f} s with every start-up trick "
                        f"(median of {record['repeat']}, {record['machine']})")
    for name in ("turned off", "seconds", "saves", "kept"):
        table.add_column(name, justify="left" if name == "turned off" else "right")
    for trick, r in record["tricks"].items():
        table.add_row(trick, f"{r['median_seconds_without']:.2f}", f"{r['saves_seconds']:+.2f} s",
                      "yes" if r["kept"] else "no (< 0.3 s)")
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
    """One run as the cells of MEMORY_COLUMNS; the seeds of one run together (r["seeds"]):
    their mean, with the 95% interval of the mean."""
    kind = r["kind"] + (f" (mean of {r['seeds']} seeds)" if r.get("seeds") else "")
    ci = "-" if r["ci95_low"] is None else f"{r['ci95_low']:.4f}-{r['ci95_high']:.4f}"
    return [r["task"], str(r["T"]), kind, f"{r['parameters']:,}",
            f"{r['heldout_loss']:.4g}", f"{r['baseline_loss']:.4g}",
            f"{r['heldout_loss'] / r['baseline_loss']:.3g}",
            f"{r['figure']} {r['accuracy']:.4f} ({ci})",
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
