"""What every task implements, and the plain records tasks hand to the layers above.

    task = tasks.get("copy")                       # a Task (see Task for every member)
    task.signature(cfg)                            # what its model reads and predicts
    for block in task.blocks(cfg, dataset=None, group=50, per_block=50): ...
    heldout = task.evaluate(cfg, predict, stream="heldout", count=1000)

A task owns everything specific to it: its data keys with their defaults and checks, its
generators for the train, validation and held-out streams, how its batches are shaped, its
baseline, chance and accuracy figure, its scoring, and how it is shown (check-data, examples,
results, memory-table, curves). Code outside tasks/ asks the task and never compares its name.
This module imports no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from echo_cli.errors import EchoError, cut
from echo_cli.fields import Section
from echo_cli.models.base import Signature
from echo_cli.models.cells import States
from echo_cli.stats import wilson_interval

# Independent random streams, so that training, validation and held-out data never overlap.
STREAMS = {"train": 0, "heldout": 1, "validation": 2, "init": 3}

# predict(x) -> outputs: model-ready inputs (N, rows, ...) to the model's outputs
# (N, rows, ...), one row after another for a stateful model; `.chunk` says how many
# samples it takes at once.
Predict = Callable[[np.ndarray], np.ndarray]


class InputError(EchoError, ValueError):
    """Values a user gave a trained run (predict, inspect) that its task cannot use."""


def clipped(value: Any) -> str:
    """A user's value, short, as a message quotes it."""
    return cut(value)


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """A generator for one purpose ("train", "heldout", "validation") of one seed."""
    return np.random.default_rng([seed, STREAMS[stream]])


@dataclass(frozen=True)
class Block:
    """Training data for `groups` epochs, in order: each epoch `batches` batches of `batch`.

    x, y, w: (groups * batches * batch, ...) model inputs, targets and loss weights.
    scored: the targets one epoch's accuracy counts.
    """

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    groups: int
    batches: int
    batch: int
    scored: int

    def per_step(self, a: np.ndarray) -> np.ndarray:
        """(groups, batches, batch, ...): what the compiled JAX loop scans."""
        return a.reshape(self.groups, self.batches, self.batch, *a.shape[1:])

    def epoch(self, i: int) -> slice:
        size = self.batches * self.batch
        return slice(i * size, (i + 1) * size)

    def after(self, done: int) -> Block:
        """The same block without its first `done` epochs (a resumed run's first block)."""
        rest = slice(done * self.batches * self.batch, None)
        return Block(self.x[rest], self.y[rest], self.w[rest], groups=self.groups - done,
                     batches=self.batches, batch=self.batch, scored=self.scored)


@dataclass
class Heldout:
    """Held-out figures: the task's accuracy figure (the echo's accuracy, the recalled symbols,
    the sums within 0.04, ...) with its counts and 95% interval, and the mean loss."""

    accuracy: float
    correct: int
    targets: int
    ci95_low: float
    ci95_high: float
    sequences: int
    loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the task's own metrics.json fields
    examples: list[Any] = field(default_factory=list)  # decoded samples, as the task shows them

    @classmethod
    def of(cls, correct: int, targets: int, *, sequences: int, loss: float | None,
           **kwargs: Any) -> Heldout:
        low, high = wilson_interval(correct, targets)
        return cls(accuracy=correct / targets, correct=correct, targets=targets, ci95_low=low,
                   ci95_high=high, sequences=sequences, loss=loss, **kwargs)


@dataclass(frozen=True)
class StreamPlan:
    """How a task streams: the config keys of a model that reads one step at a time, the
    steps before its first answer, the prompt at a terminal, and the score line."""

    updates: dict[str, Any]
    lag: int
    prompt: str
    score_line: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Size:
    """What one sequence costs in memory, for the check before a run (config/limits.py)."""

    sequence: int  # one epoch's data as numpy builds it and the model reads it
    prediction: int  # one held-out sequence's predictions, with the data they came from
    heldout: int  # one held-out sequence kept whole while it is scored (0: generated in chunks)
    length_key: str  # the key that makes sequences longer, e.g. "data.delay"
    shorter: str  # how to make them shorter, e.g. "lower data.delay"
    reading: int = 0  # a file the task reads, as held in memory while it is read


