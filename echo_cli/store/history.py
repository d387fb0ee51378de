"""history.csv as training writes it: one whole row per epoch, streamed.

    writer = HistoryWriter(run / rundir.HISTORY, ["epoch", "loss", "accuracy"])
    writer.add({"epoch": 1, "loss": 4.6, "accuracy": 0.01}); writer.close(rows)

The run directory (rundir.py) names the file and hands it here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any

from echo_cli.store.files import csv_text, write_all, write_atomic


def history_csv(rows: list[dict[str, Any]]) -> str:
    """history.csv: epoch, loss, accuracy, then any other logged column in the order first seen."""
    return csv_text(rows, None if rows else ["epoch", "loss", "accuracy"])


class HistoryWriter:
    """history.csv as training goes: each epoch's row appended with one write, so a run killed
    outright keeps every row it wrote, and none is ever half-written: a write that fails (a
    full disk) is cut back to the last whole row, and the error raised. `close` rewrites the
    whole file atomically; if even that fails, the streamed file stands, whole rows only."""

    def __init__(self, path: Path, fields: list[str], rows: list[dict[str, Any]] = ()):
        """Start the file at `path` with its header and `rows` (a resumed run's epochs so
        far)."""
        self.path, self.fields = path, fields
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0
        try:
            self._append(csv_text(list(rows), fields))
        except OSError:
            self._shut()
            raise

    def _append(self, text: str) -> None:
        data = text.encode("utf-8")
        try:
            write_all(self._fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # back to the last whole row
            raise
        self._size += len(data)

    def add(self, row: dict[str, Any]) -> None:
        """Append one row, whole (OSError when it cannot be written; the file keeps the rows
        before it)."""
        if self._fd is None:
            return
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.fields, extrasaction="ignore",
                       lineterminator="\r\n").writerow(row)
        self._append(buffer.getvalue())

    def _shut(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def close(self, rows: list[dict[str, Any]]) -> None:
        """Replace the streamed file with the whole history, written atomically.

        Raises:
            OSError: the rewrite failed; the streamed file, whole rows only, is kept.
        """
        self._shut()
        write_atomic(self.path, history_csv(rows))
