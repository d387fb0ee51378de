"""The echo-cli commands: parse, call, print. Heavy imports live inside the command bodies.

    echo-cli train configs/lag1.yaml --set train.epochs=50
    echo-cli check-data configs/lag1.yaml
"""

from __future__ import annotations

import enum
import itertools
import os
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


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


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


def _dataset(cfg: Config):
    """For data.source csv: read the file, and set n_unique from its vocabulary if it has one.

    Returns:
        (cfg, dataset), dataset None for random data.
    """
    if cfg.data.source != "csv":
        return cfg, None
    from echo_cli.config import validate
    from echo_cli.data import DataError, csv_dataset

    try:
        dataset = csv_dataset(cfg.data)
    except DataError as err:
        raise fail(str(err)) from None
    if dataset.n_unique != cfg.data.n_unique:
        raw = cfg.model_dump()
        raw["data"]["n_unique"] = dataset.n_unique
        try:
            cfg = validate(raw, source=f"{cfg.data.path} with its vocabulary")
        except ConfigError as err:
            raise fail(str(err)) from None
    return cfg, dataset


def _describe_dataset(console: Console, cfg: Config, dataset) -> None:
    if dataset is None:
        return
    how = (f"{len(dataset.vocabulary)} distinct values mapped to ids 0 .. "
           f"{len(dataset.vocabulary) - 1} (data.n_unique = {dataset.n_unique})"
           if dataset.vocabulary is not None else
           f"integers used as they are (data.n_unique = {dataset.n_unique}, the largest + 1)")
    console.print(
        f"data: {dataset.rows} values from {cfg.data.path} column {cfg.data.column!r}: "
        f"{len(dataset.train)} training sequences (cycled, one per epoch) and "
        f"{len(dataset.heldout)} held-out sequences from the last "
        f"{cfg.data.heldout_fraction:.0%} of the file; {how}"
    )


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _run_dir(out: Path | None, name: str) -> Path:
    """Create this run's directory: --out if new or empty, else runs/<name>-<time>[-k].

    The directory is claimed with an exclusive mkdir, so two runs never share one.
    """
    try:
        if out is not None:
            if out.exists() and not out.is_dir():
                raise fail(f"--out {out} is a file; give a new or empty directory")
            if out.is_dir():
                if any(out.iterdir()):
                    raise fail(f"--out {out} already holds files and is left untouched; "
                               f"give a new or empty directory")
                return out
            out.mkdir(parents=True)
            return out
        stamp = _timestamp()
        Path("runs").mkdir(exist_ok=True)
        for suffix in itertools.count(1):
            candidate = Path("runs") / (f"{name}-{stamp}" + (f"-{suffix}" if suffix > 1 else ""))
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except FileExistsError:
        raise fail(f"--out {out} was created by something else just now; give a new "
                   f"directory") from None
    except OSError as err:
        where = out if out is not None else Path("runs")
        raise fail(f"cannot create the run directory {where}: {err.strerror}") from None
    raise AssertionError("unreachable")


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
    cfg, dataset = _dataset(cfg)
    from echo_cli.models import BackendError, import_keras, resolve_backend
    from echo_cli.train import engine_problem

    try:
        backend = resolve_backend(cfg.train.backend)
    except BackendError as err:
        raise fail(str(err)) from None
    problem = engine_problem(engine.value, backend, cfg)
    if problem:
        raise fail(problem)
    cfg.train.backend = backend  # the saved config.yaml names the backend that ran
    run_dir = _run_dir(out, cfg.name)
    console = _console()
    console.print(f"[bold]echo-cli train[/] {config}  engine={engine.value}  backend={backend}")
    console.print(to_yaml(cfg).rstrip(), markup=False)
    _describe_dataset(console, cfg, dataset)
    _print_warnings(console, cfg)

    from echo_cli import report
    from echo_cli.models import save_model
    from echo_cli.train import train as run_training

    import_keras(backend)

    (run_dir / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    if dataset is not None and dataset.vocabulary is not None:
        from echo_cli.infer import VOCABULARY_FILE

        report.write_json(run_dir / VOCABULARY_FILE, dataset.vocabulary)
    with report.TrainProgress(console, cfg.train.epochs) as bar:
        model, result = run_training(cfg, engine=engine.value, on_epoch=bar.update,
                                     dataset=dataset)

    metrics = result.metrics(cfg)
    report.write_history(run_dir / "history.csv", result.history)
    save_model(model, run_dir / "model.keras")
    report.write_json(run_dir / "metrics.json", metrics)
    if result.history:
        report.plot_curves(result.history, run_dir / "curves.png", chance=cfg.chance_accuracy,
                           title=f"{cfg.name}: {cfg.model.kind}, lag {cfg.data.lag}")

    if result.history:
        console.print(report.history_table(result.history))
    console.print(f"{result.updates} weight updates on {result.samples} samples in "
                  f"{result.train_seconds:.1f} s ({result.backend}); {cfg.model.kind} with "
                  f"{result.parameters:,} trainable parameters, "
                  f"{result.multiply_adds_per_sample:,} multiply-adds per sample")
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
        console.print(report.examples_table(examples, lag=cfg.data.lag, target=cfg.data.target,
                                            width=console.width))
    console.print(report.heldout_line(metrics))
    console.print(f"saved {run_dir}/ (config.yaml, history.csv, model.keras, metrics.json, "
                  f"curves.png)")


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
    cfg, dataset = _dataset(cfg)
    plan = cfg.framing
    console = _console()
    if dataset is None:
        seqs = data.generate_sequences(data.stream_rng(cfg.seed, "train"), count=1,
                                       length=cfg.data.length, n_unique=cfg.data.n_unique)
        origin = f"the first training sequence of seed {cfg.seed}"
    else:
        _describe_dataset(console, cfg, dataset)
        seqs = dataset.train[:1]
        origin = f"the first training sequence of {cfg.data.path}, as ids"
    framed = data.frame(seqs, plan)
    console.print(f"[bold]sequence[/] ({origin}), t = 0 .. {cfg.data.length - 1}:")
    console.print(" ".join(str(v) for v in seqs[0]), markup=False)
    if dataset is not None and dataset.vocabulary is not None:
        console.print("values: " + " ".join(str(dataset.vocabulary[i]) for i in seqs[0]),
                      markup=False)
    stateful = cfg.model.stateful
    console.print(report.framing_table(
        t=framed.t.tolist(), x=framed.x[0].tolist(), y=framed.y[0].tolist(), lag=cfg.data.lag,
        n_unique=cfg.data.n_unique,
        state_from=data.state_sources(plan, stateful=True) if stateful else None,
        batch_size=plan.batch_size,
    ))
    rows = data.rows_per_sequence(plan)
    steps = data.timesteps(plan)
    shape = (f"({rows}, {steps}, {cfg.data.n_unique}) one-hot"
             if cfg.model.encoding == "onehot" else f"({rows}, {steps}) ids for an embedding")
    console.print(f"{rows} samples per sequence, x: {shape}, in {rows // plan.batch_size} "
                  f"batches of {plan.batch_size}")
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
        source = ("the row before" if plan.batch_size == 1 else
                  f"the row {plan.batch_size} earlier, not the row before")
        console.print(
            f"stateful: Keras carries state from sample i of one batch to sample i of the next, "
            f"so each row starts from the state of {source}; the state is reset to zeros at the "
            f"start of every sequence"
        )
    _print_warnings(console, cfg)


def _open_run(run_dir: Path):
    from echo_cli.infer import RunError, load_run
    from echo_cli.models import BackendError

    try:
        return load_run(run_dir)
    except (RunError, BackendError) as err:
        raise fail(str(err)) from None


@app.command(context_settings={"ignore_unknown_options": True})
def predict(
    run_dir: Path = typer.Argument(..., help="A run directory written by `echo-cli train`."),
    values: list[str] = typer.Argument(..., help="The input sequence, e.g. 3 1 4 1 5 9 2 6.",
                                       metavar="INT..."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON, for scripts."),
) -> None:
    """Predict X(t-lag) from your own integers with a trained run, framed as in training."""
    import json

    from echo_cli import report
    from echo_cli.infer import RunError, predict_rows

    run = _open_run(run_dir)
    try:
        rows = predict_rows(run, run.encode(values))
    except RunError as err:
        raise fail(str(err)) from None
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console = _console()
    console.print(report.predict_table(rows, lag=run.cfg.data.lag))
    scored = [r for r in rows if r["match"] is not None]
    if scored:
        right = sum(r["match"] for r in scored)
        console.print(f"{right} of {len(scored)} predictions match; chance is "
                      f"{run.cfg.chance_accuracy:.3g} per prediction")


@app.command()
def stream(
    run_dir: Path = typer.Argument(..., help="A run trained on whole sequences, e.g. from "
                                             "configs/stream.yaml."),
    heldout: int | None = typer.Option(
        None, "--heldout", min=1,
        help="Instead of reading stdin, stream N fresh held-out sequences one number at a time "
             "and print the echo accuracy.",
    ),
) -> None:
    """Echo X(t-lag) as integers arrive on stdin, one per line, keeping the LSTM state.

    From a pipe it prints exactly one line per input integer: the echo, or - while none
    exists yet. Bad lines get a message on stderr and the stream goes on.
    """
    from echo_cli.infer import RunError, Streamer, stream_accuracy

    run = _open_run(run_dir)
    try:
        streamer = Streamer(run)
    except RunError as err:
        raise fail(str(err)) from None
    if heldout is not None:
        from echo_cli import report
        from echo_cli.data import DataError

        try:
            scores = stream_accuracy(run, sequences=heldout)
        except DataError as err:
            raise fail(str(err)) from None
        _console().print(report.stream_line(scores, lag=run.cfg.data.lag))
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
        print("-" if echo is None else run.decode(echo[0]), flush=True)


@app.command()
def results(
    runs: list[Path] = typer.Argument(..., help="Run directories, in the order to list them."),
    out: Path = typer.Option(Path("results"), "--out",
                             help="Directory for results.md and results.csv."),
) -> None:
    """Tabulate finished runs from their config.yaml and metrics.json (no number typed)."""
    import json

    from echo_cli import report

    rows, sources = [], []
    for run in runs:
        if not (run / "metrics.json").is_file() or not (run / "config.yaml").is_file():
            raise fail(f"{run} is not a finished run directory (it needs config.yaml and "
                       f"metrics.json); train one with `echo-cli train CONFIG --out {run}`")
        cfg = _load(run / "config.yaml", [])
        try:
            metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            if not isinstance(metrics, dict):
                raise ValueError("not a mapping")
            rows.append(report.result_row(cfg.model_dump(), metrics))
        except (ValueError, KeyError, TypeError) as err:
            raise fail(f"{run}/metrics.json is not a run's metrics ({err}); re-run it") from None
        sources.append(str(run))
    console = _console()
    console.print(report.results_table(rows))
    try:
        report.write_results(rows, out, sources=sources)
    except OSError as err:
        raise fail(f"cannot write to --out {out}: {err.strerror}") from None
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
    _writable(out)
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
    for m in results:
        if m.error:
            console.print(f"[red]{m.label}[/]: a run failed ({m.error}); "
                          f"{len(m.train_seconds)} of {repeat} runs are in the table")
    for label, ratio in record["ratios"].items():
        console.print(
            f"{label} vs {record['reference']}: [bold]{ratio['speedup_vs_tutorial']:.1f}× "
            f"faster[/] at equal updates, peak RSS {ratio['rss_vs_tutorial']:.2f}×, held-out "
            f"accuracy {ratio['accuracy_points_vs_tutorial']:+.2f} points"
        )
    report.write_json(out, record)
    console.print(f"saved {out}")


@app.command("bench-vocab")
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
) -> None:
    """Peak memory and seconds of one-hot against embedding inputs as n_unique grows."""
    from echo_cli import bench as benchmark
    from echo_cli import report
    from echo_cli.models import BACKENDS

    _load(config, [])
    _writable(out)
    try:
        values = [int(v) for v in sizes.split(",") if v.strip()]
    except ValueError:
        raise fail(f"--sizes takes comma-separated integers, got {sizes!r}") from None
    if not values or min(values) < 2:
        raise fail(f"--sizes takes integers ≥ 2, got {sizes!r}")
    if backend not in BACKENDS:
        raise fail(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    console = _console()
    with console.status("benchmarking") as status:
        record = benchmark.run_vocab_bench(config, sizes=values, backend=backend, epochs=epochs,
                                           sequences=sequences,
                                           progress=lambda text: status.update(text))
    console.print(report.vocab_table(record))
    report.write_json(out, record)
    console.print(f"saved {out}")


@app.command()
def sweep(
    config: Path = typer.Argument(..., help="The base YAML config every run starts from."),
    grid: list[str] = typer.Option(
        [], "--grid", metavar="KEY=V1,V2,...",
        help="A key and the values to try, e.g. --grid data.lag=1,2,4. Repeatable: the sweep "
             "runs the cartesian product. Keys joined by + move together: "
             "--grid data.lag+data.window=1:5,2:6.",
    ),
    seeds: int = typer.Option(1, "--seeds", min=1,
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
    """Train every combination of the grid values (times the seeds) and summarize them."""

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from echo_cli import report
    from echo_cli import sweep as sweeps
    from echo_cli.config import known_keys

    cfg = _load(config, set_)
    try:
        parsed = sweeps.parse_grid(grid)
    except sweeps.SweepError as err:
        raise fail(str(err)) from None
    if not parsed:
        raise fail("give at least one --grid KEY=V1,V2,..., e.g. --grid data.lag=1,2,4")
    for key in sweeps.grid_keys(parsed):
        if key not in known_keys():
            raise fail(f"--grid {key} is not a known key; see the keys in configs/lag1.yaml "
                       f"or the README")
    out = out or Path("runs") / f"sweep-{cfg.name}-{_timestamp()}"
    try:
        job = sweeps.Sweep(out, config=config, grid=parsed, seeds=seeds, base_seed=cfg.seed,
                           base_overrides=list(set_), resolved=cfg.model_dump())
        records = job.prepare()
    except sweeps.SweepError as err:
        raise fail(str(err)) from None
    sweeps.reject_invalid(job, records)
    console = _console()
    skipped = sum(r.status == "done" for r in records)
    console.print(f"[bold]echo-cli sweep[/] {config}: {len(records)} runs "
                  f"({' x '.join(str(len(v)) for _, v in parsed)} grid points x {seeds} seeds)"
                  f"{f', {skipped} already done' if skipped else ''} -> {out}/")
    workers = workers or os.cpu_count() or 1
    progress = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[state]}"), TimeRemainingColumn(),
                        console=console)
    task = progress.add_task("runs", total=len(records), state="")

    def on_update(current) -> None:
        counts = {k: sum(r.status == k for r in current) for k in ("done", "failed", "running")}
        progress.update(task, completed=counts["done"] + counts["failed"],
                        state=f"running {counts['running']}, failed {counts['failed']}")

    on_update(records)
    finished = False
    try:
        with progress:
            if executor is Executor.local:
                finished = sweeps.run_local(job, records, workers=workers, on_update=on_update)
            else:
                finished = sweeps.run_ray(job, records, address=address, workers=workers,
                                          on_update=on_update)
    except sweeps.SweepError as err:
        raise fail(str(err)) from None
    finally:
        job.release()
        table = sweeps.rows(records, job.keys)
        summary = sweeps.summarize(table, job.keys)
        sweeps.write_csv(out / "results.csv", table)
        title = f"sweep of {config}: {', '.join(job.keys)} x {seeds} seeds"
        (out / "summary.md").write_text(sweeps.summary_markdown(summary, job.keys, title=title),
                                        encoding="utf-8")
    console.print(report.sweep_summary_table(summary, job.keys, title=title))
    points = sweeps.plot_points(table, job.axes)
    if points:
        chance = min(row["chance_accuracy"] for row in table if row["status"] == "done")
        others = job.axes[2:]
        report.plot_sweep(points, out / "sweep.png", x_key=job.axes[0],
                          line_key=job.axes[1] if len(job.axes) > 1 else None, chance=chance,
                          title=title + (f"\n(pooled over {', '.join(others)})" if others else ""))
    failed = [r for r in records if r.status == "failed"]
    for r in failed:
        console.print(f"[red]failed[/] {r.point.name}: {r.error}")
    console.print(f"saved {out}/ (results.csv, summary.md{', sweep.png' if points else ''}, "
                  f"runs/)")
    if not finished:
        not_run = sum(r.status == "not run" for r in records)
        console.print(f"[yellow]interrupted[/]: {not_run} runs not run; resume with the same "
                      f"command and --out {out}")
        raise typer.Exit(130)


@app.command()
def compare(
    paths: list[Path] = typer.Argument(..., help="Run directories and/or sweep directories."),
    plot: Path | None = typer.Option(
        None, "--plot",
        help="Draw held-out accuracy against the first differing key, one line per value of "
             "the second, with 95% intervals, to this PNG file.",
    ),
) -> None:
    """Put runs side by side: only the config keys that differ, then the metrics."""
    from echo_cli import report
    from echo_cli.compare import CompareError, collect, differing_keys, plot_axes, plot_points

    if plot is not None and plot.suffix.lower() != ".png":
        raise fail(f"--plot writes a PNG file, so its name ends in .png, got {plot}")
    try:
        runs = collect(paths)
        keys = differing_keys(runs)
        swept = plot_axes(runs, keys)
    except CompareError as err:
        raise fail(str(err)) from None
    console = _console()
    console.print(report.compare_table(runs, keys))
    if plot is not None:
        if not swept:
            raise fail("--plot needs runs whose configs differ in at least one key besides "
                       "name, description and seed")
        if len(swept) > 2:
            raise fail(f"--plot draws one key against another, but these runs differ in "
                       f"{len(swept)}: {', '.join(swept)}; compare fewer runs")
        try:
            plot.parent.mkdir(parents=True, exist_ok=True)
            report.plot_sweep(plot_points(runs, swept), plot, x_key=swept[0],
                              line_key=swept[1] if len(swept) > 1 else None,
                              chance=min(r["metrics"]["chance_accuracy"] for r in runs),
                              title=f"held-out accuracy by {' and '.join(swept)}")
        except OSError as err:
            raise fail(f"cannot write --plot {plot}: {err.strerror}") from None
        console.print(f"saved {plot}")


def _writable(out: Path) -> None:
    """Check, before a long benchmark, that its results file can be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fail(f"cannot write --out {out}: {err.strerror}") from None
    if out.is_dir():
        raise fail(f"--out {out} is a directory; give a file name such as bench/results.json")


def main() -> None:
    """Console entry point: usage errors become one plain line with exit code 2."""
    try:
        code = app(prog_name="echo-cli", standalone_mode=False)
    except UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
            print(err.ctx.get_help())
            sys.exit(0)
        command = err.ctx.command_path if err.ctx else "echo-cli"
        print(f"error: {err.format_message()} (see `{command} --help`)", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