class Task:
    """One data.task. Subclasses set the class attributes and implement the methods that raise
    NotImplementedError; the others have a sensible default."""

    name: ClassVar[str]
    title: ClassVar[str]  # as a table names it: "copy memory"
    summary: ClassVar[str]  # one line: what the model must do
    Data: ClassVar[type[Section]]  # the data section: `task: Literal[name]` and its keys
    # other sections' defaults it changes, for keys a config leaves out: its papers' recipe
    defaults: ClassVar[dict[tuple[str, str], Any]] = {}
    figure: ClassVar[str] = "held-out accuracy"  # the accuracy figure's name
    counted: ClassVar[str] = "targets"  # what the figure counts
    chance_words: ClassVar[str] = "chance"
    epoch_unit: ClassVar[str] = "update"  # what one epoch is, in a progress bar
    epoch_words: ClassVar[str] = "one epoch = one update on a batch of fresh sequences"
    loss: ClassVar[str] = "sparse_categorical_crossentropy"
    tutorial_engine: ClassVar[bool] = False  # the tutorial's one-fit-per-epoch loop runs it
    curve_labels: ClassVar[dict[str, str]] = {}  # curves.png's axis and line labels

    # ------------------------------------------------------------------ the config
    def check(self, cfg) -> None:
        """Raise ValueError (one line) for a combination of keys this task cannot run."""

    def warnings(self, cfg) -> list[str]:
        """Plain-language notes about a config that runs but may surprise its user."""
        return []

    # ------------------------------------------------------------------ shapes and figures
    def steps(self, cfg) -> int:
        raise NotImplementedError

    def signature(self, cfg) -> Signature:
        raise NotImplementedError

    def epoch_shape(self, cfg) -> tuple[int, int]:
        """(batches per epoch, samples per epoch)."""
        return 1, cfg.train.batch_size

    def chance(self, cfg) -> float:
        raise NotImplementedError

    def baseline(self, cfg) -> float:
        """The loss of a model with no memory."""
        raise NotImplementedError

    def baseline_words(self, cfg) -> str:
        """The baseline in words: "ln n_unique: a uniform guess"."""
        raise NotImplementedError

    def validation_columns(self, cfg) -> list[str]:
        """history.csv's columns on a validation epoch."""
        return ["validation_accuracy", "validation_loss"]

    def keras_metrics(self, cfg) -> dict:
        """compile's accuracy metric, as a keyword argument (Keras imported inside)."""
        import keras

        return {"metrics": [keras.metrics.MeanMetricWrapper(self.sample_hits(cfg),
                                                            name="accuracy")]}

    def sample_hits(self, cfg):
        """hits(y_true, y_pred): each sample's share of right answers, in keras.ops."""
        raise NotImplementedError

    def keras_hits(self, cfg):
        """hits(y_pred, y, w): a batch's right answers, in keras.ops (inside the compiled JAX
        loop)."""
        from keras import ops

        per_sample, scale = self.sample_hits(cfg), self.scored_per_sample(cfg)
        return lambda y_pred, y, w: ops.sum(per_sample(y, y_pred)) * scale

    def scored_per_sample(self, cfg) -> int:
        return 1

    # ------------------------------------------------------------------ data
    def prepare(self, cfg) -> tuple[Any, dict[str, Any], str]:
        """(dataset, updates, why): read a file the config names (None for data generated
        from the seed), and the config keys it changes (data.n_unique from a vocabulary, say),
        with where they came from."""
        return None, {}, ""

    def source(self, cfg) -> str:
        """Where the sequences come from: "random" (the seed), or "csv" (a file)."""
        return "random"

    def describe_dataset(self, cfg, dataset) -> str:
        return ""

    def blocks(self, cfg, dataset, *, group: int, per_block: int) -> Iterator[Block]:
        """The training data, epoch after epoch, `per_block` epochs at a time (a multiple of
        `group`, the epochs of one compiled chunk)."""
        raise NotImplementedError

    def sequences(self, cfg, stream: str, count: int) -> np.ndarray:
        """count fresh sequences of a seed stream, as the model reads them unframed (ids, or
        numbers), for inspect."""
        raise NotImplementedError

    def size(self, cfg) -> Size:
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    def evaluate(self, cfg, predict: Predict, *, stream: str, count: int, dataset=None,
                 examples: int = 0) -> Heldout:
        """Score `count` fresh sequences of a seed stream (or a file's held-out part)."""
        raise NotImplementedError

    def validation_row(self, heldout: Heldout) -> dict[str, float]:
        """An epoch's validation figures, from the validation set's score."""
        return {"validation_accuracy": heldout.accuracy, "validation_loss": heldout.loss}

    # ------------------------------------------------------------------ how it is shown
    def settings(self, cfg) -> list[str]:
        """The task's part of the results table's "key settings" column."""
        raise NotImplementedError

    def headline(self, cfg) -> str:
        """The setting a plot's title names: "lag 1", "copy memory, T=50"."""
        raise NotImplementedError

    def horizon(self, cfg) -> int:
        """T, how far back the task reaches, for the memory table."""
        raise NotImplementedError

    def at_length(self, cfg, length: int) -> dict[str, Any] | None:
        """The config updates that set the task's horizon key (what `horizon` reads: T, e.g.
        data.delay for copy memory) to `length`, to evaluate a model at another length; None:
        this task does not change length."""
        return None

    def check_data(self, cfg, dataset, *, cap: int | None) -> list[Any]:
        """check-data's lines (strings or rich renderables) for the first training sequence."""
        raise NotImplementedError

    def examples_view(self, cfg, examples: list[Any], *, width: int) -> Any:
        """The decoded held-out examples as a rich renderable."""
        raise NotImplementedError

    # ------------------------------------------------------------------ a trained run
    def predict_problem(self, cfg) -> str | None:
        """Why `predict` has no meaning for this run, or None."""
        return (f"predict takes a sequence of integers to echo; data.task: {self.name} has no "
                f"echo, so use `echo-cli inspect` to see what its model holds")

    def stream_problem(self, cfg) -> str | None:
        """Why `stream` has no meaning for this run, or None."""
        return (f"stream echoes one number at a time; data.task: {self.name} reads whole "
                f"sequences, so there is nothing to stream (use `echo-cli inspect`)")

    def disagreement_keys(self, cfg) -> dict[str, str]:
        """The config keys behind each part of the signature, for messages that say why a saved
        model does not match its config.yaml: outputs, steps, per_step, mask."""
        raise NotImplementedError

    def encode(self, cfg, tokens: list[str], vocabulary: list | None) -> list[int]:
        """A user's values (predict, inspect) as the model's ids.

        Raises:
            InputError: a value the task cannot take.
        """
        raise InputError(self.predict_problem(cfg) or f"data.task: {self.name} takes no values")

    def predict_rows(self, cfg, ids: list[int], predictor, decode) -> list[dict[str, Any]]:
        """One row per input position, for `predict` (where predict_problem is None)."""
        raise NotImplementedError

    def predict_view(self, cfg, rows: list[dict[str, Any]]) -> Any:
        raise NotImplementedError

    def stream_plan(self, cfg) -> StreamPlan:
        """For `stream` (where stream_problem is None): how the model reads one step at a
        time, and how stream speaks of it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ inspect
    def inspect_input(self, cfg, tokens: list[str],
                      vocabulary: list | None) -> tuple[np.ndarray, str, dict[str, Any]]:
        """A user's values as the sequence inspect shows, where it came from, and the config
        keys to read it with.

        Raises:
            InputError: values the task cannot show.
        """
        raise InputError(f"data.task: {self.name} takes no values for inspect; give none and "
                         f"it shows the first fresh held-out sequence")

    def inspect_span(self, cfg) -> int:
        """The steps of a sequence inspect shows, and how far back the probes can look."""
        return self.steps(cfg)

    def state_columns(self, model, cfg, seqs: np.ndarray) -> States:
        """The recurrent state at each step of each sequence, fed as in training."""
        raise NotImplementedError

    def probe_classes(self, cfg) -> int | None:
        """The classes a probe reads X(t-k) as (None: real values, scored by R²)."""
        return None

    def probe_keep(self, y: np.ndarray) -> np.ndarray | None:
        """Which X(t-k) a probe is asked about (None: all of them)."""
        return None

    def picture(self, cfg, seq: np.ndarray, t: np.ndarray) -> tuple[list[str], Any, Any]:
        """state.png's column labels, a marked step (t, label) and a shaded span
        (first, last, label), either None."""
        return [str(int(seq[i])) for i in t], None, None


def scored_share(correct: int, scored: int) -> float:
    return correct / scored if scored else 0.0
