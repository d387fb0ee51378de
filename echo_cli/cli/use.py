"""Commands for a trained run: predict with it, stream through it, look inside it.

    echo-cli predict runs/lag1-<time> 3 1 4 1 5 9 2 6
    seq 1 12 | echo-cli stream runs/stream-<time>
    echo-cli inspect runs/lag1-<time>

Parse, call, print: the work is in analysis/ (trained.py, stream.py, probing.py) and the task.
A command that has no meaning for a run's task says why in one line (exit 2).
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import typer

from echo_cli.cli.common import handled, new_console, refuse_overwrite, writing
from echo_cli.cli.completion import complete_run

app = typer.Typer()


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
    from echo_cli.training import signals

    with signals.stopping():
        _predict(run_dir, values, as_json=as_json)


def _predict(run_dir: Path, values: list[str], *, as_json: bool) -> None:
    import json

    from echo_cli.analysis.trained import RunError, checked_config, load_run, predict_rows

    cfg = checked_config(run_dir)
    problem = cfg.task.predict_problem(cfg)
    if problem:  # said before the model is loaded
        raise RunError(problem)
    run = load_run(run_dir)
    rows = predict_rows(run, run.encode(values))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console = new_console()
    console.print(run.cfg.task.predict_view(run.cfg, rows))
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
             "and print the echo accuracy."),
) -> None:
    """Echo X(t-lag) as integers arrive on stdin, one per line, keeping the recurrent state.

    From a pipe it prints exactly one line per input integer: the echo, or - while none
    exists yet. Bad lines get a message on stderr and the stream goes on.
    """
    from echo_cli.training import signals

    with signals.stopping(at_once=heldout is None):
        _stream(run_dir, heldout)


def _stream(run_dir: Path, heldout: int | None) -> None:
    from echo_cli.analysis.stream import Streamer, stream_accuracy
    from echo_cli.analysis.trained import RunError, checked_config, load_run
    from echo_cli.config import limits
    from echo_cli.errors import EchoError

    if heldout is None and sys.stdin is None:
        raise EchoError("stdin is closed; pipe integers in (seq 1 9 | echo-cli stream RUN), "
                        "type them at a terminal, or use --heldout N")
    cfg = checked_config(run_dir)
    problem = cfg.task.stream_problem(cfg)
    if problem:  # said before the model is loaded
        raise RunError(problem)
    run = load_run(run_dir)
    streamer = Streamer(run)
    if heldout is not None:
        limits.check_stream(run.cfg, heldout)
        dataset, _, _ = run.cfg.task.prepare(run.cfg)
        scores = stream_accuracy(run, sequences=heldout, dataset=dataset)
        new_console().print(streamer.plan.score_line(scores))
        return
    _echo_lines(run, streamer)


def _echo_lines(run, streamer) -> None:
    """stdin to stdout, one echo per line; a bad line is skipped with a note on stderr.

    A pipe is read in chunks of whatever has arrived, never waiting for more once some has:
    each chunk runs through the model as one compiled loop and its answers go out in one
    write, so a pipe streams thousands of numbers a second and a line sent alone is answered
    at once.
    """
    from echo_cli.analysis.stream import answer_lines

    interactive = sys.stdin.isatty()
    if interactive:
        print(streamer.plan.prompt, file=sys.stderr)
    for lines in _typed_lines() if interactive else _piped_lines(sys.stdin):
        for text, is_note in answer_lines(streamer, lines):
            if is_note:
                print(text, file=sys.stderr)
            else:
                print(text, end="", flush=True)


def _typed_lines():
    """Lines typed at a terminal, one at a time, after a prompt."""
    while True:
        try:
            line = input("> ")
        except EOFError:
            return
        if len(line) > MAX_LINE:
            _too_long()
        yield [line]


def _piped_lines(stdin):
    """The complete lines of a pipe or file, as lists of whatever has arrived: one read
    blocks only while nothing has. A line longer than MAX_LINE ends it (the lines before it
    first), as soon as that many characters are in."""
    read = getattr(getattr(stdin, "buffer", None), "read1", None)
    if read is None:  # a text stream with no bytes beneath (io.StringIO, say)
        while line := stdin.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                _too_long()
            yield [line]
        return
    decoder = codecs.getincrementaldecoder(stdin.encoding or "utf-8")(stdin.errors or "strict")
    pending = ""
    while True:
        data = read(READ_BYTES)
        text = pending + decoder.decode(data, final=not data)
        lines = text.split("\n")
        pending = lines.pop()
        # a line is too long when, with its newline, it has more than MAX_LINE characters
        long = next((i for i, line in enumerate(lines) if len(line) >= MAX_LINE),
                    None) if len(text) >= MAX_LINE else None
        yield lines[:long]
        if long is not None or len(pending) > MAX_LINE:
            _too_long()
        if not data:
            if pending:
                yield [pending]
            return


def _too_long():
    from echo_cli.errors import EchoError

    raise EchoError(f"a line of stdin is longer than {MAX_LINE:,} characters; stream reads one "
                    f"integer per line")


MAX_LINE = 1 << 20  # characters of one stdin line: an integer needs a handful
READ_BYTES = 1 << 16  # the most one read of a pipe takes (a pipe's buffer holds 64 KiB)
INSPECT_FILES = ["state.png", "probes.csv", "probes.png"]


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
    from echo_cli.training import signals

    with signals.stopping():
        _inspect(run_dir, values or [], heldout=heldout, max_lag=max_lag, out=out, force=force)


def _inspect(run_dir: Path, values: list[str], *, heldout: int, max_lag: int | None,
             out: Path | None, force: bool) -> None:
    from echo_cli.analysis import probing
    from echo_cli.analysis.trained import inspect_sequence, load_run
    from echo_cli.output import plots, report
    from echo_cli.store import tracking
    from echo_cli.store.files import write_atomic, write_csv

    out = out or run_dir / "inspect"
    refuse_overwrite(out, INSPECT_FILES, force=force)
    run = load_run(run_dir)
    seq, origin, seq_cfg = inspect_sequence(run, values)
    picture = probing.picture(run.model, seq_cfg, seq, origin=origin)
    span = run.cfg.task.inspect_span(run.cfg)
    curve = probing.memory_curve(run.model, run.cfg, sequences_each=heldout,
                                 max_lag=max_lag if max_lag is not None else min(span - 1, 32))
    rows = [vars(p) for p in curve]
    metric = "accuracy" if run.cfg.task.probe_classes(run.cfg) else "R²"
    with writing(out):
        write_atomic(out / "state.png", plots.state_png(
            t=picture.t, labels=picture.labels, panels=picture.panels, mark=picture.mark,
            shade=picture.shade, title=f"{run_dir.name}: {run.cfg.model.kind} state over "
                                       f"{picture.origin}"))
        write_csv(out / "probes.csv", [{**r, "metric": metric} for r in rows])
        write_atomic(out / "probes.png", plots.probes_png(
            rows, metric=metric, title=f"{run_dir.name}: how far back the state remembers"))
    console = new_console()
    console.print(report.probe_summary(rows, metric=metric, fades=probing.fades_at(curve),
                                       sequences=heldout))
    console.print(tracking.log_inspect(run_dir, out), markup=False)  # the run's tb/ images
    console.print(f"saved {out}/ ({', '.join(INSPECT_FILES)})")


CAPACITY_FILES = ["capacity.json", "capacity.csv", "capacity.png"]


@app.command(short_help="Memory capacity of a trained recurrent model, beside its bound N.")
@handled
def capacity(
    run_dir: Path = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                                   help="A run of a recurrent model."),
    scale: float = typer.Option(0.8, "--scale", min=1e-6, max=1e6, metavar="S",
                                help="The input: i.i.d. values from U(-S, S)."),
    k_max: int | None = typer.Option(None, "--k-max", min=1, max=100_000, metavar="K",
                                     help="Read out u(t-k) for k = 1 .. K. Default: 2N."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR",
                                    help="Where to write capacity.csv and capacity.png. "
                                         "Default: RUN/capacity/."),
    force: bool = typer.Option(False, "--force", help="Replace the files if --out has them."),
) -> None:
    """Memory capacity MC = Σ r²(k) (Jaeger 2001) of a trained model's state, beside the bound
    N it cannot exceed: how much of i.i.d. input the state holds, and how far back."""
    from echo_cli.training import signals

    with signals.stopping():
        _capacity(run_dir, scale=scale, k_max=k_max, out=out or run_dir / "capacity",
                  force=force)


def _capacity(run_dir: Path, *, scale: float, k_max: int | None, out: Path,
              force: bool) -> None:
    from echo_cli.analysis import capacity as mc
    from echo_cli.analysis.trained import RunError, load_run
    from echo_cli.output import plots, report
    from echo_cli.store.files import write_atomic, write_csv, write_json

    refuse_overwrite(out, CAPACITY_FILES, force=force)
    run = load_run(run_dir)
    if run.cfg.kind.cell is None:
        raise RunError(f"capacity reads a recurrent state, and this run's model.kind is "
                       f"{run.cfg.model.kind}, which carries none that echo-cli can recompute")
    result = mc.run_capacity(run, scale=scale, k_max=k_max, seed=run.cfg.seed)
    expected = mc.eigen_curve(run.model, result.k_max)
    with writing(out):
        write_json(out / "capacity.json", {**vars(result), "run": str(run_dir)})
        write_csv(out / "capacity.csv", [
            {"k": k, "r2": r2, **{name: curve[k - 1] for name, curve in (expected or {}).items()}}
            for k, r2 in enumerate(result.r2, 1)])
        write_atomic(out / "capacity.png", plots.capacity_png(
            result.r2, expected=expected, title=f"{run_dir.name}: memory capacity "
            f"{result.total:.2f} of N={result.bound}"))
    console = new_console()
    console.print(report.capacity_lines(vars(result), kind=run.cfg.model.kind))
    console.print(f"saved {out}/ ({', '.join(CAPACITY_FILES)})")
