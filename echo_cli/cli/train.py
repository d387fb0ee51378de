"""Commands for one run: train it, see its framing, predict with it, stream through it.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli check-data configs/lag1.yaml
    echo-cli predict runs/lag1-<time> 3 1 4 1 5 9 2 6
    seq 1 12 | echo-cli stream runs/stream-<time>

Parse, call, print: the work is in experiment.py, data.py and infer.py.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from echo_cli.cli.common import SET_HELP, handled, new_console, print_warnings
from echo_cli.cli.config import complete_config, complete_run
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
        help="Run directory (new or empty). Default: runs/<name>-<timestamp>/."
    ),
    engine: Engine = typer.Option(
        Engine.fast, "--engine",
        help="fast: one fit over all sequences (default). tutorial: one fit per epoch, "
             "as the tutorial does. Both make the same updates.",
    ),
    mlflow: str | None = typer.Option(
        None, "--mlflow", metavar="URI",
        help="Also log the run to this MLflow tracking store, e.g. sqlite:///mlflow.db or "
             "http://127.0.0.1:5000 (needs pip install 'echo-cli[mlflow]'). Default: "
             "$MLFLOW_TRACKING_URI when it is set.",
    ),
) -> None:
    """Train one experiment, score it on fresh held-out sequences, and save the run.

    Ctrl-C, SIGTERM and SIGHUP stop it after the current step and keep what was done (exit
    130, 143, 129). A step that fails after training keeps everything before it (exit 1).
    """
    from echo_cli.output import report
    from echo_cli.store import rundir, tracking
    from echo_cli.training import experiment, signals

    with signals.stopping():
        cfg, dataset, why = experiment.prepare(load_config(config, overrides=set_),
                                               engine=engine.value)
        mlflow_uri = tracking.mlflow_uri(mlflow)
        if signals.requested() is not None:  # before anything was created: nothing to keep
            print(f"interrupted by {signals.name()}", file=sys.stderr)
            raise typer.Exit(signals.exit_code())
        with rundir.create(out, cfg.name) as claim:
            console = new_console()
            console.print(f"[bold]echo-cli train[/] {config}  engine={engine.value}  "
                          f"backend={cfg.train.backend} ({why})")
            console.print(to_yaml(cfg).rstrip(), markup=False)
            if dataset is not None:
                console.print(experiment.describe_dataset(cfg, dataset), markup=False)
            print_warnings(console, cfg)
            with report.TrainProgress(console, cfg.train.epochs) as bar:
                outcome = experiment.run(cfg, claim.path, engine=engine.value, dataset=dataset,
                                         on_epoch=bar.update)
        if mlflow_uri is not None and outcome.metrics is not None:  # interrupted: KILLED
            outcome.notes.append(tracking.log_run(mlflow_uri, claim.path))
        _report_run(console, cfg, outcome, claim.path)


def _report_run(console, cfg, outcome, run_dir: Path) -> None:
    """Print what a run did, then exit with its code: 0, a signal's, 2 or 1."""
    from echo_cli.errors import EchoError
    from echo_cli.output import report
    from echo_cli.store import rundir
    from echo_cli.training import signals
    from echo_cli.training.experiment import RunFailedError

    result, m = outcome.result, outcome.metrics.model_dump()
    if result.history:
        console.print(report.history_table(result.history))
    console.print(report.cost_line(m))
    order = [rundir.CONFIG, rundir.HISTORY, rundir.MODEL, rundir.METRICS, rundir.CURVES, "tb/"]
    for note in outcome.notes:
        console.print(("" if note.startswith(("logged", "not logged")) else "note: ") + note,
                      markup=False)
    saved = f"{run_dir}/ ({', '.join(f for f in order if f in outcome.saved)})"
    if outcome.failed_step == "train":
        raise EchoError(f"training stopped: {outcome.error}; the run so far is in {saved}")
    if result.interrupted:
        console.print(f"[yellow]interrupted[/] by {signals.name()} after "
                      f"{result.epochs_completed} of {cfg.train.epochs} epochs; what was done "
                      f"so far is in {saved}")
        raise typer.Exit(signals.exit_code())
    if cfg.train.target_accuracy is not None or cfg.train.target_loss is not None:
        console.print(report.target_line(m))
    if result.heldout is not None:
        examples = result.heldout.examples
        if examples and cfg.data.task == "echo":
            console.print(report.examples_table([vars(e) for e in examples], lag=cfg.data.lag,
                                                target=cfg.data.target, width=console.width))
        elif examples:
            console.print(report.memory_examples(examples, task=cfg.data.task))
        console.print(report.heldout_line(m))
    if outcome.failed_step is not None:
        raise RunFailedError(f"the {outcome.failed_step} step failed ({outcome.error}); what was "
                             f"done before it is kept in {saved}")
    console.print(f"saved {saved}")


