"""The echo, the tutorial's task: X(t-lag) from a window of the last observations.

    task = tasks.get("echo")
    task.signature(cfg)        # Signature(steps=5, symbols=100, outputs=100, per_step=False)

One epoch is one freshly generated sequence (or one sequence of a CSV file, cycled), framed
into samples (framing.py); a stateful model carries its state from batch to batch within the
sequence and is reset after it. Held-out sequences come from a separate seed stream, or from
the file's last part. How it is shown lives in echo_views.py. This module imports no Keras.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from pydantic import Field

import echo_cli.tasks.echo_use as echo_use
import echo_cli.tasks.echo_views as echo_views
import echo_cli.tasks.framing as framing
from echo_cli import models
from echo_cli.fields import Section
from echo_cli.models import cells
from echo_cli.models.base import Signature, model_ids
from echo_cli.tasks.base import Block, Heldout, Size, StreamPlan, Task, stream_rng
from echo_cli.tasks.csv_source import Dataset, csv_dataset


class EchoData(Section):
    task: Literal["echo"] = Field("echo", description="echo: X(t-lag) from a window")
    source: Literal["random", "csv"] = Field(
        "random", description="random integers, or csv: a column of your own file")
    path: str | None = Field(None, max_length=4096, description="data.source csv: the CSV file")
    column: str | None = Field(None, max_length=200,
                               description="data.source csv: the column to read")
    heldout_fraction: float = Field(
        0.2, gt=0, lt=1, description="data.source csv: the last part of the file, held out")
    n_unique: int = Field(100, ge=2, description="integers 0 .. n_unique-1")
    length: int = Field(25, ge=1, description="integers per sequence")
    lag: int = Field(1, ge=0, description="the target is X(t - lag)")
    window: int = Field(5, ge=1, description="context timesteps X(t-window+1) .. X(t)")
    missing: Literal["drop", "pad", "mask"] = Field(
        "drop", description="rows whose window starts before the sequence: drop | pad | mask")
    context: Literal["window", "full"] = Field(
        "window", description="window: the last `window` steps; full: the sequence so far")
    target: Literal["value", "sequence"] = Field(
        "value", description="value: one X(t-lag) per row; sequence: X(p-lag) at every p")


def plan(cfg) -> framing.Framing:
    """How the config frames a sequence into samples."""
    d = cfg.data
    return framing.Framing(length=d.length, lag=d.lag, window=d.window, missing=d.missing,
                           context=d.context, target=d.target, batch_size=cfg.train.batch_size)


def model_arrays(framed: framing.Framed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Framed sequences flattened to model arrays: ids, sparse targets, sample weights."""
    x = model_ids(framed.x.reshape(-1, framed.x.shape[-1]))
    y = framed.y.reshape(-1, *framed.y.shape[2:])
    weights = (y >= 0).astype(np.float32)
    return x, np.maximum(y, 0).astype(np.int32), weights


