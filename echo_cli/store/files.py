"""Files written whole or not at all: a temporary file beside the target, renamed into place.

    write_atomic(Path("results/results.md"), text)
    write_json(Path("bench/results.json"), record)
    write_csv(Path("sweep/results.csv"), rows)

A reader never sees half a file, and a crash or a full disk leaves the old file (or none).
This module imports nothing from echo_cli.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or over quota: the disk is full for us


def disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FULL


def describe(err: OSError, path: Path) -> str:
    """An OSError in one line that names the problem and the place: "no space left on device
    (the disk holding runs/x, writing model.keras)"."""
    if disk_full(err):
        return (f"no space left on device (the disk holding {path.parent}, writing "
                f"{path.name}); free some space and run it again")
    return f"{err.strerror or err} ({path})"


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
        write_all(fd, data.encode("utf-8") if isinstance(data, str) else data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(fd: int, data: bytes) -> None:
    """All of data to a file descriptor (os.write may take part of it), or OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
