"""Commands for many runs: tabulate them, sweep a grid, compare them.

    echo-cli results runs/a runs/b --out results
    echo-cli sweep configs/lag1.yaml --grid model.kind=lstm,mlp --seeds 3
    echo-cli compare runs/sweep-lag1-<time> --plot acc.png

Parse, call, print: the work is in compare.py, sweep.py, executors.py and tracking.py.
"""

from __future__ import annotations

import enum
import os
import time
from pathlib import Path

import typer

from echo_cli.cli.common import SET_HELP, handled, new_console
from echo_cli.cli.config import complete_config, complete_run, complete_run_or_sweep
from echo_cli.config.loading import load_config
from echo_cli.errors import EchoError

app = typer.Typer()


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


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
    there = [name for name in ("results.md", "results.csv") if (out / name).exists()]
    if there and not force:
        raise EchoError(f"--out {out} already has {' and '.join(there)}; give --force to "
                        f"replace them, or another --out")
    rows = result_rows(runs)
    console = new_console()
    console.print(tables.results_table(rows))
    made = [(str(run), m.provenance if (m := rundir.try_read_metrics(run)) else None)
            for run in runs]
    for line in provenance.summary(made):
        console.print(line, markup=False)
    try:
        write_results(rows, out, sources=[str(run) for run in runs])
    except OSError as err:
        raise EchoError(f"cannot write to --out {out}: {err.strerror}") from None
    console.print(f"saved {out / 'results.md'} and {out / 'results.csv'}")


@app.command("memory-table", short_help="Tabulate memory runs beside the published table.")
@handled
def memory_table(
    paths: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run_or_sweep,
                                       help="Run or sweep directories of copy, adding and echo."),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR",
                             help="Directory for memory.md and memory.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace memory.md and memory.csv if --out has them."),
) -> None:
    """Tabulate memory runs: held-out loss beside the baseline, beside the published table."""
    from echo_cli.analysis.compare import memory_rows, write_memory
    from echo_cli.output import tables

    there = [name for name in ("memory.md", "memory.csv") if (out / name).exists()]
    if there and not force:
        raise EchoError(f"--out {out} already has {' and '.join(there)}; give --force to "
                        f"replace them, or another --out")
    rows = memory_rows(paths)
    new_console().print(tables.memory_table(rows))
    write_memory(rows, out, sources=[str(p) for p in paths])
    new_console().print(f"saved {out / 'memory.md'} and {out / 'memory.csv'}")


