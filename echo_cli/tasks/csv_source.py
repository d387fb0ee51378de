"""Your own data for the echo: a CSV column cut into sequences, through a vocabulary if needed.

    dataset = read_csv_dataset("configs/data/dice.csv", "colour", length=25,
                               heldout_fraction=0.2, n_unique=100)
    dataset.train.shape        # (64, 25) ids; dataset.vocabulary: id -> the file's value

A row with no value is a gap: sequences are cut between gaps, never across one. The last part
of the file is held out. This module imports no TensorFlow (pandas when a file is read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from echo_cli.errors import EchoError
from echo_cli.models.base import MISSING


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
