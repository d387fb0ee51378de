"""The tasks a config can train, each as data: its keys, a generator, a baseline and a scorer.

    echo   X(t-lag) from a window of random integers (the tutorial's task; data.py frames it)
    copy   copy memory: 10 symbols, a delay of T blanks, then recall the symbols
    adding the adding problem: the sum of the two marked values among T

    x, y = copy_memory(rng, count=32, delay=50, recall=10)     # (32, 70) ids, (32, 70) ids
    x, y = adding(rng, count=32, length=100)                   # (32, 100, 2) floats, (32,)
    copy_baseline(delay=50, recall=10)                         # 10·ln 8 / 70 = 0.2971

Copy memory follows Bai, Kolter & Koltun (2018) and keras-tcn: 10 symbols from 1..8, T-1
blanks (0), a marker (9) and 10 more markers while the symbols are recalled, T+20 steps in all;
the target is blank everywhere but the last 10 steps. The adding problem marks one step in each
half. This module imports no TensorFlow: the trainer and the scorers use plain arrays.
"""

from __future__ import annotations

import math

import numpy as np

TASKS = ("echo", "copy", "adding")

# The data keys each task reads; a key set for another task is an error, not a silent default.
TASK_KEYS = {
    "echo": ("source", "path", "column", "heldout_fraction", "n_unique", "length", "lag",
             "window", "missing", "context", "target"),
    "copy": ("delay", "recall"),
    "adding": ("length",),
}

BLANK, MARKER = 0, 9  # copy memory's symbols: 0 blank, 1..8 to remember, 9 the marker
COPY_SYMBOLS = 10
COPY_CHOICES = 8
TOLERANCE = 0.04  # adding: a prediction within this of the sum counts as right


def owner(key: str) -> str:
    """The task a data key belongs to (the first, for keys tasks share)."""
    return next(task for task, keys in TASK_KEYS.items() if key in keys)


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
    symbols = rng.integers(1, COPY_CHOICES + 1, size=(count, recall), dtype=np.int64)
    x = np.full((count, copy_length(delay, recall)), BLANK, dtype=np.int64)
    x[:, :recall] = symbols
    x[:, recall + delay - 1 :] = MARKER
    y = np.full_like(x, BLANK)
    y[:, -recall:] = symbols
    return x, y


def copy_baseline(*, delay: int, recall: int) -> float:
    """The memoryless loss: blanks predicted exactly, a uniform guess over the 8 symbols for
    each recalled step, averaged over all steps: recall·ln 8 / (T + 2·recall)."""
    return recall * math.log(COPY_CHOICES) / copy_length(delay, recall)


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


ADDING_BASELINE = 1.0 / 6.0  # always predicting 1: the variance of a sum of two U(0, 1)
ADDING_CHANCE = 1.0 - (1.0 - TOLERANCE) ** 2  # always predicting 1: P(|sum - 1| < 0.04)


# ---------------------------------------------------------------------------------------------
# scoring held-out predictions, in numpy

def copy_scores(probs: np.ndarray, y: np.ndarray, *, recall: int) -> dict[str, float]:
    """Sums over a chunk: cross-entropy over every step, and the recalled symbols right.

    probs: (N, steps, 10) softmax outputs; y: (N, steps) ids.
    """
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    loss = -np.log(np.clip(picked, 1e-7, 1.0)).sum()
    right = (probs[:, -recall:].argmax(-1) == y[:, -recall:]).sum()
    return {"loss_sum": float(loss), "loss_count": int(y.size), "correct": int(right),
            "targets": int(y[:, -recall:].size)}


def adding_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Sums over a chunk: squared errors, and the predictions within TOLERANCE of the sum.

    pred: (N, 1) or (N,) outputs; y: (N,) sums.
    """
    errors = pred.reshape(-1).astype(np.float64) - y
    return {"loss_sum": float((errors**2).sum()), "loss_count": int(y.size),
            "correct": int((np.abs(errors) < TOLERANCE).sum()), "targets": int(y.size)}