@app.command(short_help="Train every combination of a grid of config values.")
@handled
def sweep(
    config: Path = typer.Argument(..., metavar="CONFIG", autocompletion=complete_config,
                                  help="The base YAML config every run starts from."),
    grid: list[str] = typer.Option(
        [], "--grid", metavar="KEY=V1,V2,...",
        help="A key and the values to try, e.g. --grid data.lag=1,2,4. Repeatable: the sweep "
             "runs the cartesian product. Keys joined by + move together: "
             "--grid data.lag+data.window=1:5,2:6.",
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, max=10_000, metavar="N",
                              help="Seeds per grid point: seed, seed+1, ... from the config."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP + " Applies to every run.",
                                   metavar="KEY=VALUE"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N",
                                       help="Runs at once. Default: the number of cores."),
    executor: Executor = typer.Option(Executor.local, "--executor",
                                      help="local: worker processes here. ray: Ray tasks."),
    address: str | None = typer.Option(None, "--address", metavar="URL",
                                       help="With --executor ray: the cluster, e.g. "
                                            "ray://head:10001. Default: a local Ray instance."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR",
                                    help="Sweep directory. Default: runs/sweep-<name>-<time>/. "
                                         "The same command with the same --out resumes it."),
    mlflow: str | None = typer.Option(
        None, "--mlflow", metavar="URI",
        help="Also log the sweep to this MLflow tracking store: a parent run with a child run "
             "for each run. Default: $MLFLOW_TRACKING_URI when it is set.",
    ),
) -> None:
    """Train every combination of the grid values (times the seeds) and summarize them.

    Exit code 0 when every run finished, 1 when any run failed (each is listed), and 130, 143
    or 129 after Ctrl-C, SIGTERM or SIGHUP (finished runs are kept; resume with the same
    command).
    """
    from rich.text import Text

    from echo_cli.output import report, tables
    from echo_cli.output.report import plain
    from echo_cli.store import rundir, tracking
    from echo_cli.sweeps import executors
    from echo_cli.sweeps import sweep as sweeps
    from echo_cli.training import signals

    with signals.stopping():
        cfg = load_config(config, overrides=set_)
        parsed = sweeps.parse_grid(grid, required=True)
        mlflow_uri = tracking.mlflow_uri(mlflow)
        if address is not None and executor is not Executor.ray:
            raise EchoError("--address is for --executor ray; add --executor ray, or drop "
                            "--address")
        out = out or rundir.RUNS / f"sweep-{cfg.name}-{rundir.timestamp()}"
        job = sweeps.Sweep(out, config=config, grid=parsed, seeds=seeds, base_seed=cfg.seed,
                           base_overrides=list(set_), resolved=cfg.dump())
        records = job.prepare()
        sweeps.reject_invalid(job, records)
        console = new_console()
        skipped = sum(r.status == "done" for r in records)
        console.print(f"[bold]echo-cli sweep[/] {config}: {len(records)} runs "
                      f"({' x '.join(str(len(v)) for _, v in parsed)} grid points x {seeds} "
                      f"seeds){f', {skipped} already done' if skipped else ''} -> {out}/")
        title = f"sweep of {config}: {', '.join(job.keys)} x {seeds} seeds"
        finished = False
        notes: list[str] = []
        todo = [r for r in records if r.status == "not run"]
        workers = workers or os.cpu_count() or 1
        began = time.perf_counter()
        try:
            with report.SweepProgress(console, len(records)) as bar:
                finished = executors.run(job, records, executor=executor.value,
                                         address=address, workers=workers,
                                         on_update=lambda rs: bar.update([r.status for r in rs]))
        finally:
            job.release()
            summary = job.write_results(records, title=title)
            done = [r for r in records if r.status == "done"]
            try:  # TensorBoard's HParams table of the grid's values
                tracking.write_sweep_hparams(out, [
                    ({**dict(r.point.values), "seed": r.point.seed}, r.run_dir) for r in done],
                    job.keys)
            except Exception as err:  # noqa: BLE001 - never hide why the sweep ended
                notes.append(f"TensorBoard's HParams were not written ({type(err).__name__}: "
                             f"{err})")
        wall = time.perf_counter() - began
        plotted = job.plot(records, title=title)
        console.print(tables.sweep_summary_table(summary, job.keys, title=title))
        ran = [r for r in todo if r.status in ("done", "failed")]  # the wall time is theirs
        if ran and executor is Executor.local:
            console.print(report.sweep_cost_line(
                len(ran), wall=wall, train=sum(r.metrics.train_seconds for r in ran
                                               if r.metrics), workers=min(workers, len(todo))))
        failed = [r for r in records if r.status == "failed"]
        for r in failed:
            console.print(Text("failed ", style="red") + plain(f"{r.point.name}: {r.error}"))
        for note in notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"saved {out}/ (results.csv, summary.md{', sweep.png' if plotted else ''}, "
                      f"runs/{', tb/' if (out / tracking.TB).is_dir() else ''})")
        if mlflow_uri is not None:
            console.print(
                f"not logged to MLflow: interrupted by {signals.name()}; the same command "
                f"logs the sweep when it resumes" if not finished else
                tracking.log_sweep(mlflow_uri, out, out.name, {
                    **rundir.flatten(cfg.dump()), "sweep.grid": " ".join(grid),
                    "sweep.seeds": seeds}, [r.run_dir for r in records if r.status in (
                        "done", "failed") and rundir.is_run(r.run_dir)]), markup=False)
        if not finished:
            not_run = sum(r.status == "not run" for r in records)
            console.print(f"[yellow]interrupted[/] by {signals.name()}: {not_run} runs not run; "
                          f"resume with the same command and --out {out}")
            raise typer.Exit(signals.exit_code())
        if failed:
            console.print(f"[red]{len(failed)} of {len(records)} runs failed[/]; fix the cause "
                          f"and run the same command again to retry only them")
            raise typer.Exit(1)


@app.command(short_help="Put runs side by side: the keys that differ, the metrics.")
@handled
def compare(
    paths: list[Path] = typer.Argument(..., metavar="RUN", autocompletion=complete_run_or_sweep,
                                       help="Run directories and/or sweep directories."),
    plot: Path | None = typer.Option(
        None, "--plot", metavar="FILE",
        help="Draw held-out accuracy against the first differing key, one line per value of "
             "the second, with 95% intervals, to this PNG file.",
    ),
) -> None:
    """Put runs side by side: only the config keys that differ, then the metrics."""
    from rich.text import Text

    from echo_cli.analysis.compare import collect, differing_keys, plot_axes, plot_points
    from echo_cli.output import plots, tables
    from echo_cli.output.report import plain
    from echo_cli.store import provenance
    from echo_cli.store.files import write_atomic

    if plot is not None and plot.suffix.lower() != ".png":
        raise EchoError(f"--plot writes a PNG file, so its name ends in .png, got {plot}")
    runs, skipped = collect(paths)
    keys = differing_keys(runs)
    swept = plot_axes(runs, keys)
    console = new_console()
    for line in skipped:
        console.print(Text("skipped ", style="yellow") + plain(line))
    console.print(tables.compare_table(runs, keys))
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
    try:
        plot.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(plot, plots.sweep_png(
            plot_points(runs, swept), x_key=swept[0],
            line_key=swept[1] if len(swept) > 1 else None,
            chance=min(r["metrics"]["chance_accuracy"] for r in runs),
            title=f"held-out accuracy by {' and '.join(swept)}"))
    except OSError as err:
        raise EchoError(f"cannot write --plot {plot}: {err.strerror}") from None
    console.print(f"saved {plot}")
