"""Commands before and during a run: train it, and see how its data is made.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli check-data configs/lag1.yaml

Parse, call, print: the work is in training/experiment.py and the task (tasks/<name>.py).
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from echo_cli.cli.common import SET_HELP, handled, new_console, print_lines, print_warnings
from echo_cli.cli.completion import complete_config
from echo_cli.config.loading import load_config, to_yaml

app = typer.Typer()


class Engine(str, enum.Enum):
    fast = "fast"
    tutorial = "tutorial"


@app.command(short_help="Train one experiment, score it and save the run.")
@handled
def train(
    config: Path = typer.Argument(..., metavar="CONFIG", autocompletion=complete_config,
                                  help="YAML experiment config, e.g. configs/lag1.yaml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR",
        help="Run directory (new or empty). Default: runs/<name>-<timestamp>/."),
    engine: Engine = typer.Option(
        Engine.fast, "--engine",
        help="fast: one fit over all sequences (default). tutorial: one fit per epoch, "
             "as the tutorial does. Both make the same updates."),
    mlflow: str | None = typer.Option(
        None, "--mlflow", metavar="URI",
        help="Also log the run to this MLflow tracking store, e.g. sqlite:///mlflow.db or "
             "http://127.0.0.1:5000 (needs pip install 'echo-cli[mlflow]'). Default: "
             "$MLFLOW_TRACKING_URI when it is set."),
) -> None:
    """Train one experiment, score it on fresh held-out sequences, and save the run.

    Ctrl-C, SIGTERM and SIGHUP stop it after the current step and keep what was done (exit
    130, 143, 129). A step that fails after training keeps everything before it (exit 1).
    """
    from echo_cli.output import report
    from echo_cli.store import claim, tracking
    from echo_cli.training import experiment, signals

    with signals.stopping():
        cfg, dataset, why = experiment.prepare(load_config(config, overrides=set_),
                                               engine=engine.value)
        mlflow_uri = tracking.mlflow_uri(mlflow)
        if signals.requested() is not None:  # before anything was created: nothing to keep
            print(f"interrupted by {signals.name()}", file=sys.stderr)
            raise typer.Exit(signals.exit_code())
        with claim.create(out, cfg.name) as taken:
            console = new_console()
            console.print(f"[bold]echo-cli train[/] {config}  engine={engine.value}  "
                          f"backend={cfg.train.backend} ({why})")
            console.print(to_yaml(cfg).rstrip(), markup=False)
            if dataset is not None:
                console.print(cfg.task.describe_dataset(cfg, dataset), markup=False)
            print_warnings(console, cfg)
            with report.TrainProgress(console, cfg.train.epochs) as bar:
                outcome = experiment.run(cfg, taken.path, engine=engine.value, dataset=dataset,
                                         on_epoch=bar.update)
        if mlflow_uri is not None and outcome.metrics is not None:  # interrupted: KILLED
            outcome.notes.append(tracking.log_run(mlflow_uri, taken.path))
        _report_run(console, cfg, outcome, taken.path)


def _report_run(console, cfg, outcome, run_dir: Path) -> None:
    """Print what a run did, then exit with its code: 0, a signal's, 2 or 1."""
    from echo_cli.errors import EchoError
    from echo_cli.output import report
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
        console.print(f"[yellow]interrupted[/] by {signals.name()} after "
                      f"{result.epochs_completed} of {cfg.train.epochs} epochs; what was done "
                      f"so far is in {experiment.saved(outcome, run_dir)}")
        raise typer.Exit(code)
    if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
        console.print(report.target_line(m))
    if result.heldout is not None:
        if result.heldout.examples:
            console.print(task.examples_view(cfg, result.heldout.examples,
                                             width=console.width))
        console.print(report.heldout_line(m, figure=task.figure, counted=task.counted,
                                          chance_words=task.chance_words,
                                          baseline_words=task.baseline_words(cfg)))
    if code == 1:
        raise experiment.RunFailedError(message)
    console.print(f"saved {experiment.saved(outcome, run_dir)}")


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
