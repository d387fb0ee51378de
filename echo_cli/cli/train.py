"""Commands before and during a run: train it, and see how its data is made.

    echo-cli train configs/lag1.yaml --set train.epochs=50     # or: train lag1 train.epochs=50
    echo-cli train --resume runs/lag1-20261130-120000          # on from its last checkpoint
    echo-cli check-data configs/lag1.yaml

Parse, call, print: the work is in training/experiment.py and the task (tasks/<name>.py).
"""

from __future__ import annotations

import enum
import shlex
import sys
from pathlib import Path

import typer

from echo_cli.cli.common import (
    BARE_HELP,
    SET_HELP,
    handled,
    new_console,
    overrides,
    print_lines,
    print_warnings,
)
from echo_cli.cli.completion import complete_config, complete_run
from echo_cli.config.loading import load_config, to_yaml
from echo_cli.errors import EchoError

app = typer.Typer()
SEEDS_HELP = ("Train N seeds at once (the config's seed and the N-1 after it) as one compiled "
              "JAX program, each saved as a run of its own under RUN/seeds/ (train.seeds).")


class Engine(str, enum.Enum):
    fast = "fast"
    tutorial = "tutorial"


@app.command(short_help="Train one experiment, score it and save the run.")
@handled
def train(
    config: Path | None = typer.Argument(
        None, metavar="CONFIG", autocompletion=complete_config,
        help="YAML experiment config, e.g. configs/lag1.yaml, or a built-in config's name "
             "(lag1). With --resume, the run's own config.yaml by default."),
    bare: list[str] | None = typer.Argument(None, metavar="[KEY=VALUE]...", help=BARE_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR",
        help="Run directory (new or empty). Default: runs/<name>-<timestamp>/."),
    resume: Path | None = typer.Option(
        None, "--resume", metavar="RUN", autocompletion=complete_run,
        help="Continue RUN from its last checkpoint (train.checkpoint_every; once a minute "
             "by default), with the config it was trained with."),
    seeds: int | None = typer.Option(None, "--seeds", min=1, max=1024, metavar="N",
                                     help=SEEDS_HELP),
    engine: Engine = typer.Option(
        Engine.fast, "--engine",
        help="fast: one fit over all sequences (default). tutorial: one fit per epoch, "
             "as the tutorial does. Both make the same updates."),
    mlflow: str | None = typer.Option(
        None, "--mlflow", metavar="URI",
        help="Also log the run to this MLflow tracking store, e.g. sqlite:///mlflow.db or "
             "http://127.0.0.1:5000 (needs pip install 'echo-cli[mlflow]'). Default: "
             "$MLFLOW_TRACKING_URI when it is set."),
    print_config: bool = typer.Option(False, "--print-config",
                                      help="Print the resolved config as YAML and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Print only the result lines: held-out score, target, "
                                    "where it was saved."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Also print the whole resolved config first."),
) -> None:
    """Train one experiment, score it on fresh held-out sequences, and save the run.

    Ctrl-C, SIGTERM and SIGHUP stop it after the current step and keep what was done (exit
    130, 143, 129); `--resume RUN` continues it from its last checkpoint. A step that fails
    after training keeps everything before it (exit 1).
    """
    from echo_cli.output import report
    from echo_cli.store import claim, tracking
    from echo_cli.training import experiment, signals

    assignments = overrides(set_, bare) + ([f"train.seeds={seeds}"] if seeds else [])
    if resume is not None:
        cfg = resumed_config(resume, config, assignments, out)
    elif config is None:
        raise EchoError("train needs a CONFIG (a YAML file or a built-in name such as lag1), or "
                        "--resume RUN")
    else:
        cfg = load_config(config, overrides=assignments)
    if print_config:
        print(to_yaml(cfg), end="")
        return
    with signals.stopping():
        cfg, dataset, why = experiment.prepare(cfg, engine=engine.value)
        saved = _checkpoint(resume, cfg, engine.value) if resume is not None else None
        mlflow_uri = tracking.mlflow_uri(mlflow)
        if signals.requested() is not None:  # before anything was created: nothing to keep
            print(f"interrupted by {signals.name()}", file=sys.stderr)
            raise typer.Exit(signals.exit_code())
        if cfg.train.seeds > 1:  # every seed in one program
            return _seeds(cfg, dataset, why, config, assignments, out, mlflow_uri, quiet, verbose)
        taken = claim.reopen(resume) if resume is not None else claim.create(out, cfg.name)
        with taken:
            console, results = new_console(quiet=quiet), new_console()
            _header(console, cfg, dataset, f"[bold]echo-cli train[/] {config or resume}  "
                    f"engine={engine.value}  backend={cfg.train.backend} ({why})",
                    resumed=f"resuming {resume} at epoch {saved.epoch} of "
                            f"{cfg.train.epochs}" if saved is not None else None,
                    verbose=verbose)
            with tracking.live_mlflow(mlflow_uri, taken.path, cfg) as mlflow_run:
                with report.TrainProgress(console, cfg.train.epochs) as bar:
                    outcome = experiment.run(
                        cfg, taken.path, engine=engine.value, dataset=dataset, resume=saved,
                        on_epoch=mlflow_run.hook(bar.update),
                        command=experiment.command_lines(config, assignments, command=_command(
                            config, assignments, taken.path, engine, resume)))
                outcome.notes += mlflow_run.finish(outcome.model)  # [] without --mlflow
        _report_run(console, results, cfg, outcome, taken.path)


def _seeds(cfg, dataset, why: str, config: Path, assignments: list[str], out: Path | None,
           mlflow_uri: str | None, quiet: bool, verbose: bool) -> None:
    """train.seeds > 1: every seed in one program (training/seeds.py), then a row per seed
    and their mean; exit as experiment.verdict says for the worst seed."""
    from echo_cli.output import report
    from echo_cli.output.seeds import seeds_line, seeds_table
    from echo_cli.store import claim, rundir, tracking
    from echo_cli.store.seeds import summary_row
    from echo_cli.training import experiment, seeds, signals

    with claim.create(out, cfg.name) as taken:
        console, results = new_console(quiet=quiet), new_console()
        _header(console, cfg, dataset, f"[bold]echo-cli train[/] {config}  engine=fast  "
                f"backend={cfg.train.backend} ({why})  seeds={cfg.train.seeds}", resumed=None,
                verbose=verbose)
        with report.TrainProgress(console, cfg.train.epochs,
                                  label=f"training {cfg.train.seeds} seeds") as bar:
            outcome = seeds.run(cfg, taken.path, dataset=dataset, on_epoch=bar.update,
                                command=experiment.command_lines(config, assignments))
    path, summary = taken.path, outcome.summary
    for note in dict.fromkeys(note for o in outcome.outcomes for note in o.notes):
        console.print(f"note: {note}", markup=False)
    if mlflow_uri is not None:
        console.print(tracking.log_sweep(mlflow_uri, path, path.name,
                                         rundir.flatten(cfg.dump()), rundir.seed_runs(path)),
                      markup=False)
    code, message = seeds.verdict(outcome, path)
    console.print(seeds_table(summary.model_dump(), figure=cfg.task.figure))
    if outcome.interrupted:
        results.print(f"[yellow]interrupted[/] by {signals.name()}; what was done so far is in "
                      f"{path}/")
        raise typer.Exit(code)
    results.print(seeds_line(summary_row(summary), figure=cfg.task.figure), markup=False)
    if code == 1:
        raise experiment.RunFailedError(message)
    results.print(f"saved {path}/ ({rundir.CONFIG}, {rundir.SEEDS_SUMMARY}, {rundir.SEEDS}/"
                  f"seed={summary.seeds[0]}..{summary.seeds[-1]}/, each a run directory)",
                  markup=False)


def _header(console, cfg, dataset, title: str, *, resumed: str | None, verbose: bool) -> None:
    """What train prints before it starts: the command, the resume point, the config (-v),
    the data and the config's notes."""
    console.print(title)
    if resumed is not None:
        console.print(resumed)
    if verbose:
        console.print(to_yaml(cfg).rstrip(), markup=False)
    if dataset is not None:
        console.print(cfg.task.describe_dataset(cfg, dataset), markup=False)
    print_warnings(console, cfg)


def _command(config: Path | None, assignments: list[str], out: Path, engine: Engine,
             resume: Path | None) -> str:
    """The command line that makes this run, written out whole (--set for every override)."""
    if resume is not None:
        return shlex.join(["echo-cli", "train", "--resume", str(resume)])
    return shlex.join(["echo-cli", "train", str(config),
                       *(a for item in assignments for a in ("--set", item)), "--out", str(out),
                       *(["--engine", engine.value] if engine is not Engine.fast else [])])


def resumed_config(run: Path, config: Path | None, assignments: list[str], out: Path | None):
    """The config to resume `run` with: its own config.yaml, or CONFIG and the overrides,
    which must resolve to the same.

    Raises:
        EchoError: --out names another directory, RUN is not an unfinished run, or the config
            given differs from the run's.
    """
    from echo_cli.store import rundir

    if out is not None and out.resolve() != run.resolve():
        raise EchoError(f"--resume {run} continues that directory; leave out --out, or give "
                        f"--out {run}")
    if not (run / rundir.CONFIG).is_file():
        raise EchoError(f"{run} is not a run directory (no {rundir.CONFIG}); give the --out "
                        f"of the run to resume")
    own = rundir.read_config(run)
    if own.train.seeds > 1:
        raise EchoError(f"{run} trained {own.train.seeds} seeds in one program, which keeps no "
                        f"checkpoints to resume from; train it afresh with a new --out")
    if (run / rundir.METRICS).is_file() and not rundir.read_metrics(run).interrupted:
        raise EchoError(f"{run} finished; there is nothing to resume (train afresh with a new "
                        f"--out to train it again)")
    if config is None and not assignments:
        return own
    cfg = load_config(config if config is not None else run / rundir.CONFIG,
                      overrides=assignments)
    if to_yaml(cfg) != to_yaml(own):
        differ = [k for k, v in rundir.flatten(cfg.dump()).items()
                  if rundir.flatten(own.dump()).get(k) != v]
        raise EchoError(f"{run} was trained with another config (it differs in "
                        f"{', '.join(differ) or 'its text'}); resume with the config it was "
                        f"trained with (leave out CONFIG and --set)")
    return own


def _checkpoint(run: Path, cfg, engine: str):
    """The run's checkpoint, checked against the config resolved now (backend included)."""
    from echo_cli.store import rundir
    from echo_cli.training import checkpoint

    return checkpoint.load(run, engine=engine, digest=rundir.digest(to_yaml(cfg)))


def _report_run(console, results, cfg, outcome, run_dir: Path) -> None:
    """Print what a run did, then exit with its code: 0, a signal's, 2 or 1. `results` prints
    the result lines (held-out score, target, where it was saved) even with --quiet."""
    from echo_cli.output import report
    from echo_cli.store import rundir
    from echo_cli.training import experiment, signals

    result, m, task = outcome.result, outcome.metrics.model_dump(), cfg.task
    if result.history:
        console.print(report.history_table(result.history, epoch_words=task.epoch_words))
    console.print(report.cost_line(m))
    for note in outcome.notes:
        console.print(("" if note.startswith(("logged", "not logged")) else "note: ") + note,
                      markup=False)
    code, message = experiment.verdict(outcome, run_dir)
    if code == 2:
        raise EchoError(message)
    if result.interrupted:
        results.print(f"[yellow]interrupted[/] by {signals.name()} after "
                      f"{result.epochs_completed} of {cfg.train.epochs} epochs; what was done "
                      f"so far is in {experiment.saved(outcome, run_dir)}"
                      + (f"; continue it with echo-cli train --resume {run_dir}"
                         if (run_dir / rundir.CHECKPOINT).is_file() else ""))
        raise typer.Exit(code)
    if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
        results.print(report.target_line(m))
    if result.heldout is not None:
        if result.heldout.examples:
            console.print(task.examples_view(cfg, result.heldout.examples,
                                             width=console.width))
        results.print(report.heldout_line(m, figure=task.figure, counted=task.counted,
                                          chance_words=task.chance_words,
                                          baseline_words=task.baseline_words(cfg)))
        if result.by_length:
            results.print(report.lengths_table(result.by_length, figure=task.figure,
                                               trained=task.horizon(cfg)))
    if code == 1:
        raise experiment.RunFailedError(message)
    results.print(f"saved {experiment.saved(outcome, run_dir)}")


@app.command("check-data", short_help="Show how the first sequence becomes samples X, y.")
@handled
def check_data(
    config: Path | None = typer.Argument(
        None, metavar="CONFIG", autocompletion=complete_config,
        help="YAML experiment config. Default: the built-in defaults (configs/lag1.yaml)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
    rows_shown: int = typer.Option(
        40, "--rows", min=0, metavar="N",
        help="Print about N samples (evenly spaced, first and last included) and the last N "
             "steps of each window; 0 prints everything."),
) -> None:
    """Show exactly how the first seeded sequence is made into samples X and targets y."""
    from echo_cli.config import limits
    from echo_cli.training.experiment import prepare_data

    cfg, dataset = prepare_data(load_config(config, overrides=set_))
    limits.check_sample(cfg)
    console = new_console()
    print_lines(console, cfg.task.check_data(cfg, dataset, cap=rows_shown or None))
    print_warnings(console, cfg)
