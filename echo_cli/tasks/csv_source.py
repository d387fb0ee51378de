"""Your own data for the echo: a CSV column cut into sequences, through a vocabulary if needed.

    dataset = read_csv_dataset("configs/data/dice.csv", "colour", length=25,
                               heldout_fraction=0.2, n_unique=100)
    dataset.train.shape        # (64, 25) ids; dataset.vocabulary: id -> the file's value

A row with no value is a gap: sequences are cut between gaps, never across one. The last part
of the file is held out. This module imports no TensorFlow (pandas when a file is read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from echo_cli.errors import EchoError, path_problem
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

    A row with no value (NA, null, an empty field, a blank line) is a gap: sequences are cut
    between gaps, never across one, so values on either side of a gap are never taken as
    neighbours. Line numbers in messages are the file's own.

    Values are used as they are when every one is an integer in 0 .. n_unique-1, and n_unique
    becomes the largest value + 1, so that chance is judged against the values that can occur.
    Otherwise a sorted vocabulary maps them to ids 0 .. V-1 (numbers in order, or the text as
    the file has it), and n_unique becomes V. A value that vocabulary.json could not give back
    as the file has it is refused before training: a boolean, an infinity, or a number whose
    text is not how it reads back (0.10 is 0.1, which would merge it with 0.1).

    Raises:
        DataError: a missing file or column, an empty column, a value that cannot be kept as
            it is, or too few rows for a training and a held-out sequence.
    """
    texts = _read_column(path, column)
    missing = np.array([t is None for t in texts])
    values = [t for t in texts if t is not None]
    if not values:
        raise DataError(f"data.column {column!r} in {path} is empty")
    lines = [i + 2 for i, t in enumerate(texts) if t is not None]  # the header is line 1
    ids = np.full(len(texts), MISSING, dtype=np.int64)
    ids[~missing], vocabulary, n_unique = _ids(values, lines, column, n_unique)
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
                    f"{int(np.ceil(length / min(heldout_fraction, 1 - heldout_fraction)))}"))
    return Dataset(train=train, heldout=heldout, vocabulary=vocabulary, n_unique=n_unique,
                   rows=len(ids), gaps=[int(i) + 2 for i in np.flatnonzero(missing)])


def _read_column(path: str, column: str) -> list[str | None]:
    """The column's values as the file writes them (None for no value), one per data line:
    blank lines are kept, as gaps."""
    import pandas as pd

    problem = path_problem(Path(path))
    if problem is not None:
        raise DataError(f"data.path {path} {problem}; give a CSV file, e.g. "
                        f"configs/data/dice.csv (paths are relative to where you run echo-cli)")
    try:
        frame_ = pd.read_csv(path, dtype=str, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"data.path {path} is not a readable CSV file "
                        f"({type(err).__name__})") from None
    if column not in frame_.columns:
        cols = ", ".join(map(str, frame_.columns[:10])) or "none"
        raise DataError(f"data.column {column!r} is not in {path}; its columns are: {cols}")
    return [None if pd.isna(v) or not str(v).strip() else str(v).strip()
            for v in frame_[column].tolist()]


INTEGER = re.compile(r"[+-]?[0-9]+")
BOOLEAN = {"true", "false"}
INFINITE = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ids(values: list[str], lines: list[int], column: str,
         n_unique: int) -> tuple[np.ndarray, list | None, int]:
    """(ids, vocabulary or None, n_unique) for the column's values."""
    for text, line in zip(values, lines, strict=True):
        if text.lower() in BOOLEAN:
            raise DataError(f"data.column {column!r} holds {text} on line {line}: a boolean "
                            f"would come back as another value; write the values as words "
                            f"(yes, no) or numbers (1, 0)")
        if text.lower() in INFINITE:
            raise DataError(f"data.column {column!r} holds {text} on line {line}: a value must "
                            f"be finite; remove it, or leave the line empty (a gap)")
    if all(INTEGER.fullmatch(t) for t in values):
        for text, line in zip(values, lines, strict=True):
            if len(text.lstrip("+-")) > 18:
                raise DataError(f"data.column {column!r} holds {text[:30]} on line {line}: "
                                f"integer too large (at most 18 digits)")
        numbers = np.array([int(t) for t in values], dtype=np.int64)
        if numbers.min() >= 0 and numbers.max() < n_unique:
            return numbers, None, max(int(numbers.max()) + 1, 2)
        return _vocabulary([int(t) for t in values])
    floats = [_number(t) for t in values]
    if all(f is not None for f in floats):
        for text, value, line in zip(values, floats, lines, strict=True):
            if repr(value) != text:  # 0.10 would merge with 0.1, 1e-3 come back as 0.001
                raise DataError(f"data.column {column!r} holds {text[:30]} on line {line}, "
                                f"which reads back as {value!r}: write the values as they "
                                f"read back, or as text")
        return _vocabulary(floats)
    return _vocabulary(values)


def _vocabulary(values: list) -> tuple[np.ndarray, list, int]:
    """Ids through a sorted vocabulary of the distinct values."""
    vocabulary = sorted(set(values))
    index = {v: i for i, v in enumerate(vocabulary)}
    return np.array([index[v] for v in values], dtype=np.int64), vocabulary, len(vocabulary)


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
