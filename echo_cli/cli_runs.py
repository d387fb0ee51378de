"""Commands for many runs: tabulate them, sweep a grid, compare them, benchmark the engines.

    echo-cli results runs/a runs/b --out results
    echo-cli sweep configs/lag1.yaml --grid model.kind=lstm,mlp --seeds 3
    echo-cli compare runs/sweep-lag1-<time> --plot acc.png
    echo-cli bench configs/lag1.yaml

Parse, call, print: the work is in compare.py, sweep.py, executors.py and bench.py.
"""

from __future__ import annotations

import enum
import os
import time
from pathlib import Path

import typer
from typer.core import TyperGroup

from echo_cli.config import load_config
from echo_cli.errors import EchoError
from echo_cli.ui import SET_HELP, handled, new_console

app = typer.Typer()


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


@app.command()
@handled
def results(
    runs: list[Path] = typer.Argument(..., help="Run directories, in the order to list them."),
    out: Path = typer.Option(Path("results"), "--out",
                             help="Directory for results.md and results.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace results.md and results.csv if --out has them."),
) -> None:
    """Tabulate finished runs from their config.yaml and metrics.json (no number typed)."""
    from echo_cli import rundir, tables
    from echo_cli.compare import result_rows, write_results

    if rundir.is_run(out) or (out / rundir.LOCK).exists():
        raise EchoError(f"--out {out} is a run directory; write the results elsewhere")
    there = [name for name in ("results.md", "results.csv") if (out / name).exists()]
    if there and not force:
        raise EchoError(f"--out {out} already has {' and '.join(there)}; give --force to "
                        f"replace them, or another --out")
    rows = result_rows(runs)
    console = new_console()
    console.print(tables.results_table(rows))
    try:
        write_results(rows, out, sources=[str(run) for run in runs])
    except OSError as err:
        raise EchoError(f"cannot write to --out {out}: {err.strerror}") from None
    console.print(f"saved {out / 'results.md'} and {out / 'results.csv'}")


@app.command("memory-table")
@handled
def memory_table(
    paths: list[Path] = typer.Argument(..., help="Run or sweep directories of copy memory, "
                                                 "adding and echo runs."),
    out: Path = typer.Option(Path("results"), "--out",
                             help="Directory for memory.md and memory.csv."),
    force: bool = typer.Option(False, "--force",
                               help="Replace memory.md and memory.csv if --out has them."),
) -> None:
    """Tabulate memory runs: held-out loss beside the baseline, beside the published table."""
    from echo_cli import tables
    from echo_cli.compare import memory_rows, write_memory

    there = [name for name in ("memory.md", "memory.csv") if (out / name).exists()]
    if there and not force:
        raise EchoError(f"--out {out} already has {' and '.join(there)}; give --force to "
                        f"replace them, or another --out")
    rows = memory_rows(paths)
    new_console().print(tables.memory_table(rows))
    write_memory(rows, out, sources=[str(p) for p in paths])
    new_console().print(f"saved {out / 'memory.md'} and {out / 'memory.csv'}")


@app.command()
@handled
def sweep(
    config: Path = typer.Argument(..., help="The base YAML config every run starts from."),
    grid: list[str] = typer.Option(
        [], "--grid", metavar="KEY=V1,V2,...",
        help="A key and the values to try, e.g. --grid data.lag=1,2,4. Repeatable: the sweep "
             "runs the cartesian product. Keys joined by + move together: "
             "--grid data.lag+data.window=1:5,2:6.",
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, max=10_000,
                              help="Seeds per grid point: seed, seed+1, ... from the config."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP + " Applies to every run.",
                                   metavar="KEY=VALUE"),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Runs at once. Default: the number of cores."),
    executor: Executor = typer.Option(Executor.local, "--executor",
                                      help="local: worker processes here. ray: Ray tasks."),
    address: str | None = typer.Option(None, "--address",
                                       help="With --executor ray: the cluster, e.g. "
                                            "ray://head:10001. Default: a local Ray instance."),
    out: Path | None = typer.Option(None, "--out",
                                    help="Sweep directory. Default: runs/sweep-<name>-<time>/. "
                                         "The same command with the same --out resumes it."),
) -> None:
    """Train every combination of the grid values (times the seeds) and summarize them.

    Exit code 0 when every run finished, 1 when any run failed (each is listed), and 130, 143
    or 129 after Ctrl-C, SIGTERM or SIGHUP (finished runs are kept; resume with the same
    command).
    """
    from rich.text import Text

    from echo_cli import executors, report, rundir, signals, tables
    from echo_cli import sweep as sweeps
    from echo_cli.report import plain

    with signals.stopping():
        cfg = load_config(config, overrides=set_)
        parsed = sweeps.parse_grid(grid, required=True)
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
        wall = time.perf_counter() - began
        plotted = job.plot(records, title=title)
        console.print(tables.sweep_summary_table(summary, job.keys, title=title))
        ran = [r.metrics.train_seconds for r in todo if r.status == "done" and r.metrics]
        if ran and executor is Executor.local:
            console.print(report.sweep_cost_line(len(ran), wall=wall, train=sum(ran),
                                                 workers=min(workers, len(todo))))
        failed = [r for r in records if r.status == "failed"]
        for r in failed:
            console.print(Text("failed ", style="red") + plain(f"{r.point.name}: {r.error}"))
        console.print(f"saved {out}/ (results.csv, summary.md{', sweep.png' if plotted else ''}, "
                      f"runs/)")
        if not finished:
            not_run = sum(r.status == "not run" for r in records)
            console.print(f"[yellow]interrupted[/] by {signals.name()}: {not_run} runs not run; "
                          f"resume with the same command and --out {out}")
            raise typer.Exit(signals.exit_code())
        if failed:
            console.print(f"[red]{len(failed)} of {len(records)} runs failed[/]; fix the cause "
                          f"and run the same command again to retry only them")
            raise typer.Exit(1)


