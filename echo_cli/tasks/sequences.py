"""What the memory tasks share: batches of independent fresh sequences, one update an epoch.

    class Copy(SequenceTask):
        def generate(self, cfg, rng, count): ...       # (x, y) as the paper defines them
        def score(self, cfg, out, x, y): ...           # sums over a chunk

A memory task trains as its papers do: stateless, batches of 32 fresh sequences, gradients
clipped to norm 1 (its `defaults`, for keys a config leaves out), each epoch one update. Its
held-out and validation sequences come from their own seed streams, scored chunk by chunk.
This module imports no Keras.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from echo_cli.models.base import Signature
from echo_cli.models.cells import States, whole_sequences
from echo_cli.tasks.base import Block, Heldout, Size, Task, stream_rng

CHUNK = 250  # sequences generated and predicted at once when scoring


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each target's cross-entropy, -ln of the probability given to it (clipped at 1e-7).

    probs: (..., classes) softmax outputs; y: (...) ids.
    """
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    return -np.log(np.clip(picked, 1e-7, 1.0))


def class_scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Sums over a chunk: every target's cross-entropy, and the targets the most probable
    class gets right. probs: (..., classes); y: (...) ids."""
    return {"loss_sum": float(cross_entropy(probs, y).sum()), "loss_count": int(y.size),
            "correct": int((probs.argmax(-1) == y).sum()), "targets": int(y.size)}


class SequenceTask(Task):
    """A task whose samples are whole independent sequences; subclasses define the sequences
    (generate), how the model reads them (batch) and how a chunk is scored (score)."""

    defaults = {("model", "stateful"): False, ("train", "batch_size"): 32,
                ("train", "clipnorm"): 1.0}
    steps_key = "data.length"  # the key that sets the sequence length, for messages

    # ------------------------------------------------------------------ to implement
    def generate(self, cfg, rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
        """count sequences: (x, y) as the task's paper defines them."""
        raise NotImplementedError

    def batch(self, cfg, rng: np.random.Generator,
              count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """count fresh samples, model-ready: (x, y, w)."""
        raise NotImplementedError

    def score(self, cfg, out: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Sums over a chunk: loss_sum, loss_count, correct, targets."""
        raise NotImplementedError

    def example(self, cfg, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> dict[str, Any]:
        """One decoded sample, as examples_view shows it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def check(self, cfg) -> None:
        if cfg.model.stateful:
            raise ValueError(f"data.task: {self.name} trains on batches of independent "
                             f"sequences, so model.stateful must be false")
        self.check_keys(cfg)

    def check_keys(self, cfg) -> None:
        """The task's own checks, after the shared ones."""

    def per_step_reason(self, cfg) -> str:
        return f"data.task: {self.name}"

    def blocks(self, cfg, dataset, *, group: int, per_block: int) -> Iterator[Block]:
        epochs, batch = cfg.train.epochs, cfg.train.batch_size
        rng = stream_rng(cfg.seed, "train")
        scored = batch * self.scored_per_sample(cfg)
        for start in range(0, epochs, per_block):
            count = min(per_block, epochs - start)
            x, y, w = self.batch(cfg, rng, count * batch)
            yield Block(x, y, w, groups=count, batches=1, batch=batch, scored=scored)

    def sequences(self, cfg, stream: str, count: int) -> np.ndarray:
        return self.generate(cfg, stream_rng(cfg.seed, stream), count)[0]

    def size(self, cfg) -> Size:
        sig: Signature = self.signature(cfg)
        steps = self.steps(cfg)
        per_step = steps if sig.per_step else 1
        return Size(sequence=cfg.train.batch_size * steps * 32,
                    prediction=per_step * (sig.outputs or 1) * 4 * 2 + steps * 32, heldout=0,
                    length_key=self.steps_key, shorter=f"lower {self.steps_key}")

    def evaluate(self, cfg, predictor, *, stream: str, count: int, dataset=None,
                 examples: int = 0) -> Heldout:
        """Score `count` fresh sequences of a seed stream, CHUNK at a time."""
        predict = predictor(count)
        rng = stream_rng(cfg.seed, stream)
        sums = {"loss_sum": 0.0, "loss_count": 0, "correct": 0, "targets": 0}
        shown: list[dict[str, Any]] = []
        for start in range(0, count, CHUNK):
            x, y, _ = self.batch(cfg, rng, min(CHUNK, count - start))
            out = np.asarray(predict(x[:, None]))[:, 0]
            part = self.score(cfg, out, x, y)
            sums = {k: sums[k] + part[k] for k in sums}
            shown += [self.example(cfg, x[i], y[i], out[i])
                      for i in range(min(examples - len(shown), len(y)))]
        return Heldout.of(sums["correct"], sums["targets"], sequences=count,
                          loss=sums["loss_sum"] / sums["loss_count"], examples=shown,
                          extra=self.extra_fields(cfg))

    def sample_lines(self, cfg, *, cap: int | None) -> list[Any]:
        """check-data's lines for the first training sequence of the seed."""
        raise NotImplementedError

    def check_data(self, cfg, dataset, *, cap: int | None) -> list[Any]:
        t = cfg.train
        return [*self.sample_lines(cfg, cap=cap),
                f"one epoch = one update on a batch of train.batch_size={t.batch_size} fresh "
                f"sequences; {t.epochs} epochs"]

    def extra_fields(self, cfg) -> dict[str, Any]:
        """metrics.json fields the task adds beside the held-out figures."""
        return {}

    def settings(self, cfg) -> list[str]:
        return [self.headline(cfg)]

    def state_columns(self, model, cfg, seqs: np.ndarray) -> States:
        """One step at a time through whole sequences, from zeros, as in training."""
        numbers = self.signature(cfg).symbols is None
        trace = whole_sequences(model, seqs, numbers=numbers)
        return States(t=np.arange(seqs.shape[1]), trace=trace,
                      values=seqs[..., 0] if numbers else seqs)

    def disagreement_keys(self, cfg) -> dict[str, str]:
        return {"outputs": "data.task", "per_step": "data.task", "steps": self.steps_key,
                "mask": "data.task"}
