"""The echo's random integer sequences and their framing into samples, in plain numpy.

A sequence of integers becomes rows of (x, y): row t holds the context ending at X(t) and
the target X(t - lag). Ids are kept as integers with -1 for a missing step or an unscored
target; `one_hot` turns them into the tutorial's one-hot vectors (a missing step is all zeros).

    plan = Framing(length=25, lag=1, window=5, batch_size=5)
    seqs = generate_sequences(np.random.default_rng(1), count=2, length=25, n_unique=100)
    framed = frame(seqs, plan)          # framed.x: (2, 20, 5), framed.y: (2, 20)

This module imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from echo_cli.models.base import MISSING  # noqa: F401 - a missing step or unscored target


@dataclass(frozen=True)
class Framing:
    """How one sequence is cut into samples. Mirrors the `data` section plus the batch size."""

    length: int = 25
    lag: int = 1
    window: int = 5
    missing: Literal["drop", "pad", "mask"] = "drop"
    context: Literal["window", "full"] = "window"
    target: Literal["value", "sequence"] = "value"
    batch_size: int = 1


@dataclass(frozen=True)
class Framed:
    """Samples from N sequences, every sequence framed the same way.

    t: (rows,) the timestep of each row within its sequence.
    x: (N, rows, timesteps) ids, MISSING where the context reaches before the sequence.
    y: (N, rows) ids for value targets; (N, rows, timesteps) for sequence targets,
       MISSING where the target cannot be known from the context (unscored).
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray


def generate_sequences(
    rng: np.random.Generator, *, count: int, length: int, n_unique: int
) -> np.ndarray:
    """Uniform random integers in 0 .. n_unique-1. Returns (count, length) int64."""
    return rng.integers(0, n_unique, size=(count, length), dtype=np.int64)


def timesteps(plan: Framing) -> int:
    """Context steps per sample: the window, or the whole sequence for context: full."""
    return plan.window if plan.context == "window" else plan.length


def first_row(plan: Framing) -> int:
    """The earliest t with a target and, under missing: drop, a complete window."""
    first = plan.lag
    if plan.missing == "drop":
        first = max(first, timesteps(plan) - 1)
    return first


def candidate_rows(plan: Framing) -> int:
    """Rows per sequence before trimming to whole batches (may be ≤ 0 for an impossible plan)."""
    return plan.length - first_row(plan)


def trimmed_rows(plan: Framing) -> int:
    """The oldest rows cut from each sequence so that its samples fill whole batches."""
    return max(candidate_rows(plan), 0) % plan.batch_size


def rows_per_sequence(plan: Framing) -> int:
    return max(candidate_rows(plan), 0) - trimmed_rows(plan)


def row_times(plan: Framing) -> np.ndarray:
    """The timestep t of every kept row, oldest first."""
    return np.arange(first_row(plan) + trimmed_rows(plan), plan.length)


def dropped_rows(plan: Framing) -> list[tuple[int, str]]:
    """(t, reason) for every timestep that does not become a sample."""
    out = []
    steps = timesteps(plan)
    keep_from = first_row(plan) + trimmed_rows(plan)
    for t in range(min(keep_from, plan.length)):
        if t < plan.lag:
            out.append((t, f"no target: X(t-{plan.lag}) is before the sequence starts"))
        elif plan.missing == "drop" and t < steps - 1:
            out.append((t, f"window of {steps} reaches before the sequence starts"))
        else:
            out.append((t, f"trimmed so samples fill whole batches of {plan.batch_size}"))
    return out


def frame(seqs: np.ndarray, plan: Framing, *, rows: np.ndarray | None = None) -> Framed:
    """Frame sequences into samples, vectorised over sequences, rows and timesteps.

    Args:
        seqs: (N, length) integer ids.
        plan: how to frame them.
        rows: only these row indices (of the kept rows, oldest first); all by default.

    Returns:
        Framed with x: (N, rows, timesteps) and y: (N, rows) or (N, rows, timesteps).
    """
    seqs = np.asarray(seqs)
    if seqs.ndim != 2 or seqs.shape[1] != plan.length:
        raise ValueError(f"seqs must have shape (N, {plan.length}), got {seqs.shape}")
    steps = timesteps(plan)
    t = row_times(plan) if rows is None else row_times(plan)[np.asarray(rows, dtype=np.int64)]
    offsets = np.arange(steps)
    positions = t[:, None] - steps + 1 + offsets[None, :]  # (rows, steps)
    x = np.where(positions >= 0, seqs[:, np.clip(positions, 0, None)], MISSING)
    if plan.target == "value":
        y = seqs[:, t - plan.lag]
    else:
        source = positions - plan.lag
        # Known from the context only if the source lies inside this window and the sequence.
        known = (source >= 0) & (offsets[None, :] >= plan.lag)
        y = np.where(known, seqs[:, np.clip(source, 0, None)], MISSING)
    return Framed(t=t, x=x, y=y)


def state_sources(plan: Framing, *, stateful: bool,
                  rows: list[int] | None = None) -> list[int | None]:
    """For each kept row (or each of `rows`), the t of the row whose final state it starts
    from (None: zeros).

    Keras carries a stateful layer's state from sample i of one batch to sample i of the
    next batch, so row r starts from row r - batch_size of the same sequence.
    """
    t = row_times(plan)
    rows = list(range(len(t))) if rows is None else rows
    if not stateful:
        return [None] * len(rows)
    b = plan.batch_size
    return [int(t[r - b]) if r >= b else None for r in rows]


def one_hot(ids: np.ndarray, n_unique: int) -> np.ndarray:
    """One-hot float32 vectors on a new last axis; MISSING ids become all-zero rows."""
    ids = np.asarray(ids)
    out = np.zeros((*ids.shape, n_unique), dtype=np.float32)
    valid = ids >= 0
    out[valid, ids[valid]] = 1.0
    return out


def decode(vectors: np.ndarray) -> np.ndarray:
    """Argmax along the last axis: one-hot or probability vectors back to ids."""
    return np.argmax(vectors, axis=-1)