@app.command("check-data", short_help="Show how a sequence is framed into samples X, y.")
@handled
def check_data(
    config: Path | None = typer.Argument(
        None, metavar="CONFIG", autocompletion=complete_config,
        help="YAML experiment config. Default: the built-in defaults (configs/lag1.yaml)."
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
    rows_shown: int = typer.Option(
        40, "--rows", min=0, metavar="N",
        help="Print about N samples (evenly spaced, first and last included) and the last N "
             "steps of each window; 0 prints everything.",
    ),
) -> None:
    """Show exactly how one seeded sequence is framed into samples X and targets y."""
    from echo_cli.config import limits
    from echo_cli.output import report
    from echo_cli.output.report import MISS
    from echo_cli.tasks import framing as data
    from echo_cli.training import experiment

    cfg, dataset = experiment.prepare_data(load_config(config, overrides=set_))
    cap = rows_shown or None
    if cfg.data.task != "echo":
        limits.check(cfg)
        console = new_console()
        for line in report.task_sample(cfg.dump(), *experiment.first_sample(cfg), cap=cap):
            console.print(line)
        return
    limits.check_framing(cfg)
    plan = cfg.framing
    console = new_console()
    if dataset is None:
        seqs = data.generate_sequences(data.stream_rng(cfg.seed, "train"), count=1,
                                       length=cfg.data.length, n_unique=cfg.data.n_unique)
        origin = f"the first training sequence of seed {cfg.seed}"
    else:
        console.print(experiment.describe_dataset(cfg, dataset), markup=False)
        seqs = dataset.train[:1]
        origin = f"the first training sequence of {cfg.data.path}, as ids"
    total = data.rows_per_sequence(plan)
    shown = report.sample_rows(total, cap) if cap else list(range(total))
    framed = data.frame(seqs, plan, rows=shown)  # only the rows printed
    console.print(f"[bold]sequence[/] ({origin}), t = 0 .. {cfg.data.length - 1}:")
    console.print(report.cut_values(seqs[0].tolist(), cap), markup=False)
    if dataset is not None and dataset.vocabulary is not None:
        console.print("values: " + report.cut_values([dataset.vocabulary[i] for i in seqs[0]],
                                                     cap), markup=False)
    stateful = cfg.model.stateful
    console.print(report.framing_table(
        t=framed.t.tolist(), x=framed.x[0].tolist(), y=framed.y[0].tolist(), lag=cfg.data.lag,
        n_unique=cfg.data.n_unique,
        state_from=data.state_sources(plan, stateful=True, rows=shown) if stateful else None,
        batch_size=plan.batch_size, shown=shown, max_steps=cap,
    ))
    if len(shown) < total or (cap and data.timesteps(plan) > cap):
        console.print(f"showing {len(shown)} of {total} samples"
                      + (f" and the last {cap} steps of each window" if
                         data.timesteps(plan) > cap else "")
                      + "; --rows N shows more, --rows 0 everything")
    rows, steps = data.rows_per_sequence(plan), data.timesteps(plan)
    shape = (f"({rows}, {steps}, {cfg.data.n_unique}) one-hot"
             if cfg.model.encoding == "onehot" else f"({rows}, {steps}) ids for an embedding")
    console.print(f"{rows} samples per sequence, x: {shape}, in {rows // plan.batch_size} "
                  f"batches of {plan.batch_size}")
    if (framed.x < 0).any():
        console.print(f"{MISS} marks a step before the sequence starts: an all-zero one-hot row"
                      + (", hidden from the LSTM by a Masking layer" if cfg.data.missing == "mask"
                         else ""))
    dropped = data.dropped_rows(plan)
    for t, reason in dropped[: cap or len(dropped)]:
        console.print(f"dropped t={t}: {reason}")
    if cap and len(dropped) > cap:
        console.print(f"... and {len(dropped) - cap} more dropped rows; --rows 0 lists them all")
    if cfg.data.target == "sequence":
        unscored = int((framed.y[0] < 0).sum())
        console.print(f"{unscored} target positions per sequence are unscored (shown as -): "
                      f"their X(p-{cfg.data.lag}) is before the window or the sequence")
    if stateful:
        source = ("the row before" if plan.batch_size == 1 else
                  f"the row {plan.batch_size} earlier, not the row before")
        console.print(
            f"stateful: Keras carries state from sample i of one batch to sample i of the next, "
            f"so each row starts from the state of {source}; the state is reset to zeros at the "
            f"start of every sequence"
        )
    print_warnings(console, cfg)


@app.command(context_settings={"ignore_unknown_options": True},
             short_help="Predict from your own integers with a trained run.")
@handled
def predict(
    run_dir: Path = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                                   help="A run directory written by `echo-cli train`."),
    values: list[str] = typer.Argument(..., help="The input sequence, e.g. 3 1 4 1 5 9 2 6.",
                                       metavar="INT"),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON, for scripts."),
) -> None:
    """Predict X(t-lag) from your own integers with a trained run, framed as in training."""
    import json

    from echo_cli.analysis.trained import load_run, predict_rows
    from echo_cli.output import report

    run = load_run(run_dir)
    rows = predict_rows(run, run.encode(values))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console = new_console()
    console.print(report.predict_table(rows, lag=run.cfg.data.lag))
    scored = [r for r in rows if r["match"] is not None]
    if scored:
        right = sum(r["match"] for r in scored)
        console.print(f"{right} of {len(scored)} predictions match; chance is "
                      f"{run.cfg.chance_accuracy:.3g} per prediction")


