"""`echo-cli sweep`: train every combination of a grid of config values.

    echo-cli sweep configs/lag1.yaml --grid model.kind=lstm,mlp --seeds 3

Parse, call, print: the work is in sweeps/ (grid and directory, executors, workers) and
store/tracking.py.
"""

from __future__ import annotations

import enum
import os
import time
from pathlib import Path

import typer
from rich.text import Text

from echo_cli.cli.common import BARE_HELP, SET_HELP, handled, new_console, overrides
from echo_cli.cli.completion import complete_config
from echo_cli.config.loading import load_config
from echo_cli.errors import EchoError

app = typer.Typer()
SEEDS_HELP = ("Seeds per grid point: seed, seed+1, ... from the config (default: its "
              "train.seeds, 1). On the JAX backend each point's seeds train as one program.")


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


@app.command(short_help="Train every combination of a grid of config values.")
@handled
def sweep(
    config: Path = typer.Argument(..., metavar="CONFIG", autocompletion=complete_config,
                                  help="The base YAML config every run starts from."),
    bare: list[str] | None = typer.Argument(None, metavar="[KEY=VALUE]...",
                                            help=BARE_HELP + " Applies to every run."),
    grid: list[str] = typer.Option(
        [], "--grid", metavar="KEY=V1,V2,...",
        help="A key and the values to try, e.g. --grid data.lag=1,2,4. Repeatable: the sweep "
             "runs the cartesian product. Keys joined by + move together: "
             "--grid data.lag+data.window=1:5,2:6."),
    seeds: int | None = typer.Option(None, "--seeds", min=1, max=10_000, metavar="N",
                                     help=SEEDS_HELP),
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
             "for each run. Default: $MLFLOW_TRACKING_URI when it is set."),
) -> None:
    """Train every combination of the grid values (times the seeds) and summarize them.

    Exit code 0 when every run finished, 1 when any run failed (each is listed), and 130, 143
    or 129 after Ctrl-C, SIGTERM or SIGHUP (finished runs are kept; resume with the same
    command).
    """
    from echo_cli.config import limits
    from echo_cli.store import claim, rundir, tracking
    from echo_cli.sweeps import sweep as sweeps
    from echo_cli.training import signals

    set_ = overrides(set_, bare)
    with signals.stopping():
        cfg = load_config(config, overrides=set_)
        parsed = sweeps.parse_grid(grid, required=True)
        mlflow_uri = tracking.mlflow_uri(mlflow)
        if address is not None and executor is not Executor.ray:
            raise EchoError("--address is for --executor ray; add --executor ray, or drop "
                            "--address")
        workers = workers or os.cpu_count() or 1
        if executor is Executor.ray:  # reached, or refused, before anything is created
            from echo_cli.sweeps.executors import connect_ray

            connect_ray(address, workers)
        out = out or rundir.RUNS / f"sweep-{cfg.name}-{claim.timestamp()}"
        seeds = seeds or cfg.train.seeds
        together, apart = _together(config, set_, seeds)
        job = sweeps.Sweep(out, config=config, grid=parsed, seeds=seeds, base_seed=cfg.seed,
                           base_overrides=list(set_), resolved=cfg.dump(), together=together)
        records = job.prepare()
        runnable = sweeps.reject_invalid(job, records)
        console = new_console()
        if executor is Executor.local:
            workers, note = limits.workers_that_fit(runnable, workers)
            if note:
                console.print(f"note: {note}", markup=False)
        _announce(console, config, records, parsed, seeds, apart, out)
        title = f"sweep of {config}: {', '.join(job.keys)} x {seeds} seeds"
        todo = [r for r in records if r.status == "not run"]
        began = time.perf_counter()
        finished, summary, notes = _run(console, job, records, title, executor=executor.value,
                                        address=address, workers=workers)
        _report(console, job, records, summary, notes, title=title, todo=todo,
                wall=time.perf_counter() - began,
                workers=min(workers, len(todo)) if executor is Executor.local else None)
        if mlflow_uri is not None:
            console.print(_logged(mlflow_uri, job, records, cfg, grid, seeds, finished),
                          markup=False)
        _exit(console, records, finished, out)


def _announce(console, config: Path, records, grid, seeds: int, apart: dict[str, int],
              out: Path) -> None:
    """The sweep's first lines: the points that keep to one seed at a time, and the runs."""
    if apart:
        console.print(f"note: the {seeds} seeds of {sum(apart.values())} grid points run one "
                      f"after another: the {' and '.join(sorted(apart))} backend trains one "
                      f"seed at a time (JAX trains them as one program)", markup=False)
    skipped = sum(r.point.seeds for r in records if r.status == "done")
    programs = sum(r.point.seeds > 1 for r in records)
    shape = (f"{' x '.join(str(len(v)) for _, v in grid)} grid points x {seeds} seeds"
             + (f"; {programs} points train their seeds as one program" if programs else ""))
    console.print(f"[bold]echo-cli sweep[/] {config}: {sum(r.point.seeds for r in records)} "
                  f"runs ({shape}){f', {skipped} already done' if skipped else ''} -> {out}/")


