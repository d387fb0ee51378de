"""How the echo is shown: its check-data block, its decoded examples, its predictions.

    lines = check_data(cfg, plan, dataset=None, cap=40)      # rich renderables and strings
    console.print(examples_table(examples, lag=1, target="value", width=100))

Plain data in, rich renderables out; nothing here trains or reads a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

import echo_cli.tasks.framing as framing
from echo_cli.output.report import MISS, cut_values, plain, sample_rows


def describe_dataset(cfg, dataset) -> str:
    """One line on what a CSV file became: sequences, held-out part, vocabulary."""
    how = (f"{len(dataset.vocabulary)} distinct values mapped to ids 0 .. "
           f"{len(dataset.vocabulary) - 1} (data.n_unique = {dataset.n_unique})"
           if dataset.vocabulary is not None else
           f"integers used as they are (data.n_unique = {dataset.n_unique}, the largest + 1)")
    gaps = ""
    if dataset.gaps:
        lines = ", ".join(map(str, dataset.gaps[:5])) + (", ..." if len(dataset.gaps) > 5 else "")
        gaps = (f"; {len(dataset.gaps)} rows have no value (lines {lines}): sequences are cut "
                f"between them, never across one")
    return (f"data: {dataset.rows} values from {cfg.data.path} column {cfg.data.column!r}: "
            f"{len(dataset.train)} training sequences (cycled, one per epoch) and "
            f"{len(dataset.heldout)} held-out sequences from the last "
            f"{cfg.data.heldout_fraction:.0%} of the file; {how}{gaps}")


def check_data(cfg, plan: framing.Framing, dataset, *, cap: int | None) -> list[Any]:
    """The first training sequence (of the seed, or of the file), framed: its samples, what
    was dropped, and where each row's state comes from."""
    lines: list[Any] = []
    if dataset is None:
        from echo_cli.tasks.base import stream_rng

        seqs = framing.generate_sequences(stream_rng(cfg.seed, "train"), count=1,
                                          length=cfg.data.length, n_unique=cfg.data.n_unique)
        origin = f"the first training sequence of seed {cfg.seed}"
    else:
        lines.append(Text(describe_dataset(cfg, dataset)))
        seqs = dataset.train[:1]
        origin = f"the first training sequence of {cfg.data.path}, as ids"
    total = framing.rows_per_sequence(plan)
    shown = sample_rows(total, cap) if cap else list(range(total))
    framed = framing.frame(seqs, plan, rows=shown)  # only the rows printed
    lines.append(Text.assemble(("sequence", "bold"),
                               f" ({origin}), t = 0 .. {cfg.data.length - 1}:"))
    lines.append(Text(cut_values(seqs[0].tolist(), cap)))
    if dataset is not None and dataset.vocabulary is not None:
        lines.append(Text("values: " + cut_values([dataset.vocabulary[i] for i in seqs[0]], cap)))
    stateful = cfg.model.stateful
    lines.append(framing_table(
        t=framed.t.tolist(), x=framed.x[0].tolist(), y=framed.y[0].tolist(), lag=cfg.data.lag,
        n_unique=cfg.data.n_unique,
        state_from=framing.state_sources(plan, stateful=True, rows=shown) if stateful else None,
        batch_size=plan.batch_size, shown=shown, max_steps=cap))
    return lines + _notes(cfg, plan, framed, shown=len(shown), total=total, cap=cap)


def _notes(cfg, plan: framing.Framing, framed, *, shown: int, total: int,
           cap: int | None) -> list[str]:
    """What the table leaves out, the shapes, the dropped rows and where state comes from."""
    steps = framing.timesteps(plan)
    lines = []
    if shown < total or (cap and steps > cap):
        lines.append(f"showing {shown} of {total} samples"
                     + (f" and the last {cap} steps of each window" if cap and steps > cap
                        else "") + "; --rows N shows more, --rows 0 everything")
    shape = (f"({total}, {steps}, {cfg.data.n_unique}) one-hot"
             if cfg.model.encoding == "onehot" else f"({total}, {steps}) ids for an embedding")
    lines.append(f"{total} samples per sequence, x: {shape}, in {total // plan.batch_size} "
                 f"batches of {plan.batch_size}")
    if (framed.x < 0).any():
        lines.append(f"{MISS} marks a step before the sequence starts: an all-zero one-hot row"
                     + (", hidden from the network by a Masking layer"
                        if cfg.data.missing == "mask" else ""))
    dropped = framing.dropped_rows(plan)
    lines += [f"dropped t={t}: {reason}" for t, reason in dropped[: cap or len(dropped)]]
    if cap and len(dropped) > cap:
        lines.append(f"... and {len(dropped) - cap} more dropped rows; --rows 0 lists them all")
    if cfg.data.target == "sequence":
        unscored = int((framed.y[0] < 0).sum())
        lines.append(f"{unscored} target positions per sequence are unscored (shown as -): "
                     f"their X(p-{cfg.data.lag}) is before the window or the sequence")
    if cfg.model.stateful:
        source = ("the row before" if plan.batch_size == 1 else
                  f"the row {plan.batch_size} earlier, not the row before")
        lines.append(f"stateful: Keras carries state from sample i of one batch to sample i of "
                     f"the next, so each row starts from the state of {source}; the state is "
                     f"reset to zeros at the start of every sequence")
    return lines


