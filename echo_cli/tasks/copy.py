"""Copy memory (Bai, Kolter & Koltun 2018; keras-tcn): hold 10 symbols across T blank steps.

    x, y = copy_memory(rng, count=32, delay=50, recall=10)     # (32, 70) ids, (32, 70) ids
    copy_baseline(delay=50, recall=10)                         # 10·ln 8 / 70 = 0.2971

10 symbols from 1..8, T-1 blanks (0), a marker (9) and 10 more markers while the symbols are
recalled, T+20 steps in all; the target is blank everywhere but the last 10 steps. The loss is
cross-entropy over every step, as the papers train it; the accuracy figure counts only the
recalled symbols, beside chance 1/8 (per-step accuracy would credit the blanks).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field
from rich.console import Group
from rich.text import Text

from echo_cli.fields import Section
from echo_cli.models.base import Signature, model_ids
from echo_cli.output.report import ends
from echo_cli.tasks.base import InputError
from echo_cli.tasks.sequences import SequenceTask, cross_entropy

BLANK, MARKER = 0, 9  # copy memory's symbols: 0 blank, 1..8 to remember, 9 the marker
SYMBOLS = 10
CHOICES = 8


class CopyData(Section):
    task: Literal["copy"] = Field("copy", description="copy memory: recall symbols after T "
                                                      "blank steps")
    delay: int = Field(50, ge=1, description="T, the blank steps between the symbols and the "
                                             "recall")
    recall: int = Field(10, ge=1, description="the symbols to remember")


def copy_length(delay: int, recall: int) -> int:
    """Steps of a copy-memory sequence: the symbols, T-1 blanks, the marker, the recall."""
    return recall + delay + recall


def copy_memory(rng: np.random.Generator, *, count: int, delay: int,
                recall: int) -> tuple[np.ndarray, np.ndarray]:
    """count copy-memory sequences.

    Returns:
        x: (count, delay + 2*recall) int64: symbols in 1..8, delay-1 blanks, then recall+1
           markers (the first says "now recall").
        y: (count, delay + 2*recall) int64: blanks, then the symbols in the last recall steps.
    """
    symbols = rng.integers(1, CHOICES + 1, size=(count, recall), dtype=np.int64)
    x = np.full((count, copy_length(delay, recall)), BLANK, dtype=np.int64)
    x[:, :recall] = symbols
    x[:, recall + delay - 1 :] = MARKER
    y = np.full_like(x, BLANK)
    y[:, -recall:] = symbols
    return x, y


def copy_baseline(*, delay: int, recall: int) -> float:
    """The memoryless loss: blanks predicted exactly, a uniform guess over the 8 symbols for
    each recalled step, averaged over all steps: recall·ln 8 / (T + 2·recall)."""
    return recall * math.log(CHOICES) / copy_length(delay, recall)


def copy_scores(probs: np.ndarray, y: np.ndarray, *, recall: int) -> dict[str, float]:
    """Sums over a chunk: cross-entropy over every step, and the recalled symbols right.

    probs: (N, steps, 10) softmax outputs; y: (N, steps) ids.
    """
    loss = cross_entropy(probs, y).sum()
    right = (probs[:, -recall:].argmax(-1) == y[:, -recall:]).sum()
    return {"loss_sum": float(loss), "loss_count": int(y.size), "correct": int(right),
            "targets": int(y[:, -recall:].size)}


class Copy(SequenceTask):
    name = "copy"
    title = "copy memory"
    summary = "copy memory: 10 symbols, T blanks, then recall the symbols (Bai et al. 2018)"
    Data = CopyData
    figure = "recall accuracy"
    counted = "recalled symbols"
    steps_key = "data.delay"
    curve_labels = {"epoch_label": "update (one batch of fresh sequences each)",
                    "accuracy_label": "recall accuracy"}

    def steps(self, cfg) -> int:
        return copy_length(cfg.data.delay, cfg.data.recall)

    def signature(self, cfg) -> Signature:
        return Signature(steps=self.steps(cfg), symbols=SYMBOLS, outputs=SYMBOLS, per_step=True)

    def chance(self, cfg) -> float:
        return 1.0 / CHOICES

    def baseline(self, cfg) -> float:
        return copy_baseline(delay=cfg.data.delay, recall=cfg.data.recall)

    def baseline_words(self, cfg) -> str:
        return "10·ln 8/(T+20): blanks, then a uniform guess of the symbols"

    def scored_per_sample(self, cfg) -> int:
        return cfg.data.recall

    def sample_hits(self, cfg):
        from keras import ops

        recall = cfg.data.recall

        def recalled(y_true, y_pred):
            right = ops.argmax(y_pred[:, -recall:], axis=-1) == ops.cast(y_true[:, -recall:],
                                                                         "int32")
            return ops.mean(ops.cast(right, "float32"), axis=-1)

        return recalled

    def generate(self, cfg, rng, count):
        return copy_memory(rng, count=count, delay=cfg.data.delay, recall=cfg.data.recall)

    def batch(self, cfg, rng, count):
        x, y = self.generate(cfg, rng, count)
        return model_ids(x), y.astype(np.int32), np.ones(y.shape, np.float32)

    def score(self, cfg, out, x, y):
        return copy_scores(out, y, recall=cfg.data.recall)

    def example(self, cfg, x, y, out) -> dict[str, Any]:
        recall = cfg.data.recall
        return {"symbols": y[-recall:].tolist(), "recalled": out[-recall:].argmax(-1).tolist()}

    def probe_classes(self, cfg) -> int | None:
        return SYMBOLS

    def probe_keep(self, y: np.ndarray) -> np.ndarray | None:
        """Only the symbols to remember, not the blanks and markers that fill most steps."""
        return (y >= 1) & (y <= CHOICES)

    def inspect_input(self, cfg, tokens: list[str], vocabulary: list | None):
        recall, delay = cfg.data.recall, cfg.data.delay
        if len(tokens) != recall or not all(t.isdigit() and 1 <= int(t) <= CHOICES
                                            for t in tokens):
            raise InputError(f"give the {recall} symbols to remember, each from 1 to "
                             f"{CHOICES}, got {len(tokens)} values")
        seq = np.full(copy_length(delay, recall), BLANK)
        seq[:recall], seq[recall + delay - 1 :] = [int(t) for t in tokens], MARKER
        return seq, f"your {recall} symbols", {}

    def picture(self, cfg, seq, t):
        d, last = cfg.data, int(t[-1])
        shade = (d.recall, d.recall + d.delay - 1, f"the delay: {d.delay - 1} blanks, then the "
                                                   f"marker at t={d.recall + d.delay - 1}")
        mark = (last - d.delay - d.recall, f"the symbol the last step t={last} recalls")
        return [str(int(seq[i])) for i in t], mark, shade

    def headline(self, cfg) -> str:
        return f"copy memory, T={cfg.data.delay}"

    def settings(self, cfg) -> list[str]:
        return [f"copy memory, T={cfg.data.delay}", f"recall {cfg.data.recall}"]

    def horizon(self, cfg) -> int:
        return cfg.data.delay

    def at_length(self, cfg, length: int) -> dict[str, Any]:
        return {"data.delay": length}

    def sample_lines(self, cfg, *, cap: int | None) -> list[Any]:
        from echo_cli.tasks.base import stream_rng

        x, y = (a[0] for a in self.generate(cfg, stream_rng(cfg.seed, "train"), 1))
        recall, delay, steps = cfg.data.recall, cfg.data.delay, self.steps(cfg)
        return [
            Text(f"copy memory, T={delay}: {steps} steps = {recall} symbols (1..8), "
                 f"{delay - 1} blanks (0), a marker (9) and {recall} more markers while the "
                 f"symbols are recalled", style="bold"),
            Text("input  x: " + ends(x.tolist(), cap)),
            Text("target y: " + ends(y.tolist(), cap)),
            f"the target is blank (0) but for the last {recall} steps, which repeat the first "
            f"{recall} inputs; the loss is cross-entropy over all {steps} steps",
            f"memoryless baseline loss {self.baseline(cfg):.4f} = {recall}·ln 8/{steps} "
            f"(blanks right, a uniform guess of each recalled symbol); chance per recalled "
            f"symbol {self.chance(cfg):.4f}",
        ]

    def examples_view(self, cfg, examples: list[Any], *, width: int) -> Any:
        parts: list[Any] = [Text("held-out examples (✗ marks a wrong recalled symbol)",
                                 style="bold")]
        for n, ex in enumerate(examples, start=1):
            line = Text(f"sequence {n}: ", style="dim")
            line.append("symbols " + " ".join(map(str, ex["symbols"])) + "  recalled ")
            for want, got in zip(ex["symbols"], ex["recalled"], strict=True):
                line.append(f"{got} " if want == got else f"{got}✗ ",
                            style="" if want == got else "bold red")
            parts.append(line)
        return Group(*parts)