@app.command(short_help="Echo integers from stdin one by one, keeping the state.")
@handled
def stream(
    run_dir: Path = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                                   help="A run trained on whole sequences, e.g. from "
                                        "configs/stream.yaml."),
    heldout: int | None = typer.Option(
        None, "--heldout", min=1, metavar="N",
        help="Instead of reading stdin, stream N fresh held-out sequences one number at a time "
             "and print the echo accuracy.",
    ),
) -> None:
    """Echo X(t-lag) as integers arrive on stdin, one per line, keeping the LSTM state.

    From a pipe it prints exactly one line per input integer: the echo, or - while none
    exists yet. Bad lines get a message on stderr and the stream goes on.
    """
    from echo_cli.analysis.trained import RunError, Streamer, load_run, stream_accuracy
    from echo_cli.config import limits
    from echo_cli.errors import EchoError
    from echo_cli.output.report import printable

    if heldout is None and sys.stdin is None:
        raise EchoError("stdin is closed; pipe integers in (seq 1 9 | echo-cli stream RUN), "
                        "type them at a terminal, or use --heldout N")
    run = load_run(run_dir)
    streamer = Streamer(run)
    if heldout is not None:
        limits.check_stream(run.cfg, heldout)
        from echo_cli.output import report

        new_console().print(report.stream_line(stream_accuracy(run, sequences=heldout),
                                            lag=run.cfg.data.lag))
        return
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"type integers from 0 to {run.cfg.data.n_unique - 1}, one per line; each reply "
              f"is the echo of the number {run.cfg.data.lag} back. Ctrl-D ends.",
              file=sys.stderr)
    while True:
        try:
            line = input("> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and line == "":
            break
        token = line.strip()
        if not token:
            print("skipped a blank line; give one integer per line", file=sys.stderr)
            continue
        try:
            (value,) = run.encode([token])
        except RunError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        echo = streamer.push(value)
        print("-" if echo is None else printable(str(run.decode(echo[0]))), flush=True)


@app.command(context_settings={"ignore_unknown_options": True},
             short_help="Show a trained network's state and how far back it remembers.")
@handled
def inspect(
    run_dir: Path = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                                   help="A run of a recurrent model (lstm, gru, simple_rnn)."),
    values: list[str] = typer.Argument(
        None, metavar="INT",
        help="The sequence to show (echo: integers; copy: the symbols to remember). Default: "
             "the first fresh held-out sequence."),
    heldout: int = typer.Option(200, "--heldout", min=10, max=10_000, metavar="N",
                                help="Fresh sequences to fit the probes on, and as many to "
                                     "score them on."),
    max_lag: int | None = typer.Option(None, "--max-lag", min=0, metavar="K",
                                       help="Probe X(t-k) for k = 0 .. K. Default: up to the "
                                            "sequence length or 32."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR",
                                    help="Where to write state.png, probes.csv and probes.png. "
                                         "Default: RUN/inspect/."),
    force: bool = typer.Option(False, "--force", help="Replace the files if --out has them."),
) -> None:
    """Show what a trained network holds: its state and gates step by step (state.png), and
    how far back X(t-k) can be read out of it (probes.csv, probes.png)."""
    from echo_cli.analysis import probing
    from echo_cli.analysis.trained import inspect_sequence, load_run
    from echo_cli.errors import EchoError
    from echo_cli.output import plots, report
    from echo_cli.store.files import write_atomic, write_csv

    out = out or run_dir / "inspect"
    files = ("state.png", "probes.csv", "probes.png")
    there = [name for name in files if (out / name).exists()]
    if there and not force:
        raise EchoError(f"--out {out} already has {', '.join(there)}; give --force to replace "
                        f"them, or another --out")
    run = load_run(run_dir)
    seq, origin, seq_cfg = inspect_sequence(run, values or [])
    console = new_console()
    picture = probing.picture(run.model, seq_cfg, seq, origin=origin)
    steps = run.cfg.steps if run.cfg.data.task != "echo" else run.cfg.data.length
    curve = probing.memory_curve(run.model, run.cfg, sequences_each=heldout,
                                 max_lag=max_lag if max_lag is not None else min(steps - 1, 32))
    rows = [vars(p) for p in curve]
    metric = "R²" if run.cfg.data.task == "adding" else "accuracy"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "state.png", plots.state_png(
            t=picture.t, labels=picture.labels, panels=picture.panels, mark=picture.mark,
            shade=picture.shade, title=f"{run_dir.name}: {run.cfg.model.kind} state over "
                                       f"{picture.origin}"))
        write_csv(out / "probes.csv", [{**r, "metric": metric} for r in rows])
        write_atomic(out / "probes.png", plots.probes_png(
            rows, metric=metric, title=f"{run_dir.name}: how far back the state remembers"))
    except OSError as err:
        raise EchoError(f"cannot write to --out {out}: {err.strerror}") from None
    console.print(report.probe_summary(rows, metric=metric, fades=probing.fades_at(curve),
                                       sequences=heldout))
    console.print(f"saved {out}/ (state.png, probes.csv, probes.png)")
