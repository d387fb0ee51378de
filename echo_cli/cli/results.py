"""Commands that put finished runs side by side: a results table, compare, the memory tables.

    echo-cli results runs/a runs/b --out results
    echo-cli compare runs/sweep-lag1-<time> --plot acc.png
    echo-cli memory-table runs/memory-copy runs/memory-adding --out results
    echo-cli modern-table runs/modern-copy runs/modern-induction --out results

Parse, call, print: the work is in analysis/compare.py and output/tables.py. A run that has
not finished (or cannot be read) is named in one line and left out; the rest are tabulated.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from echo_cli.cli.common import handled, new_console, refuse_overwrite, writing
from echo_cli.cli.completion import complete_run, complete_run_or_sweep
from echo_cli.errors import EchoError
from echo_cli.output.report import plain

app = typer.Typer()


def _skipped(console, lines: list[str]) -> None:
    for line in lines:
        console.print(Text("skipped ", style="yellow") + plain(line))


@app.command(short_help="Tabulate finished runs into results.md and results.csv.")
@handled
def results(
    runs: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                                      help="Run directories, in the order to list them."),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR",
                             help="Directory for results.md and results.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace results.md and results.csv if --out has them."),
) -> None:
    """Tabulate finished runs from their config.yaml and metrics.json (no number typed)."""
    from echo_cli.analysis.compare import result_rows, write_results
    from echo_cli.output import tables
    from echo_cli.store import provenance, rundir

    if rundir.is_run(out) or (out / rundir.LOCK).exists():
        raise EchoError(f"--out {out} is a run directory; write the results elsewhere")
    refuse_overwrite(out, ["results.md", "results.csv"], force=force)
    rows, skipped = result_rows(runs)
    console = new_console()
    _skipped(console, skipped)
    console.print(tables.results_table(rows))
    tabulated = [Path(row["run_dir"]) for row in rows]  # the runs skipped are not sources
    made = [(str(run), m.provenance if (m := rundir.try_read_metrics(run)) else None)
            for run in tabulated if rundir.is_run(run)]  # not the seeds of a run together
    for line in provenance.summary(made):
        console.print(line, markup=False)
    with writing(out):
        write_results(rows, out, sources=[str(run) for run in tabulated])
    console.print(f"saved {out / 'results.md'} and {out / 'results.csv'}")


@app.command("memory-table", short_help="Tabulate memory runs beside the published table.")
@handled
def memory_table(
    paths: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run_or_sweep,
                                       help="Run or sweep directories of any task."),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR",
                             help="Directory for memory.md and memory.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace memory.md and memory.csv if --out has them."),
) -> None:
    """Tabulate memory runs: held-out loss beside the baseline, beside the published table."""
    from echo_cli.analysis.compare import memory_rows, write_memory
    from echo_cli.output import tables

    refuse_overwrite(out, ["memory.md", "memory.csv"], force=force)
    rows = memory_rows(paths)
    console = new_console()
    console.print(tables.memory_table(rows))
    with writing(out):
        write_memory(rows, out, sources=[str(p) for p in paths])
    console.print(f"saved {out / 'memory.md'} and {out / 'memory.csv'}")


@app.command("modern-table", short_help="Tabulate selective copying, induction and capacity "
                                        "runs beside Gu & Dao.")
@handled
def modern_table(
    paths: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run_or_sweep,
                                       help="Run or sweep directories."),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR",
                             help="Directory for modern.md and modern.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace modern.md and modern.csv if --out has them."),
) -> None:
    """Tabulate modern memory runs: each task setting's accuracy per kind at the same budget,
    accuracy at other lengths, memory capacity beside N (where `echo-cli capacity RUN` ran),
    then Gu & Dao's published rows, set apart."""
    from echo_cli.analysis.modern import modern_table as gather
    from echo_cli.analysis.modern import write_modern
    from echo_cli.output.modern import modern_tables

    refuse_overwrite(out, ["modern.md", "modern.csv"], force=force)
    table = gather(paths)
    console = new_console()
    for fitted in modern_tables(table):
        console.print(fitted)
    with writing(out):
        write_modern(table, out, sources=[str(p) for p in paths])
    console.print(f"saved {out / 'modern.md'} and {out / 'modern.csv'}")


@app.command(short_help="Put runs side by side: the keys that differ, the metrics.")
@handled
def compare(
    paths: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run_or_sweep,
                                       help="Run directories and/or sweep directories."),
    plot: Path | None = typer.Option(
        None, "--plot", metavar="FILE",
        help="Draw held-out accuracy against the first differing key, one line per value of "
             "the second, with 95% intervals, to this PNG file."),
) -> None:
    """Put runs side by side: only the config keys that differ, then the metrics."""
    from echo_cli.analysis.compare import (
        collect,
        differing_keys,
        plot_axes,
        plot_points,
        seeds_rows,
    )
    from echo_cli.output import plots, tables
    from echo_cli.output.seeds import summaries_table
    from echo_cli.store import provenance
    from echo_cli.store.files import write_atomic

    if plot is not None and plot.suffix.lower() != ".png":
        raise EchoError(f"--plot writes a PNG file, so its name ends in .png, got {plot}")
    runs, skipped = collect(paths)
    keys = differing_keys(runs)
    swept = plot_axes(runs, keys)
    console = new_console()
    _skipped(console, skipped)
    console.print(tables.compare_table(runs, keys))
    together = seeds_rows(paths)
    if together:
        console.print(summaries_table(together))
    for line in provenance.summary([(str(r["path"]), r["metrics"].get("provenance"))
                                    for r in runs]):
        console.print(line, markup=False)
    if plot is None:
        return
    if not swept:
        raise EchoError("--plot needs runs whose configs differ in at least one key besides "
                        "name, description and seed")
    if len(swept) > 2:
        raise EchoError(f"--plot draws one key against another, but these runs differ in "
                        f"{len(swept)}: {', '.join(swept)}; compare fewer runs")
    with writing(plot.parent, option="--plot"):
        write_atomic(plot, plots.sweep_png(
            plot_points(runs, swept), x_key=swept[0],
            line_key=swept[1] if len(swept) > 1 else None,
            chance=min(r["metrics"]["chance_accuracy"] for r in runs),
            title=f"held-out accuracy by {' and '.join(swept)}"))
    console.print(f"saved {plot}")