class Echo(Task):
    name = "echo"
    title = "echo through the state"
    summary = "X(t-lag) from a window of random integers (the tutorial's task)"
    Data = EchoData
    epoch_unit = "epoch"
    epoch_words = "one epoch = one sequence"
    tutorial_engine = True

    # ------------------------------------------------------------------ the config
    def check(self, cfg) -> None:
        d, t = cfg.data, cfg.train
        if d.context == "window" and d.window > d.length:
            raise ValueError(f"data.window must be ≤ data.length ({d.length}), got {d.window}; "
                             f"a window cannot be longer than the sequence")
        if d.lag >= d.length:
            raise ValueError(f"data.lag must be < data.length ({d.length}), got {d.lag}; no row "
                             f"of a {d.length}-integer sequence has a target {d.lag} steps back")
        if d.source == "csv" and (not d.path or not d.column):
            raise ValueError("data.source: csv needs data.path (a CSV file) and data.column "
                             "(the column of integers or values to echo)")
        if d.source == "csv" and t.target_accuracy is not None:
            raise ValueError("train.target_accuracy needs fresh validation sequences, so it "
                             "works with data.source: random only")
        if t.target_loss is not None:
            raise ValueError("train.target_loss is for the memory tasks; the echo stops at "
                             "train.target_accuracy")
        if d.missing == "mask" and not models.get(cfg.model.kind).masking:
            raise ValueError(f"data.missing: mask needs a model.kind that skips masked steps "
                             f"({models.words(models.having('masking'))}); {cfg.model.kind} "
                             f"cannot, so use data.missing: pad")
        if d.context == "full" and d.missing == "drop":
            raise ValueError("data.context: full needs data.missing: pad or mask; with drop "
                             "only the last row of each sequence would be kept")
        self._check_rows(cfg)

    def _check_rows(self, cfg) -> None:
        d, t = cfg.data, cfg.train
        rows = framing.candidate_rows(plan(cfg))
        if rows < 1:
            raise ValueError(f"no row of a {d.length}-integer sequence has both a full window "
                             f"of {d.window} and a target {d.lag} steps back; lower data.window "
                             f"or data.lag, or use data.missing: pad")
        if t.batch_size > rows:
            fits = ", ".join(str(k) for k in range(1, rows + 1) if rows % k == 0)
            raise ValueError(f"train.batch_size must be ≤ {rows}, the samples per sequence, got "
                             f"{t.batch_size}; batch sizes that divide {rows} exactly: {fits}")

    def warnings(self, cfg) -> list[str]:
        notes = []
        d = cfg.data
        if d.context == "window" and d.lag >= d.window:
            notes.append(
                f"data.lag={d.lag} ≥ data.window={d.window}: the target X(t-{d.lag}) is outside "
                f"the window the model sees, so expect chance accuracy "
                f"(1/{d.n_unique} = {self.chance(cfg):.3g}). This is the beginner's mistake.")
        p = plan(cfg)
        trimmed = framing.trimmed_rows(p)
        if trimmed:
            notes.append(
                f"each sequence has {framing.rows_per_sequence(p) + trimmed} samples; the "
                f"oldest {trimmed} {'is' if trimmed == 1 else 'are'} trimmed so that they fill "
                f"whole batches of train.batch_size={p.batch_size}")
        return notes

    def per_step_reason(self, cfg) -> str:
        return "data.target: sequence"

    # ------------------------------------------------------------------ shapes and figures
    def steps(self, cfg) -> int:
        return framing.timesteps(plan(cfg))

    def signature(self, cfg) -> Signature:
        d = cfg.data
        return Signature(steps=self.steps(cfg), symbols=d.n_unique, outputs=d.n_unique,
                         per_step=d.target == "sequence", mask=d.missing == "mask")

    def epoch_shape(self, cfg) -> tuple[int, int]:
        rows = framing.rows_per_sequence(plan(cfg))
        return rows // cfg.train.batch_size, rows

    def chance(self, cfg) -> float:
        return 1.0 / cfg.data.n_unique

    def baseline(self, cfg) -> float:
        return math.log(cfg.data.n_unique)

    def baseline_words(self, cfg) -> str:
        return "ln n_unique: a uniform guess"

    def validation_columns(self, cfg) -> list[str]:
        return ["validation_accuracy"]

    def validation_row(self, heldout: Heldout) -> dict[str, float]:
        return {"validation_accuracy": heldout.accuracy}

    def keras_metrics(self, cfg) -> dict:
        return {"weighted_metrics": ["accuracy"]}

    def keras_hits(self, cfg):
        from keras import ops

        return lambda y_pred, y, w: ops.sum(
            w * ops.cast(ops.argmax(y_pred, axis=-1) == y, "float32"))

    # ------------------------------------------------------------------ data
    def prepare(self, cfg):
        """For data.source csv: read the file; its vocabulary sets data.n_unique."""
        if cfg.data.source != "csv":
            return None, {}, ""
        dataset = csv_dataset(cfg.data)
        if dataset.n_unique == cfg.data.n_unique:
            return dataset, {}, ""
        return dataset, {"data.n_unique": dataset.n_unique}, f"{cfg.data.path} with its vocabulary"

    def source(self, cfg) -> str:
        return cfg.data.source

    def describe_dataset(self, cfg, dataset: Dataset) -> str:
        return echo_views.describe_dataset(cfg, dataset)

    def blocks(self, cfg, dataset: Dataset | None, *, group: int,
               per_block: int) -> Iterator[Block]:
        epochs, batch = cfg.train.epochs, cfg.train.batch_size
        batches, _ = self.epoch_shape(cfg)
        rng = stream_rng(cfg.seed, "train")
        p = plan(cfg)
        for start in range(0, epochs, per_block):
            count = min(per_block, epochs - start)
            if dataset is None:
                seqs = framing.generate_sequences(rng, count=count, length=cfg.data.length,
                                                  n_unique=cfg.data.n_unique)
            else:  # cycle through the file's sequences, one per epoch
                seqs = dataset.train[np.arange(start, start + count) % len(dataset.train)]
            framed = framing.frame(seqs, p)
            x, y, w = model_arrays(framed)
            yield Block(x, y, w, groups=count, batches=batches, batch=batch,
                        scored=int((framed.y[0] >= 0).sum()))

    def sequences(self, cfg, stream: str, count: int) -> np.ndarray:
        return framing.generate_sequences(stream_rng(cfg.seed, stream), count=count,
                                          length=cfg.data.length, n_unique=cfg.data.n_unique)

    def size(self, cfg) -> Size:
        p = plan(cfg)
        steps, rows = framing.timesteps(p), max(framing.candidate_rows(p), 1)
        per_target = steps if cfg.data.target == "sequence" else 1
        sequence = rows * steps * 12 + rows * per_target * 16 + cfg.data.length * 8
        prediction = rows * per_target * cfg.data.n_unique * 4 * 2 + sequence
        longer = "lower data.length" + (" or use data.context: window"
                                        if cfg.data.context == "full" else "")
        return Size(sequence=sequence, prediction=prediction, heldout=cfg.data.length * 8,
                    length_key="data.length", shorter=longer, reading=_reading(cfg))

    # ------------------------------------------------------------------ scoring
    def evaluate(self, cfg, predictor, *, stream: str, count: int, dataset: Dataset | None = None,
                 examples: int = 0) -> Heldout:
        """Score fresh sequences of a stream (or the file's held-out part), chunk by chunk.

        predictor(sequences) -> Predict: outputs for framed ids of that many sequences side by
        side, a stateful model fed its batches in order from a zero state.
        """
        seqs = dataset.heldout if dataset is not None else self.sequences(cfg, stream, count)
        predict = predictor(len(seqs))
        sums = _Sums(sequence=cfg.data.target == "sequence")
        shown: list[dict[str, Any]] = []
        p = plan(cfg)
        for start in range(0, len(seqs), predict.chunk):
            part = seqs[start : start + predict.chunk]
            framed = framing.frame(part, p)
            outputs = predict(model_ids(framed.x))
            sums.add(outputs, framed.y)
            pred = outputs.argmax(axis=-1)
            scored = framed.y >= 0
            shown += [{"sequence": part[i].tolist(), "t": framed.t.tolist(),
                       "expected": framed.y[i].tolist(),
                       "predicted": np.where(scored[i], pred[i], -1).tolist()}
                      for i in range(min(examples - len(shown), len(part)))]
        return sums.heldout(len(seqs), rows=len(framing.row_times(p)), examples=shown)

    # ------------------------------------------------------------------ how it is shown
    def settings(self, cfg) -> list[str]:
        d = cfg.data
        parts = [f"lag {d.lag}", "full context" if d.context == "full" else f"window {d.window}"]
        if d.missing != "drop":
            parts.append(f"missing: {d.missing}")
        if d.target == "sequence":
            parts.append("sequence target")
        return parts

    def headline(self, cfg) -> str:
        return f"lag {cfg.data.lag}"

    def horizon(self, cfg) -> int:
        return cfg.data.lag

    def check_data(self, cfg, dataset, *, cap: int | None) -> list[Any]:
        return echo_views.check_data(cfg, plan(cfg), dataset, cap=cap)

    def examples_view(self, cfg, examples: list[Any], *, width: int) -> Any:
        return echo_views.examples_table(examples, lag=cfg.data.lag, target=cfg.data.target,
                                         width=width)

    # ------------------------------------------------------------------ a trained run
    def predict_problem(self, cfg) -> str | None:
        return None

    def stream_problem(self, cfg) -> str | None:
        d = cfg.data
        needs = [need for need, ok in (
            ("data.context: full", d.context == "full"),
            ("data.target: sequence", d.target == "sequence"),
            ("data.missing: mask", d.missing == "mask"),
            ("model.stateful: false", not cfg.model.stateful),
            (f"a recurrent model.kind ({models.words(models.having('recurrent'))})",
             models.get(cfg.model.kind).recurrent)) if not ok]
        if not needs:
            return None
        return ("this run's model can't stream: streaming feeds one number at a time and keeps "
                "the recurrent state, which reproduces training only for a model trained on "
                "whole masked prefixes with an output at every step; it needs "
                + ", ".join(needs) + " (see configs/stream.yaml)")

    def disagreement_keys(self, cfg) -> dict[str, str]:
        return {"outputs": "data.n_unique", "per_step": "data.target",
                "steps": "data.length" if cfg.data.context == "full" else "data.window",
                "mask": "data.missing"}

    def encode(self, cfg, tokens: list[str], vocabulary: list | None) -> list[int]:
        return echo_use.encode(cfg, tokens, vocabulary)

    def predict_rows(self, cfg, ids: list[int], predictor, decode) -> list[dict[str, Any]]:
        return echo_use.predict_rows(cfg, ids, predictor, decode)

    def predict_view(self, cfg, rows: list[dict[str, Any]]) -> Any:
        return echo_views.predict_table(rows, lag=cfg.data.lag)

    def stream_plan(self, cfg) -> StreamPlan:
        """The same layers one timestep at a time, the state carried: an answer once lag
        numbers have been seen."""
        d = cfg.data
        return StreamPlan(
            updates={"model.stateful": True, "data.context": "window", "data.window": 1},
            lag=d.lag,
            prompt=(f"type integers from 0 to {d.n_unique - 1}, one per line; each reply is the "
                    f"echo of the number {d.lag} back. Ctrl-D ends."),
            score_line=lambda scores: echo_views.stream_line(scores, lag=d.lag))

    # ------------------------------------------------------------------ inspect
    def inspect_input(self, cfg, tokens: list[str], vocabulary: list | None):
        return echo_use.inspect_input(cfg, self.encode(cfg, tokens, vocabulary))

    def inspect_span(self, cfg) -> int:
        return cfg.data.length

    def state_columns(self, model, cfg, seqs: np.ndarray) -> cells.States:
        return echo_use.state_columns(model, cfg, plan(cfg), seqs)

    def probe_classes(self, cfg) -> int | None:
        return cfg.data.n_unique

    def picture(self, cfg, seq, t):
        last, lag = int(t[-1]), cfg.data.lag
        mark = ((last - lag, f"X(t-{lag}) for the last t={last}, the current target")
                if last - lag >= 0 else None)
        return [str(int(seq[i])) for i in t], mark, None


