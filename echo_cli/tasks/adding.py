"""The adding problem (Hochreiter & Schmidhuber 1997; Bai et al. 2018): the sum of the two
marked values among T.

    x, y = adding(rng, count=32, length=100)                   # (32, 100, 2) floats, (32,)

Each step holds a value from U(0, 1) and a marker; the markers are 1 at one step in each half.
The loss is the mean squared error; always predicting 1 scores 1/6, the memoryless baseline.
The accuracy figure is the share of sums predicted within 0.04, beside what always predicting
1 gets.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field
from rich.console import Group
from rich.text import Text

from echo_cli.fields import Section
from echo_cli.models.base import Signature
from echo_cli.output.report import ends
from echo_cli.tasks.base import InputError
from echo_cli.tasks.sequences import SequenceTask

TOLERANCE = 0.04  # a prediction within this of the sum counts as right
BASELINE = 1.0 / 6.0  # always predicting 1: the variance of a sum of two U(0, 1)
CHANCE = 1.0 - (1.0 - TOLERANCE) ** 2  # always predicting 1: P(|sum - 1| < 0.04)


class AddingData(Section):
    task: Literal["adding"] = Field("adding", description="the adding problem: the sum of the "
                                                          "two marked values")
    length: int = Field(25, ge=1, description="T, the steps of each sequence")


def adding(rng: np.random.Generator, *, count: int,
           length: int) -> tuple[np.ndarray, np.ndarray]:
    """count adding-problem sequences of `length` steps.

    Returns:
        x: (count, length, 2) float32: a value from U(0, 1) and a marker that is 1 at exactly
           two steps, one in each half.
        y: (count,) float32: the sum of the two marked values.
    """
    values = rng.random((count, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, size=count)
    second = rng.integers(half, length, size=count)
    markers = np.zeros((count, length), dtype=np.float32)
    rows = np.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), y.astype(np.float32)


def adding_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Sums over a chunk: squared errors, and the predictions within TOLERANCE of the sum.

    pred: (N, 1) or (N,) outputs; y: (N,) sums.
    """
    errors = pred.reshape(-1).astype(np.float64) - y
    return {"loss_sum": float((errors**2).sum()), "loss_count": int(y.size),
            "correct": int((np.abs(errors) < TOLERANCE).sum()), "targets": int(y.size)}


class Adding(SequenceTask):
    name = "adding"
    title = "adding problem"
    summary = "the adding problem: the sum of two marked values among T (Bai et al. 2018)"
    Data = AddingData
    figure = "within 0.04 of the sum"
    counted = "sums"
    chance_words = "always predicting 1 gets"
    loss = "mean_squared_error"
    curve_labels = {"epoch_label": "update (one batch of fresh sequences each)",
                    "accuracy_label": "share within 0.04 of the sum",
                    "chance_label": "always predicting 1"}

    def check_keys(self, cfg) -> None:
        if cfg.data.length < 2:
            raise ValueError(f"data.length must be ≥ 2 for data.task: adding (a marker in each "
                             f"half), got {cfg.data.length}")
        if cfg.model.encoding == "embedding":
            raise ValueError("model.encoding: embedding reads symbols; data.task: adding reads "
                             "numbers, so leave model.encoding at onehot")
        if cfg.train.target_accuracy is not None:
            raise ValueError("data.task: adding is scored by its loss: use train.target_loss "
                             "(the validation mean squared error to stop at)")

    def steps(self, cfg) -> int:
        return cfg.data.length

    def signature(self, cfg) -> Signature:
        return Signature(steps=cfg.data.length, symbols=None, features=2, outputs=None,
                         per_step=False)

    def chance(self, cfg) -> float:
        return CHANCE

    def baseline(self, cfg) -> float:
        return BASELINE

    def baseline_words(self, cfg) -> str:
        return "1/6: always predicting 1"

    def validation_columns(self, cfg) -> list[str]:
        return ["validation_loss"]

    def validation_row(self, heldout) -> dict[str, float]:
        return {"validation_loss": heldout.loss}

    def sample_hits(self, cfg):
        from keras import ops

        def within(y_true, y_pred):
            return ops.cast(ops.abs(y_pred[:, 0] - ops.reshape(y_true, (-1,))) < TOLERANCE,
                            "float32")

        return within

    def generate(self, cfg, rng, count):
        return adding(rng, count=count, length=cfg.data.length)

    def batch(self, cfg, rng, count):
        x, y = self.generate(cfg, rng, count)
        return x, y[:, None], np.ones((count, 1), np.float32)

    def score(self, cfg, out, x, y):
        return adding_scores(out, y[:, 0])

    def example(self, cfg, x, y, out) -> dict[str, Any]:
        return {"marked": x[x[:, 1] > 0, 0].tolist(), "sum": float(y[0]),
                "predicted": float(out[0])}

    def extra_fields(self, cfg) -> dict[str, Any]:
        return {"tolerance": TOLERANCE}

    def picture(self, cfg, seq, t):
        labels = [f"{seq[i, 0]:.2f}" + ("*" if seq[i, 1] > 0 else "") for i in t]
        first = int(np.flatnonzero(seq[:, 1] > 0)[0])
        return labels, (first, "the first marked value (*), to be held to the end"), None

    def inspect_input(self, cfg, tokens: list[str], vocabulary: list | None):
        raise InputError("data.task: adding reads numbers, not integers; give no values and "
                         "inspect shows a fresh held-out sequence")

    def headline(self, cfg) -> str:
        return f"adding, T={cfg.data.length}"

    def horizon(self, cfg) -> int:
        return cfg.data.length

    def at_length(self, cfg, length: int) -> dict[str, Any]:
        return {"data.length": length}

    def sample_lines(self, cfg, *, cap: int | None) -> list[Any]:
        from echo_cli.tasks.base import stream_rng

        x, y = (a[0] for a in self.generate(cfg, stream_rng(cfg.seed, "train"), 1))
        steps = len(x)
        marked = [i for i in range(steps) if x[i, 1] > 0]
        return [
            Text(f"adding problem, T={steps}: a value from U(0, 1) and a marker at each step; "
                 f"the markers are 1 at one step in each half", style="bold"),
            Text("values:  " + ends([f"{v:.2f}" for v in x[:, 0]], cap)),
            Text("markers: " + ends([int(v) for v in x[:, 1]], cap)),
            f"marked steps {marked[0]} and {marked[1]}: target y = {x[marked[0], 0]:.4f} + "
            f"{x[marked[1], 0]:.4f} = {float(y):.4f}; the loss is the mean squared error",
            f"baseline loss {BASELINE:.4f} = 1/6 (always predicting 1); predicting 1 is within "
            f"0.04 of the sum {CHANCE:.4f} of the time",
        ]

    def examples_view(self, cfg, examples: list[Any], *, width: int) -> Any:
        parts: list[Any] = [Text("held-out examples (✗ marks a wrong sum)", style="bold")]
        for n, ex in enumerate(examples, start=1):
            line = Text(f"sequence {n}: ", style="dim")
            ok = abs(ex["predicted"] - ex["sum"]) < TOLERANCE
            marked = " + ".join(f"{v:.3f}" for v in ex["marked"])
            line.append(f"{marked} = {ex['sum']:.3f}, predicted ")
            line.append(f"{ex['predicted']:.3f}" + ("" if ok else "✗"),
                        style="" if ok else "bold red")
            parts.append(line)
        return Group(*parts)
