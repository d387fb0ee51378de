"""Random integer sequences and their framing into samples, in plain numpy.

A sequence of integers becomes rows of (x, y): row t holds the context ending at X(t) and
the target X(t - lag). Ids are kept as integers with -1 for a missing step or an unscored
target; `one_hot` turns them into the tutorial's one-hot vectors (a missing step is all zeros).

    plan = Framing(length=25, lag=1, window=5, batch_size=5)
    seqs = generate_sequences(stream_rng(1, "train"), count=2, length=25, n_unique=100)
    framed = frame(seqs, plan)          # framed.x: (2, 20, 5), framed.y: (2, 20)

This module imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from echo_cli.errors import EchoError

MISSING = -1  # a step before the start of the sequence, or a target that cannot be known

# Independent random streams, so that training, validation and held-out data never overlap.
STREAMS = {"train": 0, "heldout": 1, "validation": 2, "init": 3}


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


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """A generator for one purpose ("train", "heldout", "validation") of one seed."""
    return np.random.default_rng([seed, STREAMS[stream]])


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


# ---------------------------------------------------------------------------------------------
# your own data: integers (or any values, through a vocabulary) from a CSV column


class DataError(EchoError, ValueError):
    """Data that cannot be used. The message is one line, ready to print."""


@dataclass(frozen=True)
class Dataset:
    """Sequences cut from a file: training and held-out parts never share a row, and no
    sequence crosses a gap (a row with no value).

    train: (N, length) ids; heldout: (M, length) ids; vocabulary: id -> original value, or
    None when the values are used as they are.
    """

    train: np.ndarray
    heldout: np.ndarray
    vocabulary: list | None
    n_unique: int
    rows: int
    gaps: list[int] = field(default_factory=list)  # file lines with no value (NA, null, blank)


def read_csv_dataset(
    path: str, column: str, *, length: int, heldout_fraction: float, n_unique: int
) -> Dataset:
    """Cut a CSV column into consecutive sequences of `length`, the last part held out.

    A row with no value (NA, null, blank) is a gap: sequences are cut between gaps, never
    across one, so values on either side of a gap are never taken as neighbours.

    Values are used as they are when every one is an integer in 0 .. n_unique-1, and n_unique
    becomes the largest value + 1, so that chance is judged against the values that can occur.
    Otherwise (other integers, floats or strings) a sorted vocabulary maps them to ids
    0 .. V-1, and n_unique becomes V.

    Raises:
        DataError: a missing file or column, an empty column, or too few rows for a
            training and a held-out sequence.
    """
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise DataError(f"data.path {path} does not exist; give a CSV file, e.g. "
                        f"configs/data/dice.csv (paths are relative to where you run echo-cli)")
    try:
        frame_ = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"data.path {path} is not a readable CSV file "
                        f"({type(err).__name__})") from None
    if column not in frame_.columns:
        cols = ", ".join(map(str, frame_.columns[:10])) or "none"
        raise DataError(f"data.column {column!r} is not in {path}; its columns are: {cols}")
    col = frame_[column]
    missing = col.isna().to_numpy()
    values = col[~missing]
    if values.empty:
        raise DataError(f"data.column {column!r} in {path} is empty")
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype(np.int64)  # integers with gaps: pandas read them as floats
    as_int = pd.api.types.is_integer_dtype(values)
    if as_int and values.min() >= 0 and values.max() < n_unique:
        known, vocabulary = values.to_numpy(dtype=np.int64), None
        n_unique = max(int(values.max()) + 1, 2)
    else:
        vocabulary = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
        index = {v: i for i, v in enumerate(vocabulary)}
        known = values.map(index).to_numpy(dtype=np.int64)
        vocabulary = [v.item() if hasattr(v, "item") else v for v in vocabulary]
        n_unique = len(vocabulary)
    ids = np.full(len(col), MISSING, dtype=np.int64)
    ids[~missing] = known
    n_held_rows = int(round(len(ids) * heldout_fraction))
    split = len(ids) - n_held_rows
    train, heldout = _cut(ids[:split], length), _cut(ids[split:], length)
    if len(train) < 1 or len(heldout) < 1:
        raise DataError(
            f"{path} has {len(values)} values in {column!r}: too few for one training and "
            f"one held-out sequence of data.length={length} with "
            f"data.heldout_fraction={heldout_fraction}"
            + (f" once sequences are split at its {int(missing.sum())} gaps" if missing.any()
               else f"; need at least "
                    f"{int(np.ceil(length / min(heldout_fraction, 1 - heldout_fraction)))}")
        )
    return Dataset(train=train, heldout=heldout, vocabulary=vocabulary, n_unique=n_unique,
                   rows=len(ids), gaps=[int(i) + 2 for i in np.flatnonzero(missing)])


def _cut(ids: np.ndarray, length: int) -> np.ndarray:
    """Consecutive sequences of `length` that never cross a gap (MISSING), oldest first.

    Returns:
        (N, length) ids; each run of known values gives floor(run / length) sequences.
    """
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (ids >= 0).astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        whole = (stop - start) // length
        out.append(ids[start : start + whole * length].reshape(whole, length))
    return np.concatenate(out) if out else np.zeros((0, length), dtype=np.int64)


def csv_dataset(section) -> Dataset:
    """read_csv_dataset for a config's `data` section (source: csv)."""
    return read_csv_dataset(section.path, section.column, length=section.length,
                            heldout_fraction=section.heldout_fraction, n_unique=section.n_unique)


def cycle(seqs: np.ndarray, count: int) -> np.ndarray:
    """count sequences, going round seqs in order: one per epoch."""
    return seqs[np.arange(count) % len(seqs)]