@app.command()
@handled
def compare(
    paths: list[Path] = typer.Argument(..., help="Run directories and/or sweep directories."),
    plot: Path | None = typer.Option(
        None, "--plot",
        help="Draw held-out accuracy against the first differing key, one line per value of "
             "the second, with 95% intervals, to this PNG file.",
    ),
) -> None:
    """Put runs side by side: only the config keys that differ, then the metrics."""
    from rich.text import Text

    from echo_cli import plots, tables
    from echo_cli.compare import collect, differing_keys, plot_axes, plot_points
    from echo_cli.files import write_atomic
    from echo_cli.report import plain

    if plot is not None and plot.suffix.lower() != ".png":
        raise EchoError(f"--plot writes a PNG file, so its name ends in .png, got {plot}")
    runs, skipped = collect(paths)
    keys = differing_keys(runs)
    swept = plot_axes(runs, keys)
    console = new_console()
    for line in skipped:
        console.print(Text("skipped ", style="yellow") + plain(line))
    console.print(tables.compare_table(runs, keys))
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


def _writable(out: Path) -> None:
    """Check, before a long benchmark, that its results file can be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EchoError(f"cannot write --out {out}: {err.strerror}") from None
    if out.is_dir():
        raise EchoError(f"--out {out} is a directory; give a file name such as "
                        f"bench/results.json")


class _BenchGroup(TyperGroup):
    """`bench` runs its engines benchmark unless a subcommand is named, so that
    `echo-cli bench configs/lag1.yaml` works as it always has."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["engines", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_BenchGroup, name="bench",
    help="Speed and memory measured in one run: `bench [CONFIG]` times the tutorial loop "
         "against the default engine; `bench scaling` and `bench vocab` measure cost as the "
         "work grows.")
app.add_typer(bench_app)


def _refuse_overwrite(out: Path, force: bool) -> None:
    """Check, before a long benchmark, that its results file can be written and that it would
    replace nothing without --force."""
    _writable(out)
    if out.exists() and not force:
        raise EchoError(f"--out {out} already exists and is left untouched; give another file "
                        f"or add --force to replace it")


FORCE_HELP = "Replace the --out file (and its plot) if it exists."


