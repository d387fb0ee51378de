"""The echo-cli commands: parse, call, print. Heavy imports live inside the command bodies.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli check-data configs/lag1.yaml
"""

from __future__ import annotations

import enum
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from echo_cli.config import Config, ConfigError, load_config, to_yaml

# Typer vendors Click and exports only BadParameter; its base class covers every usage error.
UsageError = typer.BadParameter.__mro__[1]

app = typer.Typer(
    name="echo-cli",
    help="Learn how recurrent networks remember: train LSTMs to echo random integers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SET_HELP = ("Override one config key with a dotted KEY=VALUE, e.g. --set train.epochs=50. "
            "Repeatable.")


class Engine(str, enum.Enum):
    fast = "fast"
    tutorial = "tutorial"


def _console() -> Console:
    return Console(highlight=False)


def fail(message: str, *, code: int = 2) -> typer.Exit:
    """Print one plain error line on stderr and return the exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _load(config: Path | None, overrides: list[str]) -> Config:
    try:
        return load_config(config, overrides=overrides)
    except ConfigError as err:
        raise fail(str(err)) from None


def _print_warnings(console: Console, cfg: Config) -> None:
    for note in cfg.warnings():
        console.print(f"[yellow]note:[/] {note}")


def _run_dir(out: Path | None, name: str) -> Path:
    """The directory for this run's files; never one that already holds files."""
    if out is not None:
        if out.exists() and not out.is_dir():
            raise fail(f"--out {out} is a file; give a new or empty directory")
        if out.is_dir() and any(out.iterdir()):
            raise fail(f"--out {out} already holds files and is left untouched; "
                       f"give a new or empty directory")
        return out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path("runs") / f"{name}-{stamp}"
    suffix = 2
    while candidate.exists():
        candidate = Path("runs") / f"{name}-{stamp}-{suffix}"
        suffix += 1
    return candidate


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML experiment config, e.g. configs/lag1.yaml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory (new or empty). Default: runs/<name>-<timestamp>/."
    ),
    engine: Engine = typer.Option(
        Engine.fast, "--engine",
        help="fast: one fit over all sequences (default). tutorial: one fit per epoch, "
             "as the tutorial does. Both make the same updates.",
    ),
) -> None:
    """Train one experiment, score it on fresh held-out sequences, and save the run."""
    cfg = _load(config, set_)
    from echo_cli.models import BackendError, import_keras, resolve_backend
    from echo_cli.train import engine_problem

    try:
        backend = resolve_backend(cfg.train.backend)
    except BackendError as err:
        raise fail(str(err)) from None
    problem = engine_problem(engine.value, backend, cfg)
    if problem:
        raise fail(problem)
    run_dir = _run_dir(out, cfg.name)
    console = _console()
    console.print(f"[bold]echo-cli train[/] {config}  engine={engine.value}  backend={backend}")
    console.print(to_yaml(cfg).rstrip(), markup=False)
    _print_warnings(console, cfg)

    from echo_cli import report
    from echo_cli.models import save_model
    from echo_cli.train import train as run_training

    import_keras(backend)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    with report.TrainProgress(console, cfg.train.epochs) as bar:
        model, result = run_training(cfg, engine=engine.value, on_epoch=bar.update)

    metrics = result.metrics(cfg)
    report.write_history(run_dir / "history.csv", result.history)
    save_model(model, run_dir / "model.keras")
    report.write_json(run_dir / "metrics.json", metrics)

    if result.history:
        console.print(report.history_table(result.history))
    console.print(f"{result.updates} weight updates on {result.samples} samples in "
                  f"{result.train_seconds:.1f} s ({result.backend})")
    if result.interrupted:
        console.print(f"[yellow]interrupted[/] after {result.epochs_completed} of "
                      f"{cfg.train.epochs} epochs; what was done so far is in {run_dir}/")
        raise typer.Exit(130)
    if cfg.train.target_accuracy is not None:
        checks = [r for r in result.history if "validation_accuracy" in r]
        if result.reached_target:
            console.print(
                f"validation accuracy {checks[-1]['validation_accuracy']:.4f} reached "
                f"train.target_accuracy={cfg.train.target_accuracy} after "
                f"{result.epochs_completed} epochs = {result.samples} samples; stopped early"
            )
        else:
            last = f"{checks[-1]['validation_accuracy']:.4f}" if checks else "never measured"
            console.print(f"[yellow]note:[/] validation accuracy ({last}) never reached "
                          f"train.target_accuracy={cfg.train.target_accuracy}")
    held = result.heldout
    examples = [vars(e) for e in held.examples]
    if examples:
        console.print(report.examples_table(examples, lag=cfg.data.lag, target=cfg.data.target))
    console.print(report.heldout_line(metrics))
    console.print(f"saved {run_dir}/ (config.yaml, history.csv, model.keras, metrics.json)")


