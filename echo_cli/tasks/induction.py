"""Induction heads (Olsson et al. 2022; HazyResearch/safari's `generate_induction_head`): after
a trigger, answer with the token that followed the trigger's earlier appearance.

    x, y = induction_head(rng, count=64, length=64, vocab=16)    # (64, 65) ids, (64,) ids

`length` tokens drawn uniformly from the ordinary tokens 0..vocab-2, one of them (at a step p
uniform in 0..length-3) replaced by the trigger vocab-1, then a final trigger; the answer is
the token at p+1. Safari trains a language model with next-token loss at every position and
scores only the final answer; here the model answers once, at the last step, and is trained
and scored on that answer alone. The accuracy figure counts the answers right, beside chance
1/(vocab-1), a uniform guess among the ordinary tokens.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field
from rich.console import Group
from rich.text import Text

from echo_cli.fields import Section
from echo_cli.models.base import MISSING, Signature, model_ids
from echo_cli.models.cells import States
from echo_cli.output.report import ends
from echo_cli.tasks.base import InputError, stream_rng
from echo_cli.tasks.sequences import SequenceTask, class_scores


class InductionData(Section):
    task: Literal["induction"] = Field(
        "induction", description="induction heads: after the trigger, the token that followed "
                                 "its earlier appearance")
    length: int = Field(64, ge=3, description="the random tokens before the final trigger "
                                              "(safari's input_seq_len)")
    vocab: int = Field(16, ge=3, description="ids: the ordinary tokens 0..vocab-2 and the "
                                             "trigger vocab-1")


def induction_head(rng: np.random.Generator, *, count: int, length: int,
                   vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """count sequences of safari's `generate_induction_head` with induction_len=1 and one
    trigger, as its model reads them (the sequence less the answer, safari's `example[:-1]`).

    Safari's vocabulary is string-sorted, with a no-op '.' (id 0, never used here), the
    ordinary tokens '0', '1', '10', ... and the trigger '=>' last; its vocab_size counts the
    no-op. Here the ordinary token i is safari's str(i) and the trigger is vocab-1, so vocab=16
    is safari's vocab_size=17: 15 ordinary tokens and the trigger. Safari draws the trigger's
    step with `rng.integers(input_seq_len - 2)`, as here.

    Returns:
        x: (count, length + 1) int64: ordinary tokens with the trigger at one step p in
           0..length-3, then the trigger at step `length`.
        y: (count,) int64: the answer, the token at p+1.
    """
    trigger = vocab - 1
    x = np.full((count, length + 1), trigger, dtype=np.int64)
    x[:, :length] = rng.integers(0, trigger, size=(count, length), dtype=np.int64)
    p = rng.integers(0, length - 2, size=count)
    rows = np.arange(count)
    x[rows, p] = trigger
    return x, x[rows, p + 1].copy()


class Induction(SequenceTask):
    """Safari trains a language model with next-token loss at every position and scores only
    the final answer; here the model is trained and scored on the answer alone (one output per
    sample, at the last step): the random tokens cannot be predicted, so their loss only adds
    noise to the gradient."""

    name = "induction"
    title = "induction heads"
    summary = ("induction heads: after the trigger, the token that followed it before "
               "(safari; Olsson et al. 2022)")
    Data = InductionData
    # Safari trains batch 32 with AdamW 5e-4 for 400 passes over 5,000 fixed examples; with
    # fresh sequences each update, batch 64 as for selective copying and 0.005 let a GRU learn
    # length 64 in about 500 updates (0.002: 950; configs/induction.yaml).
    defaults = {**SequenceTask.defaults, ("train", "batch_size"): 64,
                ("train", "learning_rate"): 0.005}
    figure = "answer accuracy"
    counted = "answers"
    curve_labels = {"epoch_label": "update (one batch of fresh sequences each)",
                    "accuracy_label": "answer accuracy"}

    def steps(self, cfg) -> int:
        return cfg.data.length + 1

    def signature(self, cfg) -> Signature:
        return Signature(steps=self.steps(cfg), symbols=cfg.data.vocab, outputs=cfg.data.vocab,
                         per_step=False)

    def chance(self, cfg) -> float:
        """A uniform guess among the vocab-1 ordinary tokens (the answer is never the trigger).
        """
        return 1.0 / (cfg.data.vocab - 1)

    def baseline(self, cfg) -> float:
        """The memoryless loss: a model that sees only the final trigger guesses uniformly
        among the ordinary tokens, ln(vocab-1)."""
        return math.log(cfg.data.vocab - 1)

    def baseline_words(self, cfg) -> str:
        return "ln(vocab-1): a uniform guess of the answer"

    def at_length(self, cfg, length: int) -> dict[str, Any]:
        return {"data.length": length}

    def sample_hits(self, cfg):
        from keras import ops

        def answered(y_true, y_pred):
            right = ops.argmax(y_pred, axis=-1) == ops.cast(ops.reshape(y_true, (-1,)), "int32")
            return ops.cast(right, "float32")

        return answered

    def generate(self, cfg, rng, count):
        return induction_head(rng, count=count, length=cfg.data.length, vocab=cfg.data.vocab)

    def batch(self, cfg, rng, count):
        x, y = self.generate(cfg, rng, count)
        return model_ids(x), y[:, None].astype(np.int32), np.ones((count, 1), np.float32)

    def score(self, cfg, out, x, y):
        return class_scores(out, y[:, 0])  # the answer alone

    def example(self, cfg, x, y, out) -> dict[str, Any]:
        ids = x.astype(np.int64) - 1  # the model's ids back to the task's
        p = int(np.flatnonzero(ids == cfg.data.vocab - 1)[0])
        return {"trigger": p, "answer": int(y[0]), "predicted": int(out.argmax())}

    # ------------------------------------------------------------------ inspect
    def probe_classes(self, cfg) -> int | None:
        return cfg.data.vocab

    def probe_keep(self, y: np.ndarray) -> np.ndarray | None:
        """Only the ordinary tokens: state_columns marks the triggers MISSING."""
        return y != MISSING

    def state_columns(self, model, cfg, seqs: np.ndarray) -> States:
        states = super().state_columns(model, cfg, seqs)
        values = np.where(seqs == cfg.data.vocab - 1, MISSING, seqs)
        return States(t=states.t, trace=states.trace, values=values)

    def inspect_input(self, cfg, tokens: list[str], vocabulary: list | None):
        raise InputError("data.task: induction draws its trigger's step at random; give no "
                         "values and inspect shows a fresh held-out sequence")

    def picture(self, cfg, seq, t):
        p = int(np.flatnonzero(seq == cfg.data.vocab - 1)[0])
        labels = [("⇒" if seq[i] == cfg.data.vocab - 1 else str(int(seq[i]))) for i in t]
        return labels, (p + 1, f"the answer {int(seq[p + 1])}, after the first trigger (⇒)"), None

    # ------------------------------------------------------------------ how it is shown
    def headline(self, cfg) -> str:
        return f"induction heads, length {cfg.data.length}"

    def settings(self, cfg) -> list[str]:
        return [self.headline(cfg), f"vocab {cfg.data.vocab}"]

    def horizon(self, cfg) -> int:
        return cfg.data.length

    def disagreement_keys(self, cfg) -> dict[str, str]:
        return {**super().disagreement_keys(cfg), "outputs": "data.vocab"}

    def sample_lines(self, cfg, *, cap: int | None) -> list[Any]:
        d = cfg.data
        x, y = (a[0] for a in self.generate(cfg, stream_rng(cfg.seed, "train"), 1))
        p = int(np.flatnonzero(x == d.vocab - 1)[0])
        return [
            Text(f"{self.headline(cfg)}: {self.steps(cfg)} steps = {d.length} tokens "
                 f"(0..{d.vocab - 2}), one replaced by the trigger ({d.vocab - 1}), then the "
                 f"trigger again", style="bold"),
            Text("input  x: " + ends(x.tolist(), cap)),
            f"the first trigger at step {p}, followed by {int(x[p + 1])}: the target y = "
            f"{int(y)}, answered once at the last step (cross-entropy)",
            f"memoryless baseline loss {self.baseline(cfg):.4f} = ln {d.vocab - 1} (a uniform "
            f"guess of the answer); chance {self.chance(cfg):.4f}",
        ]

    def examples_view(self, cfg, examples: list[Any], *, width: int) -> Any:
        parts: list[Any] = [Text("held-out examples (✗ marks a wrong answer)", style="bold")]
        for n, ex in enumerate(examples, start=1):
            ok = ex["answer"] == ex["predicted"]
            line = Text(f"sequence {n}: ", style="dim")
            line.append(f"trigger at step {ex['trigger']}, answer {ex['answer']}, predicted ")
            line.append(f"{ex['predicted']}" + ("" if ok else "✗"),
                        style="" if ok else "bold red")
            parts.append(line)
        return Group(*parts)
