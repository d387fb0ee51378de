"""The benchmarks: speed and memory measured in one run, side by side.

    echo-cli bench configs/lag1.yaml          # the tutorial loop against the default engine
    echo-cli bench scaling                    # seconds per update as the sequence grows
    echo-cli bench vocab configs/lag1.yaml    # one-hot against embedding as n_unique grows
    echo-cli bench stream                     # numbers/s through `stream`, calm and busy
    echo-cli bench seeds configs/lag1.yaml    # N seeds as one program against N separate runs

Parse, call, print: the work is in bench.py.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from echo_cli.cli.common import handled, new_console, refuse_overwrite, writing
from echo_cli.cli.completion import complete_config
from echo_cli.config.loading import load_config
from echo_cli.errors import EchoError

app = typer.Typer()


class _BenchGroup(TyperGroup):
    """`bench` runs its engines benchmark unless a subcommand is named, so that
    `echo-cli bench configs/lag1.yaml` works as it always has."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["engines", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_BenchGroup, name="bench",
    short_help="Measure speed and memory: engines, scaling, vocab, stream, seeds.",
    help="Speed and memory measured in one run: `bench [CONFIG]` times the tutorial loop "
         "against the default engine; `bench scaling` and `bench vocab` measure cost as the "
         "work grows; `bench stream` times a pipe through `echo-cli stream`, calm and busy; "
         "`bench seeds` times N seeds as one program against N separate runs.")
app.add_typer(bench_app)


def _refuse_overwrite(out: Path, force: bool) -> None:
    """Check, before a long benchmark, that its results file could be written and that it
    would replace nothing without --force."""
    if out.is_dir():
        raise EchoError(f"--out {out} is a directory; give a file name such as "
                        f"bench/results.json")
    refuse_overwrite(out, None, force=force)
    with writing(out.parent):
        pass


FORCE_HELP = "Replace the --out file (and its plot) if it exists."