@app.command("check-data")
def check_data(
    config: Path | None = typer.Argument(
        None, help="YAML experiment config. Default: the built-in defaults (configs/lag1.yaml)."
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP, metavar="KEY=VALUE"),
) -> None:
    """Show exactly how one seeded sequence is framed into samples X and targets y."""
    from echo_cli import data, report
    from echo_cli.report import MISS

    cfg = _load(config, set_)
    plan = cfg.framing
    seqs = data.generate_sequences(data.stream_rng(cfg.seed, "train"), count=1,
                                   length=cfg.data.length, n_unique=cfg.data.n_unique)
    framed = data.frame(seqs, plan)
    console = _console()
    console.print(f"[bold]sequence[/] (the first training sequence of seed {cfg.seed}), "
                  f"t = 0 .. {cfg.data.length - 1}:")
    console.print(" ".join(str(v) for v in seqs[0]), markup=False)
    stateful = cfg.model.stateful
    console.print(report.framing_table(
        t=framed.t.tolist(), x=framed.x[0].tolist(), y=framed.y[0].tolist(), lag=cfg.data.lag,
        n_unique=cfg.data.n_unique,
        state_from=data.state_sources(plan, stateful=True) if stateful else None,
        batch_size=plan.batch_size,
    ))
    rows = data.rows_per_sequence(plan)
    steps = data.timesteps(plan)
    console.print(
        f"{rows} samples per sequence, x: ({rows}, {steps}, {cfg.data.n_unique}) one-hot, "
        f"in {rows // plan.batch_size} batches of {plan.batch_size}"
    )
    if (framed.x < 0).any():
        console.print(f"{MISS} marks a step before the sequence starts: an all-zero one-hot row"
                      + (", hidden from the LSTM by a Masking layer" if cfg.data.missing == "mask"
                         else ""))
    for t, reason in data.dropped_rows(plan):
        console.print(f"dropped t={t}: {reason}")
    if cfg.data.target == "sequence":
        unscored = int((framed.y[0] < 0).sum())
        console.print(f"{unscored} target positions per sequence are unscored (shown as -): "
                      f"their X(p-{cfg.data.lag}) is before the window or the sequence")
    if stateful:
        console.print(
            f"stateful: Keras carries state from sample i of one batch to sample i of the next, "
            f"so each row starts from the state of the row {plan.batch_size} earlier, not the "
            f"row before; the state is reset to zeros at the start of every sequence"
        )
    _print_warnings(console, cfg)


@app.command()
def results(
    runs: list[Path] = typer.Argument(..., help="Run directories, in the order to list them."),
    out: Path = typer.Option(Path("results"), "--out",
                             help="Directory for results.md and results.csv."),
) -> None:
    """Tabulate finished runs from their config.yaml and metrics.json (no number typed)."""
    import json

    import yaml

    from echo_cli import report

    rows, sources = [], []
    for run in runs:
        if not (run / "metrics.json").is_file() or not (run / "config.yaml").is_file():
            raise fail(f"{run} is not a finished run directory (it needs config.yaml and "
                       f"metrics.json); train one with `echo-cli train CONFIG --out {run}`")
        try:
            metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise fail(f"{run}: cannot read its files ({type(err).__name__}); re-run it") from None
        rows.append(report.result_row(cfg, metrics))
        sources.append(str(run))
    console = _console()
    console.print(report.results_table(rows))
    report.write_results(rows, out, sources=sources)
    console.print(f"saved {out / 'results.md'} and {out / 'results.csv'}")


@app.command()
def bench(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), help="The config to time."),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Train this many epochs instead of the config's."),
    repeat: int = typer.Option(1, "--repeat", min=1,
                               help="Runs per engine; the table shows the median and range."),
    backends: str = typer.Option(
        "tensorflow,jax", "--backends",
        help="Comma-separated Keras backends for the fast engine; the tutorial engine always "
             "runs on tensorflow. A backend that is not installed is skipped with a note.",
    ),
    out: Path = typer.Option(Path("bench/results.json"), "--out",
                             help="Where to write the figures as JSON."),
) -> None:
    """Time the tutorial engine against the fast engine on the same updates, in one run."""
    import importlib.util

    from echo_cli import bench as benchmark
    from echo_cli import report
    from echo_cli.models import BACKENDS

    cfg = _load(config, [f"train.epochs={epochs}"] if epochs else [])
    names = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if not names or unknown:
        raise fail(f"--backends takes names from {', '.join(BACKENDS)}, got {backends!r}")
    console = _console()
    usable = []
    for name in names:
        if name == "jax" and importlib.util.find_spec("jax") is None:
            console.print("[yellow]note:[/] jax is not installed, so it is skipped; install it "
                          "with `make setup EXTRAS=dev,jax`")
        else:
            usable.append(name)
    if not usable:
        raise fail("no usable backend: install JAX or include tensorflow in --backends")
    console.print(f"[bold]echo-cli bench[/] {config}: {cfg.train.epochs} epochs, "
                  f"{repeat} run(s) per engine, backends {', '.join(usable)}")
    with console.status("benchmarking") as status:
        results = benchmark.run_bench(config, backends=usable, epochs=epochs, repeat=repeat,
                                      progress=lambda text: status.update(text))
    record = benchmark.record(config, results, epochs=cfg.train.epochs, repeat=repeat)
    console.print(report.bench_table(record))
    for label, ratio in record["ratios"].items():
        console.print(
            f"{label} vs {record['reference']}: [bold]{ratio['speedup_vs_tutorial']:.1f}× "
            f"faster[/] at equal updates, peak RSS {ratio['rss_vs_tutorial']:.2f}×, held-out "
            f"accuracy {ratio['accuracy_points_vs_tutorial']:+.2f} points"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    report.write_json(out, record)
    console.print(f"saved {out}")


def main() -> None:
    """Console entry point: usage errors become one plain line with exit code 2."""
    try:
        code = app(standalone_mode=False)
    except UsageError as err:
        command = err.ctx.command_path if err.ctx else "echo-cli"
        print(f"error: {err.format_message()} (see `{command} --help`)", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