def _together(config: Path, set_: list[str], seeds: int):
    """Which grid points train their seeds as one program: those the JAX backend runs (the
    fast engine; a sweep never runs the tutorial's). Returns the test for Sweep, and a dict
    it fills: how many points each other backend keeps to one seed at a time."""
    import json

    from echo_cli.training.backends import choose

    apart: dict[str, int] = {}
    if seeds == 1:
        return None, apart

    def together(values) -> bool:
        try:
            point = load_config(config, overrides=[*set_, *(f"{k}={json.dumps(v)}"
                                                           for k, v in values)])
            backend = choose(point.train.backend, engine="fast", here=False)[0]
        except EchoError:  # it cannot run at all: the point fails once, with its error
            return True
        if backend != "jax":
            apart[backend] = apart.get(backend, 0) + 1
        return backend == "jax"

    return together, apart


def _run(console, job, records, title: str, *, executor: str, address: str | None,
         workers: int):
    """Run the sweep's runs; write results.csv, summary.md and TensorBoard's HParams even when
    it is stopped. Returns (finished, summary rows, notes)."""
    from echo_cli.output import report
    from echo_cli.store import tracking
    from echo_cli.sweeps import executors
    from echo_cli.sweeps.sweep import each_run

    finished, notes = False, []
    try:
        with report.SweepProgress(console, len(records)) as bar:
            finished = executors.run(job, records, executor=executor, address=address,
                                     workers=workers,
                                     on_update=lambda rs: bar.update([r.status for r in rs]))
    finally:
        job.release()
        summary = job.write_results(records, title=title)
        done = [r for r in each_run(records) if r.status == "done"]
        try:  # TensorBoard's HParams table of the grid's values
            tracking.write_sweep_hparams(job.out, [
                ({**dict(r.point.values), "seed": r.point.seed}, r.run_dir) for r in done],
                job.keys)
        except Exception as err:  # noqa: BLE001 - never hide why the sweep ended
            notes.append(f"TensorBoard's HParams were not written ({type(err).__name__}: "
                         f"{err})")
    return finished, summary, notes


def _report(console, job, records, summary, notes, *, title: str, todo, wall: float,
            workers: int | None) -> None:
    """The summary table, where the time went, the failures, and what was saved."""
    from echo_cli.output import report, tables
    from echo_cli.output.report import plain
    from echo_cli.store import tracking
    from echo_cli.sweeps import sweep as sweeps

    plotted = job.plot(records, title=title)
    console.print(tables.sweep_summary_table(summary, job.keys, title=title))
    ran = [r for r in todo if r.status in ("done", "failed")]  # the wall time is theirs
    if ran and workers:
        console.print(report.sweep_cost_line(
            sum(r.point.seeds for r in ran), wall=wall,
            train=sum(sweeps.train_seconds(r) for r in ran), workers=workers))
    for r in records:
        if r.status == "failed":
            console.print(Text("failed ", style="red") + plain(f"{r.point.name}: {r.error}"))
    for note in notes:
        console.print(f"note: {note}", markup=False)
    console.print(f"saved {job.out}/ (results.csv, summary.md"
                  f"{', sweep.png' if plotted else ''}, runs/"
                  f"{', tb/' if (job.out / tracking.TB).is_dir() else ''})")


def _logged(uri: str, job, records, cfg, grid: list[str], seeds: int, finished: bool) -> str:
    """Log the sweep to MLflow (a parent run, a child per run): the line to print."""
    from echo_cli.store import rundir, tracking
    from echo_cli.sweeps.sweep import each_run
    from echo_cli.training import signals

    if not finished:
        return (f"not logged to MLflow: interrupted by {signals.name()}; the same command logs "
                f"the sweep when it resumes")
    runs = [r.run_dir for r in each_run(records)
            if r.status in ("done", "failed") and rundir.is_run(r.run_dir)]
    return tracking.log_sweep(uri, job.out, job.out.name,
                              {**rundir.flatten(cfg.dump()), "sweep.grid": " ".join(grid),
                               "sweep.seeds": seeds}, runs)


def _exit(console, records, finished: bool, out: Path) -> None:
    """Exit 130/143/129 when stopped, 1 when a run failed; 0 otherwise."""
    from echo_cli.sweeps.sweep import each_run
    from echo_cli.training import signals

    records = each_run(records)  # a run per seed, where a point's seeds trained together
    if not finished:
        not_run = sum(r.status == "not run" for r in records)
        console.print(f"[yellow]interrupted[/] by {signals.name()}: {not_run} runs not run; "
                      f"resume with the same command and --out {out}")
        raise typer.Exit(signals.exit_code())
    failed = [r for r in records if r.status == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} of {len(records)} runs failed[/]; fix the cause and "
                      f"run the same command again to retry only them")
        raise typer.Exit(1)