@bench_app.command("engines")
@handled
def bench(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), help="The config to time."),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Train this many epochs instead of the config's."),
    repeat: int = typer.Option(1, "--repeat", min=1, max=100,
                               help="Runs per engine; the table shows the median and range."),
    backends: str = typer.Option(
        "tensorflow,jax", "--backends",
        help="Comma-separated Keras backends for the fast engine, beside the default (auto) "
             "and the tutorial engine (always tensorflow). One not installed is skipped with a "
             "note.",
    ),
    stream: int = typer.Option(100_000, "--stream", min=0, max=10_000_000, metavar="N",
                               help="Also time `echo-cli stream` on a pipe of N integers; 0 "
                                    "skips it."),
    out: Path = typer.Option(Path("bench/results.json"), "--out",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Time the tutorial engine against the default (and each backend) on the same updates, a
    whole `echo-cli train` by phase, and a pipe through `echo-cli stream`, in one run."""
    from echo_cli import bench as benchmark
    from echo_cli import tables
    from echo_cli.files import write_json

    cfg = load_config(config, overrides=[f"train.epochs={epochs}"] if epochs else [])
    _refuse_overwrite(out, force)
    console = new_console()
    usable, notes = benchmark.usable_backends(backends)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    default = benchmark.default_backend()
    console.print(f"[bold]echo-cli bench[/] {config}: {cfg.train.epochs} epochs, "
                  f"{repeat} run(s) per engine; the default backend here is {default}")
    with console.status("benchmarking") as status:
        results = benchmark.run_bench(config, backends=usable, epochs=epochs, repeat=repeat,
                                      progress=lambda text: status.update(text))
        piped = None
        if stream:
            try:
                piped = benchmark.run_stream_bench(stream,
                                                   progress=lambda text: status.update(text))
            except RuntimeError as err:
                console.print(f"[red]stream[/]: the measurement failed ({err})")
    record = benchmark.record(config, results, epochs=cfg.train.epochs, repeat=repeat,
                              stream=piped)
    console.print(tables.bench_table(record))
    for m in results:
        if m.error:
            console.print(f"[red]{m.label}[/]: a run failed ({m.error}); "
                          f"{len(m.train_seconds)} of {repeat} runs are in the table")
    for label, ratio in record["ratios"].items():
        first = ratio.get("first_run_speedup_vs_tutorial")
        console.print(
            f"{label} vs {record['reference']}: [bold]{ratio['speedup_vs_tutorial']:.1f}× "
            f"faster[/] at equal updates"
            + (f" ({first:.1f}× on a first run, compiling with an empty cache)" if first else "")
            + f", peak RSS {ratio['process_rss_vs_tutorial']:.2f}× (whole process), held-out "
              f"accuracy {ratio['accuracy_points_vs_tutorial']:+.2f} points"
        )
    if record["wall"]:
        console.print(tables.wall_table(record["wall"], config=config,
                                        backend=record["default"]))
    if piped:
        console.print(f"stream: {piped['numbers']:,} piped integers echoed in "
                      f"{piped['seconds']:.1f} s on {piped['backend']}: "
                      f"[bold]{piped['numbers_per_second']:,.0f} numbers/s[/] "
                      f"({piped['steady_numbers_per_second']:,.0f}/s after the "
                      f"{piped['startup_seconds']:.1f} s start-up)")
    write_json(out, record)
    console.print(f"saved {out}")


@bench_app.command("scaling")
@handled
def bench_scaling(
    kinds: str = typer.Option("lstm,gru,tcn", "--kinds", help="Comma-separated model kinds."),
    backends: str = typer.Option("tensorflow,jax", "--backends",
                                 help="Comma-separated Keras backends."),
    lengths: str = typer.Option("25,100,400,1000", "--lengths",
                                help="Comma-separated sequence lengths (T + 20), each ≥ 22."),
    updates: int = typer.Option(60, "--updates", min=51, max=100_000,
                                help="Updates per run, more than 50 so that those after the "
                                     "first compiled chunk (which compiles) are timed."),
    out: Path = typer.Option(Path("bench/scaling.json"), "--out",
                             help="Where to write the figures as JSON; the plot goes beside it "
                                  "as .png."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Seconds per update and peak memory of each kind on each backend as sequences grow, on
    the copy-memory task."""
    from echo_cli import bench as benchmark
    from echo_cli import plots, tables
    from echo_cli.files import write_atomic, write_json

    names = benchmark.parse_names(kinds, benchmark.SCALING_KINDS, "--kinds")
    usable, notes = benchmark.usable_backends(backends)
    sizes = benchmark.parse_sizes(lengths, name="--lengths", least=22)
    if out.suffix != ".json":
        raise EchoError(f"--out names a .json file (the plot goes beside it), got {out}")
    _refuse_overwrite(out, force)
    console = new_console()
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"[bold]echo-cli bench scaling[/]: {', '.join(names)} on "
                  f"{', '.join(usable)} at lengths {', '.join(map(str, sizes))}, {updates} "
                  f"updates each")
    with console.status("benchmarking") as status:
        record = benchmark.run_scaling_bench(kinds=names, backends=usable, lengths=sizes,
                                             updates=updates,
                                             progress=lambda text: status.update(text))
    console.print(tables.scaling_table(record))
    write_json(out, record)
    png = out.with_suffix(".png")
    if any(r.get("seconds_per_update") for r in record["rows"]):
        write_atomic(png, plots.scaling_png(record))
        console.print(f"saved {out} and {png}")
    else:
        console.print(f"saved {out} (no run finished, so no plot)")


@bench_app.command("vocab")
@handled
def bench_vocab(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), help="The config to time."),
    sizes: str = typer.Option("100,1000,10000", "--sizes",
                              help="Comma-separated values of data.n_unique."),
    epochs: int = typer.Option(300, "--epochs", min=1, help="Epochs per run."),
    sequences: int = typer.Option(200, "--sequences", min=1,
                                  help="Held-out sequences per run."),
    backend: str = typer.Option("tensorflow", "--backend", help="Keras backend."),
    out: Path = typer.Option(Path("bench/vocab.json"), "--out",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Peak memory and seconds of one-hot against embedding inputs as n_unique grows."""
    from echo_cli import bench as benchmark
    from echo_cli import tables
    from echo_cli.files import write_json

    load_config(config)
    values = benchmark.parse_sizes(sizes)
    benchmark.check_backend(backend)
    _refuse_overwrite(out, force)
    console = new_console()
    with console.status("benchmarking") as status:
        record = benchmark.run_vocab_bench(config, sizes=values, backend=backend, epochs=epochs,
                                           sequences=sequences,
                                           progress=lambda text: status.update(text))
    console.print(tables.vocab_table(record))
    write_json(out, record)
    console.print(f"saved {out}")