# pandas holds a CSV column at about 6.7 (integers) to 7.8 (text) times the file's size while it
# reads it (peak RSS, a 58 MB one-column file of 20 million integers, pandas 2.x): 8 to be safe
CSV_FACTOR = 8


def _reading(cfg) -> int:
    """A CSV file's cost in memory while it is read (0 for random data, or no file yet)."""
    if cfg.data.source != "csv" or not cfg.data.path:
        return 0
    try:
        return os.path.getsize(cfg.data.path) * CSV_FACTOR
    except OSError:
        return 0


class _Sums:
    """Running sums of a held-out score over chunks: loss, hits, and for sequence targets the
    unscored positions, exact matches and hits by position."""

    def __init__(self, *, sequence: bool):
        self.sequence = sequence
        self.loss = 0.0
        self.correct = self.targets = self.unscored = self.exact = 0
        self.position_hits: Any = 0
        self.position_counts: Any = 0

    def add(self, outputs: np.ndarray, y: np.ndarray) -> None:
        pred = outputs.argmax(axis=-1)
        scored = y >= 0
        picked = np.take_along_axis(outputs, np.maximum(y, 0)[..., None], axis=-1)[..., 0]
        self.loss += float(-np.log(np.clip(picked[scored], 1e-7, 1.0)).sum())
        hits = (pred == y) & scored
        self.correct += int(hits.sum())
        self.targets += int(scored.sum())
        if self.sequence:
            self.unscored += int((~scored).sum())
            self.exact += int((hits | ~scored).all(axis=-1).sum())
            self.position_hits = self.position_hits + hits.sum(axis=(0, 1))
            self.position_counts = self.position_counts + scored.sum(axis=(0, 1))

    def heldout(self, sequences: int, *, rows: int, examples: list[Any]) -> Heldout:
        extra = {}
        if self.sequence:
            extra = {"heldout_unscored_positions": self.unscored,
                     "heldout_exact_match": self.exact / (sequences * rows),
                     "heldout_per_position": [
                         float(h / c) if c else None
                         for h, c in zip(self.position_hits, self.position_counts, strict=True)]}
        return Heldout.of(self.correct, self.targets, sequences=sequences,
                          loss=self.loss / self.targets, extra=extra, examples=examples)