@bench_app.command("engines", short_help="Time the tutorial engine against the default.")
@handled
def bench(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), metavar="CONFIG",
                                  autocompletion=complete_config, help="The config to time."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, metavar="N",
                                      help="Train this many epochs instead of the config's."),
    repeat: int = typer.Option(1, "--repeat", min=1, max=100, metavar="N",
                               help="Runs per engine; the table shows the median and range."),
    backends: str = typer.Option(
        "tensorflow,jax", "--backends",
        help="Comma-separated Keras backends for the fast engine, beside the default (auto) "
             "and the tutorial engine (always tensorflow). One not installed is skipped with a "
             "note.",
    ),
    stream: int = typer.Option(20_000, "--stream", min=0, max=10_000_000, metavar="N",
                               help="Also time `echo-cli stream` on a pipe of N integers, "
                                    "calm and with one core kept busy; 0 skips it."),
    out: Path = typer.Option(Path("bench/results.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Time the tutorial engine against the default (and each backend) on the same updates, a
    whole `echo-cli train` by phase, and a pipe through `echo-cli stream`, in one run."""
    from echo_cli.analysis import bench as benchmark
    from echo_cli.store.files import write_json

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
    _print_bench(console, record, results, config=config, repeat=repeat)
    write_json(out, record)
    console.print(f"saved {out}")


def _print_bench(console, record: dict, results, *, config: Path, repeat: int) -> None:
    """The table, the ratios, a whole train by phase and the stream's rate."""
    from echo_cli.output import tables

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
    if record.get("stream"):
        console.print(tables.stream_table(record["stream"]))


@bench_app.command("stream", short_help="Numbers/s through `echo-cli stream`, calm and busy.")
@handled
def bench_stream(
    numbers: int = typer.Option(20_000, "--numbers", min=2, max=10_000_000, metavar="N",
                                help="Integers to pipe through `echo-cli stream`."),
    out: Path = typer.Option(Path("bench/stream.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Time a pipe of N integers through `echo-cli stream` (start-up included), with the
    machine as it is and with one core kept busy by a busy loop; the same figures as
    `echo-cli bench` gives, without its engines."""
    import time

    from echo_cli.analysis import bench as benchmark
    from echo_cli.output import tables
    from echo_cli.store.files import write_json

    _refuse_overwrite(out, force)
    console = new_console()
    with console.status("benchmarking") as status:
        try:
            piped = benchmark.run_stream_bench(numbers,
                                               progress=lambda text: status.update(text))
        except RuntimeError as err:
            raise EchoError(f"the stream measurement failed: {err}") from None
    console.print(tables.stream_table(piped))
    write_json(out, {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": benchmark.machine(),
                     "stream": piped})
    console.print(f"saved {out}")


@bench_app.command("scaling", short_help="Cost per update of each kind as sequences grow.")
@handled
def bench_scaling(
    kinds: str = typer.Option("lstm,gru,tcn,lru,s6,esn", "--kinds",
                              help="Comma-separated model kinds."),
    backends: str = typer.Option("tensorflow,jax", "--backends",
                                 help="Comma-separated Keras backends."),
    lengths: str = typer.Option("25,100,400,1000", "--lengths",
                                help="Comma-separated sequence lengths (T + 20), each ≥ 22."),
    updates: int = typer.Option(60, "--updates", min=51, max=100_000, metavar="N",
                                help="Updates per run, more than 50 so that those after the "
                                     "first compiled chunk (which compiles) are timed."),
    out: Path = typer.Option(Path("bench/scaling.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON; the plot goes beside it "
                                  "as .png."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Seconds per update and peak memory of each kind on each backend as sequences grow, on
    the copy-memory task."""
    from echo_cli.analysis import bench as benchmark
    from echo_cli.analysis import scaling
    from echo_cli.output import plots, tables
    from echo_cli.store.files import write_atomic, write_json

    names = scaling.parse_names(kinds, scaling.SCALING_KINDS, "--kinds")
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
        record = scaling.run_scaling_bench(kinds=names, backends=usable, lengths=sizes,
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


@bench_app.command("startup", short_help="What each start-up trick saves a whole train.")
@handled
def bench_startup(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), metavar="CONFIG",
                                  autocompletion=complete_config, help="The config to time."),
    epochs: int = typer.Option(100, "--epochs", min=1, metavar="N", help="Epochs per run."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=20, metavar="N",
                               help="Runs of each variant; the table shows medians."),
    out: Path = typer.Option(Path("bench/startup.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Time a whole `echo-cli train` with every start-up trick, then with each one off."""
    from echo_cli.analysis import tricks
    from echo_cli.output import tables
    from echo_cli.store.files import write_json

    load_config(config)
    _refuse_overwrite(out, force)
    console = new_console()
    with console.status("benchmarking") as status:
        record = tricks.measure_tricks(config, epochs=epochs, repeat=repeat,
                                       progress=lambda text: status.update(text))
    console.print(tables.tricks_table(record))
    write_json(out, record)
    console.print(f"saved {out}")


@bench_app.command("vocab", short_help="One-hot against embedding as n_unique grows.")
@handled
def bench_vocab(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), metavar="CONFIG",
                                  autocompletion=complete_config, help="The config to time."),
    sizes: str = typer.Option("100,1000,10000", "--sizes",
                              help="Comma-separated values of data.n_unique."),
    epochs: int = typer.Option(300, "--epochs", min=1, metavar="N", help="Epochs per run."),
    sequences: int = typer.Option(200, "--sequences", min=1, metavar="N",
                                  help="Held-out sequences per run."),
    backend: str = typer.Option("tensorflow", "--backend", help="Keras backend."),
    out: Path = typer.Option(Path("bench/vocab.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Peak memory and seconds of one-hot against embedding inputs as n_unique grows."""
    from echo_cli.analysis import bench as benchmark
    from echo_cli.analysis import scaling
    from echo_cli.output import tables
    from echo_cli.store.files import write_json

    load_config(config)
    values = benchmark.parse_sizes(sizes)
    benchmark.check_backend(backend)
    _refuse_overwrite(out, force)
    console = new_console()
    with console.status("benchmarking") as status:
        record = scaling.run_vocab_bench(config, sizes=values, backend=backend, epochs=epochs,
                                           sequences=sequences,
                                           progress=lambda text: status.update(text))
    console.print(tables.vocab_table(record))
    write_json(out, record)
    console.print(f"saved {out}")


@bench_app.command("seeds", short_help="N seeds as one program against N separate runs.")
@handled
def bench_seeds(
    config: Path = typer.Argument(Path("configs/lag1.yaml"), metavar="CONFIG",
                                  autocompletion=complete_config, help="The config to time."),
    sizes: str = typer.Option("1,2,4,8,16", "--sizes",
                              help="Comma-separated numbers of seeds N, each from 1 to 1024."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, metavar="N",
                                      help="Train this many epochs instead of the config's."),
    out: Path = typer.Option(Path("bench/seeds.json"), "--out", metavar="FILE",
                             help="Where to write the figures as JSON; the plot goes beside it "
                                  "as .png."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Seeds per second of wall time: `train --seeds N` (one compiled JAX program) against N
    separate runs one after another, each a whole `echo-cli train` in a fresh process."""
    from echo_cli.analysis import bench as benchmark
    from echo_cli.analysis.bench_seeds import run_seeds_bench
    from echo_cli.output import plots
    from echo_cli.output.seeds import bench_seeds_table
    from echo_cli.store.files import write_atomic, write_json

    load_config(config, overrides=[f"train.epochs={epochs}"] if epochs else [])
    values = benchmark.parse_sizes(sizes, least=1, most=1024)
    if benchmark.default_backend() != "jax":
        raise EchoError("bench seeds times train.seeds, which needs JAX; install it with "
                        "`pip install '.[jax]'`")
    if out.suffix != ".json":
        raise EchoError(f"--out names a .json file (the plot goes beside it), got {out}")
    _refuse_overwrite(out, force)
    console = new_console()
    with console.status("benchmarking") as status:
        record = run_seeds_bench(config, sizes=values, epochs=epochs,
                                 progress=lambda text: status.update(text))
    console.print(bench_seeds_table(record))
    console.print(f"load average {record['load_before'][0]:.2f} before, "
                  f"{record['load_after'][0]:.2f} after (1 minute)")
    write_json(out, record)
    png = out.with_suffix(".png")
    write_atomic(png, plots.seeds_png(record))
    console.print(f"saved {out} and {png}")
