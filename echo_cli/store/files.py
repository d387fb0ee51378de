"""Files written whole or not at all: a temporary file beside the target, renamed into place.

    write_atomic(Path("results/results.md"), text)
    write_json(Path("bench/results.json"), record)
    write_csv(Path("sweep/results.csv"), rows)

A reader never sees half a file, and a crash or a full disk leaves the old file (or none).
This module imports nothing from echo_cli.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a whole file: a temporary file beside it, flushed to disk, then renamed. The file
    gets the usual permissions (0666 less the umask), not mkstemp's private 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(value: Any) -> Any:
    """value with every NaN or infinity replaced by None, at any depth: strict JSON has no
    NaN, and jq, JavaScript and most parsers reject it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(record: Any) -> str:
    """Strict JSON (no NaN or Infinity), indented."""
    return json.dumps(finite(record), indent=2, allow_nan=False) + "\n"


def write_json(path: Path, record: Any) -> None:
    write_atomic(path, json_text(record))


def csv_text(rows: list[dict[str, Any]], fields: list[str] | None = None) -> str:
    """CSV with a header: the given fields, else every key in the order first seen."""
    fields = fields or list(dict.fromkeys(key for row in rows for key in row)) or ["name"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore",
                            lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> None:
    write_atomic(path, csv_text(rows, fields))