def examples_table(examples: list[dict[str, Any]], *, lag: int, target: str,
                   width: int = 100) -> Group:
    """Decoded held-out sequences in aligned columns, wrapped to `width`; a wrong prediction
    is marked with ✗ (and red). Value targets show every row t; sequence targets show the last
    row's window, position by position."""
    parts: list[Any] = [Text(f"held-out examples (✗ marks a wrong prediction, {MISS} = not scored)",
                             style="bold")]
    names = ("t", "input X(t)", f"target X(t-{lag})", "predicted")
    label = max(map(len, names)) + 1
    for n, ex in enumerate(examples, start=1):
        if target == "value":
            t, inputs = ex["t"], [ex["sequence"][ti] for ti in ex["t"]]
            expected, predicted = ex["expected"], ex["predicted"]
            parts.append(Text(f"sequence {n}", style="dim"))
        else:
            last = len(ex["t"]) - 1
            t_end = ex["t"][last]
            expected, predicted = ex["expected"][last], ex["predicted"][last]
            t = list(range(t_end - len(expected) + 1, t_end + 1))
            inputs = [ex["sequence"][ti] if ti >= 0 else -1 for ti in t]
            parts.append(Text(f"sequence {n}, its last sample (t={t_end})", style="dim"))
        cell = max(len(str(v)) for v in [*t, *inputs, *expected, *predicted]) + 2
        per_line = max(1, (width - label) // cell)
        for start in range(0, len(t), per_line):
            part = slice(start, start + per_line)
            lines = {name: Text(name.rjust(label - 1) + " ", style="dim") for name in names}
            for ti, x, e, p in zip(t[part], inputs[part], expected[part], predicted[part],
                                   strict=True):
                lines["t"].append(str(ti).rjust(cell - 1) + " ", style="dim")
                lines[names[1]].append((MISS if x < 0 else str(x)).rjust(cell - 1) + " ")
                lines[names[2]].append((MISS if e < 0 else str(e)).rjust(cell - 1) + " ")
                if e < 0:
                    lines["predicted"].append(MISS.rjust(cell - 1) + " ", style="dim")
                elif e == p:
                    lines["predicted"].append(str(p).rjust(cell - 1) + " ")
                else:
                    lines["predicted"].append((str(p) + "✗").rjust(cell), style="bold red")
            parts.extend(lines.values())
    return Group(*parts)

def _aligned(values: Sequence[int], width: int) -> str:
    return " ".join((MISS if v < 0 else str(v)).rjust(width) for v in values)

def framing_table(
    *, t: Sequence[int], x: Sequence[Sequence[int]], y: Sequence, lag: int, n_unique: int,
    state_from: Sequence[int | None] | None = None, batch_size: int | None = None,
    shown: Sequence[int] | None = None, max_steps: int | None = None,
) -> Table:
    """One row per sample: t, the window as ids, the target (and where its state comes from).

    For sequence targets the target row is printed under the window, position by position.
    t, x, y and state_from hold the printed rows only; shown: their indices among all rows
    (for the batch number), 0, 1, 2, ... by default; max_steps: print only the last steps of a
    longer window, after an ellipsis.
    """
    width = len(str(n_unique - 1))
    table = Table(title="samples (one row each)", show_lines=False)
    table.add_column("t", justify="right")
    if batch_size:
        table.add_column("batch", justify="right")
    sequence_target = bool(y) and isinstance(y[0], (list, tuple))
    if sequence_target:
        table.add_column(f"x: window\ny: X(p-{lag}) under each X(p)", justify="left")
    else:
        table.add_column("x: window", justify="left")
        table.add_column(f"y = X(t-{lag})", justify="right")
    if state_from is not None:
        table.add_column("state from", justify="right")
    def last(values: Sequence[int]) -> str:
        if max_steps is None or len(values) <= max_steps:
            return _aligned(values, width)
        return "… " + _aligned(values[-max_steps:], width)

    for i, ti in enumerate(t):
        cells = [str(ti)]
        if batch_size:
            cells.append(str((shown[i] if shown is not None else i) // batch_size + 1))
        if sequence_target:
            cells.append(f"x {last(x[i])}\ny {last(y[i])}")
        else:
            cells += [last(x[i]), str(y[i])]
        if state_from is not None:
            src = state_from[i]
            cells.append("zeros (reset)" if src is None else f"t={src}")
        table.add_row(*cells)
    return table

def predict_table(rows: list[dict[str, Any]], *, lag: int) -> Table:
    """t, input, expected X(t-lag), prediction, probability and match, one row per input."""
    table = Table(title=f"predictions of X(t-{lag})")
    for name in ("t", "X(t)", f"expected X(t-{lag})", "predicted", "probability", "match"):
        table.add_column(name, justify="right")
    for r in rows:
        if r["predicted"] is None:  # values may come from a user's file: never markup
            table.add_row(str(r["t"]), plain(r["input"]),
                          MISS if r["expected"] is None else plain(r["expected"]),
                          plain(r["note"], "dim"), "", "")
            continue
        table.add_row(str(r["t"]), plain(r["input"]), plain(r["expected"]),
                      plain(r["predicted"]), f"{r['probability']:.3f}",
                      Text("✓", style="green") if r["match"] else Text("✗", style="bold red"))
    return table

def stream_line(scores: dict[str, Any], *, lag: int) -> Text:
    text = Text(f"streamed {scores['sequences']} fresh held-out sequences one number at a time: "
                f"echo accuracy of X(t-{lag}) ")
    text.append(f"{scores['accuracy']:.4f}", style="bold")
    text.append(f" (95% CI {scores['ci95_low']:.4f}-{scores['ci95_high']:.4f}, "
                f"{scores['correct']}/{scores['targets']} echoes)   chance "
                f"{scores['chance_accuracy']:.4f}")
    return text
